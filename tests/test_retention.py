"""Retention: the maintenance job deletes exactly what is past its limit, in batches short enough
that ingest never waits long."""

from __future__ import annotations

import threading
from pathlib import Path

from notifyd.backoff import RetryPolicy
from notifyd.config import parse_config
from notifyd.errors import PermanentError
from notifyd.ingest import record_event
from notifyd.job_handlers import ChannelCache, JobContext
from notifyd.logs import Redactor
from notifyd.model import Event, JobSpec, JobState
from notifyd.outcomes import failed, skipped, succeeded
from notifyd.retention import SERVICE, UNIQUE_KEY, purge_by_retention, schedule_retention
from notifyd.store import Store
from notifyd.store.sqlite import SqliteStore
from notifyd.worker import run_job

DAY = 86400.0
NOW = 2_000_000_000.0
LEASE = 30.0


def add_finished(store: Store, state: str, age_days: float, event_age_days: float | None = None) -> int:
    """A job with one attempt that finished `age_days` ago, its event received `event_age_days` ago:
    made by driving the store through time (received, queued, claimed and finished back then)."""
    received = NOW - (event_age_days or age_days) * DAY
    finished = NOW - age_days * DAY
    with store.transaction() as tx:
        event_id = tx.insert_event(Event(source="g", source_type="generic", kind="x", title=""), received)
        [enqueued] = tx.enqueue(event_id, [JobSpec(service="s", kind="notify", priority=5)], 8, min(received, finished))
    claim = store.claim_job(enqueued.id, finished, LEASE)
    assert claim is not None
    finish = {"succeeded": succeeded(""), "skipped": skipped("x"),
              "dead": failed(claim.job, PermanentError("x"), RetryPolicy(), finished)}[state]
    assert store.finish(claim, finish, finished)
    return enqueued.id


def test_the_retention_job_deletes_exactly_what_is_past_its_limit(store: Store) -> None:
    config = parse_config({"store": {"keep_succeeded": "30d", "keep_dead": "90d"}}, path=None)
    old_ok = add_finished(store, "succeeded", 31)
    new_ok = add_finished(store, "succeeded", 29)
    old_skip = add_finished(store, "skipped", 31)
    dead_60 = add_finished(store, "dead", 60)
    dead_91 = add_finished(store, "dead", 91)
    with store.transaction() as tx:             # queued 400 days ago, due now
        [queued_job] = tx.enqueue(None, [JobSpec(service="s", kind="notify", priority=5, delay=400 * DAY)], 8,
                                  NOW - 400 * DAY)
    queued = queued_job.id
    assert schedule_retention(store, delay=0, now=NOW)
    assert not schedule_retention(store, delay=0, now=NOW)          # one at a time
    first = store.claim(NOW, LEASE)
    assert first is not None and first.job.id == queued                # deliveries go before maintenance
    [retention_id] = [j.id for j in store.list_jobs(include_maintenance=True) if j.unique_key == UNIQUE_KEY]
    claim = store.claim_job(retention_id, NOW, LEASE)
    assert claim is not None and claim.job.service == SERVICE and claim.job.priority == 9
    outcome = run_job(claim, JobContext(store, config, ChannelCache(), clock=lambda: NOW), Redactor())
    assert outcome.state == "succeeded"
    left = {j.id for j in store.list_jobs(limit=100)}                   # deliveries, not maintenance
    assert left == {new_ok, dead_60, queued}                      # the running delivery is never touched
    assert old_ok not in left and old_skip not in left and dead_91 not in left
    assert all(store.job_attempts(job_id) == [] for job_id in (old_ok, old_skip, dead_91))
    assert store.info().counts["events"] == 2                     # the two kept jobs' events
    nxt = [j for j in store.list_jobs(state=JobState.QUEUED, include_maintenance=True) if j.unique_key == UNIQUE_KEY]
    assert len(nxt) == 1 and nxt[0].run_at == NOW + 3600                         # the next run, an hour on


def test_a_purge_of_many_rows_goes_in_batches_and_ingest_commits_between_them(tmp_path: Path) -> None:
    # SQLite only: what the purge must not starve is SQLite's one writer at a time (the store's
    # write lock), which the ingest writer waits on between purge batches. How long it waits is
    # a speed, measured by tests/bench/bench_retention.py; here: that it gets its turns at all.
    store = SqliteStore(tmp_path / "r.db")
    store.migrate()
    # The SQLite engine's own connection, only to make the 20k finished jobs with their attempts:
    # through the contract that is a claim and a finish per job, no bulk way exists.
    conn = store.connect()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO events (id, source, source_type, kind, received_at) VALUES (1, 'g', 'generic', 'x', 0)")
    conn.executemany(
        "INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, created_at, "
        "finished_at) VALUES (1, 's', 'notify', 5, 'succeeded', 1, 8, 0, 0, 1000)", [()] * 20_000)
    conn.execute("INSERT INTO attempts (job_id, started_at, finished_at, outcome) "
                 "SELECT id, 0, 1, 'succeeded' FROM jobs")
    conn.execute("COMMIT")
    conn.close()
    config = parse_config({}, path=None)
    batches: list[tuple[int, int]] = []          # (rows purged so far, ingest commits so far)
    commits = [0]
    purged: list[int] = []

    def purge() -> None:
        purged.append(purge_by_retention(store, 1, 1, now=NOW, progress=lambda n: batches.append((n, commits[0]))))
    purger = threading.Thread(target=purge)
    purger.start()
    while purger.is_alive():
        with store.transaction() as tx:
            record_event(tx, Event(source="generic", source_type="generic", kind="x", title="t"), config, NOW)
        commits[0] += 1
    purger.join()
    store.close()
    assert purged == [20_000]
    assert len(batches) >= 20_000 // 500, "the purge went in batches of at most 500 rows"
    between = batches[-1][1] - batches[0][1]
    assert between > 0, "ingest committed while the purge was under way, between its batches"
