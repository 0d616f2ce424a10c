"""notifyd.template_sandbox: every template bomb stops at the limit it names, within its budget, and
everyday templates render exactly as plain Jinja renders them."""

from __future__ import annotations

import json
import re
import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from notifyd.config import parse_config_text
from notifyd.errors import ConfigError
from notifyd.model import Event
from notifyd.templates import (
    DEFAULTS,
    FALLBACK,
    MAX_CPU_S,
    SAMPLE,
    TemplateLimit,
    TemplateProblem,
    check_template,
    filesize,
    render,
)

from conftest import run_cli


def event(**fields) -> Event:
    fields.setdefault("source", "backups")
    fields.setdefault("source_type", "generic")
    fields.setdefault("kind", "backup")
    fields.setdefault("title", "")
    return Event(**fields)


NESTED_LOOPS = "{% set s = 'x' * 60000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"

BOMBS = [
    # operations that multiply text, refused before they run
    ("{{ ('x' * 60000)|replace('x', 'x' * 60000) }}", "size"),
    ("{{ ('x' * 60000)|list|join('x' * 60000) }}", "size"),
    ("{% set s = 'x' * 60000 %}{{ [s, s, s]|join }}", "size"),
    ("{{ title|center(10**8) }}", "size"),
    ("{{ '%100000000s'|format(title) }}", "size"),
    ("{{ '%*s' % (10**8, title) }}", "size"),
    ("{{ '%.100000000f' % 1.5 }}", "size"),
    ("{% set s = 'x' * 10000 %}{{ ('%s' * 10) % ((s,) * 10) }}", "size"),
    ("{{ '{:>100000000}'.format(title) }}", "size"),
    ("{{ ('{0}' * 20000).format('x' * 60000) }}", "size"),
    ("{{ 'x' * 10**8 }}", "size"),
    ("{{ [title] * 10**8 }}", "size"),
    ("{% set s = 'x' * 60000 %}{{ s + s }}", "size"),
    ("{% set s = 'x' * 60000 %}{{ s ~ s }}", "size"),
    ("{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f(title) }}", "size"),
    ("{{ 10 ** 100 }}", "size"),
    ("{{ ((10 ** 64) ** 64) ** 64 }}", "size"),
    ("{{ title.zfill(10**8) }}", "size"),
    ("{{ title.ljust(10**8) }}", "size"),
    ("{{ title.rjust(10**8) }}", "size"),
    ("{{ title.center(10**8) }}", "size"),
    ("{{ ('x' * 60000).replace('x', 'x' * 60000) }}", "size"),
    ("{{ ('x' * 60000).join(('x' * 60000)|list) }}", "size"),
    ("{{ ('\t' * 60000).expandtabs(60000) }}", "size"),
    ("{{ ('x' * 60000).translate({120: 'x' * 60000}) }}", "size"),
    ("{{ (1).to_bytes(10**8, 'big') }}", "size"),
    ("{{ ('x\n' * 30000)|indent(60000) }}", "size"),
    ("{{ ('x' * 60000)|wordwrap(1, wrapstring='x' * 60000) }}", "size"),
    ("{% set s = 'x' * 60000 %}{{ title|truncate(5, end=[s, s]) }}", "size"),
    ("{{ [1]|batch(10**8, 'x')|list }}", "size"),
    ("{{ [1]|slice(10**8)|list }}", "size"),
    ("{{ 5|round(-10**8) }}", "size"),
    ("{% set l = ['x'] * 40000 %}{{ [l, l]|sum(start=[]) }}", "size"),
    ("{% set s = 'x' * 60000 %}{{ [s, s]|upper }}", "size"),
    # output, counted as it is made, in the message and in macros and blocks
    ("{% set l = ['x' * 60000] * 10 %}{{ l }}", "output"),
    ("{% for c in 'x' * 60000 %}{{ c }}{{ c }}{% endfor %}", "output"),
    ("{% set s = 'x' * 60000 %}{% filter upper %}{% for a in 'xx' %}{{ s }}{% endfor %}{% endfilter %}", "output"),
    ("{% macro f() %}{% for c in 'x' * 60000 %}xx{% endfor %}{% endmacro %}{{ f()|length }}", "output"),
    # all a render makes, each value short enough on its own
    ("{% set a = ['x' * 60000] %}{% set b = [a, a] %}{% set c = [b, b] %}{% set d = [c, c] %}{% set e = [d, d] %}"
     "{{ e|length }}", "memory"),
    ("{% set s = 'x' * 60000 %}{{ s|map('center', 60000)|list|length }}", "memory"),
    # CPU time: loops and calls that make nothing
    (NESTED_LOOPS, "time"),
    ("{% set s = 'x' * 60000 %}{% macro f() %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}{% endmacro %}"
     "{{ f() }}", "time"),
    ("{% macro f() %}{% for a in 'x' * 60000 %}{% for b in 'x' * 100 %}" + "x" * 100 + "{% endfor %}{% endfor %}"
     "{% endmacro %}{{ f() }}", "memory"),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", "time"),
    ("{{ ('é' * 60000).encode('punycode') }}", "time"),
    # recursion
    ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "depth"),
    ("{% for x in title recursive %}{{ loop(title) }}{% endfor %}", "depth"),
]


