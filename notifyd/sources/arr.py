"""The *arr sources: Radarr, Sonarr, Lidarr and Readarr webhooks, one shape, four kinds of media.

All four send a PascalCase `eventType`, camelCase fields (nulls left out), `instanceName` and
(mostly) `applicationUrl`; they differ in the media object: `movie` (folder `folderPath`),
`series` + `episodes` (folder `path`, season folder in `episodeFile.relativePath`), `artist` +
`album`, `author` + `book`. Every event type they send has a kind (design §11, and
`notifyd.event_kinds`), a level and the facts its message needs: the release, the quality, what
an upgrade replaced (once per quality), why a download failed or waits for a person. An event
type notifyd does not know yet keeps its lower-cased name and `event_type`.

Two shapes need more than a kind: a file deleted because an upgrade replaced it is recorded but
QUIET (the upgrade's own Download event tells, and refreshes), and Sonarr's "On Import Complete"
body (a Download with `episodeFiles`, no `isUpgrade`) is marked `import_complete` so that it can
be folded with the per-file bodies of the same `downloadId` (notifyd.folding).

Prowlarr sends the same shape without media: a Grab carries only the release (its title, indexer,
size, categories), the app it went to (`source`) and how it was asked for (`trigger`).

Every value read goes through the field vocabulary (`notifyd.fields`): checked by type and range,
and a wrong one raises BadPayload naming the dotted field ("field 'movie.year': expected a whole
number from 1800 to 2200 (or 0 for unknown), got 1e+30"); folder paths are absolute, never
climb, and are normalised in their own separator style.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from notifyd.errors import BadPayload
from notifyd.event_kinds import QUIET
from notifyd.fields import ITEMS_MAX, LABEL_MAX, TITLE_MAX, Fields, clip, normal_path, put_given
from notifyd.model import Event

KINDS = {
    "Test": "test",
    "Grab": "grab",
    "Download": "download",
    "AlbumDownload": "download",
    "DownloadFailure": "download_failed",
    "ImportFailure": "import_failed",
    "ManualInteractionRequired": "manual_interaction",
    "Rename": "rename",
    "Retag": "retag",
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
}
LEVELS = {"download": "success", "upgrade": "success", "added": "success", "health_restored": "success",
          "download_failed": "failure", "import_failed": "failure", "manual_interaction": "warning"}
HEALTH_LEVELS = ("ok", "notice", "warning", "error")  # the senders' HealthCheckResult, in enum order
HEALTH_LEVEL_NAMES = {name: name for name in HEALTH_LEVELS}
# The senders' DeleteMediaFileReason (camelCase on the wire), as a message says it.
DELETE_REASONS = {"missingfromdisk": "missing from disk", "manual": "deleted by hand",
                  "upgrade": "replaced by an upgrade", "nolinkedepisodes": "no episode links to it any more",
                  "manualoverride": "replaced by a manual import"}
UPGRADE = "upgrade"
WARNING_REASONS = (DELETE_REASONS["missingfromdisk"],)    # a file that vanished is worth a look
ADD_METHODS = {"list": "from an import list", "collection": "from a collection"}   # Radarr's AddMovieMethod
RENAMED = ("renamedMovieFiles", "renamedEpisodeFiles", "renamedTrackFiles", "renamedBookFiles")
REASONS_MAX = 5                 # status messages a manual-interaction notification lists…
REASON_MAX = 300                # …each cut to this many characters
_EVENT_TYPE = re.compile(r"\s*[A-Za-z][A-Za-z0-9_.:-]{0,63}\s*")
VERSION_MAX = 64
# Where a body's picture is, first found first: (object, images[].coverType); Lidarr's album cover
# says more of a download than its artist's poster.
POSTER_OWNERS = (("movie", "poster"), ("series", "poster"), ("album", "cover"), ("albums", "cover"),
                 ("artist", "poster"), ("author", "poster"))


class _Found:
    """What an app's describer found in the media part of a body."""

    def __init__(self, media_type: str) -> None:
        self.title = ""
        self.paths: list[str] = []
        self.media: dict[str, Any] = {"media_type": media_type}
        self.ids: dict[str, Any] = {}
        self.files: list[Fields] = []

    def put(self, key: str, value: Any) -> None:
        put_given(self.media, key, value)

    def id(self, key: str, value: Any) -> None:
        if value:  # the senders send 0 or "" for an id they do not know
            self.ids[key] = value


