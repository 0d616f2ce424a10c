"""Message text from templates: defaults per event kind that read well in Discord, Telegram and
email, and per-service overrides rendered in Jinja2's immutable sandbox (no attribute tricks, no
files, no globals beyond the event itself)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from notifyd.messages import Message
from notifyd.model import Event


class TemplateProblem(Exception):
    """A template that does not compile or cannot render; the message says where and why."""


DEFAULTS: dict[str, tuple[str, str]] = {
    "download": ("{{ title }} imported",
                 "{{ [quality, size|filesize]|select|join(', ') }}{% if instance %} · {{ instance }}{% endif %}"),
    "upgrade": ("{{ title }} upgraded",
                "{{ [quality, size|filesize]|select|join(', ') }}"
                "{% if replaced %} — replaces {{ replaced|map(attribute='quality')|select|join(', ') }}{% endif %}"
                "{% if instance %} · {{ instance }}{% endif %}"),
    "grab": ("{{ title }} grabbed",
             "{{ [quality, size|filesize]|select|join(', ') }}{% if indexer %} from {{ indexer }}{% endif %}"
             "{% if download_client %} → {{ download_client }}{% endif %}"),
    "rename": ("{{ title }} renamed", "Files renamed{% if instance %} by {{ instance }}{% endif %}."),
    "delete": ("{{ title }} deleted", "Removed{% if instance %} from {{ instance }}{% endif %}."),
    "file_delete": ("{{ title }}: file deleted",
                    "{{ [quality, size|filesize]|select|join(', ') or 'A file' }} was deleted."),
    "added": ("{{ title }} added", "Now monitored{% if instance %} by {{ instance }}{% endif %}."),
    "health": ("{{ title }}", "{{ health.message }}{% if health.wiki_url %}\n{{ health.wiki_url }}{% endif %}"),
    "health_restored": ("{{ title }}", "Resolved: {{ health.message }}"),
    "app_update": ("{{ title }}",
                   "{{ update.previous_version }} → {{ update.new_version }}"
                   "{% if update.message %}\n{{ update.message }}{% endif %}"),
    "manual_interaction": ("{{ title }} needs a hand",
                           "An import is waiting for manual interaction"
                           "{% if download_client %} in {{ download_client }}{% endif %}."),
    "test": ("{{ title }}", "Test message from notifyd."),
    "run.completed": ("{{ title }}",
                      "Done{% if duration_s is number %} in {{ duration_s }} s{% endif %}"
                      "{% if cost_usd is number %} · ${{ '%.4f'|format(cost_usd) }}{% endif %}"
                      "{% for url in output_urls or [] %}\n{{ url }}{% endfor %}"),
    "run.failed": ("{{ title }}",
                   "{{ error or 'The run failed' }}"
                   "{% if duration_s is number %} (after {{ duration_s }} s){% endif %}"),
}
FALLBACK = ("{{ title or (source ~ ': ' ~ kind) }}", "{{ body or title or (source ~ ' sent a ' ~ kind ~ ' event.') }}")


def filesize(value: Any) -> str:
    """Bytes as people read them: 29.3 GiB, 512 MiB; empty for nothing."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 2**63:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit in ("B", "KiB") else f"{size:.1f} {unit}"
        size /= 1024
    return ""


MAX_OUTPUT = 64 * 1024          # a notification longer than this is a mistake, not a message
MAX_EXPONENT = 64


@lru_cache(maxsize=1)
def _environment():
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        """The immutable sandbox, plus bounds on `*` and `**`, the two ways one expression gets huge."""

        intercepted_binops = frozenset({"*", "**"})

        def unsafe_undefined(self, obj, attribute):
            # Refuse at once (the config load reports it) rather than render an empty string.
            raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed")

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is over the limit of {MAX_EXPONENT}")
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(times, int) \
                            and len(seq) * times > MAX_OUTPUT:
                        raise SecurityError(f"repeating a value {times} times makes more than {MAX_OUTPUT} characters")
            return super().call_binop(context, operator, left, right)

    from jinja2 import ChainableUndefined

    # A field an event lacks renders as nothing, even through attributes (health.message).
    env = LimitedSandbox(autoescape=False, undefined=ChainableUndefined)
    env.globals.clear()                       # nothing but the event's own fields
    env.filters["filesize"] = filesize
    return env


@lru_cache(maxsize=512)
def _compile(source: str):
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on its line {exc.lineno}: {exc.message}") from None
    except Exception as exc:                  # Jinja evaluates constants while it compiles
        raise TemplateProblem(f"template cannot compile: {type(exc).__name__}") from None


def _render(template, context: dict[str, Any]) -> str:
    """Render, stopping at MAX_OUTPUT characters: a loop cannot build a message that eats memory."""
    parts, size = [], 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT:
            raise TemplateProblem(f"template output is over the limit of {MAX_OUTPUT} characters")
        parts.append(chunk)
    return "".join(parts)


def check_template(source: str) -> None:
    """Compile and trial-render a template, so that config load reports what delivery would hit."""
    template = _compile(source)
    try:
        _render(template, _context(SAMPLE))
    except TemplateProblem:
        raise
    except Exception as exc:
        raise TemplateProblem(f"template cannot render: {type(exc).__name__}: {exc}") from None


def _context(event: Event) -> dict[str, Any]:
    media = dict(event.media)
    context: dict[str, Any] = {key: value for key, value in media.items()}
    context.update(title=event.title, body=event.body, kind=event.kind, source=event.source,
                   source_type=event.source_type, paths=list(event.paths), media=media)
    return context


def render(event: Event, overrides: Mapping[str, Mapping[str, str]] | None = None) -> Message:
    """The event's title and body: the service's override for this kind (or "*"), else the default
    for the kind. An event that brings its own text (a generic sender, `notifyd send`) keeps it."""
    default_title, default_body = FALLBACK if event.body else DEFAULTS.get(event.kind, FALLBACK)
    chosen = dict(overrides.get(event.kind) or overrides.get("*") or {}) if overrides else {}
    context = _context(event)
    try:
        title = _render(_compile(chosen.get("title", default_title)), context)
        body = _render(_compile(chosen.get("body", default_body)), context)
    except TemplateProblem:
        raise
    except Exception as exc:
        raise TemplateProblem(f"template cannot render: {type(exc).__name__}: {exc}") from None
    title = " ".join(title.split())
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    return Message(title=title or event.title or event.kind, body=body or title,
                   level=str(event.media.get("level", "info")))


SAMPLE = Event(source="radarr", source_type="radarr", kind="download", title="Arrival (2016)",
               paths=("/data/media/movies/Arrival (2016)",),
               media={"app": "radarr", "instance": "Radarr", "media_type": "movie", "level": "success",
                      "year": 2016, "quality": "Bluray-2160p", "size": 31457280000, "release_group": "GRP",
                      "download_client": "SABnzbd", "indexer": "NZBgeek", "ids": {"tmdb": 329865},
                      "episodes": [{"season": 1, "episode": 2, "title": "Pilot"}],
                      "replaced": [{"quality": "Bluray-1080p", "size": 14495514624, "path": "/x.mkv"}],
                      "health": {"level": "warning", "message": "Indexers unavailable", "type": "X"},
                      "update": {"previous_version": "5.0", "new_version": "5.1", "message": "New"}})