def within(seconds: float, action: Callable[[], object]) -> Exception | None:
    """What `action` raised, run on a thread of its own; fails the test if it is still running after `seconds`
    (generous: only a limit that does not work takes that long)."""
    raised: list[Exception] = []

    def run() -> None:
        try:
            action()
        except Exception as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still rendering after {seconds} s"
    return raised[0] if raised else None


@pytest.mark.parametrize("source, limit", BOMBS, ids=[f"{limit}-{n}" for n, (_, limit) in enumerate(BOMBS)])
def test_a_template_bomb_stops_at_the_limit_it_names(source, limit):
    raised = within(60, lambda: check_template(source))
    assert isinstance(raised, TemplateLimit), raised
    message = str(raised)
    assert message.startswith("template ") and message.endswith(f"(template {limit} limit)")
    assert "\n" not in message


def test_the_time_limit_is_cpu_time_of_the_rendering_thread():
    raised = within(60, lambda: check_template(NESTED_LOOPS))
    assert str(raised) == f"template stopped after {MAX_CPU_S:g} s of CPU time (template time limit)"


def test_a_render_at_delivery_is_bounded_like_the_check():
    # passes the trial render (its sample is a download), stops when a health event comes
    source = "{% if kind == 'health' %}" + NESTED_LOOPS + "{% endif %}ok"
    check_template(source)
    health = replace(SAMPLE, kind="health")
    raised = within(60, lambda: render(health, {"*": {"body": source}}))
    assert isinstance(raised, TemplateLimit) and "(template time limit)" in str(raised)


def test_title_and_body_share_one_budget():
    # each makes 660,000 characters on the way (under the 1 MiB limit alone, over it together)
    half = "{% set s = 'x' * 60000 %}{% for i in 'abcdefghij' %}{% set t = s|upper %}{% endfor %}ok"
    check_template(half)
    with pytest.raises(TemplateLimit, match=r"\(template memory limit\)"):
        render(SAMPLE, {"*": {"title": half, "body": half}})


def test_range_is_not_offered_at_all():
    with pytest.raises(TemplateProblem, match="'range' is undefined"):
        check_template("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")


@pytest.mark.parametrize("source", [
    "{{ ('x' * 60000)|replace('x', 'x' * 60000) }}", "{{ ('x' * 60000)|list|join('x' * 60000) }}",
    "{{ title|center(10**8) }}", "{{ '%100000000s'|format(title) }}", "{{ '%*s' % (10**8, title) }}",
    "{{ ('x' * 60000).zfill(10**8) }}", "{% set l = ['x' * 60000] * 10 %}{{ l }}",
])
def test_a_refused_bomb_never_makes_its_value(source):
    tracemalloc.start()
    try:
        with pytest.raises(TemplateLimit):
            check_template(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20          # the value would be gigabytes; the sandbox itself takes a few


def test_up_to_the_limit_is_fine():
    assert len(render(SAMPLE, {"*": {"body": "{{ title|center(65536) }}"}}).body) == len(SAMPLE.title)
    with pytest.raises(TemplateLimit, match=r"\|center would make more than 65536"):
        check_template("{{ title|center(65537) }}")
    # a filter may hand back as much as it was given, even a field longer than a message
    long_body = replace(SAMPLE, body="word " * 20000)
    assert render(long_body, {"*": {"body": "{{ body|trim|truncate(20) }}"}}).body == "word word word..."


def plain_jinja(source: str, event: Event) -> str:
    """The same template in Jinja's own sandbox, without the limits."""
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from notifyd.templates import _context

    env = ImmutableSandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)
    env.globals.clear()
    env.filters["filesize"] = filesize
    return env.from_string(source).render(_context(event))