Describer = Callable[[Fields, str, str], _Found]


def _parse(app: str, label: str, describe: Describer, body: Mapping[str, Any], source: str,
           source_type: str, raw: str) -> Event:
    fields = Fields(body)
    event_type = fields.pattern("eventType", _EVENT_TYPE, 'an event name such as "Download"', required=True)
    assert event_type is not None
    event_type = event_type.strip()
    kind = KINDS.get(event_type, event_type.lower())
    if kind == "download" and fields.flag("isUpgrade"):
        kind = "upgrade"

    instance = fields.label("instanceName", "an instance name")
    who = instance or label
    media: dict[str, Any] = {"app": app, "app_name": label}
    if event_type not in KINDS:
        media["event_type"] = event_type
    if instance:
        media["instance"] = instance
    app_url = fields.url("applicationUrl")
    if app_url:
        media["app_url"] = app_url
    download_id = fields.label("downloadId", "a download id")
    if download_id:
        media["download_id"] = download_id

    paths: tuple[str, ...] = ()
    health_level = None
    if kind in ("health", "health_restored"):
        health_level, health = _health(fields)
        media["health"] = health
        state = "restored" if kind == "health_restored" else health_level
        title = f"{who} health {state}" if state else f"{who} health"
    elif kind == "app_update":
        update = {"previous_version": fields.label("previousVersion", "a version", VERSION_MAX),
                  "new_version": fields.label("newVersion", "a version", VERSION_MAX),
                  "message": fields.prose("message")}
        media["update"] = {k: v for k, v in update.items() if v is not None}
        title = f"{who} updated to {update['new_version']}" if update["new_version"] else f"{who} updated"
    else:
        found = describe(fields, event_type, kind)
        _details(found, fields, kind)
        media.update(found.media)
        if found.ids:
            media["ids"] = found.ids
        poster = _poster(body, app_url)
        if poster:
            media["poster_url"] = poster
        title = found.title or _fallback_title(who, event_type, kind, found.media.get("release_title"))
        if kind != "test":
            paths = tuple(dict.fromkeys(found.paths))
    media["level"] = _level(kind, health_level, media)
    return Event(source=source, source_type=source_type, kind=kind, title=clip(title, TITLE_MAX), body="",
                 paths=paths, media=media, payload=raw)


def _poster(body: Mapping[str, Any], app_url: str | None) -> str | None:
    """The picture a message may attach (design §15): the album's cover or the movie's, series',
    artist's or author's poster, from its `images[]`: the `remoteUrl` (TMDb, TVDB, fanart.tv, …),
    else the sender's own `url` joined to `applicationUrl`. A picture is decoration: an entry of
    the wrong shape is passed over, never refused."""
    for owner, cover_type in POSTER_OWNERS:
        item = body.get(owner)
        item = item[0] if isinstance(item, list) and item else item        # Lidarr's Grab: `albums`
        images = item.get("images") if isinstance(item, Mapping) else None
        for image in images if isinstance(images, list) else []:
            if not isinstance(image, Mapping) or str(image.get("coverType", "")).lower() != cover_type:
                continue
            local = image.get("url")
            if app_url and isinstance(local, str) and local.startswith("/") and not local.startswith("//"):
                local = app_url.rstrip("/") + local
            for candidate in (image.get("remoteUrl"), local):
                try:
                    url = Fields({"url": candidate}).url("url") if isinstance(candidate, str) else None
                except BadPayload:
                    url = None
                if url:
                    return url
    return None


