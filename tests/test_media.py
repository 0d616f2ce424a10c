"""Home media end to end: *arr webhooks into a running daemon, library refreshes out to Kodi,
Jellyfin, Emby and Plex doubles, and the notification as a real email through an SMTP server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import FIXTURES, Daemon, DaemonFactory, cli_json, run_cli, wait_for
from media_servers import (
    EMBY_KEY,
    JELLYFIN_KEY,
    KODI_PASSWORD,
    PLEX_TOKEN,
    EmbyServer,
    JellyfinServer,
    KodiServer,
    PlexServer,
    SmtpSink,
)


def media_config(path: Path, kodi: KodiServer, jellyfin: JellyfinServer, emby: EmbyServer, plex: PlexServer,
                 smtp: SmtpSink, scan_delay: str = "200ms", kodi_password: str = KODI_PASSWORD) -> Path:
    path.write_text(f"""
[server]
fold_window = "200ms"   # Sonarr's per-file imports wait this for their Import Complete (none here)

[store]
path = "{path.parent / 'media.db'}"

[worker]
threads = 4
backoff = ["100ms"]
max_attempts = 3
timeout = "5s"

[services.kodi]
type = "kodi"
url = "{kodi.url}"
username = "kodi"
password = "{kodi_password}"
path_map = [{{ from = "/data/media", to = "/storage" }}]
scan_delay = "{scan_delay}"

[services.jellyfin]
type = "jellyfin"
url = "{jellyfin.url}"
api_key = "{JELLYFIN_KEY}"
path_map = [{{ from = "/data/media", to = "/media" }}]
scan_delay = "{scan_delay}"

[services.emby]
type = "emby"
url = "{emby.url}"
api_key = "{EMBY_KEY}"
path_map = [{{ from = "/data/media", to = "/mnt/media" }}]
scan_delay = "{scan_delay}"

[services.plex]
type = "plex"
url = "{plex.url}"
token = "{PLEX_TOKEN}"
path_map = [{{ from = "/data/media", to = "/storage" }}]
scan_delay = "{scan_delay}"

