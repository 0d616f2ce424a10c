"""Message text from templates: defaults per event kind that read well in Discord, Telegram and
email, and per-service overrides rendered in Jinja2's immutable sandbox (no attribute tricks, no
files, no globals beyond the event itself)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Mapping

from notifyd.events import Event
from notifyd.messages import Message


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
}
FALLBACK = ("{{ title or (source ~ ': ' ~ kind) }}", "{{ body or title or (source ~ ' sent a ' ~ kind ~ ' event.') }}")


def filesize(value: Any) -> str:
    """Bytes as people read them: 29.3 GiB, 512 MiB; empty for nothing."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit in ("B", "KiB") else f"{size:.1f} {unit}"
        size /= 1024
    return ""


@lru_cache(maxsize=1)
def _environment():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(autoescape=False)
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


def check_template(source: str) -> None:
    """Compile and trial-render a template, so that config load reports what delivery would hit."""
    template = _compile(source)
    try:
        template.render(_context(SAMPLE))
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
        title = _compile(chosen.get("title", default_title)).render(context)
        body = _compile(chosen.get("body", default_body)).render(context)
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
