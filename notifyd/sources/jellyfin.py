"""The Jellyfin source: the Webhook plugin's Generic destination (Dashboard → Plugins → Webhook →
Add Generic Destination). What the library, the players and the server did.

The plugin fills one dictionary per notification (its DataObjectHelpers: ServerName,
NotificationType, NotificationUsername, Name, ItemType, Year, SeriesName, SeasonNumber,
EpisodeNumber, DeviceName, ClientName, PlaybackPositionTicks, PlayedToCompletion, …) and posts
either all of it as JSON ("Send All Properties") or the destination's Handlebars template rendered
from it, whose values are all text ("Year": "2016"). Both are read here under the plugin's own
names; a number or a flag may come as text, a value a template left blank is not given. The
Generic destination declares its body text/plain unless its user adds a Content-Type header, so
`unwrap_jellyfin` takes text/plain as the JSON it is. Bodies and sources: tests/fixtures/jellyfin/.

Kinds (notifyd.event_kinds): ItemAdded → library_new; PlaybackStart → playback_start;
PlaybackStop → playback_stop (media["played_to_completion"] when it ran to the end); Generic
(Jellyfin 10.8's notifications: Name, Description, Level) → notification, with its own text.
PlaybackProgress (every few seconds while something plays) is recorded under its own name and
QUIET: it notifies no one, whatever a filter says. Every other type (ItemDeleted, UserCreated,
AuthenticationFailure, PluginUpdated, TaskCompleted, …) keeps its lower-cased name and
`event_type`, and reaches only the services that name it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from notifyd.errors import UnsupportedMedia
from notifyd.event_kinds import GENERIC, QUIET
from notifyd.fields import EPISODES, SAFE_INTEGER, SEASONS, TITLE_MAX, YEARS, Fields, clip, put_given
from notifyd.model import Event
from notifyd.multipart import Unwrapped, media_type
from notifyd.sources.plex import OVERVIEW_MAX, clock, episode_code, with_year

KINDS = {
    "ItemAdded": "library_new",
    "PlaybackStart": "playback_start",
    "PlaybackStop": "playback_stop",
    "Generic": GENERIC,
}
PROGRESS = "PlaybackProgress"
LEVELS = {"library_new": "success"}
# Types without a kind of the vocabulary that still deserve a level of their own.
TYPE_LEVELS = {"AuthenticationFailure": "warning", "UserLockedOut": "warning", "SubtitleDownloadFailure": "warning",
               "PluginInstallationFailed": "failure"}
TASK_LEVELS = {"failed": "failure", "cancelled": "warning", "aborted": "warning"}   # TaskCompleted's ResultStatus
GENERIC_LEVELS = {"normal": "info", "warning": "warning", "error": "failure"}      # Jellyfin's NotificationLevel
# ItemType (the item's .NET class) → media_type, the words every source uses.
ITEM_TYPES = {"Movie": "movie", "Series": "series", "Season": "series", "Episode": "episode", "Audio": "music",
              "MusicAlbum": "music", "MusicArtist": "music", "MusicVideo": "video", "Video": "video",
              "Trailer": "video", "Book": "book", "AudioBook": "book", "Photo": "photo"}
PROVIDERS = {"Provider_imdb": "imdb", "Provider_tmdb": "tmdb", "Provider_tvdb": "tvdb"}
TICKS_PER_SECOND = 10_000_000   # .NET ticks
_TYPE = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]{0,63}\s*")
_CLOCK = re.compile(r"\s*(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?\s*")    # TimeSpan "hh:mm:ss"
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def unwrap_jellyfin(raw: bytes, content_type: str | None) -> Unwrapped:
    """The body as JSON: the Generic destination's default text/plain included (its charset kept
    for the decoder to judge); 415 for any other non-JSON type."""
    kind = media_type(content_type)
    if kind == "text/plain":
        params = (content_type or "").partition(";")[2]
        return Unwrapped(raw, "application/json" + (f";{params}" if params else ""))
    if kind and kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMedia(f"expected Content-Type application/json or text/plain (the webhook plugin's "
                               f"default), got {kind[:60]!r}")
    return Unwrapped(raw, content_type)


def parse_jellyfin(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Jellyfin Webhook plugin body, or raise BadPayload naming the field."""
    fields = Fields(body)
    notification = fields.pattern("NotificationType", _TYPE, 'a notification type such as "ItemAdded"',
                                  required=True)
    assert notification is not None
    notification = notification.strip()
    kind = KINDS.get(notification, notification.lower())
    media: dict[str, Any] = {"app": "jellyfin", "app_name": "Jellyfin"}
    if notification not in KINDS:
        media["event_type"] = notification
    put_given(media, "server", fields.label("ServerName", "a server name"))
    put_given(media, "user",
              fields.label("NotificationUsername", "a user name") or fields.label("Username", "a user name"))
    put_given(media, "player", fields.label("DeviceName", "a device name"))
    put_given(media, "client", fields.label("ClientName", "a client name") or fields.label("Client", "a client name"))
    put_given(media, "address", fields.label("RemoteEndPoint", "an address"))
    text = ""
    if kind == GENERIC:
        title = fields.title("Name") or ""
        text = fields.prose("Description") or ""
        level = fields.choice("Level", GENERIC_LEVELS, "Normal, Warning or Error", fold_case=True)
    else:
        title = _describe(fields, media)
        level = None
    if notification in ("PlaybackStop", PROGRESS):
        _position(fields, media)
    if kind == "playback_stop" and _flag(fields, "PlayedToCompletion"):
        media["played_to_completion"] = True
    if notification == PROGRESS:
        media[QUIET] = "Jellyfin tells the playback position every few seconds; its start and stop tell"
    media["level"] = level or _level(fields, notification, kind)
    if not (title or text):
        title = _fallback_title(fields, notification, media)
    return Event(source=source, source_type=source_type, kind=kind, title=clip(title, TITLE_MAX), body=text,
                 media=media, payload=raw)


