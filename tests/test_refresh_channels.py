"""The refresh channels against media-server doubles that speak the real protocols on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from notifyd.channels.jellyfin import EmbyChannel, JellyfinChannel
from notifyd.channels.kodi import KodiChannel
from notifyd.channels.plex import PlexChannel
from notifyd.config import parse_config
from notifyd.errors import PermanentError, Skipped, TransientError
from notifyd.model import Delivery, Event, StoredEvent

from media_servers import (
    EMBY_KEY,
    JELLYFIN_KEY,
    KODI_PASSWORD,
    PLEX_TOKEN,
    EmbyServer,
    JellyfinServer,
    KodiServer,
    PlexServer,
)

STORED = StoredEvent(1, 0.0, Event(source="radarr", source_type="radarr", kind="download", title="Arrival (2016)"))


def delivery(path: str | None, library: str = "video", change: str = "created", test: bool = False,
             job_id: int = 7, media_type: str | None = None) -> Delivery:
    payload = {"path": path, "library": library, "change": change, "media_type": media_type}
    if test:
        payload["test"] = True
    return Delivery(job_id=job_id, service="s", kind="refresh", data=payload,
                    load_event=lambda: STORED)


def service(**table):
    return parse_config({"services": {"s": table}}, path=None).services["s"]


# -- Kodi ------------------------------------------------------------------------------------

def kodi_channel(server: KodiServer, password: str = KODI_PASSWORD) -> KodiChannel:
    return KodiChannel(service(type="kodi", url=server.url, username="kodi", password=password), 5)


def asked(server: KodiServer) -> list[tuple[str, object]]:
    """The calls that change Kodi's library (not the is-it-scanning questions before them)."""
    return [call for call in server.calls if call[0] != "XBMC.GetInfoBooleans"]


def test_kodi_scans_the_folder_with_a_trailing_slash(kodi: KodiServer) -> None:
    detail = json.loads(kodi_channel(kodi).deliver(delivery("/storage/movies/Arrival (2016)")))
    assert kodi.calls == [("XBMC.GetInfoBooleans", {"booleans": ["Library.IsScanningVideo"]}),
                          ("VideoLibrary.Scan", {"directory": "/storage/movies/Arrival (2016)/"})]
    assert detail["result"] == "OK"
    body = kodi.requests[-1].json()
    assert body["jsonrpc"] == "2.0" and body["id"] == 7


def test_kodi_music_is_an_audio_scan_and_no_folder_scans_everything(kodi: KodiServer) -> None:
    channel = kodi_channel(kodi)
    channel.deliver(delivery("/storage/music/Radiohead", library="audio"))
    channel.deliver(delivery(None))
    assert asked(kodi) == [("AudioLibrary.Scan", {"directory": "/storage/music/Radiohead/"}), ("VideoLibrary.Scan", {})]
    assert kodi.calls[0] == ("XBMC.GetInfoBooleans", {"booleans": ["Library.IsScanningMusic"]})


@pytest.mark.parametrize("folder, directory", [
    (r"D:\Media\Movies\Arrival (2016)", "D:\\Media\\Movies\\Arrival (2016)\\"),
    (r"\\nas\media\Movies\Arrival (2016)", "\\\\nas\\media\\Movies\\Arrival (2016)\\"),
    ("smb://nas/media/Movies/Arrival (2016)/", "smb://nas/media/Movies/Arrival (2016)/"),
    ("D:/Media/Movies/Arrival (2016)", "D:/Media/Movies/Arrival (2016)/"),
])
def test_kodi_gets_the_trailing_separator_in_the_folders_own_style(kodi: KodiServer, folder: str,
                                                                   directory: str) -> None:
    kodi_channel(kodi).deliver(delivery(folder))
    assert asked(kodi) == [("VideoLibrary.Scan", {"directory": directory})]