[services.mail]
type = "apprise"
url = "{smtp.apprise_url()}"
""")
    return path


@pytest.fixture
def servers(kodi: KodiServer, jellyfin: JellyfinServer, emby: EmbyServer, plex: PlexServer, smtp: SmtpSink):
    plex.add_section("4", "Books", "artist", ["/storage/books"])
    return kodi, jellyfin, emby, plex, smtp


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def settled(daemon: Daemon, event_id: int, timeout: float = 15) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        event = daemon.get(f"/events/{event_id}").json()
        return event if all(j["delivery"] != "pending" for j in event["jobs"]) else None
    return wait_for(done, timeout, interval=0.1, message=f"event {event_id}'s jobs to finish")


# fixture → (kind, title, Kodi scan or clean, Jellyfin update, Emby update, Plex refresh, email subject, email body)
M, TV, MU, BK = "/data/media/movies", "/data/media/tv", "/data/media/music", "/data/media/books"
EXPECTED = {
    "radarr-download": (
        "download", "Arrival (2016)",
        ("video", "/storage/movies/Arrival (2016)/"), ("/media/movies/Arrival (2016)", "Created"),
        ("/mnt/media/movies/Arrival (2016)", "Created"), ("1", "/storage/movies/Arrival (2016)"),
        "Arrival (2016) imported", "Bluray-2160p, 29.3 GiB · Radarr"),
    "radarr-grab": (
        "grab", "Dune: Part Two (2024)", None, None, None, None,
        "Dune: Part Two (2024) grabbed", "WEBDL-2160p, 24.0 GiB from DrunkenSlug (Prowlarr) → SABnzbd"),
    "radarr-health": (
        "health", "Radarr health warning", None, None, None, None, "Radarr health warning",
        "Indexers unavailable due to failures for more than 6 hours: NZBgeek (Prowlarr)\n"
        "https://wiki.servarr.com/radarr/system#indexers-are-unavailable-due-to-failures"),
    "radarr-moviedelete": (                     # a removal: Kodi cleans, Plex rescans the parent
        "delete", "Cats (2019)",
        ("clean", "/storage/movies/Cats (2019)/"), ("/media/movies/Cats (2019)", "Deleted"),
        ("/mnt/media/movies/Cats (2019)", "Deleted"), ("1", "/storage/movies"),
        "Cats (2019) deleted", None),
    "radarr-rename": (
        "rename", "Arrival (2016)",
        ("video", "/storage/movies/Arrival (2016)/"), ("/media/movies/Arrival (2016)", "Modified"),
        ("/mnt/media/movies/Arrival (2016)", "Modified"), ("1", "/storage/movies/Arrival (2016)"),
        "Arrival (2016) renamed", None),
    "radarr-upgrade": (
        "upgrade", "Blade Runner 2049 (2017)",
        ("video", "/storage/movies/Blade Runner 2049 (2017)/"), ("/media/movies/Blade Runner 2049 (2017)", "Modified"),
        ("/mnt/media/movies/Blade Runner 2049 (2017)", "Modified"), ("1", "/storage/movies/Blade Runner 2049 (2017)"),
        "Blade Runner 2049 (2017) upgraded", "Remux-2160p, 64.0 GiB — replaces Bluray-1080p · Radarr 4K"),
    "sonarr-download": (
        "download", "Severance S02E03 · Who Is Alive?",
        ("video", "/storage/tv/Severance/Season 02/"), ("/media/tv/Severance/Season 02", "Created"),
        ("/mnt/media/tv/Severance/Season 02", "Created"), ("2", "/storage/tv/Severance/Season 02"),
        "Severance S02E03 · Who Is Alive? imported", "WEBDL-2160p, 9.0 GiB · Sonarr"),
    "lidarr-download": (
        "download", "Radiohead · OK Computer (1997)",
        ("audio", "/storage/music/Radiohead/"), ("/media/music/Radiohead", "Created"),
        ("/mnt/media/music/Radiohead", "Created"), ("3", "/storage/music/Radiohead"),
        "Radiohead · OK Computer (1997) imported", None),
    "readarr-download": (                       # Kodi keeps no books: no Kodi job
        "download", "Ursula K. Le Guin · The Dispossessed",
        None, ("/media/books/Ursula K. Le Guin", "Created"),
        ("/mnt/media/books/Ursula K. Le Guin", "Created"), ("4", "/storage/books/Ursula K. Le Guin"),
        "Ursula K. Le Guin · The Dispossessed imported", None),
    "readarr-health": (
        "health", "Readarr health error", None, None, None, None, "Readarr health error", None),
}


def test_every_sample_payload_end_to_end(tmp_path: Path, daemons: DaemonFactory, servers) -> None:
    kodi, jellyfin, emby, plex, smtp = servers
    daemon = daemons.start(media_config(tmp_path / "config.toml", *servers))
    for name, (kind, title, scan, jf, em, px, subject, body) in EXPECTED.items():
        before = (len(kodi.scans), len(jellyfin.updates), len(emby.updates), len(plex.refreshes), len(smtp.messages),
                  len(kodi.cleans))
        answer = daemon.post(f"/webhooks/{name.split('-')[0]}", fixture(name))
        assert answer.status_code == 202, (name, answer.text)
        event = settled(daemon, answer.json()["event_id"])
        assert (event["kind"], event["title"]) == (kind, title), name
        assert all(j["delivery"] == "sent" for j in event["jobs"]), (name, event["jobs"])
        refreshes = {j["service"] for j in event["jobs"]} - {"mail"}
        assert refreshes == ({"kodi"} if scan else set()) | ({"jellyfin", "emby", "plex"} if jf else set()), name
        new_scans = [s[:2] for s in kodi.scans[before[0]:]]
        new_cleans = [("clean", c[1].get("directory")) for c in kodi.cleans[before[5]:]]
        assert new_scans + new_cleans == ([scan] if scan else []), name
        assert jellyfin.updates[before[1]:] == ([jf] if jf else []), name
        assert emby.updates[before[2]:] == ([em] if em else []), name
        assert plex.refreshes[before[3]:] == ([px] if px else []), name
        mails = smtp.wait_for_messages(before[4] + 1)[before[4]:]
        assert len(mails) == 1 and mails[0]["Subject"] == subject, (name, [m["Subject"] for m in mails])
        if body is not None:
            assert mails[0].text.strip() == body, name
    assert all(r.header("Authorization") == f'MediaBrowser Token="{JELLYFIN_KEY}"' for r in jellyfin.requests)
    assert daemon.stop() == 0


def test_test_bodies_answer_200_and_create_no_job(tmp_path: Path, daemons: DaemonFactory, servers) -> None:
    daemon = daemons.start(media_config(tmp_path / "config.toml", *servers))
    for name in ("radarr-test", "sonarr-test", "lidarr-test"):
        answer = daemon.post(f"/webhooks/{name.split('-')[0]}", fixture(name))
        assert answer.status_code == 200 and answer.json()["jobs"] == [] and answer.json()["kind"] == "test", name
    assert cli_json("jobs", "list", config=daemon.config, env=daemon.env) == []
    assert len(cli_json("events", "list", config=daemon.config, env=daemon.env)) == 3    # recorded, though


def test_a_wrong_kodi_password_fails_only_kodi(tmp_path: Path, daemons: DaemonFactory, servers) -> None:
    kodi, jellyfin, emby, plex, smtp = servers
    daemon = daemons.start(media_config(tmp_path / "config.toml", *servers, kodi_password="not-the-password"))
    event_id = daemon.post("/webhooks/radarr", fixture("radarr-download")).json()["event_id"]
    event = settled(daemon, event_id)
    jobs = {j["service"]: j for j in event["jobs"]}
    assert jobs["kodi"]["state"] == "dead" and jobs["kodi"]["attempts"] == 1
    assert "401" in jobs["kodi"]["last_error"] and "check the username and password" in jobs["kodi"]["last_error"]
    assert "not-the-password" not in jobs["kodi"]["last_error"]
    assert {s: j["state"] for s, j in jobs.items() if s != "kodi"} == \
        {"jellyfin": "succeeded", "emby": "succeeded", "plex": "succeeded", "mail": "succeeded"}
    assert kodi.scans == [] and len(jellyfin.updates) == 1 and len(plex.refreshes) == 1


def test_ten_episodes_of_one_season_are_one_scan_per_server(tmp_path: Path, daemons: DaemonFactory, servers) -> None:
    kodi, jellyfin, emby, plex, smtp = servers
    daemon = daemons.start(media_config(tmp_path / "config.toml", *servers, scan_delay="2s"))
    template = fixture("sonarr-download")
    event_ids = []
    for number in range(1, 11):
        body = copy.deepcopy(template)
        body["episodes"][0].update(episodeNumber=number, id=5000 + number, title=f"Episode {number}")
        body["episodeFile"]["relativePath"] = f"Season 02/Severance - S02E{number:02d} - Episode {number}.mkv"
        answer = daemon.post("/webhooks/sonarr", body)
        assert answer.status_code == 202
        event_ids.append(answer.json()["event_id"])
    events = [settled(daemon, event_id) for event_id in event_ids]
    assert kodi.scans and [s[:2] for s in kodi.scans] == [("video", "/storage/tv/Severance/Season 02/")]
    assert jellyfin.updates == [("/media/tv/Severance/Season 02", "Created")]
    assert emby.updates == [("/mnt/media/tv/Severance/Season 02", "Created")]
    assert plex.refreshes == [("2", "/storage/tv/Severance/Season 02")]
    # every event shows the one shared scan job as sent; the notifications were not collapsed
    kodi_jobs = {j["id"] for e in events for j in e["jobs"] if j["service"] == "kodi"}
    assert len(kodi_jobs) == 1 and all(any(j["service"] == "kodi" and j["delivery"] == "sent" for j in e["jobs"])
                                       for e in events)
    assert len(smtp.wait_for_messages(10)) == 10


MALFORMED = [
    ("radarr", {"movie": {"title": "x"}}, "eventType"),
    ("radarr", {**fixture("radarr-download"), "movie": None}, "movie"),
    ("radarr", {**fixture("radarr-download"), "movie": "Arrival"}, "movie"),
    ("sonarr", {**fixture("sonarr-download"), "episodes": "S02E03"}, "episodes"),
    ("radarr", {**fixture("radarr-download"), "movie": {**fixture("radarr-download")["movie"], "folderPath": 5}},
     "movie.folderPath"),
]


def test_malformed_bodies_are_422_naming_the_field(tmp_path: Path, daemons: DaemonFactory, servers) -> None:
    daemon = daemons.start(media_config(tmp_path / "config.toml", *servers))
    for source, body, field in MALFORMED:
        answer = daemon.post(f"/webhooks/{source}", body)
        assert answer.status_code == 422 and answer.json()["error"] == "invalid_payload", (field, answer.text)
        assert answer.json()["detail"].startswith(f"field '{field}'"), answer.json()["detail"]
    assert cli_json("events", "list", config=daemon.config, env=daemon.env) == []
    assert daemon.get("/health").json()["queue"]["queued"] == 0


def test_services_add_then_test_against_jellyfin_running_and_stopped(tmp_path: Path, daemons: DaemonFactory,
                                                                     jellyfin: JellyfinServer) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'# my config\n[store]\npath = "{tmp_path / "t.db"}"\n')
    env = daemons.env()
    added = run_cli("services", "add", "jf", "--type", "jellyfin", "--url", jellyfin.url, "--api-key", JELLYFIN_KEY,
                    config=config, env=env)
    assert added.returncode == 0, added.stderr
    assert "# my config" in config.read_text() and JELLYFIN_KEY not in added.stdout
    tested = run_cli("services", "test", "jf", config=config, env=env)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "jf: ok" in tested.stdout and "/System/Info" in tested.stdout
    assert jellyfin.requests[-1].path == "/System/Info"
    jellyfin.stop()
    tested = run_cli("services", "test", "jf", config=config, env=env)
    assert tested.returncode == 1 and "Traceback" not in tested.stdout + tested.stderr
    assert tested.stderr.startswith("error: jf: failed") and "connection refused" in tested.stderr
    assert JELLYFIN_KEY not in tested.stdout + tested.stderr
    job = cli_json("jobs", "list", "--service", "jf", config=config, env=env)[0]
    assert job["state"] == "dead" and job["attempts"] == 1        # a test is never retried later


def test_named_instances_two_servers_of_a_type_and_no_secret_anywhere(tmp_path: Path, daemons: DaemonFactory,
                                                                     servers) -> None:
    kodi, jellyfin, emby, plex, smtp = servers
    second = JellyfinServer()
    try:
        config = media_config(tmp_path / "config.toml", *servers)
        config.write_text(config.read_text() + f"""
