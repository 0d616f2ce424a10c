"""notifyd.sources.arr: Radarr, Sonarr, Lidarr and Readarr bodies → Event, and BadPayload naming the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifyd.errors import BadPayload
from notifyd.event_kinds import ARR_KINDS, GENERIC, KNOWN_KINDS, QUIET, RUN_KINDS
from notifyd.fields import TITLE_MAX
from notifyd.model import Event
from notifyd.sources import SOURCE_TYPES, comfydeploy
from notifyd.sources.arr import (
    KINDS,
    REASON_MAX,
    REASONS_MAX,
    parse_lidarr,
    parse_radarr,
    parse_readarr,
    parse_sonarr,
    tally,
)
from notifyd.sources.generic import parse_generic

from arr_bodies import arr_body, every_fixture

FIXTURES = Path(__file__).parent / "fixtures"
PARSERS = {"radarr": parse_radarr, "sonarr": parse_sonarr, "lidarr": parse_lidarr, "readarr": parse_readarr}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def parse(app: str, body: dict, source: str | None = None) -> Event:
    return PARSERS[app](body, source or app, app, json.dumps(body))


# fixture → (kind, title, paths, media keys that must hold exactly these values)
EXPECTED = {
    "radarr-download.json": (
        "download", "Arrival (2016)", ("/data/media/movies/Arrival (2016)",),
        {"app": "radarr", "instance": "Radarr", "media_type": "movie", "level": "success", "year": 2016,
         "quality": "Bluray-2160p", "size": 31457280000, "release_group": "GRP",
         "download_client": "SABnzbd", "indexer": "NZBgeek (Prowlarr)",
         "ids": {"tmdb": 329865, "imdb": "tt2543164"},
         "overview": "Taking place after alien crafts land around the world, an expert linguist is "
                     "recruited by the military to determine whether they come in peace or are a threat."}),
    "radarr-grab.json": (
        "grab", "Dune: Part Two (2024)", ("/data/media/movies/Dune Part Two (2024)",),
        {"app": "radarr", "media_type": "movie", "level": "info", "year": 2024, "quality": "WEBDL-2160p",
         "size": 25769803776, "release_group": "FLUX", "download_client": "SABnzbd",
         "indexer": "DrunkenSlug (Prowlarr)", "ids": {"tmdb": 693134, "imdb": "tt15239678"}}),
    "radarr-health.json": (
        "health", "Radarr health warning", (),
        {"app": "radarr", "instance": "Radarr", "level": "warning",
         "health": {"level": "warning",
                    "message": "Indexers unavailable due to failures for more than 6 hours: NZBgeek (Prowlarr)",
                    "type": "IndexerLongTermStatusCheck",
                    "wiki_url": "https://wiki.servarr.com/radarr/system#indexers-are-unavailable-due-to-failures"}}),
    "radarr-moviedelete.json": (
        "delete", "Cats (2019)", ("/data/media/movies/Cats (2019)",),
        {"app": "radarr", "media_type": "movie", "level": "info", "year": 2019,
         "ids": {"tmdb": 536869, "imdb": "tt5697572"}, "deleted_files": True, "size": 4294967296}),
    "radarr-rename.json": (
        "rename", "Arrival (2016)", ("/data/media/movies/Arrival (2016)",),
        {"app": "radarr", "media_type": "movie", "level": "info", "year": 2016,
         "ids": {"tmdb": 329865, "imdb": "tt2543164"}}),
    "radarr-test.json": (
        "test", "Test Title (1970)", (),
        {"app": "radarr", "instance": "Radarr", "media_type": "movie", "level": "info", "year": 1970,
         "quality": "Test Quality", "size": 9999999, "release_group": "Test Group",
         "indexer": "Test Indexer"}),
    "radarr-upgrade.json": (
        "upgrade", "Blade Runner 2049 (2017)", ("/data/media/movies/Blade Runner 2049 (2017)",),
        {"app": "radarr", "instance": "Radarr 4K", "app_url": "http://radarr.lan:7878", "media_type": "movie",
         "level": "success", "year": 2017, "quality": "Remux-2160p", "size": 68719476736,
         "release_group": "XYZ", "download_client": "qBittorrent",
         "ids": {"tmdb": 335984, "imdb": "tt1856101"},
         "replaced": [{"quality": "Bluray-1080p", "size": 14495514624,
                       "path": "/data/media/movies/Blade Runner 2049 (2017)/Blade Runner 2049 (2017) Bluray-1080p.mkv"}]}),
    "sonarr-download.json": (
        "download", "Severance S02E03 · Who Is Alive?", ("/data/media/tv/Severance/Season 02",),
        {"app": "sonarr", "instance": "Sonarr", "app_url": "http://sonarr.lan:8989", "media_type": "episode",
         "level": "success", "year": 2022, "quality": "WEBDL-2160p", "size": 9663676416,
         "release_group": "FLUX", "download_client": "SABnzbd", "indexer": "NZBgeek (Prowlarr)",
         "ids": {"tvdb": 371980, "tmdb": 95396, "imdb": "tt11280740", "tvmaze": 44933},
         "episodes": [{"season": 2, "episode": 3, "title": "Who Is Alive?"}]}),
    "sonarr-test.json": (
        "test", "Test Title S01E01 · Test title", (),
        {"app": "sonarr", "instance": "Sonarr", "media_type": "episode", "level": "info",
         "ids": {"tvdb": 1234}, "episodes": [{"season": 1, "episode": 1, "title": "Test title"}]}),
    "lidarr-download.json": (
        "download", "Radiohead · OK Computer (1997)", ("/data/media/music/Radiohead",),
        {"app": "lidarr", "instance": "Lidarr", "app_url": "http://lidarr.lan:8686", "media_type": "music",
         "level": "success", "artist": "Radiohead", "album": "OK Computer", "year": 1997, "quality": "FLAC",
         "size": 79691776, "release_group": "EAC", "download_client": "qBittorrent",
         "ids": {"musicbrainz": "a74b1b7f-71a5-4011-9441-d0b5e4122711",
                 "musicbrainz_album": "b8048f24-c026-3398-b23a-b5e50716cbc7"}}),
    "lidarr-test.json": (
        "test", "Test Name · Test title", (),
        {"app": "lidarr", "instance": "Lidarr", "media_type": "music", "level": "info",
         "artist": "Test Name", "album": "Test title", "ids": {"musicbrainz": "aaaaa-aaa-aaaa-aaaaaa"}}),
    "readarr-download.json": (
        "download", "Ursula K. Le Guin · The Dispossessed", ("/data/media/books/Ursula K. Le Guin",),
        {"app": "readarr", "instance": "Readarr", "media_type": "book", "level": "success",
         "author": "Ursula K. Le Guin", "book": "The Dispossessed", "year": 1974, "quality": "EPUB",
         "size": 1153433, "download_client": "SABnzbd",
         "ids": {"goodreads": "874602", "goodreads_book": "13651", "isbn13": "9780061054884",
                 "asin": "B000FC1J9G"}}),
    "readarr-health.json": (
        "health", "Readarr health error", (),
        {"app": "readarr", "instance": "Readarr", "level": "failure",
         "health": {"level": "error", "message": "No download client is available",
                    "type": "DownloadClientCheck",
                    "wiki_url": "https://wiki.servarr.com/readarr/system#no-download-client-is-available"}}),
}
# keys a fixture's media must NOT have: unknown values are omitted, never stored as None or ""
ABSENT = {
    "radarr-download.json": ("app_url", "replaced", "episodes"),
    "radarr-grab.json": ("app_url", "overview"),
    "radarr-health.json": ("media_type", "app_url", "ids", "year"),
    "radarr-moviedelete.json": ("quality", "replaced"),
    "radarr-test.json": ("ids", "app_url", "download_client"),
    "sonarr-test.json": ("year", "app_url", "quality"),
    "lidarr-test.json": ("year", "app_url"),
    "readarr-download.json": ("app_url", "release_group", "indexer"),
    "readarr-health.json": ("app_url", "media_type"),
}


def test_every_arr_fixture_has_expectations():
    on_disk = {p.name for p in FIXTURES.glob("*.json") if p.name.split("-")[0] in PARSERS}
    assert on_disk == set(EXPECTED)


def test_registry_names_the_four_apps():
    assert SOURCE_TYPES["radarr"].parse is parse_radarr
    assert SOURCE_TYPES["sonarr"].parse is parse_sonarr
    assert SOURCE_TYPES["lidarr"].parse is parse_lidarr
    assert SOURCE_TYPES["readarr"].parse is parse_readarr
    assert "generic" in SOURCE_TYPES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    kind, title, paths, media = EXPECTED[name]
    app = name.split("-")[0]
    raw = (FIXTURES / name).read_text()
    event = PARSERS[app](json.loads(raw), f"my-{app}", app, raw)
    assert (event.kind, event.title, event.paths) == (kind, title, paths)
    assert (event.source, event.source_type, event.body, event.payload) == (f"my-{app}", app, "", raw)
    for key, value in media.items():
        assert event.media[key] == value, key
    for key in ABSENT.get(name, ()):
        assert key not in event.media, key
    assert None not in event.media.values()
    json.dumps(event.media)


# ---- kinds -----------------------------------------------------------------------------------

@pytest.mark.parametrize("app, event_type, kind", [
    ("radarr", "MovieDelete", "delete"), ("radarr", "MovieFileDelete", "file_delete"),
    ("radarr", "MovieAdded", "added"), ("radarr", "ManualInteractionRequired", "manual_interaction"),
    ("sonarr", "SeriesAdd", "added"), ("sonarr", "SeriesDelete", "delete"),
    ("lidarr", "ArtistAdd", "added"), ("lidarr", "ArtistDelete", "delete"), ("lidarr", "AlbumDelete", "delete"),
    ("lidarr", "AlbumDownload", "download"), ("lidarr", "TrackFileDelete", "file_delete"),
    ("lidarr", "Retag", "retag"), ("lidarr", "ImportFailure", "import_failed"),
    ("lidarr", "DownloadFailure", "download_failed"), ("readarr", "Retag", "retag"),
    ("readarr", "AuthorAdded", "added"), ("readarr", "AuthorDelete", "delete"), ("readarr", "BookDelete", "delete"),
    ("readarr", "BookFileDelete", "file_delete"),
])
def test_kinds_of_media_events(app, event_type, kind):
    media = {"radarr": {"movie": {"title": "Arrival", "folderPath": "/m/Arrival (2016)"}},
             "sonarr": {"series": {"title": "Severance", "path": "/tv/Severance"},
                        "episodes": [{"seasonNumber": 1, "episodeNumber": 1}]},
             "lidarr": {"artist": {"name": "Radiohead", "path": "/music/Radiohead"}},
             "readarr": {"author": {"name": "Le Guin", "path": "/books/Le Guin"}}}[app]
    assert parse(app, {"eventType": event_type, **media}).kind == kind


@pytest.mark.parametrize("event_type, kind, title, level", [
    ("Health", "health", "Radarr health error", "failure"),
    ("HealthIssue", "health", "Radarr health error", "failure"),
    ("HealthRestored", "health_restored", "Radarr health restored", "success"),
])
def test_health_kinds(event_type, kind, title, level):
    event = parse("radarr", {"eventType": event_type, "level": "error", "message": "m", "instanceName": "Radarr"})
    assert (event.kind, event.title, event.paths, event.media["level"]) == (kind, title, (), level)
    assert event.media["health"] == {"level": "error", "message": "m"}


def test_health_level_notice_is_info_and_instance_defaults_to_the_app_name():
    event = parse("sonarr", {"eventType": "Health", "level": "Notice"})
    assert (event.title, event.media["level"]) == ("Sonarr health notice", "info")
    assert "instance" not in event.media


def test_health_level_as_enum_number():
    assert parse("lidarr", {"eventType": "Health", "level": 2}).title == "Lidarr health warning"


def test_application_update():
    body = {"eventType": "ApplicationUpdate", "instanceName": "Radarr 4K", "previousVersion": "5.14.0.9383",
            "newVersion": "5.15.1.9463", "message": "Radarr updated from 5.14.0.9383 to 5.15.1.9463"}
    event = parse("radarr", body)
    assert (event.kind, event.title, event.paths) == ("app_update", "Radarr 4K updated to 5.15.1.9463", ())
    assert event.media["update"] == {"previous_version": "5.14.0.9383", "new_version": "5.15.1.9463",
                                     "message": "Radarr updated from 5.14.0.9383 to 5.15.1.9463"}
    assert event.media["level"] == "info"


def test_manual_interaction_is_a_warning():
    event = parse("radarr", {"eventType": "ManualInteractionRequired",
                             "movie": {"title": "Arrival", "year": 2016, "folderPath": "/m/Arrival (2016)"}})
    assert (event.kind, event.title, event.media["level"]) == ("manual_interaction", "Arrival (2016)", "warning")


def test_unknown_event_type_is_accepted_in_lower_case():
    body = load("radarr-download.json") | {"eventType": "MovieSomethingNew"}
    event = parse("radarr", body)
    assert (event.kind, event.title, event.media["level"]) == ("moviesomethingnew", "Arrival (2016)", "info")


def test_unknown_event_type_without_media_names_the_instance():
    event = parse("lidarr", {"eventType": "FooBar", "instanceName": "Lidarr FLAC"})
    assert (event.kind, event.title, event.paths) == ("foobar", "Lidarr FLAC FooBar", ())
    assert (event.media["event_type"], event.media["level"]) == ("FooBar", "info")


def test_test_without_media_is_named_after_the_instance():
    for app, name in [("radarr", "Radarr"), ("sonarr", "Sonarr"), ("lidarr", "Lidarr"), ("readarr", "Readarr")]:
        event = parse(app, {"eventType": "Test"})
        assert (event.kind, event.title, event.paths) == ("test", f"{name} test", ())


# ---- titles and paths ------------------------------------------------------------------------

def test_radarr_year_zero_or_absent_is_left_out():
    assert parse("radarr", {"eventType": "Grab", "movie": {"title": "Arrival", "year": 0}}).title == "Arrival"
    event = parse("radarr", {"eventType": "Grab", "movie": {"title": "Arrival"}})
    assert event.title == "Arrival"
    assert "year" not in event.media


def test_radarr_older_sender_with_movie_path():
    event = parse("radarr", {"eventType": "Download", "movie": {"title": "Heat", "year": 1995, "path": "/m/Heat"}})
    assert event.paths == ("/m/Heat",)


SERIES = {"title": "Severance", "year": 2022, "path": "/tv/Severance", "tvdbId": 371980}


def episode(season: int, number: int, title: str = "") -> dict:
    return {"seasonNumber": season, "episodeNumber": number, "title": title}


def test_sonarr_several_episodes_of_one_season():
    body = {"eventType": "Download", "series": SERIES,
            "episodes": [episode(2, 5, "e"), episode(2, 3, "c"), episode(2, 4, "d")],
            "episodeFile": {"relativePath": "Season 02/Severance - S02E03-E05.mkv", "size": 3}}
    event = parse("sonarr", body)
    assert event.title == "Severance S02E03–E05"
    assert event.paths == ("/tv/Severance/Season 02",)
    assert event.media["episodes"] == [{"season": 2, "episode": 3, "title": "c"},
                                       {"season": 2, "episode": 4, "title": "d"},
                                       {"season": 2, "episode": 5, "title": "e"}]


def test_sonarr_two_files_of_one_season_give_one_path():
    body = {"eventType": "Download", "series": SERIES, "episodes": [episode(2, 3), episode(2, 4)],
            "episodeFiles": [{"relativePath": "Season 02/a.mkv", "size": 10},
                             {"relativePath": "Season 02/b.mkv", "size": 20}]}
    event = parse("sonarr", body)
    assert event.paths == ("/tv/Severance/Season 02",)
    assert event.media["size"] == 30


def test_sonarr_episodes_of_two_seasons_give_two_paths():
    body = {"eventType": "Download", "series": SERIES, "episodes": [episode(1, 9), episode(2, 1)],
            "episodeFiles": [{"relativePath": "Season 01/a.mkv"}, {"relativePath": "Season 02/b.mkv"}]}
    event = parse("sonarr", body)
    assert event.paths == ("/tv/Severance/Season 01", "/tv/Severance/Season 02")
    assert event.title == "Severance S01E09–S02E01"


def test_sonarr_file_without_folder_gives_the_series_folder():
    body = {"eventType": "EpisodeFileDelete", "series": SERIES, "episodes": [episode(1, 1, "Good News About Hell")],
            "episodeFile": {"relativePath": "Severance - S01E01.mkv"}}
    event = parse("sonarr", body)
    assert (event.kind, event.title, event.paths) == ("file_delete", "Severance S01E01 · Good News About Hell",
                                                      ("/tv/Severance",))


def test_sonarr_windows_paths_keep_their_separator():
    body = {"eventType": "Download", "series": {"title": "X", "path": "D:\\TV\\X"}, "episodes": [episode(1, 1)],
            "episodeFile": {"relativePath": "Season 01\\X - S01E01.mkv"}}
    assert parse("sonarr", body).paths == ("D:\\TV\\X\\Season 01",)


@pytest.mark.parametrize("event_type, kind", [("SeriesAdd", "added"), ("SeriesDelete", "delete")])
def test_sonarr_series_level_events(event_type, kind):
    event = parse("sonarr", {"eventType": event_type, "series": SERIES, "deletedFiles": True})
    assert (event.kind, event.title, event.paths) == (kind, "Severance (2022)", ("/tv/Severance",))
    assert event.media["media_type"] == "series"
    assert "episodes" not in event.media


def test_sonarr_rename_as_sonarr_sends_it_without_episodes():
    body = {"eventType": "Rename", "series": SERIES,
            "renamedEpisodeFiles": [{"relativePath": "Season 01/new.mkv", "previousRelativePath": "Season 01/old.mkv"}]}
    event = parse("sonarr", body)
    assert (event.kind, event.title, event.paths) == ("rename", "Severance (2022)", ("/tv/Severance",))


def test_sonarr_upgrade_lists_replaced_files():
    body = {"eventType": "Download", "isUpgrade": True, "series": SERIES, "episodes": [episode(1, 1)],
            "episodeFile": {"relativePath": "Season 01/new.mkv", "quality": "WEBDL-2160p", "size": 9},
            "deletedFiles": [{"relativePath": "Season 01/old.mkv", "path": "/tv/Severance/Season 01/old.mkv",
                              "quality": "HDTV-720p", "size": 4}]}
    event = parse("sonarr", body)
    assert (event.kind, event.media["level"]) == ("upgrade", "success")
    assert event.media["replaced"] == [{"quality": "HDTV-720p", "size": 4, "path": "/tv/Severance/Season 01/old.mkv"}]


def test_lidarr_without_album_and_grab_with_albums():
    artist = {"name": "Radiohead", "path": "/music/Radiohead", "mbId": "a74b"}
    assert parse("lidarr", {"eventType": "ArtistAdd", "artist": artist}).title == "Radiohead"
    grab = {"eventType": "Grab", "artist": artist,
            "albums": [{"title": "Kid A", "releaseDate": "2000-10-02T00:00:00Z"}],
            "release": {"quality": "FLAC", "size": 512, "indexer": "RED", "releaseGroup": "G"}}
    event = parse("lidarr", grab)
    assert (event.kind, event.title, event.paths) == ("grab", "Radiohead · Kid A (2000)", ("/music/Radiohead",))
    assert (event.media["quality"], event.media["size"], event.media["indexer"]) == ("FLAC", 512, "RED")


def test_lidarr_upgrade():
    body = load("lidarr-download.json") | {
        "isUpgrade": True, "deletedFiles": [{"path": "/data/media/music/Radiohead/OK Computer (1997)/01.mp3",
                                             "quality": "MP3-320", "size": 9}]}
    event = parse("lidarr", body)
    assert event.kind == "upgrade"
    assert event.media["replaced"] == [{"quality": "MP3-320", "size": 9,
                                        "path": "/data/media/music/Radiohead/OK Computer (1997)/01.mp3"}]


def test_readarr_without_book():
    event = parse("readarr", {"eventType": "AuthorDelete", "author": {"name": "Le Guin", "path": "/b/Le Guin"},
                              "deletedFiles": False})
    assert (event.kind, event.title, event.paths) == ("delete", "Le Guin", ("/b/Le Guin",))


# ---- malformed bodies ------------------------------------------------------------------------

def radarr_download(**changes) -> dict:
    body = load("radarr-download.json")
    body.update(changes)
    return body


def sonarr_download(**changes) -> dict:
    body = load("sonarr-download.json")
    body.update(changes)
    return body


@pytest.mark.parametrize("app, body, message", [
    ("radarr", {k: v for k, v in load("radarr-download.json").items() if k != "eventType"},
     "field 'eventType': expected an event name such as \"Download\", got nothing"),
    ("radarr", radarr_download(eventType=5), "field 'eventType': expected an event name such as \"Download\", got 5"),
    ("radarr", radarr_download(eventType=""), "field 'eventType': "),
    ("radarr", radarr_download(eventType="Two Words"), "field 'eventType': "),
    ("radarr", radarr_download(movie=None), "field 'movie': expected an object, got null"),
    ("radarr", {k: v for k, v in load("radarr-download.json").items() if k != "movie"},
     "field 'movie': expected an object, got nothing"),
    ("radarr", radarr_download(movie="Arrival"), "field 'movie': expected an object, got 'Arrival'"),
    ("radarr", radarr_download(movie={"title": "Arrival", "year": 2016, "folderPath": 5}),
     "field 'movie.folderPath': expected an absolute path (/…, X:\\… or \\\\host\\share\\…), got 5"),
    ("radarr", radarr_download(movie={"title": "Arrival", "year": "2016"}),
     "field 'movie.year': expected a whole number from 1800 to 2200 (or 0 for unknown), got '2016'"),
    ("radarr", radarr_download(movie={"title": ["Arrival"]}), "field 'movie.title': expected a string, got an array"),
    ("radarr", radarr_download(movieFile={"size": "30 GB"}), "field 'movieFile.size': expected a size in bytes from 0 to 9007199254740991, got '30 GB'"),
    ("radarr", radarr_download(movieFile={"size": 1.5}), "field 'movieFile.size': expected a size in bytes from 0 to 9007199254740991, got 1.5"),
    ("radarr", radarr_download(isUpgrade="yes"), "field 'isUpgrade': expected true or false, got 'yes'"),
    ("radarr", radarr_download(isUpgrade=True, deletedFiles="old.mkv"),
     "field 'deletedFiles': expected an array of at most 1000 objects, got 'old.mkv'"),
    ("radarr", radarr_download(release=[]), "field 'release': expected an object, got an array"),
    ("radarr", radarr_download(instanceName=7), "field 'instanceName': expected an instance name of at most 128 characters on one line, got 7"),
    ("radarr", {"eventType": "Health", "level": True}, "field 'level': expected one of ok, notice, warning, error (or 0 to 3), got a boolean"),
    ("sonarr", sonarr_download(episodes="S02E03"), "field 'episodes': expected an array of at most 1000 objects, got 'S02E03'"),
    ("sonarr", sonarr_download(episodes=None), "field 'episodes': expected an array of at most 1000 objects, got null"),
    ("sonarr", sonarr_download(episodes=["S02E03"]), "field 'episodes[0]': expected an object, got 'S02E03'"),
    ("sonarr", sonarr_download(episodes=[{"seasonNumber": 2}]),
     "field 'episodes[0].episodeNumber': expected an episode number from 0 to 99999, got nothing"),
    ("sonarr", sonarr_download(series=None), "field 'series': expected an object, got null"),
    ("sonarr", sonarr_download(series={"title": "Severance", "path": 1}), "field 'series.path': expected an absolute path"),
    ("sonarr", sonarr_download(episodeFile={"relativePath": {}}),
     "field 'episodeFile.relativePath': expected a relative path such as \"Season 01/file.mkv\", got an object"),
    ("sonarr", {"eventType": "SeriesAdd"}, "field 'series': expected an object, got nothing"),
    ("lidarr", {"eventType": "Download", "album": {"title": "OK Computer"}}, "field 'artist': expected an object"),
    ("lidarr", {"eventType": "Grab", "artist": {"name": "R"}, "albums": {"title": "x"}},
     "field 'albums': expected an array of at most 1000 objects, got an object"),
    ("readarr", {"eventType": "BookFileDelete", "author": None}, "field 'author': expected an object, got null"),
    ("readarr", {"eventType": "Download", "author": {"name": "A", "path": False}},
     "field 'author.path': expected an absolute path (/…, X:\\… or \\\\host\\share\\…), got a boolean"),
])
def test_malformed_bodies_raise_bad_payload_naming_the_field(app, body, message):
    with pytest.raises(BadPayload) as info:
        parse(app, body)
    assert str(info.value).startswith(message)
    assert (info.value.status, info.value.code) == (422, "invalid_payload")


@pytest.mark.parametrize("app, body, message", [
    ("radarr", radarr_download(movie={"title": "Arrival", "year": 1e30}),
     "field 'movie.year': expected a whole number from 1800 to 2200 (or 0 for unknown), got 1e+30"),
    ("radarr", radarr_download(movie={"title": "Arrival", "year": 10**30}),
     "field 'movie.year': expected a whole number from 1800 to 2200 (or 0 for unknown), got a 31-digit number"),
    ("radarr", radarr_download(movie={"title": "Arrival", "year": -1}), "field 'movie.year': "),
    ("radarr", radarr_download(movie={"title": "Arrival", "year": float("inf")}), "field 'movie.year': "),
    ("radarr", radarr_download(movie={"title": "Arrival", "year": float("nan")}), "field 'movie.year': "),
    ("radarr", radarr_download(movieFile={"size": -1}),
     "field 'movieFile.size': expected a size in bytes from 0 to 9007199254740991, got -1"),
    ("radarr", radarr_download(release={"size": 2**64}), "field 'release.size': "),
    ("radarr", radarr_download(movie={"title": "Arrival", "tmdbId": 2**40}),
     "field 'movie.tmdbId': expected a numeric id from 0 to 2147483647, got 1099511627776"),
    ("radarr", radarr_download(movie={"title": "Arrival", "imdbId": "tt 1"}), "field 'movie.imdbId': "),
    ("radarr", radarr_download(movie={"title": "Arrival", "folderPath": "../../../etc/passwd"}),
     "field 'movie.folderPath': expected an absolute path (/…, X:\\… or \\\\host\\share\\…) that does not climb"),
    ("radarr", radarr_download(movie={"title": "Arrival", "folderPath": "/data/media/../../etc"}),
     "field 'movie.folderPath': "),
    ("radarr", radarr_download(movie={"title": "Arrival", "folderPath": "movies/Arrival"}),
     "field 'movie.folderPath': expected an absolute path (/…, X:\\… or \\\\host\\share\\…), got 'movies/Arrival'"),
    ("radarr", radarr_download(movie={"title": "Arrival", "path": "D:\\..\\Windows"}), "field 'movie.path': "),
    ("radarr", radarr_download(movieFile={"quality": "Q" * 129}), "field 'movieFile.quality': expected a quality name"),
    ("radarr", radarr_download(movieFile={"quality": "Bluray\n2160p"}), "field 'movieFile.quality': "),
    ("radarr", radarr_download(downloadClient=["SABnzbd"]), "field 'downloadClient': "),
    ("radarr", radarr_download(applicationUrl="javascript:alert(1)"), "field 'applicationUrl': expected an http or https URL"),
    ("radarr", radarr_download(isUpgrade=True, deletedFiles=[{"path": "relative/old.mkv"}]), "field 'deletedFiles[0].path': "),
    ("radarr", {"eventType": "Health", "level": "catastrophic"}, "field 'level': expected one of ok, notice, warning, error"),
    ("radarr", {"eventType": "Health", "level": 9}, "field 'level': "),
    ("radarr", {"eventType": "Health", "level": "error", "wikiUrl": "not a url"}, "field 'wikiUrl': "),
    ("radarr", {"eventType": "ApplicationUpdate", "newVersion": "5" * 65}, "field 'newVersion': "),
    ("sonarr", sonarr_download(episodes=[{"seasonNumber": 2, "episodeNumber": 10**400}]),
     "field 'episodes[0].episodeNumber': expected an episode number from 0 to 99999, got a 401-digit number"),
    ("sonarr", sonarr_download(episodes=[{"seasonNumber": -1, "episodeNumber": 1}]), "field 'episodes[0].seasonNumber': "),
    ("sonarr", sonarr_download(episodes=[{"seasonNumber": 1.5, "episodeNumber": 1}]), "field 'episodes[0].seasonNumber': "),
    ("sonarr", sonarr_download(episodes=[episode(1, 1)] * 1001), "field 'episodes': expected an array of at most 1000 objects, got an array of 1001 items"),
    ("sonarr", sonarr_download(episodeFile={"relativePath": "../../etc/passwd"}), "field 'episodeFile.relativePath': "),
    ("sonarr", sonarr_download(episodeFile={"relativePath": "/etc/passwd"}), "field 'episodeFile.relativePath': "),
    ("sonarr", sonarr_download(episodeFiles=[{"relativePath": "Season 01\\..\\..\\x.mkv"}]), "field 'episodeFiles[0].relativePath': "),
    ("sonarr", sonarr_download(series={"title": "S", "path": "tv/S"}), "field 'series.path': "),
    ("sonarr", sonarr_download(series={"title": "S", "tvMazeId": "44933"}), "field 'series.tvMazeId': "),
    ("lidarr", {"eventType": "Download", "artist": {"name": "R", "path": "/music/../../root"}}, "field 'artist.path': "),
    ("lidarr", {"eventType": "Grab", "artist": {"name": "R"}, "albums": [{"title": "x", "releaseDate": "soon"}]},
     "field 'albums[0].releaseDate': expected a date such as \"1997-05-21\", got 'soon'"),
    ("lidarr", {"eventType": "Grab", "artist": {"name": "R"}, "album": {"releaseDate": "1997-13-40"}}, "field 'album.releaseDate': "),
    ("readarr", {"eventType": "Download", "author": {"name": "A", "path": "books/A"}}, "field 'author.path': "),
    ("readarr", {"eventType": "Download", "author": {"name": "A"}, "book": {"edition": {"isbn13": 9780061054884}}},
     "field 'book.edition.isbn13': "),
])
def test_values_out_of_range_or_absurd_are_refused_naming_the_field(app, body, message):
    with pytest.raises(BadPayload) as info:
        parse(app, body)
    assert str(info.value).startswith(message), str(info.value)


def test_paths_are_normalised_in_their_own_style():
    assert parse("radarr", radarr_download(movie={"title": "A", "folderPath": "/data//movies/./A (2016)/"})).paths == (
        "/data/movies/A (2016)",)
    assert parse("radarr", radarr_download(movie={"title": "A", "folderPath": "D:\\Media\\\\Movies\\A\\"})).paths == (
        "D:\\Media\\Movies\\A",)
    assert parse("lidarr", {"eventType": "Download", "artist": {"name": "R", "path": "\\\\nas\\music\\\\R"}}).paths == (
        "\\\\nas\\music\\R",)
    body = {"eventType": "Download", "series": {"title": "X", "path": "/tv//X/"}, "episodes": [episode(1, 1)],
            "episodeFile": {"relativePath": "Season 01//X - S01E01.mkv"}}
    assert parse("sonarr", body).paths == ("/tv/X/Season 01",)


def test_year_zero_is_unknown_and_a_release_date_of_0001_is_none():
    assert "year" not in parse("sonarr", sonarr_download(series={"title": "S", "year": 0})).media
    grab = {"eventType": "Grab", "artist": {"name": "R"}, "album": {"title": "A", "releaseDate": "0001-01-01T00:00:00Z"}}
    assert "year" not in parse("lidarr", grab).media


def test_long_names_and_messages_are_cut_so_the_event_can_be_delivered():
    event = parse("radarr", radarr_download(movie={"title": "T" * 900_000, "year": 2016, "overview": "o" * 9000}))
    assert len(event.title) <= 256 and event.title.endswith("…")
    assert len(event.media["overview"]) == 4000
    event = parse("sonarr", sonarr_download(series={"title": "S" * 300}, episodes=[episode(1, 1, "E" * 300)]))
    assert len(event.title) == 256 and event.media["episodes"][0]["title"].endswith("…")
    event = parse("radarr", {"eventType": "Health", "level": "error", "message": "m" * 5000})
    assert len(event.media["health"]["message"]) == 4000


# ---- never anything but an Event or BadPayload ------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                | st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=16)
event_types = st.sampled_from(["Test", "Grab", "Download", "Rename", "MovieDelete", "SeriesAdd", "ArtistAdd",
                               "AuthorAdded", "BookFileDelete", "EpisodeFileDelete", "Health",
                               "HealthRestored", "ApplicationUpdate", "ManualInteractionRequired",
                               "AlbumDownload", "Retag", "DownloadFailure", "ImportFailure", "MovieFileDelete",
                               "AlbumDelete", "Whatever"]) | json_values
field_names = st.sampled_from(["eventType", "movie", "series", "episodes", "episodeFile", "episodeFiles",
                               "artist", "album", "albums", "author", "book", "books", "trackFiles",
                               "bookFiles", "release", "movieFile", "isUpgrade", "deletedFiles", "level",
                               "instanceName", "applicationUrl", "newVersion", "downloadId", "downloadInfo",
                               "downloadStatusMessages", "deleteReason", "fileCount", "releaseTitle", "quality",
                               "message", "movieFolderSize", "addMethod", "renamedMovieFiles", "trackFile",
                               "bookFile"]) | st.text(max_size=8)


def check(app: str, body: dict) -> None:
    try:
        event = parse(app, body)
    except BadPayload as exc:
        assert str(exc).startswith("field '")
        return
    assert isinstance(event, Event)
    assert isinstance(event.kind, str) and event.kind == event.kind.lower()
    assert isinstance(event.title, str) and event.title == event.title.strip() and event.title
    assert isinstance(event.paths, tuple) and all(isinstance(p, str) and p for p in event.paths)
    json.dumps(event.media)
    assert event.media["level"] in ("info", "success", "warning", "failure")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(PARSERS)), st.dictionaries(field_names, json_values, max_size=8), event_types)
def test_any_json_object_gives_an_event_or_bad_payload(app, body, event_type):
    check(app, body)
    check(app, body | {"eventType": event_type})


def key_paths(value, prefix=()):
    """Every (path to a container, key) in a JSON value, depth first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield prefix, key
            yield from key_paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield prefix, i
            yield from key_paths(inner, prefix + (i,))


