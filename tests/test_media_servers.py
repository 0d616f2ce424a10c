"""Self-test of the media-server doubles and the SMTP sink (tests/media_servers.py), with real clients."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import apprise
import httpx
import pytest

from media_servers import (  # the fixtures come from conftest's pytest_plugins
    DROP,
    EMBY_KEY,
    JELLYFIN_KEY,
    KODI_PASSWORD,
    KODI_USER,
    PLEX_TOKEN,
    EmbyServer,
    JellyfinServer,
    KodiServer,
    PlexServer,
    SmtpSink,
    parse_mediabrowser,
)

T = 5.0


def rpc(server: KodiServer, method: str, params=None, *, auth=(KODI_USER, KODI_PASSWORD), rid=1, **kw):
    body = {"jsonrpc": "2.0", "method": method, "id": rid}
    if params is not None:
        body["params"] = params
    return httpx.post(server.url, json=body, auth=auth, timeout=T, **kw)


# ---- Kodi -------------------------------------------------------------------------------------------

def test_kodi_scan_ping_and_recording(kodi: KodiServer) -> None:
    assert kodi.url == f"http://127.0.0.1:{kodi.port}/jsonrpc"
    r = rpc(kodi, "JSONRPC.Ping")
    assert r.status_code == 200 and r.json() == {"id": 1, "jsonrpc": "2.0", "result": "pong"}
    r = rpc(kodi, "VideoLibrary.Scan", {"directory": "/storage/movies/Heat (1995)/", "showdialogs": False}, rid="x")
    assert r.json() == {"id": "x", "jsonrpc": "2.0", "result": "OK"}
    assert rpc(kodi, "AudioLibrary.Scan", {"directory": "/storage/music/Bjork/"}).json()["result"] == "OK"
    assert rpc(kodi, "videolibrary.scan").json()["result"] == "OK"          # Kodi lower-cases method names
    assert kodi.calls == [
        ("JSONRPC.Ping", None),
        ("VideoLibrary.Scan", {"directory": "/storage/movies/Heat (1995)/", "showdialogs": False}),
        ("AudioLibrary.Scan", {"directory": "/storage/music/Bjork/"}),
        ("videolibrary.scan", None),
    ]
    assert kodi.scans == [("video", "/storage/movies/Heat (1995)/", False), ("audio", "/storage/music/Bjork/", True),
                          ("video", None, True)]
    assert all(r.auth == "basic" and r.status == 200 for r in kodi.requests)


def test_kodi_auth(kodi: KodiServer) -> None:
    for auth in (None, (KODI_USER, "wrong"), ("admin", KODI_PASSWORD)):
        r = rpc(kodi, "JSONRPC.Ping", auth=auth)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Basic realm="XBMC"'
    assert kodi.calls == [] and [r.status for r in kodi.requests] == [401, 401, 401]
    with KodiServer(password="") as open_kodi:        # no password: Kodi asks for no auth at all
        assert rpc(open_kodi, "JSONRPC.Ping", auth=None).json()["result"] == "pong"


def test_kodi_errors(kodi: KodiServer) -> None:
    err = rpc(kodi, "VideoLibrary.Refresh").json()["error"]
    assert err == {"code": -32601, "message": "Method not found."}
    err = rpc(kodi, "VideoLibrary.Scan", {"directory": 5}).json()["error"]
    assert err["code"] == -32602 and err["message"] == "Invalid params."
    assert err["data"]["stack"]["name"] == "directory"
    assert rpc(kodi, "VideoLibrary.Scan", {"path": "/x/"}).json()["error"]["code"] == -32602
    assert rpc(kodi, "VideoLibrary.Scan", {"showdialogs": "no"}).json()["error"]["code"] == -32602
    r = httpx.post(kodi.url, content=b"{not json", auth=(KODI_USER, KODI_PASSWORD),
                   headers={"Content-Type": "application/json"}, timeout=T)
    assert r.status_code == 200 and r.json()["error"]["code"] == -32700
    r = httpx.post(kodi.url, json={"method": "JSONRPC.Ping", "id": 1}, auth=(KODI_USER, KODI_PASSWORD), timeout=T)
    assert r.json()["error"]["code"] == -32600                             # no "jsonrpc": "2.0"
    # Kodi compares the whole Content-Type: a charset parameter is refused.
    r = httpx.post(kodi.url, content=b'{"jsonrpc":"2.0","method":"JSONRPC.Ping","id":1}',
                   headers={"Content-Type": "application/json; charset=utf-8"}, auth=(KODI_USER, KODI_PASSWORD),
                   timeout=T)
    assert r.status_code == 415
    assert kodi.scans == []


def test_kodi_scan_of_a_folder_that_is_gone_is_skipped_and_keeps_its_items(kodi: KodiServer) -> None:
    kodi.add_files("/storage/movies/Cats (2019)/Cats (2019).mkv")
    kodi.add_files("/storage/movies/Arrival (2016)/Arrival.mkv", in_library=False)
    kodi.remove_files("/storage/movies/Cats (2019)")
    assert rpc(kodi, "VideoLibrary.Scan", {"directory": "/storage/movies/Cats (2019)/"}).json()["result"] == "OK"
    assert kodi.log == ["Process directory '/storage/movies/Cats (2019)/' does not exist - skipping scan."]
    assert kodi.in_library("/storage/movies") == ["/storage/movies/Cats (2019)/Cats (2019).mkv"]
    rpc(kodi, "VideoLibrary.Scan", {"directory": "/storage/movies/Arrival (2016)/"})      # this one exists
    assert kodi.in_library("/storage/movies/Arrival (2016)") == ["/storage/movies/Arrival (2016)/Arrival.mkv"]
    assert len(kodi.log) == 1


def test_kodi_clean_drops_what_is_gone_where_its_content_matches(kodi: KodiServer) -> None:
    kodi.add_files("/storage/movies/Cats (2019)/Cats (2019).mkv", "/storage/movies/Heat (1995)/Heat.mkv",
                   "/storage/tv/Severance/Season 02/S02E01.mkv", "/storage/music/Bjork/Post/01.flac")
    for gone in ("/storage/movies/Cats (2019)", "/storage/movies/Heat (1995)", "/storage/tv/Severance",
                 "/storage/music/Bjork"):
        kodi.remove_files(gone)

    def clean(method: str, **params: object) -> None:
        assert rpc(kodi, method, params).json()["result"] == "OK"

    clean("VideoLibrary.Clean", showdialogs=False, directory="/storage/movies/Cats (2019)/")     # "video": no match
    clean("VideoLibrary.Clean", showdialogs=False, content="tvshows", directory="/storage/tv/Severance/")  # "seasons"
    assert len(kodi.library) == 4
    clean("VideoLibrary.Clean", showdialogs=False, content="movies", directory="/storage/movies/Cats (2019)/")
    assert kodi.in_library("/storage/movies") == ["/storage/movies/Heat (1995)/Heat.mkv"]
    clean("VideoLibrary.Clean", showdialogs=False, content="tvshows")
    assert kodi.in_library("/storage/tv") == [] and kodi.in_library("/storage/movies")
    clean("AudioLibrary.Clean", showdialogs=False)
    assert kodi.in_library("/storage/music") == [] and kodi.in_library("/storage/movies")
    clean("VideoLibrary.Clean")
    assert kodi.library == {}
    err = rpc(kodi, "AudioLibrary.Clean", {"directory": "/storage/music/"}).json()["error"]   # takes no folder
    assert err["code"] == -32602
    err = rpc(kodi, "VideoLibrary.Clean", {"content": "episodes"}).json()["error"]
    assert err["code"] == -32602


def test_kodi_while_scanning_a_clean_is_ignored_and_a_scan_stops_it(kodi: KodiServer) -> None:
    kodi.add_files("/storage/movies/Cats (2019)/Cats (2019).mkv")
    kodi.remove_files("/storage/movies/Cats (2019)")
    kodi.scanning.add("video")
    answer = rpc(kodi, "XBMC.GetInfoBooleans", {"booleans": ["Library.IsScanningVideo", "Library.IsScanningMusic",
                                                             "Library.IsScanning"]}).json()["result"]
    assert answer == {"Library.IsScanningVideo": True, "Library.IsScanningMusic": False, "Library.IsScanning": True}
    assert rpc(kodi, "VideoLibrary.Clean", {"showdialogs": False}).json()["result"] == "OK"
    assert kodi.in_library("/storage/movies") and kodi.log == ["CleanLibrary is not possible while scanning or cleaning"]
    rpc(kodi, "VideoLibrary.Scan", {"directory": "/storage/movies/"})
    assert kodi.scanning == set() and "stopped" in kodi.log[-1]


# ---- Jellyfin ---------------------------------------------------------------------------------------

def mb(key: str) -> dict[str, str]:
    return {"Authorization": f'MediaBrowser Token="{key}"'}


def test_jellyfin_accepts_mediabrowser_header(jellyfin: JellyfinServer) -> None:
    body = {"Updates": [{"Path": "/storage/movies/Heat (1995)", "UpdateType": "Created"},
                        {"Path": "/storage/tv/Show/Season 01", "UpdateType": "Modified"}]}
    r = httpx.post(jellyfin.url + "/Library/Media/Updated", json=body, headers=mb(JELLYFIN_KEY), timeout=T)
    assert r.status_code == 204
    assert httpx.post(jellyfin.url + "/Library/Refresh", headers=mb(JELLYFIN_KEY), timeout=T).status_code == 204
    info = httpx.get(jellyfin.url + "/System/Info", headers=mb(JELLYFIN_KEY), timeout=T)
    assert info.status_code == 200 and info.json()["ServerName"] == "jellyfin-test" and info.json()["Version"]
    # A full client header, as the Jellyfin SDKs send it, works too.
    full = {"Authorization": f'MediaBrowser Client="notifyd", Device="test", DeviceId="1", Version="1", '
                             f'Token="{JELLYFIN_KEY}"'}
    assert httpx.post(jellyfin.url + "/library/refresh", headers=full, timeout=T).status_code == 204
    assert jellyfin.updates == [("/storage/movies/Heat (1995)", "Created"), ("/storage/tv/Show/Season 01", "Modified")]
    assert jellyfin.refreshes == 2
    assert [(r.method, r.path, r.auth) for r in jellyfin.requests] == [
        ("POST", "/Library/Media/Updated", "Authorization"), ("POST", "/Library/Refresh", "Authorization"),
        ("GET", "/System/Info", "Authorization"), ("POST", "/library/refresh", "Authorization")]
    assert jellyfin.requests[0].header("authorization") == f'MediaBrowser Token="{JELLYFIN_KEY}"'


def test_jellyfin_refuses_legacy_and_wrong_auth(jellyfin: JellyfinServer) -> None:
    url = jellyfin.url + "/Library/Refresh"
    for headers in ({}, {"X-Emby-Token": JELLYFIN_KEY}, {"X-MediaBrowser-Token": JELLYFIN_KEY},
                    {"X-Emby-Authorization": f'MediaBrowser Token="{JELLYFIN_KEY}"'},
                    {"Authorization": f'Emby Token="{JELLYFIN_KEY}"'}, mb("not-the-key"),
                    {"Authorization": f"Bearer {JELLYFIN_KEY}"}):
        assert httpx.post(url, headers=headers, timeout=T).status_code == 401, headers
    assert httpx.post(url, params={"api_key": JELLYFIN_KEY}, timeout=T).status_code == 401
    assert jellyfin.refreshes == 0
    # ApiKey (query) is read unconditionally by Jellyfin, and recorded as such.
    assert httpx.post(url, params={"ApiKey": JELLYFIN_KEY}, timeout=T).status_code == 204
    assert jellyfin.requests[-1].auth == "ApiKey"
    # /System/Info/Public needs no auth.
    assert httpx.get(jellyfin.url + "/System/Info/Public", timeout=T).json()["ProductName"] == "Jellyfin Server"


def test_jellyfin_legacy_auth_mode() -> None:
    with JellyfinServer(legacy_auth=True) as old:
        for headers in ({"X-Emby-Token": JELLYFIN_KEY}, {"X-Emby-Authorization": f'Emby Token="{JELLYFIN_KEY}"'}):
            assert httpx.post(old.url + "/Library/Refresh", headers=headers, timeout=T).status_code == 204
        assert [r.auth for r in old.requests] == ["X-Emby-Token", "X-Emby-Authorization"]


def test_jellyfin_bad_bodies(jellyfin: JellyfinServer) -> None:
    url = jellyfin.url + "/Library/Media/Updated"
    for body in ({}, {"Updates": {}}, {"Updates": [{"UpdateType": "Created"}]}, {"Updates": ["/x"]},
                 {"Updates": [{"Path": "/x", "UpdateType": "Added"}]}, [1]):
        assert httpx.post(url, json=body, headers=mb(JELLYFIN_KEY), timeout=T).status_code == 400, body
    r = httpx.post(url, content=b"Updates", headers={**mb(JELLYFIN_KEY), "Content-Type": "text/plain"}, timeout=T)
    assert r.status_code == 415
    assert jellyfin.updates == []


def test_parse_mediabrowser() -> None:
    assert parse_mediabrowser('MediaBrowser Client="a, b", Token="k%20y"', ("MediaBrowser",)) == {
        "Client": "a, b", "Token": "k y"}
    assert parse_mediabrowser("mediabrowser Token=abc", ("MediaBrowser",)) == {"Token": "abc"}
    assert parse_mediabrowser('Emby Token="abc"', ("MediaBrowser",)) is None


# ---- Emby -------------------------------------------------------------------------------------------

def test_emby_auth_and_prefix(emby: EmbyServer) -> None:
    body = {"Updates": [{"Path": "/storage/movies/Heat (1995)", "UpdateType": "Created"}]}
    for prefix in ("", "/emby"):
        r = httpx.post(f"{emby.url}{prefix}/Library/Media/Updated", json=body, headers={"X-Emby-Token": EMBY_KEY},
                       timeout=T)
        assert r.status_code == 204
    assert httpx.post(emby.url + "/emby/Library/Refresh", params={"api_key": EMBY_KEY}, timeout=T).status_code == 204
    assert httpx.get(emby.url + "/System/Info", headers=mb(EMBY_KEY), timeout=T).json()["ServerName"] == "emby-test"
    for kw in ({}, {"headers": {"X-Emby-Token": "wrong"}}, {"params": {"api_key": "wrong"}},
               {"params": {"ApiKey": EMBY_KEY}}):
        assert httpx.post(emby.url + "/Library/Refresh", timeout=T, **kw).status_code == 401, kw
    assert emby.updates == [("/storage/movies/Heat (1995)", "Created")] * 2
    assert emby.refreshes == 1
    assert [r.auth for r in emby.requests[:4]] == ["X-Emby-Token", "X-Emby-Token", "api_key", "Authorization"]


def test_emby_documented_forms_only() -> None:
    with EmbyServer(accept_authorization_header=False) as strict:
        assert httpx.post(strict.url + "/Library/Refresh", headers=mb(EMBY_KEY), timeout=T).status_code == 401
        assert httpx.post(strict.url + "/Library/Refresh", headers={"X-Emby-Token": EMBY_KEY},
                          timeout=T).status_code == 204


# ---- Plex -------------------------------------------------------------------------------------------

def test_plex_sections_json_and_xml(plex: PlexServer) -> None:
    r = httpx.get(plex.url + "/library/sections", headers={"X-Plex-Token": PLEX_TOKEN, "Accept": "application/json"},
                  timeout=T)
    assert r.status_code == 200
    mc = r.json()["MediaContainer"]
    assert mc["size"] == 3
    movies = mc["Directory"][0]
    assert (movies["key"], movies["title"], movies["type"]) == ("1", "Movies", "movie")
    assert movies["Location"] == [{"id": 1, "path": "/storage/movies"}]
    r = httpx.get(plex.url + "/library/sections", params={"X-Plex-Token": PLEX_TOKEN}, timeout=T)
    root = ET.fromstring(r.content)
    assert root.tag == "MediaContainer" and root.get("size") == "3"
    assert [(d.get("key"), d.find("Location").get("path")) for d in root.findall("Directory")] == [
        ("1", "/storage/movies"), ("2", "/storage/tv"), ("3", "/storage/music")]
    assert plex.section_reads == 2
    assert [r.auth for r in plex.requests] == ["X-Plex-Token header", "X-Plex-Token query"]


def test_plex_refresh_and_auth(plex: PlexServer) -> None:
    h = {"X-Plex-Token": PLEX_TOKEN}
    r = httpx.get(plex.url + "/library/sections/1/refresh", params={"path": "/storage/movies/Heat (1995)"},
                  headers=h, timeout=T)
    assert r.status_code == 200 and r.content == b""
    assert httpx.get(plex.url + "/library/sections/2/refresh", headers=h, timeout=T).status_code == 200
    assert httpx.get(plex.url + "/library/sections/9/refresh", headers=h, timeout=T).status_code == 404
    for kw in ({}, {"headers": {"X-Plex-Token": "wrong"}}, {"params": {"X-Plex-Token": "wrong"}}):
        assert httpx.get(plex.url + "/library/sections/1/refresh", timeout=T, **kw).status_code == 401
        assert httpx.get(plex.url + "/library/sections", timeout=T, **kw).status_code == 401
    assert plex.refreshes == [("1", "/storage/movies/Heat (1995)"), ("2", None)]
    assert plex.section_reads == 0
    assert httpx.get(plex.url + "/identity", timeout=T).status_code == 200


def test_plex_refresh_of_a_gone_folder_keeps_its_items_and_of_its_parent_drops_them(plex: PlexServer) -> None:
    plex.add_files("/storage/movies/Cats (2019)/Cats (2019).mkv", "/storage/movies/Heat (1995)/Heat.mkv")
    plex.add_files("/storage/movies/Arrival (2016)/Arrival.mkv", in_library=False)
    plex.remove_files("/storage/movies/Cats (2019)")
    headers = {"X-Plex-Token": PLEX_TOKEN}
    r = httpx.get(f"{plex.url}/library/sections/1/refresh", params={"path": "/storage/movies/Cats (2019)"},
                  headers=headers, timeout=T)
    assert r.status_code == 200 and "/storage/movies/Cats (2019)/Cats (2019).mkv" in plex.items
    assert plex.log == ["Error scanning directory, we'll skip and continue: boost::filesystem::last_write_time: "
                        'No such file or directory: "/storage/movies/Cats (2019)"']
    httpx.get(f"{plex.url}/library/sections/1/refresh", params={"path": "/storage/movies"}, headers=headers, timeout=T)
    assert plex.in_library("/storage/movies") == ["/storage/movies/Arrival (2016)/Arrival.mkv",
                                                  "/storage/movies/Heat (1995)/Heat.mkv"]


def test_plex_sections_change_at_run_time() -> None:
    with PlexServer(sections=[]) as plex_:
        get = lambda: httpx.get(plex_.url + "/library/sections", timeout=T,  # noqa: E731
                                headers={"X-Plex-Token": PLEX_TOKEN, "Accept": "application/json"}).json()
        assert get() == {"MediaContainer": {"size": 0, "allowSync": False, "title1": "Plex Library"}}
        plex_.set_sections([{"key": "7", "title": "Anime", "type": "show", "locations": ["/a", "/b"]}])
        plex_.add_section("8", "Films", "movie", ["/films"])
        dirs = get()["MediaContainer"]["Directory"]
        assert [(d["key"], [loc["path"] for loc in d["Location"]]) for d in dirs] == [("7", ["/a", "/b"]),
                                                                                     ("8", ["/films"])]
        assert httpx.get(plex_.url + "/library/sections/8/refresh", headers={"X-Plex-Token": PLEX_TOKEN},
                         timeout=T).status_code == 200


# ---- Misbehaviour, common to all --------------------------------------------------------------------

@pytest.mark.parametrize("make", [KodiServer, JellyfinServer, EmbyServer, PlexServer])
def test_fail_next_drop_and_stop(make) -> None:
    with make() as server:
        server.fail_next(503, count=2)
        statuses = [httpx.get(server.url, timeout=T).status_code for _ in range(3)]
        assert statuses[:2] == [503, 503] and statuses[2] != 503      # then back to normal (401/404/405)
        assert [r.status for r in server.requests] == statuses
        server.fail_next(DROP)
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(server.url, timeout=T)
        assert server.requests[-1].status is None
        port = server.port
        server.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url, timeout=T)
        server.start()
        assert server.port == port and httpx.get(server.url, timeout=T).status_code != 503
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=T)


def test_fail_next_comes_before_auth_and_success(kodi: KodiServer) -> None:
    kodi.fail_next(500)
    assert rpc(kodi, "VideoLibrary.Scan", {"directory": "/m/"}).status_code == 500
    assert kodi.scans == [] and kodi.calls == []
    assert rpc(kodi, "VideoLibrary.Scan", {"directory": "/m/"}).json()["result"] == "OK"
    assert kodi.wait_until(lambda: kodi.scans, timeout=1) == [("video", "/m/", True)]


# ---- SMTP -------------------------------------------------------------------------------------------

def test_smtp_sink_receives_apprise_plain_text(smtp: SmtpSink) -> None:
    url = smtp.apprise_url(to="me@example.com")
    assert url == f"mailto://127.0.0.1:{smtp.port}?from=notifyd@example.com&to=me@example.com&format=text"
    a = apprise.Apprise()
    assert a.add(url)
    assert a.notify(title="Heat (1995) downloaded", body="Bluray-1080p\nfrom Radarr")
    (msg,) = smtp.wait_for_messages(1, timeout=T)
    assert msg["Subject"] == "Heat (1995) downloaded"
    assert msg.get_content_type() == "text/plain"
    assert msg.text.strip() == "Bluray-1080p\nfrom Radarr"
    assert msg.envelope_from == "notifyd@example.com" and msg.envelope_to == ["me@example.com"]
    assert "me@example.com" in msg["To"] and msg.auth_login is None


def test_smtp_sink_accepts_any_auth(smtp: SmtpSink) -> None:
    a = apprise.Apprise()
    assert a.add(smtp.apprise_url(to="a@example.com,b@example.com", user="someone", password="anything"))
    assert a.notify(title="t", body="b")
    msgs = smtp.wait_for_messages(2, timeout=T)     # Apprise sends one message per recipient
    assert sorted(m.envelope_to[0] for m in msgs) == ["a@example.com", "b@example.com"]
    assert {m.auth_login for m in msgs} == {"someone"} and ("someone", "anything") in smtp.logins


def test_smtp_sink_stopped_refuses() -> None:
    sink = SmtpSink()
    url = sink.apprise_url()
    sink.stop()
    a = apprise.Apprise()
    a.add(url)
    assert not a.notify(title="t", body="b")
    assert sink.messages == []
