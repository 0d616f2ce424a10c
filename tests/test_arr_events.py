"""Every event type Radarr, Sonarr, Lidarr and Readarr really send (tests/fixtures/arr), end to end:
each body into a running daemon, its message out through Apprise to a JSON receiver, its library
refresh out to Kodi, Jellyfin and Plex doubles; a Sonarr season pack told file by file and then
as a whole is one message and one scan per server; an event type notifyd does not know reaches
only the services that name it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from arr_bodies import arr_body, every_fixture, season_pack
from conftest import Daemon, DaemonFactory, Receiver, wait_for
from media_servers import JELLYFIN_KEY, KODI_PASSWORD, PLEX_TOKEN, JellyfinServer, KodiServer, PlexServer

# (app, fixture) → (kind, level, title, body) of the one message a service without an `events`
# filter gets from it.
MESSAGES: dict[tuple[str, str], tuple[str, str, str, str]] = {
    ('radarr', 'ApplicationUpdate'): ('app_update', 'info', 'Radarr updated to 5.15.1.9463',
        'Previous version: 5.14.0.9383'),
    ('radarr', 'Download-upgrade'): ('upgrade', 'success', 'Blade Runner 2049 (2017) upgraded',
        'Remux-2160p, 64.0 GiB — replaces Bluray-1080p · Radarr 4K'),
    ('radarr', 'Download'): ('download', 'success', 'Arrival (2016) imported',
        'Bluray-2160p, 29.3 GiB · Radarr'),
    ('radarr', 'Grab'): ('grab', 'info', 'Dune: Part Two (2024) grabbed',
        'WEBDL-2160p, 24.0 GiB from DrunkenSlug (Prowlarr) → SABnzbd'),
    ('radarr', 'Health'): ('health', 'warning', 'Radarr health warning',
        'Indexers unavailable due to failures for more than 6 hours: NZBgeek (Prowlarr)\nhttps://wiki.servarr.com/radarr/system#indexers-are-unavailable-due-to-failures'),
    ('radarr', 'HealthRestored'): ('health_restored', 'success', 'Radarr health restored',
        'Resolved: Indexers unavailable due to failures for more than 6 hours: NZBgeek (Prowlarr)'),
    ('radarr', 'ManualInteractionRequired'): ('manual_interaction', 'warning', 'Blade Runner 2049 (2017) waits for a manual import',
        'Blade.Runner.2049.2017.2160p.UHD.BluRay.REMUX.HDR.HEVC.Atmos-XYZ\nRemux-2160p, 64.0 GiB in qBittorrent\nNot an upgrade for existing movie file. Existing quality: Remux-2160p. New Quality Remux-2160p.\nBlade.Runner.2049.2017.2160p.UHD.BluRay.REMUX.HDR.HEVC.Atmos-XYZ.sample.mkv: Sample'),
    ('radarr', 'MovieAdded'): ('added', 'success', 'Dune: Part Two (2024) added',
        'Now monitored by Radarr, added from an import list.'),
    ('radarr', 'MovieDelete'): ('delete', 'info', 'Cats (2019) deleted',
        'Removed from Radarr, with its files (4.0 GiB).'),
    ('radarr', 'MovieFileDelete'): ('file_delete', 'warning', 'Dune: Part Two (2024): file deleted',
        'WEBDL-1080p, 8.3 GiB · missing from disk · Radarr'),
    ('radarr', 'Rename'): ('rename', 'info', 'Arrival (2016) renamed',
        '1 file renamed by Radarr.'),
    ('sonarr', 'ApplicationUpdate'): ('app_update', 'info', 'Sonarr updated to 4.0.12.2823',
        'Previous version: 4.0.11.2680'),
    ('sonarr', 'Download-import-complete'): ('download', 'success', 'Severance S02E01–E10 imported',
        'WEBDL-2160p, 95.4 GiB · 10 files · Sonarr'),
    ('sonarr', 'Download-upgrade'): ('upgrade', 'success', 'Severance S02E01 · Hello, Ms. Cobel upgraded',
        'WEBDL-2160p, 9.1 GiB — replaces WEBDL-1080p · Sonarr'),
    ('sonarr', 'Download'): ('download', 'success', 'Severance S02E03 · Who Is Alive? imported',
        'WEBDL-2160p, 9.3 GiB · Sonarr'),
    ('sonarr', 'EpisodeFileDelete'): ('file_delete', 'info', 'Severance S02E07 · Chikhai Bardo: file deleted',
        'WEBDL-2160p, 9.7 GiB · deleted by hand · Sonarr'),
    ('sonarr', 'Grab'): ('grab', 'info', 'Severance S02E01–E10 grabbed',
        'WEBDL-2160p, 100.0 GiB from NZBgeek (Prowlarr) → SABnzbd'),
    ('sonarr', 'Health'): ('health', 'failure', 'Sonarr health error',
        'No download client is available\nhttps://wiki.servarr.com/sonarr/system#no-download-client-is-available'),
    ('sonarr', 'HealthRestored'): ('health_restored', 'success', 'Sonarr health restored',
        'Resolved: No download client is available'),
    ('sonarr', 'ManualInteractionRequired'): ('manual_interaction', 'warning', 'Severance S02E01–E10 waits for a manual import',
        'Severance.S02.1080p.ATVP.WEB-DL.DDP5.1.H.264-NTb\nWEBDL-1080p, 32.0 GiB in qBittorrent\nOne or more episodes expected in this release were not imported or missing from the release\nSeverance.S02E07.1080p.ATVP.WEB-DL.DDP5.1.H.264-NTb.mkv: Not an upgrade for existing episode file(s). Existing quality: WEBDL-2160p. New Quality WEBDL-1080p.\nSeverance.S02E08.1080p.ATVP.WEB-DL.DDP5.1.H.264-NTb.mkv: Not an upgrade for existing episode file(s). Existing quality: WEBDL-2160p. New Quality WEBDL-1080p.'),
    ('sonarr', 'Rename'): ('rename', 'info', 'Severance (2022) renamed',
        '2 files renamed by Sonarr.'),
    ('sonarr', 'SeriesAdd'): ('added', 'success', 'Severance (2022) added',
        'Now monitored by Sonarr.'),
    ('sonarr', 'SeriesDelete'): ('delete', 'info', 'Severance (2022) deleted',
        'Removed from Sonarr, with its files.'),
    ('lidarr', 'AlbumDelete'): ('delete', 'info', 'Radiohead · OK Computer (1997) deleted',
        'Removed from Lidarr, with its files.'),
    ('lidarr', 'ApplicationUpdate'): ('app_update', 'info', 'Lidarr updated to 2.9.6.4552',
        'Previous version: 2.8.2.4493'),
    ('lidarr', 'ArtistAdd'): ('added', 'success', 'Radiohead added',
        'Now monitored by Lidarr.'),
    ('lidarr', 'ArtistDelete'): ('delete', 'info', 'Radiohead deleted',
        'Removed from Lidarr; its files were kept.'),
    ('lidarr', 'Download-upgrade'): ('upgrade', 'success', 'Radiohead · OK Computer (1997) upgraded',
        'FLAC, 398.4 MiB · 12 files — replaces MP3-320 ×12 · Lidarr'),
    ('lidarr', 'Download'): ('download', 'success', 'Radiohead · OK Computer (1997) imported',
        'FLAC, 398.4 MiB · 12 files · Lidarr'),
    ('lidarr', 'DownloadFailure'): ('download_failed', 'failure', 'Radiohead-Kid_A-WEB-FLAC-2000-OBZEN: download failed',
        'FLAC in SABnzbd · Lidarr'),
    ('lidarr', 'Grab'): ('grab', 'info', 'Radiohead · OK Computer (1997) grabbed',
        'FLAC, 412.0 MiB from Orpheus (Prowlarr) → qBittorrent'),
    ('lidarr', 'Health'): ('health', 'warning', 'Lidarr health warning',
        'Enable Completed Download Handling if possible\nhttps://wiki.servarr.com/lidarr/system#completed-failed-download-handling'),
    ('lidarr', 'HealthRestored'): ('health_restored', 'success', 'Lidarr health restored',
        'Resolved: Enable Completed Download Handling if possible'),
    ('lidarr', 'ImportFailure'): ('import_failed', 'failure', 'Lidarr: import failed',
        "No details came with it; the app's Activity queue shows the download."),
    ('lidarr', 'Rename'): ('rename', 'info', 'Radiohead renamed',
        '2 files renamed by Lidarr.'),
    ('lidarr', 'Retag'): ('retag', 'info', 'Radiohead: tags updated',
        '06 - Karma Police.flac · FLAC · Lidarr'),
    ('readarr', 'ApplicationUpdate'): ('app_update', 'info', 'Readarr updated to 0.4.0.2593',
        'Previous version: 0.3.32.2587'),
    ('readarr', 'AuthorAdded'): ('added', 'success', 'Ursula K. Le Guin added',
        'Now monitored by Readarr.'),
    ('readarr', 'AuthorDelete'): ('delete', 'info', 'Ursula K. Le Guin deleted',
        'Removed from Readarr, with its files.'),
    ('readarr', 'BookDelete'): ('delete', 'info', 'Ursula K. Le Guin · The Left Hand of Darkness deleted',
        'Removed from Readarr; its files were kept.'),
    ('readarr', 'BookFileDelete'): ('file_delete', 'info', 'Ursula K. Le Guin · The Left Hand of Darkness: file deleted',
        'MOBI, 1.8 MiB · Readarr'),
    ('readarr', 'Download-upgrade'): ('upgrade', 'success', 'Ursula K. Le Guin · The Left Hand of Darkness upgraded',
        'EPUB, 2.3 MiB — replaces MOBI · Readarr'),
    ('readarr', 'Download'): ('download', 'success', 'Ursula K. Le Guin · The Dispossessed imported',
        'EPUB, 1.1 MiB · Readarr'),
    ('readarr', 'Grab'): ('grab', 'info', 'Ursula K. Le Guin · The Dispossessed grabbed',
        'EPUB, 1.1 MiB from MyAnonamouse (Prowlarr) → SABnzbd'),
    ('readarr', 'Health'): ('health', 'failure', 'Readarr health error',
        'No download client is available\nhttps://wiki.servarr.com/readarr/system#no-download-client-is-available'),
    ('readarr', 'Rename'): ('rename', 'info', 'Ursula K. Le Guin renamed',
        '1 file renamed by Readarr.'),
    ('readarr', 'Retag'): ('retag', 'info', 'Ursula K. Le Guin: tags updated',
        'The Dispossessed - Ursula K. Le Guin.epub · EPUB · Readarr'),
}
# (app, fixture) → kind of the events that are recorded and tell no one: a sender's Test, and a
# file deleted because an upgrade replaced it (the upgrade's own event tells, and refreshes).
QUIET: dict[tuple[str, str], str] = {
    ('radarr', 'MovieFileDelete-upgrade'): 'file_delete',
    ('radarr', 'Test'): 'test',
    ('sonarr', 'EpisodeFileDelete-upgrade'): 'file_delete',
    ('sonarr', 'Test'): 'test',
    ('lidarr', 'Test'): 'test',
    ('readarr', 'Test'): 'test',
}

MOVIES, TV, MUSIC = "/storage/movies", "/storage/tv", "/storage/music"      # Kodi's and Plex's view
NO_DIALOGS = {"showdialogs": False}
ARRIVAL, BLADE, CATS, DUNE = "Arrival (2016)", "Blade Runner 2049 (2017)", "Cats (2019)", "Dune Part Two (2024)"
SEASON, SERIES, ARTIST = "tv/Severance/Season 02", "tv/Severance", "music/Radiohead"
BOOKS = "/media/books/Ursula K. Le Guin"
# (app, fixture) → (Kodi calls, Jellyfin updates, Plex refreshes or "skipped"); no entry: no refresh.
# Kodi calls are ("scan", library, directory) or ("clean", library, params).
REFRESHES: dict[tuple[str, str], tuple[list[tuple[Any, ...]], list[tuple[str, str]], Any]] = {
    ("radarr", "Download"): ([("scan", "video", f"{MOVIES}/{ARRIVAL}/")], [(f"/media/movies/{ARRIVAL}", "Created")],
                             [("1", f"{MOVIES}/{ARRIVAL}")]),
    ("radarr", "Download-upgrade"): ([("scan", "video", f"{MOVIES}/{BLADE}/")], [(f"/media/movies/{BLADE}", "Modified")],
                                     [("1", f"{MOVIES}/{BLADE}")]),
    ("radarr", "Rename"): ([("scan", "video", f"{MOVIES}/{ARRIVAL}/")], [(f"/media/movies/{ARRIVAL}", "Modified")],
                           [("1", f"{MOVIES}/{ARRIVAL}")]),
    # Removals: Kodi cleans (a movie's folder by itself), Plex rescans the parent folder.
    ("radarr", "MovieDelete"): ([("clean", "video", {**NO_DIALOGS, "content": "movies", "directory": f"{MOVIES}/{CATS}/"})],
                                [(f"/media/movies/{CATS}", "Deleted")], [("1", MOVIES)]),
    ("radarr", "MovieFileDelete"): ([("clean", "video", {**NO_DIALOGS, "content": "movies",
                                                         "directory": f"{MOVIES}/{DUNE}/"})],
                                    [(f"/media/movies/{DUNE}", "Deleted")], [("1", MOVIES)]),
    ("sonarr", "Download"): ([("scan", "video", f"/storage/{SEASON}/")], [(f"/media/{SEASON}", "Created")],
                             [("2", f"/storage/{SEASON}")]),
    ("sonarr", "Download-upgrade"): ([("scan", "video", f"/storage/{SEASON}/")], [(f"/media/{SEASON}", "Modified")],
                                     [("2", f"/storage/{SEASON}")]),
    ("sonarr", "Download-import-complete"): ([("scan", "video", f"/storage/{SEASON}/")],
                                             [(f"/media/{SEASON}", "Created")], [("2", f"/storage/{SEASON}")]),
    ("sonarr", "Rename"): ([("scan", "video", f"/storage/{SERIES}/")], [(f"/media/{SERIES}", "Modified")],
                           [("2", f"/storage/{SERIES}")]),
    # A TV removal cleans every TV source in Kodi: no request can name a show's folder.
    ("sonarr", "SeriesDelete"): ([("clean", "video", {**NO_DIALOGS, "content": "tvshows"})],
                                 [(f"/media/{SERIES}", "Deleted")], [("2", TV)]),
    ("sonarr", "EpisodeFileDelete"): ([("clean", "video", {**NO_DIALOGS, "content": "tvshows"})],
                                      [(f"/media/{SEASON}", "Deleted")], [("2", f"/storage/{SERIES}")]),
    ("lidarr", "Download"): ([("scan", "audio", f"/storage/{ARTIST}/")], [(f"/media/{ARTIST}", "Created")],
                             [("3", f"/storage/{ARTIST}")]),
    ("lidarr", "Download-upgrade"): ([("scan", "audio", f"/storage/{ARTIST}/")], [(f"/media/{ARTIST}", "Modified")],
                                     [("3", f"/storage/{ARTIST}")]),
    ("lidarr", "Rename"): ([("scan", "audio", f"/storage/{ARTIST}/")], [(f"/media/{ARTIST}", "Modified")],
                           [("3", f"/storage/{ARTIST}")]),
    ("lidarr", "Retag"): ([("scan", "audio", f"/storage/{ARTIST}/")], [(f"/media/{ARTIST}", "Modified")],
                          [("3", f"/storage/{ARTIST}")]),
    ("lidarr", "ArtistDelete"): ([("clean", "audio", NO_DIALOGS)], [(f"/media/{ARTIST}", "Deleted")], [("3", MUSIC)]),
    ("lidarr", "AlbumDelete"): ([("clean", "audio", NO_DIALOGS)], [(f"/media/{ARTIST}", "Deleted")], [("3", MUSIC)]),
    # Books: Kodi keeps no library of them (no job); this Plex has no section holding them (skipped).
    ("readarr", "Download"): ([], [(BOOKS, "Created")], "skipped"),
    ("readarr", "Download-upgrade"): ([], [(BOOKS, "Modified")], "skipped"),
    ("readarr", "Rename"): ([], [(BOOKS, "Modified")], "skipped"),
    ("readarr", "Retag"): ([], [(BOOKS, "Modified")], "skipped"),
    ("readarr", "AuthorDelete"): ([], [(BOOKS, "Deleted")], "skipped"),
    ("readarr", "BookDelete"): ([], [(BOOKS, "Deleted")], "skipped"),
    ("readarr", "BookFileDelete"): ([], [(BOOKS, "Deleted")], "skipped"),
}


def arr_config(path: Path, chat: Receiver, kodi: KodiServer, jellyfin: JellyfinServer, plex: PlexServer, *,
               fold_window: str = "100ms", scan_delay: str = "100ms", services: str = "") -> Path:
    path.write_text(f"""