def container(value, path):
    for step in path:
        value = value[step]
    return value


ARR_FIXTURES = sorted(EXPECTED)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ARR_FIXTURES), st.data())
def test_damaged_fixtures_give_an_event_or_bad_payload(name, data):
    body = copy.deepcopy(load(name))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        spots = list(key_paths(body))
        if not spots:
            break
        path, key = data.draw(st.sampled_from(spots))
        try:
            parent = container(body, path)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced this spot
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = data.draw(json_values)
    check(name.split("-")[0], body)



# ---- every event type the apps send (tests/fixtures/arr) ------------------------------------------

# (app, fixture) → (kind, level, title) as parsed; the messages are tests/test_arr_events.py's.
ARR_EVENTS = {
    ("radarr", "ApplicationUpdate"): ("app_update", "info", "Radarr updated to 5.15.1.9463"),
    ("radarr", "Download"): ("download", "success", "Arrival (2016)"),
    ("radarr", "Download-upgrade"): ("upgrade", "success", "Blade Runner 2049 (2017)"),
    ("radarr", "Grab"): ("grab", "info", "Dune: Part Two (2024)"),
    ("radarr", "Health"): ("health", "warning", "Radarr health warning"),
    ("radarr", "HealthRestored"): ("health_restored", "success", "Radarr health restored"),
    ("radarr", "ManualInteractionRequired"): ("manual_interaction", "warning", "Blade Runner 2049 (2017)"),
    ("radarr", "MovieAdded"): ("added", "success", "Dune: Part Two (2024)"),
    ("radarr", "MovieDelete"): ("delete", "info", "Cats (2019)"),
    ("radarr", "MovieFileDelete"): ("file_delete", "warning", "Dune: Part Two (2024)"),
    ("radarr", "MovieFileDelete-upgrade"): ("file_delete", "info", "Blade Runner 2049 (2017)"),
    ("radarr", "Rename"): ("rename", "info", "Arrival (2016)"),
    ("radarr", "Test"): ("test", "info", "Test Title (1970)"),
    ("sonarr", "ApplicationUpdate"): ("app_update", "info", "Sonarr updated to 4.0.12.2823"),
    ("sonarr", "Download"): ("download", "success", "Severance S02E03 · Who Is Alive?"),
    ("sonarr", "Download-import-complete"): ("download", "success", "Severance S02E01–E10"),
    ("sonarr", "Download-upgrade"): ("upgrade", "success", "Severance S02E01 · Hello, Ms. Cobel"),
    ("sonarr", "EpisodeFileDelete"): ("file_delete", "info", "Severance S02E07 · Chikhai Bardo"),
    ("sonarr", "EpisodeFileDelete-upgrade"): ("file_delete", "info", "Severance S02E01 · Hello, Ms. Cobel"),
    ("sonarr", "Grab"): ("grab", "info", "Severance S02E01–E10"),
    ("sonarr", "Health"): ("health", "failure", "Sonarr health error"),
    ("sonarr", "HealthRestored"): ("health_restored", "success", "Sonarr health restored"),
    ("sonarr", "ManualInteractionRequired"): ("manual_interaction", "warning", "Severance S02E01–E10"),
    ("sonarr", "Rename"): ("rename", "info", "Severance (2022)"),
    ("sonarr", "SeriesAdd"): ("added", "success", "Severance (2022)"),
    ("sonarr", "SeriesDelete"): ("delete", "info", "Severance (2022)"),
    ("sonarr", "Test"): ("test", "info", "Test Title S01E01 · Test title"),
    ("lidarr", "AlbumDelete"): ("delete", "info", "Radiohead · OK Computer (1997)"),
    ("lidarr", "ApplicationUpdate"): ("app_update", "info", "Lidarr updated to 2.9.6.4552"),
    ("lidarr", "ArtistAdd"): ("added", "success", "Radiohead"),
    ("lidarr", "ArtistDelete"): ("delete", "info", "Radiohead"),
    ("lidarr", "Download"): ("download", "success", "Radiohead · OK Computer (1997)"),
    ("lidarr", "Download-upgrade"): ("upgrade", "success", "Radiohead · OK Computer (1997)"),
    ("lidarr", "DownloadFailure"): ("download_failed", "failure", "Radiohead-Kid_A-WEB-FLAC-2000-OBZEN"),
    ("lidarr", "Grab"): ("grab", "info", "Radiohead · OK Computer (1997)"),
    ("lidarr", "Health"): ("health", "warning", "Lidarr health warning"),
    ("lidarr", "HealthRestored"): ("health_restored", "success", "Lidarr health restored"),
    ("lidarr", "ImportFailure"): ("import_failed", "failure", "Lidarr"),
    ("lidarr", "Rename"): ("rename", "info", "Radiohead"),
    ("lidarr", "Retag"): ("retag", "info", "Radiohead"),
    ("lidarr", "Test"): ("test", "info", "Test Name · Test title"),
    ("readarr", "ApplicationUpdate"): ("app_update", "info", "Readarr updated to 0.4.0.2593"),
    ("readarr", "AuthorAdded"): ("added", "success", "Ursula K. Le Guin"),
    ("readarr", "AuthorDelete"): ("delete", "info", "Ursula K. Le Guin"),
    ("readarr", "BookDelete"): ("delete", "info", "Ursula K. Le Guin · The Left Hand of Darkness"),
    ("readarr", "BookFileDelete"): ("file_delete", "info", "Ursula K. Le Guin · The Left Hand of Darkness"),
    ("readarr", "Download"): ("download", "success", "Ursula K. Le Guin · The Dispossessed"),
    ("readarr", "Download-upgrade"): ("upgrade", "success", "Ursula K. Le Guin · The Left Hand of Darkness"),
    ("readarr", "Grab"): ("grab", "info", "Ursula K. Le Guin · The Dispossessed"),
    ("readarr", "Health"): ("health", "failure", "Readarr health error"),
    ("readarr", "Rename"): ("rename", "info", "Ursula K. Le Guin"),
    ("readarr", "Retag"): ("retag", "info", "Ursula K. Le Guin"),
    ("readarr", "Test"): ("test", "info", "Test Name · Test title"),
}