def _fallback_title(who: str, event_type: str, kind: str, release_title: str | None) -> str:
    """A title for a body without a movie, series, artist or author: the release it is about
    (Lidarr's DownloadFailure), else the app ("Lidarr", whose kind the message then says), else
    the app and the event type notifyd does not know."""
    if kind == "test":
        return f"{who} test"
    if release_title:
        return release_title
    return who if event_type in KINDS else f"{who} {event_type}"


def _level(kind: str, health_level: str | None, media: Mapping[str, Any]) -> str:
    if kind == "health":
        return {"warning": "warning", "error": "failure"}.get(health_level or "", "info")
    if kind == "file_delete" and media.get("delete_reason") in WARNING_REASONS:
        return "warning"
    return LEVELS.get(kind, "info")


def _health(fields: Fields) -> tuple[str | None, dict[str, str]]:
    level = fields.data.get("level")
    if isinstance(level, int) and not isinstance(level, bool) and 0 <= level < len(HEALTH_LEVELS):
        level = HEALTH_LEVELS[level]  # an older sender writes the enum as its number
    else:
        level = fields.choice("level", HEALTH_LEVEL_NAMES, f"one of {', '.join(HEALTH_LEVELS)} (or 0 to 3)",
                              fold_case=True)
    health = {"level": level, "message": fields.prose("message"),
              "type": fields.label("type", "a health check name"), "wiki_url": fields.url("wikiUrl")}
    return level, {k: v for k, v in health.items() if v is not None}


def _details(found: _Found, fields: Fields, kind: str) -> None:
    """What the message of this kind needs beyond the media object: files, release, replaced
    files, the reason of a failure or a wait, a delete's reason, how a movie was added."""
    release = fields.obj("release")
    info = fields.obj("downloadInfo")                    # manual interaction: the item in the download client
    _files(found, fields, found.files, [r for r in (release, info) if r is not None])
    titles = [r.title("releaseTitle") for r in (release,) if r is not None]
    titles += [info.title("title") if info is not None else None, fields.title("releaseTitle")]
    found.put("release_title", next((t for t in titles if t), None))
    if kind == "upgrade":
        _replaced(found, fields)
    elif kind in ("download_failed", "import_failed"):
        found.put("reason", fields.prose("message"))
    elif kind == "manual_interaction":
        found.put("download_status", fields.label("downloadStatus", "a download status"))
        reasons = _reasons(fields, found.media.get("release_title"))
        if reasons:
            found.media["reasons"] = reasons
    elif kind == "delete":
        deleted = fields.flag("deletedFiles") if fields.data.get("deletedFiles") is not None else None
        found.put("deleted_files", deleted)
        folder_size = fields.size("movieFolderSize")      # Radarr: what the deleted files took
        if deleted and folder_size:
            found.media["size"] = folder_size
    elif kind == "file_delete":
        reason = fields.label("deleteReason", "a delete reason")
        if reason:
            found.media["delete_reason"] = DELETE_REASONS.get(reason.lower(), reason)
            if reason.lower() == UPGRADE:
                found.media[QUIET] = "the file was replaced by an upgrade, whose own event tells"
    elif kind == "added":
        method = fields.label("addMethod", "an add method")
        found.put("add_method", ADD_METHODS.get(method.lower()) if method else None)
    elif kind == "rename":
        renamed = sum(len(fields.objects(key) or []) for key in RENAMED)
        if renamed:
            found.media["files"] = renamed
    elif kind == "retag" and len(found.files) == 1:
        path = found.files[0].path("path")
        found.put("file_name", _file_name(path) if path else None)


