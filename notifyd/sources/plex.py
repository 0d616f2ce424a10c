"""The Plex source: Plex Media Server's webhooks (a Plex Pass feature; Plex Web → Settings → the
account's Webhooks). What the library, the players and the server did.

Plex posts multipart/form-data: a `payload` part holding the event as JSON and, for library.new,
media.play, media.rate and playback.started, a `thumb` part with the item's poster as a small JPEG
(Plex's "Webhooks" support article; bodies and sources in tests/fixtures/plex/). `unwrap_plex`
takes the form apart (notifyd.multipart): the event's stored payload is the payload part's JSON,
and a poster that is a JPEG or PNG by its bytes, of at most THUMB_MAX, becomes media["thumbnail"]
= {"content_type", "data": base64} for channels that attach pictures. A proxy that re-posts the
JSON alone (application/json) is taken too. Plex sends no event id: a repeat is the same payload.

The payload: {"event", "user", "owner", "rating"? (media.rate, 0–10: half stars), "Account":
{"id", "thumb", "title"}, "Server": {"title", "uuid"}, "Player": {"local", "publicAddress",
"title", "uuid"}, "Metadata": {"librarySectionType", "librarySectionTitle", "type", "title",
"parentTitle", "grandparentTitle", "parentIndex", "index", "year", "summary", "viewOffset", "Guid":
[{"id": "imdb://…"}], …}}; the server owner's events (admin.*, device.new) carry no Metadata.

Kinds (notifyd.event_kinds): library.new → library_new; media.play and playback.started (a
shared user's playback, told to the owner) → playback_start; media.pause, media.resume, media.stop
→ playback_pause, playback_resume, playback_stop; media.scrobble (played past 90 %) → watched;
media.rate → rated; admin.database.backup → backup; admin.database.corrupted → backup_failed;
device.new → device_new. Any other event (library.on.deck) keeps its own name and `event_type`,
and reaches only the services that name it.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping
from typing import Any

from notifyd.errors import BadPayload, UnsupportedMedia
from notifyd.fields import EPISODES, SAFE_INTEGER, TITLE_MAX, Fields, clip, put_given
from notifyd.model import Event
from notifyd.multipart import FORM, Unwrapped, form_parts, media_type

KINDS = {
    "library.new": "library_new",
    "media.play": "playback_start",
    "playback.started": "playback_start",
    "media.pause": "playback_pause",
    "media.resume": "playback_resume",
    "media.stop": "playback_stop",
    "media.scrobble": "watched",
    "media.rate": "rated",
    "admin.database.backup": "backup",
    "admin.database.corrupted": "backup_failed",
    "device.new": "device_new",
}
LEVELS = {"library_new": "success", "backup": "success", "backup_failed": "failure", "device_new": "warning"}
# Events about one item of a library: without Metadata they say nothing.
NEEDS_METADATA = ("library.new", "media.play", "playback.started", "media.pause", "media.resume", "media.stop",
                  "media.scrobble", "media.rate")
# Metadata.type → media_type, the words every source uses (a refresher's libraries, a template's verb).
MEDIA_TYPES = {"movie": "movie", "show": "series", "season": "series", "episode": "episode", "artist": "music",
               "album": "music", "track": "music", "photo": "photo", "clip": "video"}
ID_SCHEMES = ("imdb", "tmdb", "tvdb")
THUMB_MAX = 256 * 1024          # a poster Plex attaches is a few dozen KiB; more is no thumbnail
OVERVIEW_MAX = 1000             # a summary a notification quotes
RATING = (-1.0, 10.0)           # half stars, 0–10; -1 is none (Plex's API unrates with -1)
_EVENT = re.compile(r"\s*[A-Za-z][A-Za-z0-9_.:-]{0,63}\s*")
_GUID = re.compile(r"([a-z]+)://(.+)")
JPEG, PNG = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


def unwrap_plex(raw: bytes, content_type: str | None) -> Unwrapped:
    """The payload part's JSON and the poster beside it from Plex's form; JSON posted bare (a proxy
    that re-posts it) as it is. 400 for a malformed form, 415 for any other body, 422 (naming
    `payload`) for a form without exactly one payload part."""
    kind = media_type(content_type)
    if not kind or kind == "application/json" or kind.endswith("+json"):
        return Unwrapped(raw, content_type)
    if kind != FORM:
        raise UnsupportedMedia(f"expected Content-Type {FORM} (as Plex posts its webhooks) or application/json, "
                               f"got {kind[:60]!r}")
    assert content_type is not None
    parts = form_parts(raw, content_type)
    payloads = [part for part in parts if part.name == "payload"]
    if len(payloads) != 1:
        got = "nothing (the form has no such part)" if not payloads else f"{len(payloads)} of them"
        raise BadPayload(f"field 'payload': expected one form part named payload holding the event's JSON, "
                         f"got {got}")
    charset = payloads[0].charset
    document_type = "application/json" + (f"; charset={charset}" if charset else "")
    thumbs = [part.data for part in parts if part.name == "thumb"]
    picture = thumbnail(thumbs[0]) if thumbs else None
    return Unwrapped(payloads[0].data, document_type, {"thumbnail": picture} if picture else {})


def image_type(data: bytes) -> str | None:
    """image/jpeg or image/png by the bytes' own signature, whatever the part declared; else None."""
    if data.startswith(JPEG):
        return "image/jpeg"
    if data.startswith(PNG):
        return "image/png"
    return None