def arr_event(app: str, name: str) -> Event:
    return parse(app, arr_body(app, name))


def test_every_arr_fixture_has_a_kind_a_level_and_a_title():
    assert sorted(ARR_EVENTS) == sorted(every_fixture())
    for (app, name), (kind, level, title) in ARR_EVENTS.items():
        event = arr_event(app, name)
        assert (event.kind, event.media["level"], event.title) == (kind, level, title), (app, name)
        assert None not in event.media.values() and "event_type" not in event.media, (app, name)
        json.dumps(event.media)


def test_every_kind_a_source_makes_is_in_the_vocabulary():
    assert set(KINDS.values()) | {"upgrade"} == set(ARR_KINDS) | {"test"}
    assert {kind for kind, _, _ in ARR_EVENTS.values()} <= KNOWN_KINDS
    assert set(comfydeploy.KINDS.values()) == set(RUN_KINDS) <= KNOWN_KINDS
    assert parse_generic({"title": "Backup finished"}, "generic", "generic", "{}").kind == GENERIC


def test_an_upgrade_says_what_it_replaced_once_per_quality():
    event = arr_event("lidarr", "Download-upgrade")
    assert len(event.media["replaced"]) == 12 and event.media["files"] == 12
    assert event.media["replaces"] == [{"quality": "MP3-320", "count": 12}]
    assert tally([{"quality": "A"}, {"size": 3}, {"quality": "B"}, {"quality": "A"}]) == [
        {"quality": "A", "count": 2}, {"quality": "B", "count": 1}]
    assert arr_event("radarr", "Download-upgrade").media["replaces"] == [{"quality": "Bluray-1080p", "count": 1}]


