"""Digests: a service's notifications of one window as one message, one job, sent once.

The texts are checked on real *arr bodies (tests/fixtures/arr/); the queue's part (one job per
window, failures not held, the job's events read back) on both engines with a clock the test
moves; and the whole path through a running daemon, killed with SIGKILL inside the window.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from notifyd.config import Config, parse_config
from notifyd.digest import episode_ranges, render_digest, told_once
from notifyd.fanout import DIGEST_MAX, gathers, plan_jobs
from notifyd.ingest import record_event
from notifyd.job_handlers import ChannelCache, JobContext
from notifyd.logs import Redactor
from notifyd.model import Event, JobState, StoredEvent
from notifyd.sources.arr import parse_radarr, parse_sonarr
from notifyd.store import Store
from notifyd.worker import run_job

from conftest import FIXTURES, DaemonFactory, Receiver, cli_json, wait_for, write_config

NOW = 1_800_000_000.0
GIB = 1024 ** 3


def arr_body(app: str, name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "arr" / app / f"{name}.json").read_text()))


def episode_body(number: int, *, size: int = 2 * GIB) -> dict[str, Any]:
    """Sonarr's Download of one episode of Severance season 2, each its own download."""
    body = arr_body("sonarr", "Download")
    body["episodes"][0].update(episodeNumber=number, title=f"Episode {number}")
    body["episodeFile"].update(size=size, relativePath=f"Season 02/Severance - S02E{number:02d}.mkv")
    body["downloadId"] = f"SABnzbd_nzo_ep{number:02d}"
    return body


def sonarr(body: dict[str, Any]) -> Event:
    return parse_sonarr(body, "sonarr", "sonarr", json.dumps(body))


def stored(*events: Event) -> list[StoredEvent]:
    return [StoredEvent(i + 1, NOW + i, e) for i, e in enumerate(events)]


# -- the texts ------------------------------------------------------------------------------------

def test_a_season_s_imports_read_as_one_range_with_their_files_and_size() -> None:
    message = render_digest(stored(*(sonarr(episode_body(n)) for n in range(1, 11))))
    assert (message.title, message.body, message.level) == ("Severance S02E01–E10 imported", "10 files, 20.0 GiB",
                                                            "success")


def test_gaps_in_a_season_are_ranges_and_upgrades_say_so() -> None:
    assert episode_ranges([1, 2, 3, 5, 7, 8]) == "E01–E03, E05, E07–E08"
    upgrades = [sonarr({**episode_body(n), "isUpgrade": True}) for n in (1, 2, 4)]
    assert render_digest(stored(*upgrades)).title == "Severance S02E01–E02, E04 upgraded"


def test_movies_are_listed_by_title() -> None:
    movie = parse_radarr(arr_body("radarr", "Download"), "radarr", "radarr", "{}")
    movies = [replace(movie, title=t) for t in ("Arrival (2016)", "Dune (2021)", "Heat (1995)")]
    message = render_digest(stored(*movies))
    assert message.title == "3 movies imported: Arrival (2016), Dune (2021), Heat (1995)"
    assert message.body.startswith("3 files, ")


def test_a_mixed_window_gives_a_line_per_season_per_movie_list_and_per_other_message() -> None:
    health = parse_radarr(arr_body("radarr", "Health"), "radarr", "radarr", "{}")
    backup = Event("nas", "generic", "backup", "Backup done", body="42 GB in 3 min", media={"level": "success"})
    movie = parse_radarr(arr_body("radarr", "Download"), "radarr", "radarr", "{}")
    message = render_digest(stored(sonarr(episode_body(1)), backup, movie, sonarr(episode_body(2)), health))
    lines = message.body.split("\n")
    assert message.title == "5 notifications"
    assert lines[0] == "Severance S02E01–E02 imported · 2 files, 4.0 GiB"
    assert lines[1] == "Backup done — 42 GB in 3 min"
    assert lines[2].startswith("Arrival (2016) imported · 1 file, ")
    assert lines[3].startswith("Radarr health") and len(lines) == 4
    assert message.level == str(health.media["level"])             # the most severe level of the window


def test_one_event_in_a_window_reads_as_its_own_message() -> None:
    one = sonarr(episode_body(3))
    digest = render_digest(stored(one))
    assert digest.title == "Severance S02E03 · Episode 3 imported"


def test_an_import_complete_tells_its_per_file_events_once() -> None:
    files = [sonarr({**episode_body(n), "downloadId": "pack"}) for n in (1, 2)]
    pack = sonarr({**arr_body("sonarr", "Download-import-complete"), "downloadId": "pack"})
    assert told_once([*files, pack]) == [pack]
    assert render_digest(stored(*files, pack)).title == render_digest(stored(pack)).title


def test_a_flood_is_told_up_to_its_limit_and_says_there_was_more() -> None:
    backups = [Event("nas", "generic", "backup", f"Backup {n}", media={"level": "success"}) for n in range(DIGEST_MAX + 1)]
    message = render_digest(stored(*backups))
    lines = message.body.split("\n")
    assert len(lines) == DIGEST_MAX + 1 and lines[-2] == f"Backup {DIGEST_MAX - 1}"
    assert lines[-1] == f"… and more after these {DIGEST_MAX} (`notifyd events list` has them all)"


def test_overrides_still_word_the_lines_they_cover() -> None:
    backup = Event("nas", "generic", "backup", "", body="x", media={"level": "success"})
    templates = {"backup": {"title": "Backup of {{ source }}", "body": "ok"}}
    message = render_digest(stored(backup, backup), templates)
    assert message.body == "Backup of nas — ok\nBackup of nas — ok"


