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
    # Prowlarr says which app a release went to (grabbed_by), and an app's fetch carries no size.
    "grab": ("{{ title }} grabbed",
             "{{ [quality, size|filesize]|select|join(', ') }}"
             "{% if grabbed_by %}{{ ' by ' if quality or size else 'By ' }}{{ grabbed_by }}{% endif %}"
             "{% if indexer %}{{ ' from ' if quality or size or grabbed_by else 'From ' }}{{ indexer }}{% endif %}"
             "{% if download_client %} → {{ download_client }}{% endif %}"
             "{% if not (quality or size or grabbed_by or indexer or download_client) and " + _WHO + " %}"
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
    # Media servers (Plex, Jellyfin): the item is the title; the body says on which player (and
    # client) and server, and where playback stood. Playback reaches only services that name it.
    "library_new": ("{{ title }} added to {{ server or app_name or source }}",
                    "New in {{ library or 'the library' }}.{% if overview %}\n{{ overview }}{% endif %}"),
    "playback_start": ("{{ user or 'Someone' }} is {{ 'listening to' if media_type == 'music' else 'watching' }} "
                       "{{ title }}",
                       "{{ [(('On ' ~ player ~ ((' (' ~ client ~ ')') if client else '')) if player else ''), "
                       "server or app_name or source]|select|join(' · ') }}"),
    "playback_pause": ("{{ user or 'Someone' }} paused {{ title }}",
                       "{{ [('At ' ~ position) if position else '', "
                       "(('On ' ~ player ~ ((' (' ~ client ~ ')') if client else '')) if player else ''), "
                       "server or app_name or source]|select|join(' · ') }}"),
    "playback_resume": ("{{ user or 'Someone' }} resumed {{ title }}",
                        "{{ [('At ' ~ position) if position else '', "
                        "(('On ' ~ player ~ ((' (' ~ client ~ ')') if client else '')) if player else ''), "
                        "server or app_name or source]|select|join(' · ') }}"),
    "playback_stop": ("{{ user or 'Someone' }} {{ 'finished' if played_to_completion else 'stopped' }} {{ title }}",
                      "{{ [('At ' ~ position) if position and not played_to_completion else '', "
                      "(('On ' ~ player ~ ((' (' ~ client ~ ')') if client else '')) if player else ''), "
                      "server or app_name or source]|select|join(' · ') }}"),
    "watched": ("{{ user or 'Someone' }} {{ 'listened to' if media_type == 'music' else 'watched' }} {{ title }}",
                "{{ [(('On ' ~ player ~ ((' (' ~ client ~ ')') if client else '')) if player else ''), "
                "server or app_name or source]|select|join(' · ') }}"),
    "rated": ("{{ user or 'Someone' }} rated {{ title }}",
              "{{ [((stars ~ ' of 5 stars') if stars is number else 'Rating removed'), "
              "server or app_name or source]|select|join(' · ') }}"),
    # A generic sender's "backup" is its own word (the quick start's): only a server's (app_name) is
    # about its database; any other reads as FALLBACK does.
    "backup": ("{% if app_name %}{{ title }} backed up its database{% else %}{{ title or (source ~ ': ' ~ kind) }}"
               "{% endif %}",
               "{% if app_name %}{{ app_name }} finished its scheduled database backup."
               "{% else %}{{ title or (source ~ ' sent a ' ~ kind ~ ' event.') }}{% endif %}"),
    "backup_failed": ("{% if app_name %}{{ title }}: database corrupted{% else %}{{ title or (source ~ ': ' ~ kind) }}"
                      "{% endif %}",
                      "{% if app_name %}{{ app_name }} found corruption in its database: repair it or restore a "
                      "backup.{% else %}{{ title or (source ~ ' sent a ' ~ kind ~ ' event.') }}{% endif %}"),
    "device_new": ("New device on {{ server or app_name or source }}: {{ title }}",
                   "{{ [('Account ' ~ user) if user else '', "
                   "(address ~ (' (local network)' if local else '')) if address else '']|select|join(' · ') "
                   "or 'A device the server had not seen before connected.' }}"),
}
# Request managers and monitors (Overseerr, Uptime Kuma)
# Who asked for what (the seasons, 4K), as one clause: "alice asked for seasons 1, 2 in 4K".
_ASKED = ("{% if requester %}{{ requester }} asked for "
          "{{ ('season' ~ ('s ' if seasons|length > 1 else ' ') ~ seasons|join(', ')) if seasons else 'it' }}"
          "{% else %}Requested{{ (': season' ~ ('s ' if seasons|length > 1 else ' ') ~ seasons|join(', ')) "
          "if seasons }}{% endif %}{% if is_4k %} in 4K{% endif %}")
_ISSUE = "((issue_type ~ ' issue') if issue_type else 'issue')"
_REPORTED = ("{{ [('Reported by ' ~ reporter) if reporter else '', affected]|select|join(' · ') }}"
             "{% if message %}\n{{ message }}{% endif %}"
             "{% if not (reporter or affected or message) %}No details came with it.{% endif %}")
_ADDRESS = "{% if address %}\n{{ address }}{% endif %}"
DEFAULTS.update({
    "request_pending": ("{{ title }} requested", _ASKED + "; waiting for approval."),
    "request_approved": ("{{ title }} approved", _ASKED + "{% if auto_approved %}; approved automatically{% endif %}."),
    "request_declined": ("{{ title }}: request declined", _ASKED + "."),
    "request_available": ("{{ title }} is available", _ASKED + "; ready to watch."),
    "request_failed": ("{{ title }}: request failed",
                       _ASKED + ", but it could not be sent to Radarr or Sonarr; retry it from the request list."),
    "issue_created": ("{{ title }}: {{ " + _ISSUE + " }} reported", _REPORTED),
    "issue_comment": ("{{ title }}: new comment on the {{ " + _ISSUE + " }}",
                      "{% if commenter %}{{ commenter }}: {% endif %}"
                      "{{ comment or 'The comment came without its text.' }}"),
    "issue_resolved": ("{{ title }}: {{ " + _ISSUE + " }} resolved", _REPORTED),
    "issue_reopened": ("{{ title }}: {{ " + _ISSUE + " }} reopened", _REPORTED),
    "monitor_down": ("{{ title }} is down", "{{ message or 'No reason came with it.' }}" + _ADDRESS),
    "monitor_up": ("{{ title }} is up",
                   "{{ [('Down for ' ~ downtime) if downtime else '', message, (ping_ms ~ ' ms') if ping_ms is number "
                   "else '']|select|join(' · ') or 'It answers again.' }}" + _ADDRESS),
})
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