def test_sonarrs_import_complete_is_marked_and_counts_its_files():
    event = arr_event("sonarr", "Download-import-complete")
    assert (event.media["import_complete"], event.media["files"], event.media["download_id"]) == (
        True, 10, "SABnzbd_nzo_s02pack1")
    assert event.paths == ("/data/media/tv/Severance/Season 02",)
    assert "import_complete" not in arr_event("sonarr", "Download").media


@pytest.mark.parametrize("reason", ["upgrade", "Upgrade", "UPGRADE"])
def test_a_file_deleted_by_an_upgrade_is_quiet(reason):
    body = arr_body("sonarr", "EpisodeFileDelete-upgrade") | {"deleteReason": reason}
    event = parse("sonarr", body)
    assert event.media[QUIET] and event.media["delete_reason"] == "replaced by an upgrade"
    assert QUIET not in arr_event("sonarr", "EpisodeFileDelete").media
    assert QUIET not in arr_event("readarr", "BookFileDelete").media        # Readarr sends no reason


def test_a_delete_reason_notifyd_does_not_know_is_kept_as_sent():
    event = parse("radarr", arr_body("radarr", "MovieFileDelete") | {"deleteReason": "cleanedUp"})
    assert (event.media["delete_reason"], event.media["level"]) == ("cleanedUp", "info")