# -- which jobs ------------------------------------------------------------------------------------

def digest_config(url: str = "json://127.0.0.1:9/x", **extra: Any) -> Config:
    return parse_config({"services": {
        "digest": {"type": "apprise", "url": url, "digest": "2m", **extra},
        "now": {"type": "apprise", "url": url},
        "per_run": {"type": "apprise", "url": "tgram://123456789:ABCdefGHIjklMNOpqrSTUvwxYZ/{chat_id}",
                    "events": ["run.completed"]},
    }}, path=None)


def test_what_a_digest_gathers() -> None:
    config = digest_config()
    digest = config.services["digest"]
    per_run = replace(config.services["per_run"], options={**config.services["per_run"].options, "digest": 120.0})
    success = Event("a", "generic", "x", "t", media={"level": "success"})
    assert gathers(digest, success)
    assert not gathers(digest, replace(success, media={"level": "failure"}))
    assert not gathers(digest, replace(success, media={"level": "warning"}))
    assert gathers(digest_config(digest_all=True).services["digest"], replace(success, media={"level": "failure"}))
    assert not gathers(per_run, success)                   # each run fills its own URL: no shared message
    assert not gathers(config.services["now"], success)
    spec = {s.service: s for s in plan_jobs(success, config.services.values())}["digest"]
    assert (spec.delay, spec.unique_key, dict(spec.payload)) == (120.0, "digest:digest", {"digest": True})


@pytest.fixture
def sink(receiver: Receiver) -> Receiver:
    return receiver


def test_a_window_is_one_job_that_delivers_every_event_once_and_failures_go_at_once(
        store: Store, sink: Receiver) -> None:
    config = digest_config(sink.json_url)
    config = replace(config, services={"digest": config.services["digest"]})
    results = []
    with store.transaction() as tx:
        for n in range(1, 11):
            results.append(record_event(tx, sonarr(episode_body(n)), config, NOW + n))
        health = record_event(tx, sonarr(arr_body("sonarr", "Health")), config, NOW + 11)
    jobs = {j.id for r in results for j in r.jobs}
    assert len(jobs) == 1 and [j.collapsed for r in results for j in r.jobs] == [False] + [True] * 9
    [digest_id] = jobs
    assert store.get_job(digest_id).run_at == NOW + 1 + 120            # the window opened with the first event
    assert len(store.events_of_job(digest_id)) == 10

    context = JobContext(store, config, ChannelCache(), clock=lambda: NOW + 12)
    urgent = store.claim(NOW + 12, 30)                                  # the health warning is due at once
    assert urgent is not None and urgent.job.id == health.jobs[0].id
    run_job(urgent, context, Redactor([]))
    assert store.claim(NOW + 60, 30) is None                            # the digest waits for its window

    due = store.claim(NOW + 121, 30)
    assert due is not None and due.job.id == digest_id
    run_job(due, replace(context, clock=lambda: NOW + 121), Redactor([]))
    assert store.get_job(digest_id).state == JobState.SUCCEEDED
    titles = [body["title"] for body in sink.bodies()]
    assert titles == [sonarr(arr_body("sonarr", "Health")).title, "Severance S02E01–E10 imported"]
    assert sink.bodies()[1]["message"] == "10 files, 20.0 GiB"

    with store.transaction() as tx:                                     # the next event opens the next window
        later = record_event(tx, sonarr(episode_body(11)), config, NOW + 130)
    assert later.jobs[0].id != digest_id and not later.jobs[0].collapsed


# -- through a running daemon, killed inside the window ---------------------------------------------

@pytest.fixture
def daemon_config(tmp_path: Path, receiver: Receiver) -> Iterator[Path]:
    yield write_config(tmp_path / "config.toml", services=f"""
[services.digest]
type = "apprise"
url = "{receiver.json_url}"
digest = "6s"
""")


def test_ten_imports_reach_a_digest_service_as_one_message_across_a_kill_9(
        daemons: DaemonFactory, daemon_config: Path, receiver: Receiver) -> None:
    daemon = daemons.start(daemon_config)
    answers = [daemon.post("/webhooks/sonarr", episode_body(n)) for n in range(1, 11)]
    assert [a.status_code for a in answers] == [202] * 10
    health = daemon.post("/webhooks/sonarr", arr_body("sonarr", "Health"))
    assert health.status_code == 202
    wait_for(lambda: len(receiver.bodies()) == 1, 15, message="the health warning, sent at once")
    digest_job = answers[0].json()["jobs"][0]["id"]
    [queued] = [j for j in cli_json("jobs", "list", "--state", "queued", config=daemon_config)
                if j["id"] == digest_job]
    assert queued["service"] == "digest"

    daemon.proc.send_signal(signal.SIGKILL)                             # inside the window
    daemon.proc.wait(10)
    assert len(receiver.bodies()) == 1
    daemon = daemons.start(daemon_config)
    wait_for(lambda: cli_json("jobs", "show", str(digest_job), config=daemon_config)["state"] == "succeeded",
             30, message="the digest, sent after the restart")
    bodies = receiver.bodies()
    assert len(bodies) == 2
    assert (bodies[1]["title"], bodies[1]["message"]) == ("Severance S02E01–E10 imported", "10 files, 20.0 GiB")
    event = daemon.get(f"/events/{answers[9].json()['event_id']}").json()
    assert [j["id"] for j in event["jobs"]] == [digest_job]             # every event shows the job that told it
    assert [j for j in cli_json("jobs", "list", "--state", "queued", config=daemon_config)
            if j["service"] == "digest"] == []