[server]
fold_window = "{fold_window}"

[store]
path = "{path.parent / 'arr.db'}"

[worker]
threads = 4
backoff = ["100ms"]
max_attempts = 3
timeout = "5s"

[services.chat]
type = "apprise"
url = "json://127.0.0.1:{chat.port}/chat"

[services.kodi]
type = "kodi"
url = "{kodi.url}"
username = "kodi"
password = "{KODI_PASSWORD}"
path_map = [{{ from = "/data/media", to = "/storage" }}]
scan_delay = "{scan_delay}"

[services.jellyfin]
type = "jellyfin"
url = "{jellyfin.url}"
api_key = "{JELLYFIN_KEY}"
path_map = [{{ from = "/data/media", to = "/media" }}]
scan_delay = "{scan_delay}"

[services.plex]
type = "plex"
url = "{plex.url}"
token = "{PLEX_TOKEN}"
path_map = [{{ from = "/data/media", to = "/storage" }}]
scan_delay = "{scan_delay}"
{services}""")
    return path


def settled(daemon: Daemon, event_id: int, timeout: float = 20) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        event = daemon.get(f"/events/{event_id}").json()
        return event if all(j["delivery"] != "pending" for j in event["jobs"]) else None
    return wait_for(done, timeout, interval=0.05, message=f"event {event_id}'s jobs to finish")


def messages(chat: Receiver, path: str = "/chat") -> list[dict[str, Any]]:
    with chat._lock:
        return [r.body for r in chat.requests if r.path == path]


def kodi_calls(kodi: KodiServer, since: tuple[int, int] = (0, 0)) -> list[tuple[Any, ...]]:
    """Kodi's scans and cleans after the first `since` of each."""
    return [("scan", lib, directory) for lib, directory, _ in kodi.scans[since[0]:]] + \
        [("clean", lib, params) for lib, params in kodi.cleans[since[1]:]]


