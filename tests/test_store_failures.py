"""A store that cannot be written: ingest answers 503 (never 202), /health says why, and the daemon
recovers by itself once writes work again, with every accepted event kept. A delivery that meets
unwritable files costs its job seconds, not its 30 s lease; a database file that cannot be written
while its write-ahead log still can makes /health say so before the disk fills."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from notifyd.config import Config, parse_config
from notifyd.config_reload import ConfigState
from notifyd.errors import StoreUnavailable
from notifyd.ingest import IngestWriter, record_event
from notifyd.listener import ListenerDeps, create_app
from notifyd.logs import Redactor
from notifyd.model import Event
from notifyd.store import sqlite as engine
from notifyd.store.sqlite import SqliteStore
from notifyd.worker import WorkerPool

from conftest import DaemonFactory, Receiver, wait_for, write_config


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB file system (tmpfs), so 'disk full' is the kernel's ENOSPC, not a simulation."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            pass
    return filler


def test_a_full_disk_gets_503_and_the_daemon_recovers_alone(tmp_path: Path, small_disk: Path,
                                                             daemons: DaemonFactory, receiver: Receiver) -> None:
    config = write_config(tmp_path / "config.toml", receiver.json_url, db=small_disk / "notifyd.db")
    daemon = daemons.start(config)
    accepted = []
    first = daemon.post("/webhooks/generic", {"title": "before"})
    assert first.status_code == 202
    accepted.append(first.json()["event_id"])
    filler = fill(small_disk)

    answers = []
    for n in range(40):                                   # 60 KB bodies: the WAL soon needs a page it cannot get
        answer = daemon.post("/webhooks/generic", {"title": f"while full {n}", "body": "x" * 60_000})
        answers.append(answer.status_code)
        assert answer.status_code in (202, 503), answer.text
        if answer.status_code == 202:
            accepted.append(answer.json()["event_id"])
        else:
            assert answer.json()["error"] == "store_unavailable" and "full" in answer.json()["detail"]
            break
    assert answers[-1] == 503, f"the store never filled up: {answers}"
    health = daemon.get("/health")
    assert health.status_code == 503
    assert health.json()["store"]["writable"] is False and "full" in health.json()["store"]["error"]

    filler.unlink()                                       # space comes back; no restart
    after = wait_for(lambda: (lambda r: r if r.status_code == 202 else None)(
        daemon.post("/webhooks/generic", {"title": "after"})), 10, interval=0.2, message="a 202 again")
    accepted.append(after.json()["event_id"])
    assert daemon.get("/health").status_code == 200
    for event_id in accepted:                             # nothing that was accepted is missing
        assert daemon.get(f"/events/{event_id}").status_code == 200
    titles = {"before", "after"} | {f"while full {n}" for n in range(len(answers) - 1)}
    wait_for(lambda: titles <= {b["title"] for b in receiver.bodies()}, 15, message="every accepted event delivered")
    assert daemon.stop() == 0


Unwritable = Callable[..., None]


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Unwritable]:
    """`unwritable(*files)` makes files unwritable for real, `unwritable(*files, on=False)` writable
    again: the immutable attribute (chattr +i) fails every write with EPERM, even root's, even
    through descriptors already open, as chmod cannot. Never the -shm file: SQLite maps it into
    memory, where a refused write is a SIGBUS, not an error."""
    probe = tmp_path / "chattr-probe"
    probe.touch()
    for flag in ("+i", "-i"):
        done = subprocess.run(["chattr", flag, str(probe)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make a file immutable here: {done.stderr.decode().strip()}")
    marked: set[Path] = set()

    def mark(*files: Path, on: bool = True) -> None:
        subprocess.run(["chattr", "+i" if on else "-i", *map(str, files)], check=True, capture_output=True)
        marked.update(files) if on else marked.difference_update(files)

    try:
        yield mark
    finally:
        if marked:
            subprocess.run(["chattr", "-i", *map(str, marked)], capture_output=True)


def one_service(url: str) -> Config:
    """Two workers, so one job of a service runs at a time (the per-service cap), and a lease of an
    hour: a job that comes back within a test was given back, not taken back when its lease ended."""
    return parse_config({"worker": {"threads": 2, "lease": "1h", "backoff": ["50ms"], "max_attempts": 3},
                         "services": {"sink": {"type": "apprise", "url": url}}}, path=None)


def add_job(store: SqliteStore, config: Config, title: str) -> int:
    with store.transaction() as tx:
        result = record_event(tx, Event(source="generic", source_type="generic", kind="backup", title=title),
                              config, time.time())
    return result.jobs[0].id


def state(store: SqliteStore, job_id: int) -> tuple[str, int]:
    job = store.get_job(job_id)
    return str(job.state), job.attempts


def break_files_once_a_job_is_leased(store: SqliteStore, unwritable: Unwritable,
                                     monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ...]:
    """The database and its log become unwritable the moment the first claim commits: mid-delivery."""
    files = (store.path, Path(f"{store.path}-wal"))
    real_claim = store.claim
    broken: list[bool] = []

    def claim(*args: Any, **kwargs: Any) -> Any:
        got = real_claim(*args, **kwargs)
        if got is not None and not broken:
            broken.append(True)
            unwritable(*files)
        return got

    monkeypatch.setattr(store, "claim", claim)
    return files


def test_an_outcome_refused_by_unwritable_files_is_recorded_when_they_are_back(
        tmp_path: Path, unwritable: Unwritable, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "notifyd.db")
    store.migrate()
    config = one_service(receiver.json_url)
    first, second = add_job(store, config, "first"), add_job(store, config, "second")
    files = break_files_once_a_job_is_leased(store, unwritable, monkeypatch)
    real_finish = store.finish
    refusals: list[str] = []

    def finish(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_finish(*args, **kwargs)
        except StoreUnavailable as exc:
            refusals.append(str(exc))
            unwritable(*files, on=False)                 # writable again for the worker's next try
            raise

    monkeypatch.setattr(store, "finish", finish)
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor()).start()
    try:
        wait_for(lambda: state(store, first) == state(store, second) == ("succeeded", 1), 30,
                 message="both jobs recorded, long before the lease ends")
    finally:
        pool.stop(grace=2)
        store.close()
    assert len(refusals) == 1 and "cannot be written" in refusals[0]
    assert sorted(b["title"] for b in receiver.bodies()) == ["first", "second"]     # each sent once


def test_a_job_that_meets_unwritable_files_goes_back_to_the_queue_and_its_service_goes_on(
        tmp_path: Path, unwritable: Unwritable, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "notifyd.db")
    store.migrate()
    config = one_service(receiver.json_url)
    first, second = add_job(store, config, "first"), add_job(store, config, "second")
    files = break_files_once_a_job_is_leased(store, unwritable, monkeypatch)
    real_release = store.release
    refused: list[str] = []

    def release(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_release(*args, **kwargs)
        except StoreUnavailable as exc:
            refused.append(str(exc))
            raise

    monkeypatch.setattr(store, "release", release)
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor()).start()
    try:
        # The outcome is refused for a few seconds, then the release, then the claim loop's retries of it.
        wait_for(lambda: len(refused) >= 2, 20, message="a release the claim loop keeps trying")
        assert state(store, first) == ("running", 1) and state(store, second) == ("queued", 0)
        assert pool.running() == []                      # no slot held: the service is not capped by it
        unwritable(*files, on=False)
        wait_for(lambda: state(store, first)[0] == state(store, second)[0] == "succeeded", 30,
                 message="the job given back and sent again, and the service's next job, long before the lease ends")
    finally:
        pool.stop(grace=2)
        store.close()
    assert state(store, first) == ("succeeded", 1)       # the attempt whose outcome was lost did not count
    assert sorted(b["title"] for b in receiver.bodies()) == ["first", "first", "second"]   # at least once


def get_health(app: Starlette) -> httpx.Response:
    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifyd") as client:
            return await client.get("/health")
    return asyncio.run(get())


def test_health_degrades_when_the_database_file_cannot_take_the_log_that_grows(
        tmp_path: Path, unwritable: Unwritable) -> None:
    store = SqliteStore(tmp_path / "notifyd.db", wal_limit=256 * 1024)
    store.migrate()
    config = parse_config({}, path=None)
    writer = IngestWriter(store, lambda: config).start()
    now = [time.time()]
    app = create_app(ListenerDeps(config=lambda: config, writer=writer, store=store, config_state=ConfigState,
                                  clock=lambda: now[0]))
    try:
        assert get_health(app).json()["status"] == "ok"
        unwritable(store.path)                           # the log still takes writes: commits go on
        for n in range(12):
            with store.transaction() as tx:
                tx.insert_event(Event(source="generic", source_type="generic", kind="backup",
                                      title=f"while stuck {n}", body="x" * 40_000), now[0])
        assert store.wal_size() > store.wal_limit
        now[0] += 1
        answer = get_health(app)
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "degraded"
        assert body["store"]["writable"] is True
        [problem] = body["store"]["problems"]
        assert "notifyd.db-wal" in problem and "over its limit of 0.2 MiB" in problem
        assert "disk I/O error" in problem and problem in body["store"]["error"]   # the checkpoint's own error

        unwritable(store.path, on=False)
        now[0] += engine.CHECKPOINT_EVERY
        answer = get_health(app)
        assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.json()
    finally:
        writer.stop()
        store.close()