def _describe(fields: Fields, media: dict[str, Any]) -> str:
    """The item's title as people write it, and its facts into `media`: "Arrival (2016)",
    "Severance S02E03 · Who Is Alive?", "Radiohead · Karma Police"; "" for a body about no item."""
    name = fields.title("Name")
    item_type = fields.label("ItemType", "an item type") or ""
    put_given(media, "media_type", ITEM_TYPES.get(item_type))
    year = _whole(fields, "Year", *YEARS, "a year", unknown=0) or None
    put_given(media, "year", year)
    put_given(media, "overview", fields.prose("Overview", OVERVIEW_MAX))
    ids = {key: value for field, key in PROVIDERS.items() if (value := fields.ident(field)) is not None}
    if ids:
        media["ids"] = ids
    series = fields.title("SeriesName")
    season = _whole(fields, "SeasonNumber", *SEASONS, "a season number")
    if item_type == "Episode":
        episode = _whole(fields, "EpisodeNumber", *EPISODES, "an episode number")
        last = _whole(fields, "EpisodeNumberEnd", *EPISODES, "an episode number")
        put_given(media, "series", series)
        put_given(media, "season", season)
        put_given(media, "episode", episode)
        put_given(media, "episode_title", name)
        code = episode_code(season, episode, last)
        return " · ".join(p for p in (" ".join(p for p in (series, code) if p), name) if p)
    if item_type == "Season":
        put_given(media, "series", series)
        put_given(media, "season", season)
        return " · ".join(p for p in (series, name) if p)
    artist, album = fields.title("Artist"), fields.title("Album")
    put_given(media, "artist", artist)
    if item_type == "MusicAlbum":
        put_given(media, "album", name)
        return " · ".join(p for p in (artist, with_year(name, year)) if p)
    put_given(media, "album", album)
    if item_type == "Audio":
        return " · ".join(p for p in (artist, name) if p)
    return with_year(name, year) if item_type in ("Movie", "Series") else name or ""


def _position(fields: Fields, media: dict[str, Any]) -> None:
    """Where playback was: PlaybackPositionTicks, else the "hh:mm:ss" PlaybackPosition; 0 is left out."""
    ticks = _whole(fields, "PlaybackPositionTicks", 0, SAFE_INTEGER, "a position in ticks")
    seconds: float | None = ticks / TICKS_PER_SECOND if ticks is not None else None
    if seconds is None:
        shown = fields.label("PlaybackPosition", "a position such as \"00:42:10\"")
        match = _CLOCK.fullmatch(shown) if shown else None
        if shown and match is None:
            raise fields.refuse("PlaybackPosition", 'a position such as "00:42:10"', shown)
        if match:
            days, hours, minutes, secs = (int(g or 0) for g in match.groups())
            seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    if seconds:
        media["position"] = clock(seconds)


def _level(fields: Fields, notification: str, kind: str) -> str:
    if notification == "TaskCompleted":
        status = fields.label("ResultStatus", "a task status") or ""
        return TASK_LEVELS.get(status.lower(), "info")
    return LEVELS.get(kind) or TYPE_LEVELS.get(notification, "info")


def _fallback_title(fields: Fields, notification: str, media: Mapping[str, Any]) -> str:
    """A title for a body about no item: the plugin or task it is about, else the user, else the
    server and the notification type."""
    plugin = fields.title("PluginName")
    if plugin:
        version = fields.label("PluginVersion", "a version")
        return f"{plugin} {version}" if version else plugin
    task = fields.title("TaskName")
    if task:
        return task
    if media.get("user"):
        return str(media["user"])
    return f"{media.get('server') or 'Jellyfin'} {notification}"


def _whole(fields: Fields, key: str, low: int, high: int, what: str, *, unknown: int | None = None) -> int | None:
    """A whole number in [low, high] (or `unknown`), or one a template wrote as text ("2016");
    blank text is not given."""
    value = fields.data.get(key)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.isascii() and text.isdigit() and len(text) <= 20 and (low <= int(text) <= high or int(text) == unknown):
            return int(text)
        also = f" (or {unknown} for unknown)" if unknown is not None else ""
        raise fields.refuse(key, f"{what} from {low} to {high}{also}, as a number or its digits", value)
    return fields.whole(key, low, high, what, unknown=unknown)


def _flag(fields: Fields, key: str) -> bool:
    """true or false, or as a template writes them ("True", "False"); blank or absent is false."""
    value = fields.data.get(key)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE or text in _FALSE or not text:
            return text in _TRUE
        raise fields.refuse(key, "true or false (or \"True\", \"False\")", value)
    return fields.flag(key)