FILE_NAME = re.compile(r"[^·\n]*\.(?:mkv|flac|mp3|epub|mobi)")


def assert_says_something(what: Any, title: str, body: str, event_title: str) -> None:
    """No repeated title, no "None", no raw JSON: a message a person wants to read."""
    assert title and body and body != title, what
    assert title not in body, what
    assert "None" not in title + body and "{" not in title + body and "}" not in title + body, what
    assert '":' not in body and "[]" not in body, what
    # The movie, series, artist or author is named once (a file's own name may hold it too).
    assert (title + "\n" + FILE_NAME.sub("", body)).count(event_title) <= 1, what


def test_every_event_type_of_every_app_end_to_end(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver,
                                                  kodi: KodiServer, jellyfin: JellyfinServer,
                                                  plex: PlexServer) -> None:
    assert set(MESSAGES) | set(QUIET) == set(every_fixture()) and not set(MESSAGES) & set(QUIET)
    daemon = daemons.start(arr_config(tmp_path / "config.toml", receiver, kodi, jellyfin, plex))
    for app, name in every_fixture():
        before = (len(messages(receiver)), (len(kodi.scans), len(kodi.cleans)), len(jellyfin.updates),
                  len(plex.refreshes))
        answer = daemon.post(f"/webhooks/{app}", arr_body(app, name))
        assert answer.status_code == (200 if QUIET.get((app, name)) == "test" else 202), (app, name, answer.text)
        event = settled(daemon, answer.json()["event_id"])
        jobs = {j["service"]: j for j in event["jobs"]}
        if (app, name) in QUIET:
            assert (event["kind"], jobs) == (QUIET[app, name], {}), (app, name)
        else:
            kind, level, title, body = MESSAGES[app, name]
            assert event["kind"] == kind, (app, name)
            [message] = messages(receiver)[before[0]:]
            assert (message["type"], message["title"], message["message"]) == (level, title, body), (app, name)
            assert_says_something((app, name), title, body, event["title"])
            assert jobs["chat"]["delivery"] == "sent", (app, name, jobs)
        kodi_expected, jellyfin_expected, plex_expected = REFRESHES.get((app, name), ([], [], []))
        assert kodi_calls(kodi, before[1]) == kodi_expected, (app, name)
        assert jellyfin.updates[before[2]:] == jellyfin_expected, (app, name)
        if plex_expected == "skipped":
            assert plex.refreshes[before[3]:] == [] and jobs["plex"]["delivery"] == "skipped", (app, name, jobs)
            assert "no Plex library section holds" in jobs["plex"]["last_error"]
        else:
            assert plex.refreshes[before[3]:] == plex_expected, (app, name)
        refreshed = {s for s in ("kodi", "jellyfin", "plex") if s in jobs}
        assert refreshed == {s for s, done in zip(("kodi", "jellyfin", "plex"), REFRESHES.get((app, name), ([],) * 3),
                                                  strict=True) if done}, (app, name)
        assert all(j["delivery"] in ("sent", "skipped") for j in jobs.values()), (app, name, jobs)
    assert daemon.stop() == 0


