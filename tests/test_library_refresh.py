"""Library refreshes that do what they say, end to end: *arr webhooks into a running daemon, and
media-server doubles that keep a disk and a library the way Kodi and Plex do. A removal leaves the
library without the item; a book never reaches Kodi and is skipped by a Plex without a book
library; a Windows folder reaches Kodi in its own separators."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from conftest import FIXTURES, Daemon, DaemonFactory, cli_json, wait_for
from media_servers import JELLYFIN_KEY, KODI_PASSWORD, PLEX_TOKEN, JellyfinServer, KodiServer, PlexServer


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def config(tmp_path: Path, kodi: KodiServer, plex: PlexServer | None = None, jellyfin: JellyfinServer | None = None,
           kodi_map: str = '[{ from = "/data/media", to = "/storage" }]') -> Path:
    text = f"""
[store]
path = "{tmp_path / 'refresh.db'}"

[worker]
backoff = ["100ms"]
max_attempts = 5

[services.kodi]
type = "kodi"
url = "{kodi.url}"
username = "kodi"
password = "{KODI_PASSWORD}"
path_map = {kodi_map}
scan_delay = "100ms"
"""
    if plex is not None:
        text += f"""
[services.plex]
type = "plex"
url = "{plex.url}"
token = "{PLEX_TOKEN}"
path_map = [{{ from = "/data/media", to = "/storage" }}]
scan_delay = "100ms"
"""
    if jellyfin is not None:
        text += f"""
[services.jellyfin]
type = "jellyfin"
url = "{jellyfin.url}"
api_key = "{JELLYFIN_KEY}"
path_map = [{{ from = "/data/media", to = "/media" }}]
scan_delay = "100ms"
"""
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def settled(daemon: Daemon, event_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        event = daemon.get(f"/events/{event_id}").json()
        return event if all(j["delivery"] != "pending" for j in event["jobs"]) else None
    return wait_for(done, 15, interval=0.1, message=f"event {event_id}'s jobs to finish")


def by_service(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["service"]: job for job in event["jobs"]}


CATS = "/storage/movies/Cats (2019)/Cats (2019).mkv"
ARRIVAL = "/storage/movies/Arrival (2016)/Arrival.mkv"


def test_a_deleted_movie_leaves_kodi_and_plex(tmp_path: Path, daemons: DaemonFactory, kodi: KodiServer,
                                              plex: PlexServer, jellyfin: JellyfinServer) -> None:
    for server in (kodi, plex):
        server.add_files(CATS, ARRIVAL)
        server.remove_files("/storage/movies/Cats (2019)")           # Radarr deleted the movie and its folder
    daemon = daemons.start(config(tmp_path, kodi, plex, jellyfin))
    answer = daemon.post("/webhooks/radarr", fixture("radarr-moviedelete"))
    assert answer.status_code == 202 and answer.json()["kind"] == "delete"
    jobs = by_service(settled(daemon, answer.json()["event_id"]))
    assert {name: job["state"] for name, job in jobs.items()} == \
        {"kodi": "succeeded", "plex": "succeeded", "jellyfin": "succeeded"}
    assert kodi.cleans == [("video", {"showdialogs": False, "content": "movies",
                                      "directory": "/storage/movies/Cats (2019)/"})]
    assert kodi.scans == [] and not any("does not exist" in line for line in kodi.log)
    assert kodi.in_library("/storage/movies") == [ARRIVAL]
    assert plex.refreshes == [("1", "/storage/movies")] and plex.in_library("/storage/movies") == [ARRIVAL]
    assert jellyfin.updates == [("/media/movies/Cats (2019)", "Deleted")]   # Jellyfin walks up to what exists


def test_a_clean_waits_while_kodi_scans_then_runs(tmp_path: Path, daemons: DaemonFactory, kodi: KodiServer) -> None:
    kodi.add_files(CATS, ARRIVAL)
    kodi.remove_files("/storage/movies/Cats (2019)")
    kodi.scanning.add("video")
    daemon = daemons.start(config(tmp_path, kodi))
    event_id = daemon.post("/webhooks/radarr", fixture("radarr-moviedelete")).json()["event_id"]
    kodi.wait_until(lambda: any(c[0] == "XBMC.GetInfoBooleans" for c in kodi.calls), message="a scanning check")
    assert kodi.cleans == []
    kodi.scanning.clear()                                              # the scan is over
    job = by_service(settled(daemon, event_id))["kodi"]
    assert job["state"] == "succeeded" and job["attempts"] >= 2
    assert kodi.in_library("/storage/movies") == [ARRIVAL] and kodi.log == []
    attempts = cli_json("jobs", "show", str(job["id"]), "--json", config=daemon.config, env=daemon.env)["attempt_log"]
    assert "is scanning its video library" in attempts[0]["error"]


def test_a_book_gets_no_kodi_job_and_plex_without_a_book_library_skips_it(tmp_path: Path, daemons: DaemonFactory,
                                                                        kodi: KodiServer, plex: PlexServer) -> None:
    daemon = daemons.start(config(tmp_path, kodi, plex))
    answer = daemon.post("/webhooks/readarr", fixture("readarr-download"))
    assert answer.status_code == 202
    assert [job["service"] for job in answer.json()["jobs"]] == ["plex"]
    plex_job = by_service(settled(daemon, answer.json()["event_id"]))["plex"]
    reason = "no Plex library section holds /storage/books/Ursula K. Le Guin"
    assert plex_job["state"] == "skipped" and plex_job["delivery"] == "skipped"
    assert plex_job["last_error"].startswith(reason) and "Movies: /storage/movies" in plex_job["last_error"]
    shown = cli_json("jobs", "show", str(plex_job["id"]), "--json", config=daemon.config, env=daemon.env)
    assert [(a["outcome"], a["error"][:len(reason)]) for a in shown["attempt_log"]] == [("skipped", reason)]
    assert plex.refreshes == [] and kodi.calls == []


def test_windows_folders_reach_kodi_in_their_own_separators(tmp_path: Path, daemons: DaemonFactory) -> None:
    sources = {"D:\\Media\\Movies\\": "movies", "\\\\nas\\media\\Movies\\": "movies"}
    with KodiServer(sources=sources) as kodi:
        local, shared = "D:\\Media\\Movies\\Arrival (2016)", "\\\\nas\\media\\Movies\\Heat (1995)"
        kodi.add_files(local + "\\Arrival.mkv", shared + "\\Heat.mkv", in_library=False)
        daemon = daemons.start(config(tmp_path, kodi, kodi_map="[]"))    # Radarr and Kodi share one Windows box
        event_ids = []
        for folder, title in ((local, "Arrival"), (shared, "Heat")):
            body = copy.deepcopy(fixture("radarr-download"))
            body["movie"].update(folderPath=folder, title=title)
            event_ids.append(daemon.post("/webhooks/radarr", body).json()["event_id"])
        for event_id in event_ids:
            assert by_service(settled(daemon, event_id))["kodi"]["state"] == "succeeded"
        directories = sorted(directory or "" for _, directory, _ in kodi.scans)
        assert directories == [local + "\\", shared + "\\"] and not any("/" in d for d in directories)
        assert kodi.in_library("D:\\Media\\Movies") == [local + "\\Arrival.mkv"]
        assert kodi.in_library("\\\\nas\\media\\Movies") == [shared + "\\Heat.mkv"] and kodi.log == []