def test_a_delete_says_whether_the_files_went_and_how_much():
    assert (arr_event("radarr", "MovieDelete").media["deleted_files"], arr_event("radarr", "MovieDelete").media["size"]) \
        == (True, 4294967296)
    kept = parse("radarr", arr_body("radarr", "MovieDelete") | {"deletedFiles": False, "movieFolderSize": 0})
    assert kept.media["deleted_files"] is False and "size" not in kept.media
    assert arr_event("lidarr", "ArtistDelete").media["deleted_files"] is False


def test_a_download_failure_names_the_release_its_quality_and_why():
    event = parse("lidarr", arr_body("lidarr", "DownloadFailure") | {"message": "Download client removed it"})
    assert (event.title, event.media["quality"], event.media["download_client"], event.media["reason"]) == (
        "Radiohead-Kid_A-WEB-FLAC-2000-OBZEN", "FLAC", "SABnzbd", "Download client removed it")
    bare = parse("lidarr", {"eventType": "DownloadFailure", "instanceName": "Lidarr FLAC"})
    assert (bare.kind, bare.title, bare.media["level"]) == ("download_failed", "Lidarr FLAC", "failure")


def test_manual_interaction_says_why_without_the_release_name_twice():
    event = arr_event("sonarr", "ManualInteractionRequired")
    assert event.media["release_title"] == "Severance.S02.1080p.ATVP.WEB-DL.DDP5.1.H.264-NTb"
    assert event.media["reasons"] == [
        "One or more episodes expected in this release were not imported or missing from the release",
        "Severance.S02E07.1080p.ATVP.WEB-DL.DDP5.1.H.264-NTb.mkv: Not an upgrade for existing episode file(s). "
        "Existing quality: WEBDL-2160p. New Quality WEBDL-1080p.",
        "Severance.S02E08.1080p.ATVP.WEB-DL.DDP5.1.H.264-NTb.mkv: Not an upgrade for existing episode file(s). "
        "Existing quality: WEBDL-2160p. New Quality WEBDL-1080p."]
    assert (event.media["quality"], event.media["download_status"]) == ("WEBDL-1080p", "Warning")
    radarr = arr_event("radarr", "ManualInteractionRequired")
    assert radarr.media["reasons"][0].startswith("Not an upgrade for existing movie file")   # no release name