@pytest.mark.parametrize("upgrade", [False, True], ids=["imported", "upgraded"])
def test_a_season_pack_told_per_file_and_as_a_whole_is_one_message_and_one_scan_per_server(
        tmp_path: Path, daemons: DaemonFactory, receiver: Receiver, kodi: KodiServer, jellyfin: JellyfinServer,
        plex: PlexServer, upgrade: bool) -> None:
    # Wide windows: every webhook of the pack arrives while the first one's jobs still wait.
    daemon = daemons.start(arr_config(tmp_path / "config.toml", receiver, kodi, jellyfin, plex,
                                      fold_window="3s", scan_delay="6s"))
    per_file, complete = season_pack(upgrade=upgrade)
    file_ids = []
    for body in per_file:
        answer = daemon.post("/webhooks/sonarr", body)
        assert answer.status_code == 202 and answer.json()["kind"] == ("upgrade" if upgrade else "download")
        file_ids.append(answer.json()["event_id"])
    answer = daemon.post("/webhooks/sonarr", complete)
    assert answer.status_code == 202, answer.text
    summary_id = answer.json()["event_id"]
    summary = settled(daemon, summary_id)
    for event_id in file_ids:
        event = settled(daemon, event_id)
        chat = next(j for j in event["jobs"] if j["service"] == "chat")
        assert (chat["delivery"], chat["last_error"]) == ("skipped", f"folded into event {summary_id}")
    [message] = messages(receiver)
    if upgrade:
        assert summary["kind"] == "upgrade"
        assert (message["title"], message["message"]) == (
            "Severance S02E01–E10 upgraded", "WEBDL-2160p, 95.4 GiB · 10 files — replaces WEBDL-1080p ×10 · Sonarr")
    else:
        assert summary["kind"] == "download"
        assert (message["title"], message["message"]) == (
            "Severance S02E01–E10 imported", "WEBDL-2160p, 95.4 GiB · 10 files · Sonarr")
    change = "Modified" if upgrade else "Created"
    assert kodi_calls(kodi) == [("scan", "video", f"/storage/{SEASON}/")]
    assert jellyfin.updates == [(f"/media/{SEASON}", change)]
    assert plex.refreshes == [("2", f"/storage/{SEASON}")]
    assert all(j["delivery"] == "sent" for j in summary["jobs"]), summary["jobs"]
    assert daemon.stop() == 0


