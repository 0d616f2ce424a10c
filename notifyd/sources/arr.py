"""The *arr sources: Radarr, Sonarr, Lidarr and Readarr webhooks, one shape, four kinds of media.

All four send a PascalCase `eventType`, camelCase fields, `instanceName` and (mostly)
`applicationUrl`; they differ in the media object: `movie` (folder `folderPath`), `series` +
`episodes` (folder `path`, season folder in `episodeFile.relativePath`), `artist` + `album`,
`author` + `book`. Every value read is type-checked, and a wrong one raises BadPayload naming the
dotted field ("field 'movie.folderPath': expected a string, got a number").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from notifyd.errors import BadPayload
from notifyd.model import Event
from notifyd.sources.shape import json_type

KINDS = {
    "Test": "test",
    "Grab": "grab",
    "Download": "download",
    "AlbumDownload": "download",
    "Rename": "rename",
    "MovieDelete": "delete",
    "SeriesDelete": "delete",
    "ArtistDelete": "delete",
    "AlbumDelete": "delete",
    "AuthorDelete": "delete",
    "BookDelete": "delete",
    "MovieFileDelete": "file_delete",
    "EpisodeFileDelete": "file_delete",
    "TrackFileDelete": "file_delete",
    "BookFileDelete": "file_delete",
    "MovieAdded": "added",
    "SeriesAdd": "added",
    "ArtistAdd": "added",
    "AuthorAdded": "added",
    "Health": "health",
    "HealthIssue": "health",
    "HealthRestored": "health_restored",
    "ApplicationUpdate": "app_update",
    "ManualInteractionRequired": "manual_interaction",
}
SUCCESS_KINDS = ("download", "upgrade", "health_restored", "added")
HEALTH_LEVELS = ("ok", "notice", "warning", "error")  # the senders' HealthCheckResult, in enum order
_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")
_YEAR = re.compile(r"^(\d{4})-")


class _Fields:
    """A JSON object whose values are read with type checks; errors name the dotted field."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def _get(self, key: str, what: str, required: bool) -> Any:
        value = self.data.get(key)
        if value is None and required:
            got = "null" if key in self.data else "nothing (the field is missing)"
            raise BadPayload(f"field {self.name(key)!r}: expected {what}, got {got}")
        return value

    def _wrong(self, key: str, what: str, value: Any) -> BadPayload:
        return BadPayload(f"field {self.name(key)!r}: expected {what}, got {json_type(value)}")

    def text(self, key: str, *, strip: bool = True) -> str | None:
        """A string, or None when absent, null or empty."""
        value = self._get(key, "a string", False)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return (value.strip() if strip else value) or None

    def number(self, key: str) -> int | None:
        """A whole number (a JSON number with no fraction), or None when absent or null."""
        value = self._get(key, "a whole number", False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._wrong(key, "a whole number", value)
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise BadPayload(f"field {self.name(key)!r}: expected a whole number, got {value!r}")
            return int(value)
        return value

    def flag(self, key: str) -> bool:
        value = self._get(key, "true or false", False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def obj(self, key: str, *, required: bool = False) -> _Fields | None:
        value = self._get(key, "an object", required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self._wrong(key, "an object", value)
        return _Fields(value, self.name(key))

    def first(self, one: str, many: str) -> _Fields | None:
        """The `one` object, else the first of the `many` array: senders use either."""
        return self.obj(one) or next(iter(self.objects(many) or []), None)

    def each(self, one: str, many: str) -> list[_Fields]:
        """The `one` object alone, else every object of the `many` array."""
        single = self.obj(one)
        return [single] if single else self.objects(many) or []

    def objects(self, key: str, *, required: bool = False) -> list[_Fields] | None:
        """An array of objects, or None when absent or null."""
        value = self._get(key, "an array of objects", required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._wrong(key, "an array of objects", value)
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise BadPayload(f"field '{self.name(key)}[{i}]': expected an object, "
                                 f"got {json_type(item)}")
            items.append(_Fields(item, f"{self.name(key)}[{i}]"))
        return items


class _Found:
    """What an app's describer found in the media part of a body."""

    def __init__(self, media_type: str) -> None:
        self.title = ""
        self.paths: list[str] = []
        self.media: dict[str, Any] = {"media_type": media_type}
        self.ids: dict[str, Any] = {}

    def put(self, key: str, value: Any) -> None:
        if value is not None:
            self.media[key] = value

    def id(self, key: str, value: Any) -> None:
        if value:  # the senders send 0 or "" for an id they do not know
            self.ids[key] = value


Describer = Callable[[_Fields, str, str], _Found]


def _parse(app: str, label: str, describe: Describer, body: Mapping[str, Any], source: str,
           source_type: str, raw: str) -> Event:
    fields = _Fields(body)
    event_type = body.get("eventType")
    if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type.strip()):
        if "eventType" not in body:
            got = "nothing (the field is missing)"
        else:
            got = repr(event_type) if isinstance(event_type, str) else json_type(event_type)
        raise BadPayload(f"field 'eventType': expected an event name such as \"Download\", got {got}")
    event_type = event_type.strip()
    kind = KINDS.get(event_type, event_type.lower())
    if kind == "download" and fields.flag("isUpgrade"):
        kind = "upgrade"

    instance = fields.text("instanceName")
    who = instance or label
    media: dict[str, Any] = {"app": app}
    if instance:
        media["instance"] = instance
    app_url = fields.text("applicationUrl")
    if app_url:
        media["app_url"] = app_url

    paths: tuple[str, ...] = ()
    health_level = None
    if kind in ("health", "health_restored"):
        health_level, health = _health(fields)
        media["health"] = health
        state = "restored" if kind == "health_restored" else health_level
        title = f"{who} health {state}" if state else f"{who} health"
    elif kind == "app_update":
        update = {"previous_version": fields.text("previousVersion"),
                  "new_version": fields.text("newVersion"), "message": fields.text("message")}
        media["update"] = {k: v for k, v in update.items() if v is not None}
        title = f"{who} updated to {update['new_version']}" if update["new_version"] else f"{who} updated"
    else:
        found = describe(fields, event_type, kind)
        media.update(found.media)
        if found.ids:
            media["ids"] = found.ids
        fallback = f"{who} test" if kind == "test" else f"{who} {event_type}"
        title = found.title or fallback
        if kind != "test":
            paths = tuple(dict.fromkeys(found.paths))
    media["level"] = _level(kind, health_level)
    return Event(source=source, source_type=source_type, kind=kind, title=title, body="",
                 paths=paths, media=media, payload=raw)


def _level(kind: str, health_level: str | None) -> str:
    if kind in SUCCESS_KINDS:
        return "success"
    if kind == "manual_interaction":
        return "warning"
    if kind == "health":
        return {"warning": "warning", "error": "failure"}.get(health_level or "", "info")
    return "info"


def _health(fields: _Fields) -> tuple[str | None, dict[str, str]]:
    level = fields.data.get("level")
    if isinstance(level, int) and not isinstance(level, bool) and 0 <= level < len(HEALTH_LEVELS):
        level = HEALTH_LEVELS[level]  # an older sender writes the enum as its number
    else:
        level = fields.text("level")
        level = level.lower() if level else None
    health = {"level": level, "message": fields.text("message"), "type": fields.text("type"),
              "wiki_url": fields.text("wikiUrl")}
    return level, {k: v for k, v in health.items() if v is not None}


def _files(found: _Found, fields: _Fields, files: list[_Fields], release: _Fields | None) -> None:
    """quality, size, release_group and indexer: from the files when they say, else the release."""
    quality = next((q for q in (f.text("quality") for f in files) if q), None)
    sizes = [s for s in (f.number("size") for f in files) if s is not None]
    group = next((g for g in (f.text("releaseGroup") for f in files) if g), None)
    if release is not None:
        quality = quality or release.text("quality")
        group = group or release.text("releaseGroup")
        release_size = release.number("size")
        found.put("indexer", release.text("indexer"))
    else:
        release_size = None
    found.put("quality", quality)
    found.put("size", sum(sizes) if sizes else release_size)
    found.put("release_group", group)
    found.put("download_client", fields.text("downloadClient"))


def _replaced(found: _Found, fields: _Fields, kind: str) -> None:
    if kind != "upgrade":
        return  # elsewhere `deletedFiles` is a flag (MovieDelete, SeriesDelete, …), not a list
    replaced = []
    for old in fields.objects("deletedFiles") or []:
        item = {"quality": old.text("quality"), "size": old.number("size"),
                "path": old.text("path", strip=False)}
        replaced.append({k: v for k, v in item.items() if v is not None})
    if replaced:
        found.media["replaced"] = replaced


def _with_year(name: str | None, year: int | None) -> str:
    if not name:
        return ""
    return f"{name} ({year})" if year and year > 0 else name


def _year_of(date: str | None) -> int | None:
    match = _YEAR.match(date or "")
    year = int(match.group(1)) if match else 0
    return year if year > 1 else None  # 0001-01-01 is .NET's "no date"


# Radarr ------------------------------------------------------------------------------------------

RADARR_NEEDS_MOVIE = ("Grab", "Download", "Rename", "MovieDelete", "MovieFileDelete", "MovieAdded",
                      "ManualInteractionRequired")


def _describe_radarr(fields: _Fields, event_type: str, kind: str) -> _Found:
    found = _Found("movie")
    movie = fields.obj("movie", required=event_type in RADARR_NEEDS_MOVIE)
    if movie is not None:
        year = movie.number("year")
        found.title = _with_year(movie.text("title"), year)
        found.put("year", year if year and year > 0 else None)
        folder = movie.text("folderPath", strip=False) or movie.text("path", strip=False)
        if folder:
            found.paths.append(folder)
        found.id("tmdb", movie.number("tmdbId"))
        found.id("imdb", movie.text("imdbId"))
        found.put("overview", movie.text("overview"))
    movie_file = fields.obj("movieFile")
    _files(found, fields, [movie_file] if movie_file else [], fields.obj("release"))
    _replaced(found, fields, kind)
    return found


def parse_radarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Radarr webhook body, or raise BadPayload naming the field."""
    return _parse("radarr", "Radarr", _describe_radarr, body, source, source_type, raw)


# Sonarr ------------------------------------------------------------------------------------------

SONARR_NEEDS_SERIES = ("Grab", "Download", "Rename", "EpisodeFileDelete", "SeriesAdd", "SeriesDelete")
SONARR_NEEDS_EPISODES = ("Grab", "Download", "EpisodeFileDelete")  # Sonarr's Rename sends none


def _describe_sonarr(fields: _Fields, event_type: str, kind: str) -> _Found:
    series = fields.obj("series", required=event_type in SONARR_NEEDS_SERIES)
    listed = fields.objects("episodes", required=event_type in SONARR_NEEDS_EPISODES) or []
    episodes = []
    for episode in listed:
        season, number = _episode_number(episode, "seasonNumber"), _episode_number(episode, "episodeNumber")
        item: dict[str, Any] = {"season": season, "episode": number, "title": episode.text("title")}
        episodes.append({k: v for k, v in item.items() if v is not None})
    episodes.sort(key=lambda e: (e["season"], e["episode"]))
    found = _Found("episode" if episodes else "series")
    name = series_path = None
    if series is not None:
        name = series.text("title")
        year = series.number("year")
        found.put("year", year if year and year > 0 else None)
        series_path = series.text("path", strip=False)
        found.id("tvdb", series.number("tvdbId"))
        found.id("tmdb", series.number("tmdbId"))
        found.id("imdb", series.text("imdbId"))
        found.id("tvmaze", series.number("tvMazeId"))
        found.put("overview", series.text("overview"))
        if not episodes:
            found.title = _with_year(name, year)
    if episodes:
        found.media["episodes"] = episodes
        found.title = " ".join(part for part in (name, _episode_code(episodes)) if part)
        if len(episodes) == 1 and "title" in episodes[0]:
            found.title += f" · {episodes[0]['title']}"

    files = [f for f in [fields.obj("episodeFile")] if f] + (fields.objects("episodeFiles") or [])
    if series_path:
        folders = [_season_folder(series_path, f.text("relativePath", strip=False)) for f in files]
        found.paths = [folder or series_path for folder in folders] or [series_path]
    _files(found, fields, files, fields.obj("release"))
    _replaced(found, fields, kind)
    return found


def _episode_number(episode: _Fields, key: str) -> int:
    number = episode.number(key)
    if number is None:
        raise BadPayload(f"field {episode.name(key)!r}: expected a whole number, got "
                         f"{'null' if key in episode.data else 'nothing (the field is missing)'}")
    return number


def _episode_code(episodes: list[dict[str, Any]]) -> str:
    """S02E03, S02E03–E05 within a season, S01E10–S02E01 across seasons (first–last)."""
    first, last = episodes[0], episodes[-1]
    code = f"S{first['season']:02d}E{first['episode']:02d}"
    if (first["season"], first["episode"]) == (last["season"], last["episode"]):
        return code
    if first["season"] == last["season"]:
        return f"{code}–E{last['episode']:02d}"
    return f"{code}–S{last['season']:02d}E{last['episode']:02d}"


def _season_folder(series_path: str, relative: str | None) -> str | None:
    """The series folder joined with the folder part of a file's relative path, if it has one."""
    if not relative:
        return None
    cut = max(relative.rfind("/"), relative.rfind("\\"))
    folder = relative[:cut].strip("/\\") if cut > 0 else ""
    if not folder:
        return None
    sep = "\\" if "\\" in series_path and "/" not in series_path else "/"
    return series_path.rstrip("/\\") + sep + folder


def parse_sonarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Sonarr webhook body, or raise BadPayload naming the field."""
    return _parse("sonarr", "Sonarr", _describe_sonarr, body, source, source_type, raw)


def _owner(found: _Found, owner: _Fields | None, role: str, id_name: str, id_key: str) -> str | None:
    """Lidarr's artist, Readarr's author: its name, its folder (what changed on disk) and its id."""
    if owner is None:
        return None
    name = owner.text("name")
    found.put(role, name)
    folder = owner.text("path", strip=False)
    if folder:
        found.paths.append(folder)
    found.id(id_name, owner.text(id_key))
    return name


# Lidarr ------------------------------------------------------------------------------------------

LIDARR_NEEDS_ARTIST = ("Grab", "Download", "AlbumDownload", "Rename", "Retag", "ArtistAdd",
                       "ArtistDelete", "AlbumDelete", "TrackFileDelete")


def _describe_lidarr(fields: _Fields, event_type: str, kind: str) -> _Found:
    found = _Found("music")
    artist_name = _owner(found, fields.obj("artist", required=event_type in LIDARR_NEEDS_ARTIST), "artist",
                         "musicbrainz", "mbId")
    album = fields.first("album", "albums")
    album_title = None
    if album is not None:
        album_title = album.text("title")
        year = _year_of(album.text("releaseDate"))
        found.put("album", album_title)
        found.put("year", year)
        found.id("musicbrainz_album", album.text("mbId"))
        album_title = _with_year(album_title, year)
    found.title = " · ".join(part for part in (artist_name, album_title) if part)
    _files(found, fields, fields.each("trackFile", "trackFiles"), fields.obj("release"))
    _replaced(found, fields, kind)
    return found


def parse_lidarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Lidarr webhook body, or raise BadPayload naming the field."""
    return _parse("lidarr", "Lidarr", _describe_lidarr, body, source, source_type, raw)


# Readarr -----------------------------------------------------------------------------------------

READARR_NEEDS_AUTHOR = ("Grab", "Download", "Rename", "Retag", "AuthorAdded", "AuthorDelete",
                        "BookDelete", "BookFileDelete")


def _describe_readarr(fields: _Fields, event_type: str, kind: str) -> _Found:
    found = _Found("book")
    author_name = _owner(found, fields.obj("author", required=event_type in READARR_NEEDS_AUTHOR), "author",
                         "goodreads", "goodreadsId")
    book = fields.first("book", "books")
    book_title = None
    if book is not None:
        book_title = book.text("title")
        found.put("book", book_title)
        found.put("year", _year_of(book.text("releaseDate")))
        found.id("goodreads_book", book.text("goodreadsId"))
        edition = book.obj("edition")
        if edition is not None:
            found.id("isbn13", edition.text("isbn13"))
            found.id("asin", edition.text("asin"))
    found.title = " · ".join(part for part in (author_name, book_title) if part)
    _files(found, fields, fields.each("bookFile", "bookFiles"), fields.obj("release"))
    _replaced(found, fields, kind)
    return found


def parse_readarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Readarr webhook body, or raise BadPayload naming the field."""
    return _parse("readarr", "Readarr", _describe_readarr, body, source, source_type, raw)