def test_manual_interaction_reasons_are_bounded():
    statuses = [{"title": f"file{n}.mkv", "messages": ["x" * 5000, "y"]} for n in range(50)]
    event = parse("radarr", arr_body("radarr", "ManualInteractionRequired") | {"downloadStatusMessages": statuses})
    assert len(event.media["reasons"]) == REASONS_MAX
    assert all(len(r) <= REASON_MAX and r.endswith("…") for r in event.media["reasons"])


def test_a_retag_names_its_file():
    assert arr_event("lidarr", "Retag").media["file_name"] == "06 - Karma Police.flac"
    assert arr_event("readarr", "Retag").media["file_name"] == "The Dispossessed - Ursula K. Le Guin.epub"


def test_a_rename_counts_its_files_and_an_addition_says_how():
    assert arr_event("sonarr", "Rename").media["files"] == 2
    assert arr_event("radarr", "MovieAdded").media["add_method"] == "from an import list"
    assert "add_method" not in parse("radarr", arr_body("radarr", "MovieAdded") | {"addMethod": "manual"}).media


def test_a_long_release_title_is_cut_to_a_title():
    body = arr_body("lidarr", "DownloadFailure") | {"releaseTitle": "R" * 5000}
    assert len(parse("lidarr", body).title) == TITLE_MAX