[services.jellyfin-2]
type = "jellyfin"
url = "{second.url}"
api_key = "{JELLYFIN_KEY}"
scan_delay = "200ms"

[sources.radarr4k]
type = "radarr"
token = "radarr4k-secret-token"
""")
        daemon = daemons.start(config)
        refused = daemon.post("/webhooks/radarr4k", fixture("radarr-upgrade"))
        assert refused.status_code == 401
        answer = daemon.post("/webhooks/radarr4k", fixture("radarr-upgrade"),
                             headers={"Authorization": "Bearer radarr4k-secret-token"})
        assert answer.status_code == 202
        event = settled(daemon, answer.json()["event_id"])
        assert (event["source"], event["source_type"]) == ("radarr4k", "radarr")
        assert jellyfin.updates == [("/media/movies/Blade Runner 2049 (2017)", "Modified")]
        assert second.updates == [("/data/media/movies/Blade Runner 2049 (2017)", "Modified")]   # no path_map
        outputs = [daemon.log()]
        for args in (("services", "list", "--json"), ("config", "show"), ("events", "show", str(event["id"]), "--json")):
            result = run_cli(*args, config=config, env=daemon.env)
            assert result.returncode == 0, result.stderr
            outputs += [result.stdout, result.stderr]
        for job in event["jobs"]:
            outputs.append(run_cli("jobs", "show", str(job["id"]), "--json", config=config, env=daemon.env).stdout)
        assert daemon.stop() == 0
        outputs.append(daemon.log())
        for text in outputs:
            for secret in (KODI_PASSWORD, JELLYFIN_KEY, EMBY_KEY, PLEX_TOKEN, "radarr4k-secret-token"):
                assert secret not in text, (secret, text[:400])
    finally:
        second.stop()
