"""Retention: the maintenance job deletes exactly what is past its limit, in batches short enough
that ingest never waits long."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from notifyd.config import parse_config
from notifyd.events import Event
from notifyd.ingest import record_event
from notifyd.logs import Redactor
from notifyd.queue import JobQueue
from notifyd.retention import SERVICE, UNIQUE_KEY, schedule_retention
from notifyd.store import Store, write
from notifyd.worker import ChannelCache, deliver_claim

DAY = 86400.0
NOW = 2_000_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "r.db")
    s.migrate()
    return s


def add_finished(db, state: str, age_days: float, event_age_days: float | None = None) -> int:
    event_id = db.conn.execute("INSERT INTO events (source, source_type, kind, received_at) VALUES "
                               "('g', 'generic', 'x', ?)", (NOW - (event_age_days or age_days) * DAY,)).lastrowid
    job_id = db.conn.execute(
        "INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, created_at, "
        "finished_at) VALUES (?, 's', 'notify', 5, ?, 1, 8, 0, 0, ?)", (event_id, state, NOW - age_days * DAY)).lastrowid
    db.conn.execute("INSERT INTO attempts (job_id, started_at, finished_at, outcome) VALUES (?, 0, 0, 'x')", (job_id,))
    return job_id


def test_the_retention_job_deletes_exactly_what_is_past_its_limit(store: Store) -> None:
    config = parse_config({"store": {"keep_succeeded": "30d", "keep_dead": "90d"}}, path=None)
    db = store.connect()
    with write(db):
        old_ok = add_finished(db, "succeeded", 31)
        new_ok = add_finished(db, "succeeded", 29)
        old_skip = add_finished(db, "skipped", 31)
        dead_60 = add_finished(db, "dead", 60)
        dead_91 = add_finished(db, "dead", 91)
        queued = db.conn.execute("INSERT INTO jobs (service, kind, priority, state, max_attempts, run_at, created_at) "
                                 "VALUES ('s', 'notify', 5, 'queued', 8, ?, ?)", (NOW, NOW - 400 * DAY)).lastrowid
    assert schedule_retention(db, delay=0, now=NOW)
    assert not schedule_retention(db, delay=0, now=NOW)          # one at a time
    queue = JobQueue(db, clock=lambda: NOW)
    assert queue.claim().job.id == queued                        # deliveries go before maintenance
    retention_id = db.conn.execute("SELECT id FROM jobs WHERE unique_key = ?", (UNIQUE_KEY,)).fetchone()[0]
    claim = queue.claim_job(retention_id)
    assert claim.job.service == SERVICE and claim.job.priority == 9
    outcome = deliver_claim(claim, queue, config, ChannelCache(), Redactor())
    assert outcome.state == "succeeded"
    left = {r[0] for r in db.conn.execute("SELECT id FROM jobs WHERE kind != 'maintenance'")}
    assert left == {new_ok, dead_60, queued}                      # the running delivery is never touched
    assert old_ok not in left and old_skip not in left and dead_91 not in left
    assert db.conn.execute("SELECT count(*) FROM attempts WHERE job_id IN (?, ?, ?)",
                           (old_ok, old_skip, dead_91)).fetchone()[0] == 0
    assert db.conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2      # the two kept jobs' events
    nxt = db.conn.execute("SELECT run_at FROM jobs WHERE unique_key = ? AND state = 'queued'", (UNIQUE_KEY,)).fetchone()
    assert nxt is not None and nxt[0] > time.time() + 3000                       # the next run, an hour on


def test_a_purge_of_100k_rows_never_holds_ingest_for_100ms(store: Store) -> None:
    db = store.connect()
    with write(db):
        db.conn.execute("INSERT INTO events (id, source, source_type, kind, received_at) VALUES (1, 'g', 'generic', 'x', 0)")
        db.conn.executemany(
            "INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, created_at, "
            "finished_at) VALUES (1, 's', 'notify', 5, 'succeeded', 1, 8, 0, 0, 1000)", [()] * 100_000)
        db.conn.execute("INSERT INTO attempts (job_id, started_at, finished_at, outcome) "
                        "SELECT id, 0, 1, 'succeeded' FROM jobs")
    config = parse_config({}, path=None)
    purged: list[int] = []
    purger = threading.Thread(target=lambda: purged.append(
        JobQueue(store.connect()).purge_by_retention(1, 1, now=NOW)))
    ingest = store.connect()
    waits: list[float] = []
    purger.start()
    while purger.is_alive():
        started = time.perf_counter()
        with write(ingest):
            record_event(ingest, Event(source="generic", source_type="generic", kind="x", title="t"), config, NOW)
        waits.append(time.perf_counter() - started)
    purger.join()
    assert purged == [100_000]
    assert len(waits) > 10, "ingest ran while the purge did"
    assert max(waits) < 0.1, f"ingest waited {max(waits) * 1000:.0f} ms"
