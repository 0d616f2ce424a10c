"""The event kinds notifyd's sources make: the one vocabulary that service filters speak.

A service with no `events` filter takes every known kind except `test` and the OPT_IN ones
(playback, told many times an evening). A kind outside this vocabulary (an *arr event type
notifyd does not know yet, recorded under its lower-cased name) goes only to services whose
`events` name it, or "*": notifyd has no words for it, so it is not
pushed on everyone. The generic source and `notifyd send` speak in their senders' own words (a
generic body's `kind` is whatever its sender chose, "notification" when it chose none), so their
kinds count as known whatever they are.

Data only, importing nothing of notifyd, so the config model, fan-out, the sources and the CLI
(checking `--events`) can all use it without a cycle; tests/test_event_kinds.py holds every
source's kinds to it.
"""

from __future__ import annotations

import difflib

# The *arr apps (Radarr, Sonarr, Lidarr, Readarr), design §11 "Event kinds".
ARR_KINDS = (
    "grab",                 # a release was sent to the download client
    "download",             # files imported
    "upgrade",              # files imported that replace worse ones (isUpgrade)
    "download_failed",      # the download client gave up (Lidarr's DownloadFailure)
    "import_failed",        # a download could not be imported (Lidarr's ImportFailure)
    "manual_interaction",   # an import waits for a person (ManualInteractionRequired)
    "rename",               # files renamed
    "retag",                # audio or book files' tags rewritten (Lidarr's and Readarr's Retag)
    "added",                # a movie, series, artist or author is now monitored
    "delete",               # a movie, series, artist, album, author or book removed
    "file_delete",          # one file deleted (MovieFileDelete, EpisodeFileDelete, BookFileDelete)
    "health",               # a health check failed
    "health_restored",      # a health check passes again
    "app_update",           # the app updated itself
)
# Media servers (Plex, Jellyfin): what their libraries and players did.
MEDIA_SERVER_KINDS = (
    "library_new",          # an item arrived in the server's library (Plex library.new, Jellyfin ItemAdded)
    "backup",               # the server backed up its database (Plex admin.database.backup)
    "backup_failed",        # the server found its database corrupt (Plex admin.database.corrupted)
    "device_new",           # a device the server had never seen signed in (Plex device.new)
)
# Playback is told many times an evening: a service hears of it only when its `events` name it.
PLAYBACK_KINDS = (
    "playback_start",       # Plex media.play, Jellyfin PlaybackStart
    "playback_pause",       # Plex media.pause
    "playback_resume",      # Plex media.resume
    "playback_stop",        # Plex media.stop, Jellyfin PlaybackStop
    "watched",              # played to the end (Plex media.scrobble)
    "rated",                # Plex media.rate
)
# Request managers (Overseerr, Jellyseerr): a person asked for a movie or series, or reported a problem.
REQUEST_KINDS = (
    "request_pending",      # MEDIA_PENDING: waits for an admin
    "request_approved",     # MEDIA_APPROVED, MEDIA_AUTO_APPROVED
    "request_declined",     # MEDIA_DECLINED
    "request_available",    # MEDIA_AVAILABLE: the requested media can be watched
    "request_failed",       # MEDIA_FAILED: sending it to Radarr or Sonarr failed
    "issue_created",        # ISSUE_CREATED
    "issue_comment",        # ISSUE_COMMENT
    "issue_resolved",       # ISSUE_RESOLVED
    "issue_reopened",       # ISSUE_REOPENED
)
# Uptime monitors (Uptime Kuma).
MONITOR_KINDS = (
    "monitor_down",         # a monitor went down (level failure)
    "monitor_up",           # it is up again (level success)
)
TEST = "test"                               # a sender's Test button: recorded, never delivered
GENERIC = "notification"                    # a generic body without a kind, and `notifyd send`
RUN_KINDS = ("run.completed", "run.failed")  # a tracked run's final status (ComfyDeploy)

KNOWN_KINDS: frozenset[str] = frozenset({*ARR_KINDS, *MEDIA_SERVER_KINDS, *PLAYBACK_KINDS, *REQUEST_KINDS,
                                          *MONITOR_KINDS, TEST, GENERIC, *RUN_KINDS})
# Known kinds that a service without an `events` filter does not take: they are named to be heard.
OPT_IN: frozenset[str] = frozenset(PLAYBACK_KINDS)
# Source types whose kinds are their senders' own words: generic bodies and `notifyd send`.
OWN_WORDS = frozenset({"generic", "manual"})
# Event media key: why a source's event is recorded but notifies no one and refreshes nothing
# (an *arr file deleted by an upgrade: the upgrade's own event says what it replaced).
QUIET = "quiet"


def is_known(kind: str, source_type: str = "") -> bool:
    """Whether a service without an `events` filter takes this kind (`test` aside): a kind of the
    vocabulary that is not OPT_IN (playback), or any kind of a sender that names its own (generic,
    `notifyd send`)."""
    if kind in OPT_IN:
        return False
    return kind in KNOWN_KINDS or source_type in OWN_WORDS


def likely_typo(kind: str) -> str | None:
    """The known kind that an unknown `kind` in an `events` filter most likely misspells
    ("donwload" → "download"), or None: a known kind, "*", and a name close to none (a generic
    sender's own kind, an *arr event type notifyd does not know yet) are no typos."""
    if kind in KNOWN_KINDS or kind == "*":
        return None
    close = difflib.get_close_matches(kind, sorted(KNOWN_KINDS), n=1, cutoff=0.8)
    return close[0] if close else None