def test_kodi_a_removed_movie_folder_is_cleaned_not_scanned(kodi: KodiServer) -> None:
    kodi.add_files("/storage/movies/Cats (2019)/Cats (2019).mkv", "/storage/movies/Arrival (2016)/Arrival.mkv")
    kodi.remove_files("/storage/movies/Cats (2019)")
    channel = kodi_channel(kodi)
    channel.deliver(delivery("/storage/movies/Cats (2019)"))          # what a scan does: nothing
    assert kodi.in_library("/storage/movies/Cats (2019)") == ["/storage/movies/Cats (2019)/Cats (2019).mkv"]
    assert kodi.log == ["Process directory '/storage/movies/Cats (2019)/' does not exist - skipping scan."]
    detail = json.loads(channel.deliver(delivery("/storage/movies/Cats (2019)", change="deleted", media_type="movie")))
    assert asked(kodi)[-1] == ("VideoLibrary.Clean", {"showdialogs": False, "content": "movies",
                                                      "directory": "/storage/movies/Cats (2019)/"})
    assert detail["method"] == "VideoLibrary.Clean" and detail["result"] == "OK"
    assert kodi.in_library("/storage/movies") == ["/storage/movies/Arrival (2016)/Arrival.mkv"]


def test_kodi_tv_removals_clean_every_tv_source_as_kodi_scopes_no_show_folder(kodi: KodiServer) -> None:
    kodi.add_files("/storage/tv/Severance/Season 02/S02E01.mkv", "/storage/tv/Severance/Season 02/S02E02.mkv",
                   "/storage/movies/Cats (2019)/Cats (2019).mkv")
    kodi.remove_files("/storage/tv/Severance/Season 02/S02E01.mkv")
    kodi.remove_files("/storage/movies/Cats (2019)")                  # a movie's removal is not this job's
    kodi_channel(kodi).deliver(delivery("/storage/tv/Severance/Season 02", change="deleted", media_type="episode"))
    assert asked(kodi) == [("VideoLibrary.Clean", {"showdialogs": False, "content": "tvshows"})]
    assert kodi.in_library("/storage/tv") == ["/storage/tv/Severance/Season 02/S02E02.mkv"]
    assert kodi.in_library("/storage/movies") == ["/storage/movies/Cats (2019)/Cats (2019).mkv"]


def test_kodi_music_and_unknown_media_removals_clean_their_whole_library(kodi: KodiServer) -> None:
    channel = kodi_channel(kodi)
    channel.deliver(delivery("/storage/music/Radiohead", library="audio", change="deleted", media_type="music"))
    channel.deliver(delivery("/storage/other/Clip", change="deleted"))
    assert asked(kodi) == [("AudioLibrary.Clean", {"showdialogs": False}), ("VideoLibrary.Clean", {"showdialogs": False})]


def test_kodi_waits_while_it_scans_that_library(kodi: KodiServer) -> None:
    kodi.add_files("/storage/movies/Cats (2019)/Cats (2019).mkv")
    kodi.remove_files("/storage/movies/Cats (2019)")
    kodi.scanning.add("video")
    channel = kodi_channel(kodi)
    removal = delivery("/storage/movies/Cats (2019)", change="deleted", media_type="movie")
    for job in (removal, delivery("/storage/movies/Arrival (2016)")):
        with pytest.raises(TransientError, match="is scanning its video library"):
            channel.deliver(job)
    assert asked(kodi) == [] and kodi.scanning == {"video"}           # the running scan was left alone
    channel.deliver(delivery("/storage/music/Bjork", library="audio"))     # the music library is not busy
    kodi.scanning.clear()
    channel.deliver(removal)
    assert kodi.in_library("/storage/movies") == []


def test_kodi_test_without_a_path_only_pings(kodi: KodiServer) -> None:
    kodi_channel(kodi).deliver(delivery(None, test=True))
    assert [c[0] for c in kodi.calls] == ["JSONRPC.Ping"]


def test_kodi_wrong_password_is_permanent_and_says_so(kodi: KodiServer) -> None:
    with pytest.raises(PermanentError, match="HTTP 401.*check the username and password") as caught:
        kodi_channel(kodi, password="wrong").deliver(delivery("/x"))
    assert "wrong" not in str(caught.value)
    assert kodi.calls == []


