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

# Pieces the *arr defaults share: who told (the instance, else the app), what came (quality and
# size), how many files, and what an upgrade replaced, once per quality ("MP3-320 ×12").
_WHO = "(instance or app_name)"
_DETAILS = "[quality, size|filesize]|select|join(', ')"
_FILES = "((files ~ ' files') if files else '')"
_REPLACES = ("replaces {% for r in replaces %}{{ r.quality }}{% if r.count > 1 %} ×{{ r.count }}{% endif %}"
             "{% if not loop.last %}, {% endif %}{% endfor %}")

DEFAULTS: dict[str, tuple[str, str]] = {
    "download": ("{{ title }} imported", "{{ [" + _DETAILS + ", " + _FILES + ", " + _WHO + "]|select|join(' · ') }}"),
    "upgrade": ("{{ title }} upgraded",
                "{{ [" + _DETAILS + ", " + _FILES + "]|select|join(' · ') }}"
                "{% if replaces %}{% if quality or size or files %} — {% endif %}" + _REPLACES + "{% endif %}"
                "{% if " + _WHO + " %}{% if quality or size or files or replaces %} · {% endif %}"
                "{{ " + _WHO + " }}{% endif %}"),
    "grab": ("{{ title }} grabbed",
             "{{ [quality, size|filesize]|select|join(', ') }}{% if indexer %} from {{ indexer }}{% endif %}"
             "{% if download_client %} → {{ download_client }}{% endif %}"
             "{% if not (quality or size or indexer or download_client) and " + _WHO + " %}"
             "Sent to the download client by {{ " + _WHO + " }}.{% endif %}"),
    "download_failed": ("{{ title }}: download failed",
                        "{% if reason %}{{ reason }}\n{% endif %}"
                        "{{ [[quality, ('in ' ~ download_client) if download_client else '']|select|join(' '), "
                        + _WHO + "]|select|join(' · ') }}"
                        "{% if release_title and release_title != title %}\n{{ release_title }}{% endif %}"),
    "import_failed": ("{{ title }}: import failed",
                      "{% if reason %}{{ reason }}\n{% endif %}"
                      "{{ [quality, " + _FILES + ", ('from ' ~ download_client) if download_client else '']"
                      "|select|join(' · ') }}"
                      "{% if release_title and release_title != title %}\n{{ release_title }}{% endif %}"
                      "{% if not (reason or quality or files or download_client or release_title) %}"
                      "No details came with it; the app's Activity queue shows the download.{% endif %}"),
    "manual_interaction": ("{{ title }} waits for a manual import",
                           "{% if release_title and release_title != title %}{{ release_title }}\n{% endif %}"
                           "{{ " + _DETAILS + " }}{% if download_client %} in {{ download_client }}{% endif %}"
                           "{% for reason in reasons or [] %}\n{{ reason }}{% endfor %}"
                           "{% if not reasons and " + _WHO + " %}\nSee the queue in {{ " + _WHO + " }}.{% endif %}"),
    "rename": ("{{ title }} renamed",
               "{% if files %}{{ files }} file{{ 's' if files != 1 }} renamed{% else %}Files renamed{% endif %}"
               "{% if " + _WHO + " %} by {{ " + _WHO + " }}{% endif %}."),
    "retag": ("{{ title }}: tags updated",
              "{{ [file_name, quality, " + _WHO + "]|select|join(' · ') or 'File tags rewritten.' }}"),
    "delete": ("{{ title }} deleted",
               "Removed{% if " + _WHO + " %} from {{ " + _WHO + " }}{% endif %}"
               "{% if deleted_files %}, with its files{% if size %} ({{ size|filesize }}){% endif %}"
               "{% elif deleted_files == false %}; its files were kept{% endif %}."),
    "file_delete": ("{{ title }}: file deleted",
                    "{{ [(" + _DETAILS + ") or 'A file', delete_reason, " + _WHO + "]|select|join(' · ') }}"),
    "added": ("{{ title }} added",
              "Now monitored{% if " + _WHO + " %} by {{ " + _WHO + " }}{% endif %}"
              "{% if add_method %}, added {{ add_method }}{% endif %}."),
    "health": ("{{ title }}",
               "{{ health.message or health.type or 'No message came with it.' }}"
               "{% if health.wiki_url %}\n{{ health.wiki_url }}{% endif %}"),
    "health_restored": ("{{ title }}", "Resolved: {{ health.message or health.type or 'the check passes again' }}"),
    # The title says the new version; the sender's message ("Radarr updated from 5.0 to 5.1")
    # would say it again, so it is shown only when it says something else.
    "app_update": ("{{ title }}",
                   "{% if update.previous_version %}Previous version: {{ update.previous_version }}{% endif %}"
                   "{% if update.message and not (update.new_version and update.new_version in update.message) %}"
                   "\n{{ update.message }}{% endif %}"
                   "{% if not update.previous_version and not update.message %}A new version is installed.{% endif %}"),
    "test": ("{{ title }}", "Test message from notifyd."),
    "run.completed": ("{{ title }}",
                      "Done{% if duration_s is number %} in {{ duration_s }} s{% endif %}"
                      "{% if cost_usd is number %} · ${{ '%.4f'|format(cost_usd) }}{% endif %}"
                      "{% for text in output_texts or [] %}\n{{ text }}{% endfor %}"
                      "{% for url in output_urls or [] %}\n{{ url }}{% endfor %}"),
    "run.failed": ("{{ title }}",
                   "{{ error or 'The run failed' }}"
                   "{% if duration_s is number %} (after {{ duration_s }} s){% endif %}"),
}
# Kinds without a default: a generic sender's own, and an *arr event type notifyd does not know yet
# (which keeps its `event_type`: said, rather than the title twice).
FALLBACK = ("{{ title or (source ~ ': ' ~ kind) }}",
            "{{ body or ((" + _WHO + " ~ ' sent ' ~ event_type ~ ', an event notifyd has no words for yet.') "
            "if event_type else '') or title or (source ~ ' sent a ' ~ kind ~ ' event.') }}")


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
               media={"app": "radarr", "app_name": "Radarr", "instance": "Radarr", "media_type": "movie",
                      "level": "success", "year": 2016, "quality": "Bluray-2160p", "size": 31457280000,
                      "release_group": "GRP", "download_client": "SABnzbd", "indexer": "NZBgeek",
                      "ids": {"tmdb": 329865}, "download_id": "SABnzbd_nzo_1",
                      "release_title": "Arrival.2016.2160p.UHD.BluRay.x265-GRP",
                      "episodes": [{"season": 1, "episode": 2, "title": "Pilot"}],
                      "replaced": [{"quality": "Bluray-1080p", "size": 14495514624, "path": "/x.mkv"}],
                      "replaces": [{"quality": "Bluray-1080p", "count": 1}],
                      "reasons": ["Not an upgrade for existing movie file"], "reason": "Import failed",
                      "delete_reason": "missing from disk", "deleted_files": True, "file_name": "x.mkv",
                      "health": {"level": "warning", "message": "Indexers unavailable", "type": "X"},
                      "update": {"previous_version": "5.0", "new_version": "5.1", "message": "New"}})
