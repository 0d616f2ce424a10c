"""Message text from templates: defaults per event kind that read well in Discord, Telegram and
email, and per-service overrides rendered in a bounded Jinja2 sandbox (notifyd.template_sandbox: no
attribute tricks, no files, no globals beyond the event itself, and limits on time, size and output).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from notifyd.messages import Message
from notifyd.model import Event
from notifyd.template_sandbox import (  # noqa: F401  (the errors and limits are part of this module's API)
    MAX_CPU_S,
    MAX_OUTPUT,
    TemplateLimit,
    TemplateProblem,
    render_bounded,
)
from notifyd.units import filesize  # noqa: F401  (the filter the defaults use)

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


def check_template(source: str) -> None:
    """Compile and trial-render a template, so that config load reports what delivery would hit."""
    render_bounded((source,), _context(SAMPLE))


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
    # One budget for the title and the body.
    title, body = render_bounded((chosen.get("title", default_title), chosen.get("body", default_body)),
                                 _context(event))
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