def test_kodi_json_rpc_error_is_permanent(kodi: KodiServer) -> None:
    channel = kodi_channel(kodi)
    send = channel.request

    def as_an_older_kodi(method, url, json=None, **kwargs):     # a method this Kodi does not know
        if json["method"] == "VideoLibrary.Scan":
            json = dict(json, method="VideoLibrary.NoSuchScan")
        return send(method, url, json=json, **kwargs)

    channel.request = as_an_older_kodi
    with pytest.raises(PermanentError, match="Kodi refused VideoLibrary.Scan: Method not found.*-32601"):
        channel.deliver(delivery(None))


def test_kodi_down_or_busy_is_transient(kodi: KodiServer) -> None:
    channel = kodi_channel(kodi)
    kodi.fail_next(503)
    with pytest.raises(TransientError, match="HTTP 503"):
        channel.deliver(delivery("/x"))
    kodi.stop()
    with pytest.raises(TransientError, match="cannot reach"):
        channel.deliver(delivery("/x"))


# -- Jellyfin and Emby -----------------------------------------------------------------------

def test_jellyfin_gets_the_folder_with_the_mediabrowser_token(jellyfin: JellyfinServer) -> None:
    channel = JellyfinChannel(service(type="jellyfin", url=jellyfin.url, api_key=JELLYFIN_KEY), 5)
    channel.deliver(delivery("/media/tv/Severance/Season 02"))
    channel.deliver(delivery("/media/movies/Old", change="deleted"))
    assert jellyfin.updates == [("/media/tv/Severance/Season 02", "Created"), ("/media/movies/Old", "Deleted")]
    assert all(r.header("Authorization") == f'MediaBrowser Token="{JELLYFIN_KEY}"' for r in jellyfin.requests)
    assert all(r.header("X-Emby-Token") is None for r in jellyfin.requests)


def test_jellyfin_without_a_folder_refreshes_the_library_and_tests_with_system_info(jellyfin: JellyfinServer) -> None:
    channel = JellyfinChannel(service(type="jellyfin", url=jellyfin.url, api_key=JELLYFIN_KEY), 5)
    channel.deliver(delivery(None))
    assert jellyfin.refreshes == 1
    channel.deliver(delivery(None, test=True))
    assert jellyfin.refreshes == 1 and jellyfin.requests[-1].path == "/System/Info"


def test_jellyfin_wrong_key_is_permanent(jellyfin: JellyfinServer) -> None:
    channel = JellyfinChannel(service(type="jellyfin", url=jellyfin.url, api_key="nope" * 8), 5)
    with pytest.raises(PermanentError, match="HTTP 401.*check the api_key"):
        channel.deliver(delivery("/x"))


def test_emby_gets_the_folder_with_x_emby_token(emby: EmbyServer) -> None:
    channel = EmbyChannel(service(type="emby", url=emby.url, api_key=EMBY_KEY), 5)
    channel.deliver(delivery("/media/movies/Arrival (2016)", change="modified"))
    assert emby.updates == [("/media/movies/Arrival (2016)", "Modified")]
    assert emby.requests[-1].header("X-Emby-Token") == EMBY_KEY


def test_retry_after_is_honoured(jellyfin: JellyfinServer) -> None:
    channel = JellyfinChannel(service(type="jellyfin", url=jellyfin.url, api_key=JELLYFIN_KEY), 5)
    jellyfin.fail_next(429)
    with pytest.raises(TransientError, match="HTTP 429"):
        channel.deliver(delivery("/x"))


# -- Plex ------------------------------------------------------------------------------------

def plex_channel(server: PlexServer, token: str = PLEX_TOKEN) -> PlexChannel:
    return PlexChannel(service(type="plex", url=server.url, token=token), 5)