@pytest.mark.parametrize("app, body, message", [
    ("radarr", arr_body("radarr", "Download") | {"downloadId": 5}, "field 'downloadId': expected a download id"),
    ("radarr", arr_body("radarr", "MovieFileDelete") | {"deleteReason": 2}, "field 'deleteReason': "),
    ("radarr", arr_body("radarr", "MovieDelete") | {"deletedFiles": "yes"}, "field 'deletedFiles': expected true or false"),
    ("radarr", arr_body("radarr", "MovieDelete") | {"movieFolderSize": -1}, "field 'movieFolderSize': "),
    ("radarr", arr_body("radarr", "MovieAdded") | {"addMethod": ["list"]}, "field 'addMethod': "),
    ("radarr", arr_body("radarr", "ManualInteractionRequired") | {"downloadStatusMessages": [{"messages": ["a", 7]}]},
     "field 'downloadStatusMessages[0].messages[1]': expected a string, got 7"),
    ("radarr", arr_body("radarr", "ManualInteractionRequired") | {"downloadInfo": {"size": "big"}},
     "field 'downloadInfo.size': "),
    ("sonarr", arr_body("sonarr", "Download-import-complete") | {"fileCount": -2}, "field 'fileCount': "),
    ("lidarr", arr_body("lidarr", "DownloadFailure") | {"releaseTitle": {}}, "field 'releaseTitle': "),
    ("lidarr", arr_body("lidarr", "Retag") | {"trackFile": {"path": "relative.flac"}}, "field 'trackFile.path': "),
])
def test_the_new_fields_are_checked_and_named(app, body, message):
    with pytest.raises(BadPayload) as info:
        parse(app, body)
    assert str(info.value).startswith(message), str(info.value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(every_fixture()), st.data())