EVERYDAY = (
    "{% macro line(e) %}S{{ '%02d' % e.season }}E{{ '%02d'|format(e.episode) }} {{ e.title|upper|center(12) }}"
    "{% endmacro %}{% for e in episodes * 3 %}{{ line(e) }}{% if not loop.last %}, {% endif %}{% endfor %}\n"
    "{{ [quality, size|filesize]|select|join(' · ') }} {{ (paths|first).split('/')|last }} "
    "{{ '{} ({})'.format(title, year) }} {{ '%(a)s-%(b)s' % {'a': kind, 'b': source} }}\n"
    "{{ media|dictsort|map('first')|join(',') }} {{ ids.tmdb * 2 }} {{ 'ab' * 3 }} {{ title ~ '!' ~ year }} "
    "{{ (year + 1) ** 2 }} {{ ['a', 'b'] + [kind] }} {{ (1, kind) }} {{ {'k': title} }} {{ replaced }}\n"
    "{{ health.message|replace('unavailable', 'down')|truncate(15) }} {{ update|tojson }} "
    "{{ replaced|sum(attribute='size') }} {{ [[1], [2]]|sum(start=[]) }} {{ title|wordwrap(8) }}\n"
    "{{ title|indent(2, true) }} {% set x %}{{ kind }}{% endset %}{{ x }} {{ title.zfill(20) }} "
    "{{ title.ljust(20, '.') }} {{ 'a\tb'.expandtabs(4) }} {{ '-'.join(paths) }} {{ media.items()|list|length }}\n"
    "{% filter upper %}{% for k, v in health|dictsort %}{{ k }}={{ v }};{% endfor %}{% endfilter %} "
    "{% for n in [3, 1, 2]|sort recursive %}{{ n }}{% endfor %} {{ 7 // 2 }} {{ 7 % 3 }} {{ '%.2f' % 3.14159 }}"
    "{% autoescape true %} {{ '<b>' ~ title }}<i>{% for c in 'ab' %}<{{ c }}>{% endfor %}</i>{% endautoescape %}"
)


@pytest.mark.parametrize("source", [EVERYDAY, *FALLBACK, *(text for pair in DEFAULTS.values() for text in pair)])
@pytest.mark.parametrize("kind", ["download", "run.completed"])
def test_everyday_templates_render_as_plain_jinja_does(source, kind):
    event = replace(SAMPLE, kind=kind, media={**SAMPLE.media, "duration_s": 42.5, "cost_usd": 0.0425,
                                             "output_urls": ["https://x/a.png", "https://x/b.png"]})
    message = render(event, {"*": {"title": source, "body": source}})
    expected = plain_jinja(source, event)
    assert message.body == re.sub(r"\n{3,}", "\n\n", expected).strip()
    assert message.title == " ".join(expected.split())


def test_a_bomb_template_is_a_config_error_naming_file_line_key_and_limit():
    text = ('[services.discord]\ntype = "apprise"\nurl = "json://127.0.0.1:9/x"\n\n'
            '[services.discord.templates.download]\n'
            f"title = {json.dumps(NESTED_LOOPS)}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config_text(text, None)
    assert caught.value.line == 6
    assert str(caught.value).endswith("services.discord.templates.download.title: "
                                      f"template stopped after {MAX_CPU_S:g} s of CPU time (template time limit)")


@pytest.mark.parametrize("bomb, reason", [
    ("{{ ('x' * 60000)|replace('x', 'x' * 60000) }}",
     "template |replace would make more than 65536 characters (template size limit)"),
    (NESTED_LOOPS, f"template stopped after {MAX_CPU_S:g} s of CPU time (template time limit)"),
])
def test_config_check_refuses_a_bomb_template_in_one_line(tmp_path: Path, bomb, reason):
    path = tmp_path / "config.toml"
    path.write_text('[services.discord]\ntype = "apprise"\nurl = "json://127.0.0.1:9/x"\n\n'
                    f"[services.discord.templates.download]\ntitle = {json.dumps(bomb)}\n")
    result = run_cli("config", "check", config=path)
    assert result.returncode == 2
    assert (result.stdout + result.stderr).strip().splitlines() == [
        f"error: {path}:6: services.discord.templates.download.title: {reason}"]