def test_plex_refreshes_the_section_that_holds_the_folder(plex: PlexServer) -> None:
    channel = plex_channel(plex)
    detail = json.loads(channel.deliver(delivery("/storage/tv/Severance/Season 02")))
    assert plex.refreshes == [("2", "/storage/tv/Severance/Season 02")]
    assert detail == {"section": "2", "library": "TV Shows", "path": "/storage/tv/Severance/Season 02"}
    channel.deliver(delivery("/storage/movies/Arrival (2016)"))
    assert plex.refreshes[-1] == ("1", "/storage/movies/Arrival (2016)")
    assert plex.section_reads == 1                       # sections are cached
    assert all(r.header("X-Plex-Token") == PLEX_TOKEN for r in plex.requests)
    assert plex.requests[0].header("Accept") == "application/json"


def test_plex_reads_sections_again_on_a_miss(plex: PlexServer) -> None:
    channel = plex_channel(plex)
    channel.deliver(delivery("/storage/movies/A"))
    plex.add_section("9", "Kids", "movie", ["/storage/kids"])
    channel.deliver(delivery("/storage/kids/B"))
    assert plex.refreshes[-1] == ("9", "/storage/kids/B") and plex.section_reads == 2


def test_plex_folder_in_no_section_is_skipped_and_names_the_sections(plex: PlexServer) -> None:
    with pytest.raises(Skipped, match=r"^no Plex library section holds /storage/books/Ursula K\. Le Guin "
                                      r"\(sections: Movies: /storage/movies; .*check path_map"):
        plex_channel(plex).deliver(delivery("/storage/books/Ursula K. Le Guin", media_type="book"))
    assert plex.refreshes == [] and plex.section_reads == 2          # read again before giving up


def test_plex_a_removal_rescans_the_parent_folder_and_the_item_goes(plex: PlexServer) -> None:
    plex.add_files("/storage/movies/Cats (2019)/Cats (2019).mkv", "/storage/movies/Arrival (2016)/Arrival.mkv")
    plex.remove_files("/storage/movies/Cats (2019)")
    channel = plex_channel(plex)
    channel.deliver(delivery("/storage/movies/Cats (2019)"))           # the folder itself: Plex cannot list it
    assert plex.in_library("/storage/movies/Cats (2019)") and "No such file or directory" in plex.log[-1]
    detail = json.loads(channel.deliver(delivery("/storage/movies/Cats (2019)", change="deleted")))
    assert plex.refreshes[-1] == ("1", "/storage/movies") and detail["path"] == "/storage/movies"
    assert plex.in_library("/storage/movies") == ["/storage/movies/Arrival (2016)/Arrival.mkv"]
    channel.deliver(delivery("/storage/tv/Severance/Season 02", change="deleted"))
    channel.deliver(delivery("/storage/tv", change="deleted"))         # a section's own location: never above it
    assert plex.refreshes[-2:] == [("2", "/storage/tv/Severance"), ("2", "/storage/tv")]


def test_plex_windows_locations_match_and_keep_their_backslashes() -> None:
    movies = {"key": "1", "title": "Movies", "type": "movie", "locations": ["D:\\Media\\Movies"]}
    with PlexServer(sections=[movies]) as plex:
        channel = plex_channel(plex)
        channel.deliver(delivery("D:\\Media\\Movies\\Arrival (2016)"))
        channel.deliver(delivery("D:\\Media\\Movies\\Cats (2019)", change="deleted"))
        assert plex.refreshes == [("1", "D:\\Media\\Movies\\Arrival (2016)"), ("1", "D:\\Media\\Movies")]


def test_plex_wrong_token_is_permanent(plex: PlexServer) -> None:
    with pytest.raises(PermanentError, match="HTTP 401.*check the token"):
        plex_channel(plex, token="wrong").deliver(delivery("/storage/movies/A"))


def test_plex_without_a_folder_refreshes_every_section(plex: PlexServer) -> None:
    plex_channel(plex).deliver(delivery(None))
    assert sorted(k for k, _ in plex.refreshes) == ["1", "2", "3"]