def test_damaged_bodies_of_every_event_type_give_an_event_or_bad_payload(fixture, data):
    body = arr_body(*fixture)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        spots = list(key_paths(body))
        if not spots:
            break
        path, key = data.draw(st.sampled_from(spots))
        try:
            parent = container(body, path)
        except (KeyError, IndexError, TypeError):
            continue
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        else:
            parent[key] = data.draw(json_values)
    check(fixture[0], body)


def test_the_poster_is_the_remote_url_else_the_senders_own_joined_to_its_application_url():
    """media["poster_url"] is what a service with `attach = true` sends (notifyd.attachments)."""
    assert parse("radarr", arr_body("radarr", "Download")).media["poster_url"] == \
        "https://image.tmdb.org/t/p/original/x2FJsf1ElAgr63Y3PNPtJrcmpoe.jpg"
    assert parse("sonarr", arr_body("sonarr", "Download")).media["poster_url"].startswith("https://artworks.thetvdb.com/")
    assert parse("lidarr", arr_body("lidarr", "Download")).media["poster_url"] == \
        "https://coverartarchive.org/release/0b6b4ba0-d36f-47bd-b4ea-6a5b91842d29/front.jpg"   # the album's cover
    local = arr_body("radarr", "Download")
    local["movie"]["images"] = [{"coverType": "fanart", "remoteUrl": "https://image.tmdb.org/fanart.jpg"},
                                {"coverType": "poster", "url": "/MediaCover/12/poster.jpg?lastWrite=1"}]
    local["applicationUrl"] = "http://radarr.lan:7878/"
    assert parse("radarr", local).media["poster_url"] == "http://radarr.lan:7878/MediaCover/12/poster.jpg?lastWrite=1"
    del local["applicationUrl"]
    assert "poster_url" not in parse("radarr", local).media          # a path alone cannot be fetched


@pytest.mark.parametrize("images", [
    "poster", [1, None, "x"], [{"coverType": "poster", "remoteUrl": "javascript:alert(1)"}],
    [{"coverType": "poster", "remoteUrl": "https://has space/x.jpg"}], [{"coverType": 7, "remoteUrl": ["x"]}],
])
def test_a_poster_of_the_wrong_shape_is_passed_over_never_refused(images):
    body = arr_body("radarr", "Download")
    body["movie"]["images"] = images
    assert "poster_url" not in parse("radarr", body).media