def _files(found: _Found, fields: Fields, files: list[Fields], others: list[Fields]) -> None:
    """quality, size, release_group and indexer: from the files when they say, else the release
    (or the download client's item, or the body itself). Every value is read (and so checked),
    whether it is used or not."""
    said = [*files, *others, fields]
    quality = next((q for q in [f.label("quality", "a quality name") for f in said] if q), None)
    group = next((g for g in [f.label("releaseGroup", "a release group") for f in [*files, *others]] if g), None)
    file_sizes = [s for s in (f.size("size") for f in files) if s is not None]
    other_size = next((s for s in [f.size("size") for f in others] if s), None)
    for other in others:
        found.put("indexer", other.label("indexer", "an indexer name"))
    found.put("quality", quality)
    found.put("size", sum(file_sizes) if file_sizes else other_size)
    found.put("release_group", group)
    found.put("download_client", fields.label("downloadClient", "a download client name"))
    count = max(fields.whole("fileCount", 0, ITEMS_MAX, "a number of files") or 0, len(files))
    if count > 1:
        found.media["files"] = count


def _replaced(found: _Found, fields: Fields) -> None:
    """An upgrade's `deletedFiles` (elsewhere `deletedFiles` is a flag: MovieDelete, SeriesDelete, …)."""
    replaced = []
    for old in fields.objects("deletedFiles") or []:
        item = {"quality": old.label("quality", "a quality name"), "size": old.size("size"),
                "path": old.path("path")}
        replaced.append({k: v for k, v in item.items() if v is not None})
    if replaced:
        found.media["replaced"] = replaced
        found.media["replaces"] = tally(replaced)