def test_an_unknown_event_type_reaches_only_the_services_that_name_it(
        tmp_path: Path, daemons: DaemonFactory, receiver: Receiver, kodi: KodiServer, jellyfin: JellyfinServer,
        plex: PlexServer) -> None:
    port = receiver.port
    named = f"""
[services.named]
type = "apprise"
url = "json://127.0.0.1:{port}/named"
events = ["foobar"]

[services.everything]
type = "apprise"
url = "json://127.0.0.1:{port}/everything"
events = ["*"]

[services.downloads]
type = "apprise"
url = "json://127.0.0.1:{port}/downloads"
events = ["download", "upgrade"]
"""
    daemon = daemons.start(arr_config(tmp_path / "config.toml", receiver, kodi, jellyfin, plex, services=named))
    body = arr_body("radarr", "Download") | {"eventType": "FooBar"}
    answer = daemon.post("/webhooks/radarr", body)
    assert answer.status_code == 202 and answer.json()["kind"] == "foobar"
    assert sorted(j["service"] for j in answer.json()["jobs"]) == ["everything", "named"]
    event = settled(daemon, answer.json()["event_id"])
    assert event["title"] == "Arrival (2016)"
    for path in ("/named", "/everything"):
        [message] = messages(receiver, path)
        assert (message["type"], message["title"], message["message"]) == (
            "info", "Arrival (2016)", "Radarr sent FooBar, an event notifyd has no words for yet.")
    assert messages(receiver, "/chat") == [] and messages(receiver, "/downloads") == []
    assert kodi.scans == [] and jellyfin.updates == [] and plex.refreshes == []
    # A generic sender names its own kinds: the quick start's body (no kind) and one with a kind of
    # its own both reach a service without a filter.
    for generic in ({"title": "Backup finished", "body": "nightly: 12 GiB in 4m"},
                    {"kind": "backup", "title": "Backup finished", "body": "weekly: 80 GiB in 31m"}):
        answer = daemon.post("/webhooks/generic", generic)
        assert "chat" in {j["service"] for j in answer.json()["jobs"]}, answer.text
        settled(daemon, answer.json()["event_id"])
    assert [m["message"] for m in messages(receiver, "/chat")] == ["nightly: 12 GiB in 4m", "weekly: 80 GiB in 31m"]
    assert daemon.stop() == 0