def thumbnail(data: bytes) -> dict[str, str] | None:
    """A poster as event media ({"content_type", "data": base64}), or None when it is no JPEG or
    PNG, or larger than THUMB_MAX: a message goes without a picture rather than with a wrong one."""
    kind = image_type(data)
    if kind is None or len(data) > THUMB_MAX:
        return None
    return {"content_type": kind, "data": base64.b64encode(data).decode("ascii")}


def parse_plex(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Plex webhook payload, or raise BadPayload naming the field."""
    fields = Fields(body)
    event_type = fields.pattern("event", _EVENT, 'an event name such as "media.play"', required=True)
    assert event_type is not None
    event_type = event_type.strip()
    kind = KINDS.get(event_type, event_type.lower())
    media: dict[str, Any] = {"app": "plex", "app_name": "Plex"}
    if event_type not in KINDS:
        media["event_type"] = event_type
    account, server, player = fields.obj("Account"), fields.obj("Server"), fields.obj("Player")
    put_given(media, "user", account.label("title", "an account name") if account else None)
    put_given(media, "server", server.label("title", "a server name") if server else None)
    if player is not None:
        put_given(media, "player", player.label("title", "a player name"))
        put_given(media, "address", player.label("publicAddress", "an address"))
        if player.data.get("local") is not None:
            media["local"] = player.flag("local")
    if event_type == "playback.started":
        media["shared_user"] = True
    metadata = fields.obj("Metadata", required=event_type in NEEDS_METADATA)
    title = _describe(metadata, media) if metadata is not None else ""
    if kind in ("playback_pause", "playback_resume", "playback_stop") and metadata is not None:
        offset = metadata.whole("viewOffset", 0, SAFE_INTEGER, "a position in milliseconds")
        put_given(media, "position", clock(offset / 1000) if offset else None)
    if kind == "rated":
        _rating(fields, media)
    media["level"] = LEVELS.get(kind, "info")
    return Event(source=source, source_type=source_type, kind=kind,
                 title=clip(title or _fallback_title(kind, event_type, media), TITLE_MAX), body="",
                 media=media, payload=raw)


def _describe(metadata: Fields, media: dict[str, Any]) -> str:
    """The item's title as people write it, and its facts into `media`: "Arrival (2016)",
    "Severance S02E03 · Who Is Alive?", "Radiohead · OK Computer (1997)"."""
    item_type = metadata.label("type", "an item type") or ""
    put_given(media, "media_type", MEDIA_TYPES.get(item_type.lower()))
    put_given(media, "library", metadata.label("librarySectionTitle", "a library name"))
    name = metadata.title("title")
    parent, grandparent = metadata.title("parentTitle"), metadata.title("grandparentTitle")
    index, parent_index = metadata.whole("index", *EPISODES, "a number"), metadata.season("parentIndex")
    year = metadata.year("year")
    put_given(media, "year", year)
    put_given(media, "overview", metadata.prose("summary", OVERVIEW_MAX))
    ids = _ids(metadata)
    if ids:
        media["ids"] = ids
    kind = item_type.lower()
    if kind == "episode":
        put_given(media, "series", grandparent)
        put_given(media, "season", parent_index)
        put_given(media, "episode", index)
        put_given(media, "episode_title", name)
        code = episode_code(parent_index, index)
        return " · ".join(p for p in (" ".join(p for p in (grandparent, code) if p), name) if p)
    if kind == "season":
        put_given(media, "series", parent)
        put_given(media, "season", index)
        return " · ".join(p for p in (parent, name) if p)
    if kind == "track":
        put_given(media, "artist", grandparent)
        put_given(media, "album", parent)
        return " · ".join(p for p in (grandparent, name) if p)
    if kind == "album":
        put_given(media, "artist", parent)
        put_given(media, "album", name)
        return " · ".join(p for p in (parent, with_year(name, year)) if p)
    return with_year(name, year) if kind in ("movie", "show") else name or ""


def _ids(metadata: Fields) -> dict[str, str]:
    """imdb, tmdb and tvdb ids from Metadata.Guid ([{"id": "imdb://tt2543164"}, …])."""
    ids: dict[str, str] = {}
    for guid in metadata.objects("Guid") or []:
        match = _GUID.fullmatch(guid.ident("id", "an id such as \"imdb://tt2543164\"") or "")
        if match and match.group(1) in ID_SCHEMES:
            ids.setdefault(match.group(1), match.group(2))
    return ids


def _rating(fields: Fields, media: dict[str, Any]) -> None:
    """media.rate's top-level `rating`: 0–10 in half stars, as a number or a number in a string."""
    expected = f"a rating from {RATING[0]:g} to {RATING[1]:g} (a number, or a number in a string)"
    value = fields.data.get("rating")
    if value is None:
        return
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise fields.refuse("rating", expected, value) from None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
            or not RATING[0] <= number <= RATING[1]:
        raise fields.refuse("rating", expected, value)
    if number >= 0:
        media["rating"] = number
        media["stars"] = stars(number)


def _fallback_title(kind: str, event_type: str, media: Mapping[str, Any]) -> str:
    """A title for an event about no item: the server (its database), the device, else the server
    and the event Plex sent."""
    server = media.get("server")
    if kind in ("backup", "backup_failed"):
        return str(server or "Plex Media Server")
    if kind == "device_new":
        return str(media.get("player") or "Unnamed device")
    return f"{server or 'Plex'} {event_type}"




# Ways to write an item that the Plex and Jellyfin sources share --------------------------------

def with_year(name: str | None, year: int | None) -> str:
    """ "Arrival (2016)"; the name alone without a year; "" without a name."""
    if not name:
        return ""
    return f"{name} ({year})" if year else name


def episode_code(season: int | None, episode: int | None, last: int | None = None) -> str:
    """S02E03 (S02E03–E04 for a double episode); "" without an episode number."""
    if episode is None:
        return ""
    code = f"S{season:02d}E{episode:02d}" if season is not None else f"E{episode:02d}"
    return f"{code}–E{last:02d}" if last is not None and last != episode else code


def clock(seconds: float) -> str:
    """A playback position as players show it: 42:10, 1:02:03."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def stars(rating: float) -> int | float:
    """A 0–10 rating as stars out of five: 8 → 4, 7 → 3.5."""
    half = round(rating) / 2
    return int(half) if half.is_integer() else half