def tally(replaced: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What an upgrade replaced, once per quality in the order first met: a Lidarr album's twelve
    MP3-320 tracks are [{"quality": "MP3-320", "count": 12}]. Files of no known quality are left out."""
    counts: dict[str, int] = {}
    for old in replaced:
        quality = old.get("quality")
        if isinstance(quality, str) and quality:
            counts[quality] = counts.get(quality, 0) + 1
    return [{"quality": quality, "count": count} for quality, count in counts.items()]


def _reasons(fields: Fields, release_title: str | None) -> list[str]:
    """Why an import waits for a person: the sender's status messages, one line each ("file: why;
    why"), the release's own name left out (it is already said), at most REASONS_MAX lines."""
    lines = []
    for status in fields.objects("downloadStatusMessages") or []:
        title = status.title("title")
        messages = status.texts("messages", REASON_MAX)
        named = title if title and title != release_title else None
        text = "; ".join(messages)
        line = f"{named}: {text}" if named and text else (named or text)
        if line:
            lines.append(clip(line, REASON_MAX))
    return list(dict.fromkeys(lines))[:REASONS_MAX]


def _file_name(path: str) -> str:
    return path.rstrip("/\\").rsplit("/", 1)[-1].rsplit("\\", 1)[-1]


def _with_year(name: str | None, year: int | None) -> str:
    if not name:
        return ""
    return f"{name} ({year})" if year else name


# Radarr ------------------------------------------------------------------------------------------

RADARR_NEEDS_MOVIE = ("Grab", "Download", "Rename", "MovieDelete", "MovieFileDelete", "MovieAdded",
                      "ManualInteractionRequired")


def _describe_radarr(fields: Fields, event_type: str, kind: str) -> _Found:
    found = _Found("movie")
    movie = fields.obj("movie", required=event_type in RADARR_NEEDS_MOVIE)
    if movie is not None:
        year = movie.year("year")
        found.title = _with_year(movie.title("title"), year)
        found.put("year", year)
        folder, older = movie.path("folderPath"), movie.path("path")       # older senders say `path`
        folder = folder or older
        if folder:
            found.paths.append(folder)
        found.id("tmdb", movie.db_id("tmdbId"))
        found.id("imdb", movie.ident("imdbId", "an IMDb id"))
        found.put("overview", movie.prose("overview"))
    movie_file = fields.obj("movieFile")
    found.files = [movie_file] if movie_file else []
    return found


def parse_radarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Radarr webhook body, or raise BadPayload naming the field."""
    return _parse("radarr", "Radarr", _describe_radarr, body, source, source_type, raw)


# Sonarr ------------------------------------------------------------------------------------------

SONARR_NEEDS_SERIES = ("Grab", "Download", "Rename", "EpisodeFileDelete", "SeriesAdd", "SeriesDelete")
SONARR_NEEDS_EPISODES = ("Grab", "Download", "EpisodeFileDelete")  # Sonarr's Rename sends none


def _describe_sonarr(fields: Fields, event_type: str, kind: str) -> _Found:
    series = fields.obj("series", required=event_type in SONARR_NEEDS_SERIES)
    listed = fields.objects("episodes", required=event_type in SONARR_NEEDS_EPISODES) or []
    episodes = []
    for episode in listed:
        item: dict[str, Any] = {"season": episode.season("seasonNumber", required=True),
                                "episode": episode.episode("episodeNumber", required=True),
                                "title": episode.title("title")}
        episodes.append({k: v for k, v in item.items() if v is not None})
    episodes.sort(key=lambda e: (e["season"], e["episode"]))
    found = _Found("episode" if episodes else "series")
    name = series_path = None
    if series is not None:
        name = series.title("title")
        found.put("series", name)                   # the show alone, for digests ("Severance S02E01–E10")
        year = series.year("year")
        found.put("year", year)
        series_path = series.path("path")
        found.id("tvdb", series.db_id("tvdbId"))
        found.id("tmdb", series.db_id("tmdbId"))
        found.id("imdb", series.ident("imdbId", "an IMDb id"))
        found.id("tvmaze", series.db_id("tvMazeId"))
        found.put("overview", series.prose("overview"))
        if not episodes:
            found.title = _with_year(name, year)
    if episodes:
        found.media["episodes"] = episodes
        found.title = " ".join(part for part in (name, _episode_code(episodes)) if part)
        if len(episodes) == 1 and "title" in episodes[0]:
            found.title += f" · {episodes[0]['title']}"

    one, every = fields.obj("episodeFile"), fields.objects("episodeFiles")
    found.files = [f for f in [one] if f] + (every or [])
    if event_type == "Download" and one is None and every:
        found.media["import_complete"] = True            # Sonarr's "On Import Complete": every file of a download
    relative = [f.relative_path("relativePath") for f in found.files]
    if series_path:
        folders = [_season_folder(series_path, r) for r in relative]
        found.paths = [folder or series_path for folder in folders] or [series_path]
    return found


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
    joined = series_path.rstrip("/\\") + sep + folder
    return normal_path(joined) or joined     # both parts are checked: absolute, never climbing


def parse_sonarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Sonarr webhook body, or raise BadPayload naming the field."""
    return _parse("sonarr", "Sonarr", _describe_sonarr, body, source, source_type, raw)


def _owner(found: _Found, owner: Fields | None, role: str, id_name: str, id_key: str) -> str | None:
    """Lidarr's artist, Readarr's author: its name, its folder (what changed on disk) and its id."""
    if owner is None:
        return None
    name = owner.title("name")
    found.put(role, name)
    folder = owner.path("path")
    if folder:
        found.paths.append(folder)
    found.id(id_name, owner.ident(id_key))
    return name


# Lidarr ------------------------------------------------------------------------------------------

LIDARR_NEEDS_ARTIST = ("Grab", "Download", "AlbumDownload", "Rename", "Retag", "ArtistAdd",
                       "ArtistDelete", "AlbumDelete", "TrackFileDelete")


def _describe_lidarr(fields: Fields, event_type: str, kind: str) -> _Found:
    found = _Found("music")
    artist_name = _owner(found, fields.obj("artist", required=event_type in LIDARR_NEEDS_ARTIST), "artist",
                         "musicbrainz", "mbId")
    album = fields.first("album", "albums")
    album_title = None
    if album is not None:
        album_title = album.title("title")
        year = album.date_year("releaseDate")
        found.put("album", album_title)
        found.put("year", year)
        found.id("musicbrainz_album", album.ident("mbId"))
        album_title = _with_year(album_title, year)
    found.title = " · ".join(part for part in (artist_name, album_title) if part)
    found.files = fields.each("trackFile", "trackFiles")
    return found


def parse_lidarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Lidarr webhook body, or raise BadPayload naming the field."""
    return _parse("lidarr", "Lidarr", _describe_lidarr, body, source, source_type, raw)


# Readarr -----------------------------------------------------------------------------------------

READARR_NEEDS_AUTHOR = ("Grab", "Download", "Rename", "Retag", "AuthorAdded", "AuthorDelete",
                        "BookDelete", "BookFileDelete")


def _describe_readarr(fields: Fields, event_type: str, kind: str) -> _Found:
    found = _Found("book")
    author_name = _owner(found, fields.obj("author", required=event_type in READARR_NEEDS_AUTHOR), "author",
                         "goodreads", "goodreadsId")
    book = fields.first("book", "books")
    book_title = None
    if book is not None:
        book_title = book.title("title")
        found.put("book", book_title)
        found.put("year", book.date_year("releaseDate"))
        found.id("goodreads_book", book.ident("goodreadsId"))
        edition = book.obj("edition")
        if edition is not None:
            found.id("isbn13", edition.ident("isbn13", "an ISBN"))
            found.id("asin", edition.ident("asin", "an ASIN"))
    found.title = " · ".join(part for part in (author_name, book_title) if part)
    found.files = fields.each("bookFile", "bookFiles")
    return found


def parse_readarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Readarr webhook body, or raise BadPayload naming the field."""
    return _parse("readarr", "Readarr", _describe_readarr, body, source, source_type, raw)


# Prowlarr ----------------------------------------------------------------------------------------

# Prowlarr's GrabTrigger (camelCase on the wire): an app fetched the release through Prowlarr's API
# (Radarr, Sonarr, …, named in `source`), or someone grabbed it by hand in Prowlarr itself.
GRAB_TRIGGERS = {"api": "api", "manual": "manual"}
UNKNOWN_CLIENT = "Other"        # Prowlarr's `source` for a client whose User-Agent it does not know
HOST_MAX = 253                  # a DNS name (Prowlarr's `host`: the client's host name, or its address)


def _describe_prowlarr(fields: Fields, event_type: str, kind: str) -> _Found:
    """Prowlarr's Grab: a release an indexer handed out, for an app (`source`) or by hand. The
    release, its indexer, size and download client are read as for the other apps (_details)."""
    found = _Found("release")
    del found.media["media_type"]       # a release is no library's media: no refresher takes it as its own
    trigger = fields.choice("trigger", GRAB_TRIGGERS, "api or manual", fold_case=True)
    found.put("trigger", trigger)
    grabbed_by = fields.label("source", "an application name")
    if grabbed_by and trigger != "manual" and grabbed_by != UNKNOWN_CLIENT:
        found.media["grabbed_by"] = grabbed_by          # "Radarr": the app the release went to
    found.put("host", fields.label("host", "a host name", HOST_MAX))
    found.put("download_client_type", fields.label("downloadClientType", "a download client type"))
    release = fields.obj("release")
    if release is not None:
        categories = release.texts("categories", LABEL_MAX)
        if categories:
            found.media["categories"] = categories
        flags = release.texts("indexerFlags", LABEL_MAX)
        if flags:
            found.media["indexer_flags"] = flags
    return found


def parse_prowlarr(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a Prowlarr webhook body (Grab, Health, HealthRestored, ApplicationUpdate,
    Test: the *arr shape without media), or raise BadPayload naming the field."""
    return _parse("prowlarr", "Prowlarr", _describe_prowlarr, body, source, source_type, raw)
