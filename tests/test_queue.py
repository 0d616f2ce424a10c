"""The queue contract, on a real SQLite file: order, leases, collapse, outcomes, replay, purge,
and concurrent claimers that never share a job."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from notifyd.backoff import RetryPolicy
from notifyd.errors import PermanentError, TransientError
from notifyd.fanout import JobSpec
from notifyd.queue import JobQueue, enqueue
from notifyd.store import Store, write

NOW = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "q.db")
    s.migrate()
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(store: Store, clock: Clock) -> JobQueue:
    return JobQueue(store.connect(), RetryPolicy((10.0, 60.0)), lease=30.0, clock=clock, rand=lambda: 0.5)


def add(queue: JobQueue, *specs: JobSpec, now: float = NOW, max_attempts: int = 3) -> list[int]:
    with write(queue.db):
        return [e.id for e in enqueue(queue.db, None, specs, max_attempts, now)]


def spec(service: str = "s", priority: int = 5, delay: float = 0.0, unique_key: str | None = None) -> JobSpec:
    return JobSpec(service=service, kind="notify", priority=priority, delay=delay, unique_key=unique_key)


def state(queue: JobQueue, job_id: int) -> tuple:
    return queue.db.conn.execute("SELECT state, attempts, run_at, last_error FROM jobs WHERE id = ?",
                                 (job_id,)).fetchone()


def test_claims_by_priority_then_due_time_then_id(queue: JobQueue, clock: Clock) -> None:
    late_low = add(queue, spec("a", priority=7), now=NOW - 5)[0]
    high = add(queue, spec("b", priority=3), now=NOW - 1)[0]
    early_low = add(queue, spec("c", priority=7), now=NOW - 10)[0]
    same_time_1, same_time_2 = add(queue, spec("d", priority=7), spec("e", priority=7), now=NOW - 5)
    future = add(queue, spec("f", priority=1, delay=60))[0]
    order = []
    while (claim := queue.claim()) is not None:
        order.append(claim.job.id)
    assert order == [high, early_low, late_low, same_time_1, same_time_2]
    assert future not in order
    clock.now += 61
    assert queue.claim().job.id == future


def test_claim_leases_and_counts_an_attempt(queue: JobQueue) -> None:
    job_id = add(queue, spec())[0]
    claim = queue.claim()
    assert claim.job.id == job_id and claim.job.state == "running" and claim.job.attempts == 1
    assert claim.job.lease_until == NOW + 30
    assert queue.claim() is None
    attempts = queue.db.conn.execute("SELECT job_id, started_at, outcome FROM attempts").fetchall()
    assert attempts == [(job_id, NOW, None)]


def test_an_expired_lease_makes_the_job_claimable_again(queue: JobQueue, clock: Clock) -> None:
    job_id = add(queue, spec())[0]
    first = queue.claim()
    clock.now += 29
    assert queue.claim() is None
    clock.now += 2
    second = queue.claim()
    assert second.job.id == job_id and second.job.attempts == 2
    outcomes = [r[0] for r in queue.db.conn.execute("SELECT outcome FROM attempts ORDER BY id")]
    assert outcomes == ["lost", None]
    # the first worker's late outcome cannot overwrite the new owner's lease
    assert queue.succeed(first).state == "lost"
    assert queue.succeed(second).state == "succeeded"


def test_extended_lease_does_not_expire(queue: JobQueue, clock: Clock) -> None:
    add(queue, spec())
    claim = queue.claim()
    clock.now += 25
    queue.extend([claim])
    clock.now += 25
    assert queue.claim() is None
    assert queue.next_wakeup() == pytest.approx(5.0)


def test_expired_lease_on_last_attempt_is_dead(queue: JobQueue, clock: Clock) -> None:
    job_id = add(queue, spec(), max_attempts=1)[0]
    queue.claim()
    clock.now += 31
    assert queue.claim() is None
    assert state(queue, job_id)[0] == "dead"


def test_unique_key_collapses_while_queued_only(queue: JobQueue) -> None:
    first = add(queue, spec(unique_key="kodi:/tv/show/s01", delay=30))[0]
    with write(queue.db):
        again = enqueue(queue.db, None, [spec(unique_key="kodi:/tv/show/s01", delay=30)], 3, NOW + 10)
    assert again[0].id == first and again[0].collapsed
    assert state(queue, first)[2] == NOW + 30        # the first one's scan window is kept
    other = add(queue, spec(unique_key="kodi:/tv/other"))[0]
    assert other != first
    queue.db.conn.execute("UPDATE jobs SET run_at = ? WHERE id = ?", (NOW, first))
    claim = queue.claim()
    assert claim.job.id == first
    after = add(queue, spec(unique_key="kodi:/tv/show/s01"))[0]
    assert after not in (first, other)              # a refresh after the scan started runs again


def test_transient_failure_retries_after_backoff_then_dies(queue: JobQueue, clock: Clock) -> None:
    job_id = add(queue, spec())[0]
    outcome = queue.fail(queue.claim(), TransientError("HTTP 503"))
    assert outcome.state == "queued" and outcome.retry_in == 10.0
    assert state(queue, job_id) == ("queued", 1, NOW + 10, "HTTP 503")
    assert queue.claim() is None
    clock.now += 10
    outcome = queue.fail(queue.claim(), TransientError("HTTP 503"))
    assert outcome.retry_in == 60.0
    clock.now += 60
    outcome = queue.fail(queue.claim(), TransientError("HTTP 503", "detail"))
    assert outcome.state == "dead" and outcome.attempt == 3
    row = state(queue, job_id)
    assert row[0] == "dead" and row[3] == "HTTP 503 (gave up after 3 attempts)"
    outcomes = [r[0] for r in queue.db.conn.execute("SELECT outcome FROM attempts ORDER BY id")]
    assert outcomes == ["retry", "retry", "failed"]


def test_retry_after_wins_over_backoff(queue: JobQueue) -> None:
    add(queue, spec())
    outcome = queue.fail(queue.claim(), TransientError("HTTP 429", retry_after=120))
    assert outcome.retry_in == 120


def test_permanent_failure_is_dead_at_once(queue: JobQueue) -> None:
    job_id = add(queue, spec())[0]
    outcome = queue.fail(queue.claim(), PermanentError("HTTP 401: check the credentials"))
    assert outcome.state == "dead"
    assert state(queue, job_id)[:2] == ("dead", 1)


def test_skip_records_the_reason(queue: JobQueue) -> None:
    job_id = add(queue, spec())[0]
    assert queue.skip(queue.claim(), "service disabled").state == "skipped"
    assert state(queue, job_id)[0] == "skipped" and state(queue, job_id)[3] == "service disabled"


def test_retry_gives_dead_jobs_a_fresh_budget_and_keeps_history(queue: JobQueue, clock: Clock) -> None:
    job_id = add(queue, spec())[0]
    queue.fail(queue.claim(), PermanentError("HTTP 404"))
    assert queue.retry([job_id, 999]) == {job_id: "queued", 999: "not found"}
    assert state(queue, job_id)[:2] == ("queued", 0)
    claim = queue.claim()
    assert claim.job.attempts == 1
    assert queue.retry([job_id])[job_id].startswith("is running")
    queue.succeed(claim)
    assert queue.db.conn.execute("SELECT count(*) FROM attempts WHERE job_id = ?", (job_id,)).fetchone()[0] == 2


def test_cancel_only_queued(queue: JobQueue) -> None:
    a, b = add(queue, spec("a"), spec("b"))
    claim = queue.claim()
    assert claim.job.id == a
    results = queue.cancel([a, b])
    assert results[a].startswith("is running") and results[b] == "cancelled"
    assert state(queue, b)[0] == "cancelled"
    assert queue.retry([b]) == {b: "queued"}


def test_release_gives_the_job_back_without_counting(queue: JobQueue) -> None:
    job_id = add(queue, spec())[0]
    claim = queue.claim()
    assert queue.release(claim)
    assert state(queue, job_id)[:2] == ("queued", 0)
    assert queue.db.conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 0
    assert not queue.release(claim)


def test_recover_requeues_jobs_a_dead_process_left_running(queue: JobQueue) -> None:
    job_id = add(queue, spec())[0]
    queue.claim()
    assert queue.recover() == 1
    assert state(queue, job_id)[:2] == ("queued", 1)
    assert queue.db.conn.execute("SELECT outcome FROM attempts").fetchone()[0] == "interrupted"
    assert queue.claim().job.id == job_id


def test_next_wakeup(queue: JobQueue) -> None:
    assert queue.next_wakeup() is None
    add(queue, spec(delay=7))
    assert queue.next_wakeup() == pytest.approx(7)
    add(queue, spec())
    assert queue.next_wakeup() == 0


def test_purge_deletes_old_finished_jobs_their_attempts_and_orphaned_events(queue: JobQueue, clock: Clock) -> None:
    conn = queue.db.conn
    with write(queue.db):
        event_old = conn.execute("INSERT INTO events (source, source_type, kind, received_at) "
                                 "VALUES ('g', 'generic', 'x', ?)", (NOW - 100,)).lastrowid
        enqueue(queue.db, event_old, [spec("old"), spec("fresh")], 3, NOW - 100)
    claim = queue.claim()
    queue.succeed(claim)                              # finished at NOW
    clock.now += 50
    queue.succeed(queue.claim())                      # finished at NOW + 50
    clock.now = NOW + 100
    assert queue.purge(older_than=60, batch=1) == 1   # only the one finished 100 s ago
    assert [r[0] for r in conn.execute("SELECT service FROM jobs")] == ["fresh"]
    assert conn.execute("SELECT count(*) FROM attempts").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1   # still has a job
    clock.now = NOW + 200
    assert queue.purge(older_than=60) == 1
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 0


def test_queued_jobs_are_never_purged(queue: JobQueue, clock: Clock) -> None:
    add(queue, spec(), now=NOW - 10_000)
    assert queue.purge(older_than=1) == 0


def test_claim_and_purge_use_their_partial_indexes(queue: JobQueue) -> None:
    def plan(sql: str, *params: object) -> str:
        return " ".join(r[3] for r in queue.db.conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    claim = plan("SELECT id FROM jobs INDEXED BY jobs_claim WHERE state = 'queued' AND run_at <= ? "
                 "ORDER BY priority, run_at, id LIMIT 1", NOW)
    assert "jobs_claim" in claim and "TEMP B-TREE" not in claim
    due = plan("SELECT min(run_at) FROM jobs INDEXED BY jobs_claim WHERE state = 'queued'")
    assert "jobs_claim" in due
    purge = plan("SELECT id FROM jobs WHERE state IN ('succeeded', 'dead') AND finished_at < ? LIMIT 10", NOW)
    assert "jobs_finished" in purge


def _claim_all(db_path: str, results: "multiprocessing.Queue[list[int]]", start, threads: int = 3) -> None:
    store = Store(Path(db_path))
    start.wait(60)                                    # every claimer begins together
    claimed: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        queue = JobQueue(store.connect())
        mine = []
        while (claim := queue.claim()) is not None:
            mine.append(claim.job.id)
            queue.succeed(claim)
        with lock:
            claimed.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put(claimed)


def test_two_processes_and_threads_never_claim_one_job_twice(store: Store) -> None:
    queue = JobQueue(store.connect())
    ids = add(queue, *[spec(f"s{n}", priority=1 + n % 10) for n in range(1500)], now=0)
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_claim_all, args=(str(store.path), results, start)) for _ in range(2)]
    for p in procs:
        p.start()
    here = threading.Thread(target=_claim_all, args=(str(store.path), results, start))
    here.start()
    collected = [results.get(timeout=120) for _ in range(3)]
    here.join()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    claimed = [job for part in collected for job in part]
    assert sorted(claimed) == sorted(ids)             # every job once, none twice
    assert sum(1 for part in collected if part) >= 2   # the work really was shared
    counts = queue.db.conn.execute("SELECT state, count(*), max(attempts) FROM jobs GROUP BY state").fetchall()
    assert counts == [("succeeded", 1500, 1)]


def test_a_service_at_its_running_limit_is_passed_over(queue: JobQueue) -> None:
    slow = add(queue, spec("slow"), spec("slow"), spec("slow"), now=NOW - 10)
    fast = add(queue, spec("fast"), now=NOW - 1)[0]
    first = queue.claim(per_service=2)
    second = queue.claim(per_service=2)
    assert [first.job.id, second.job.id] == slow[:2]
    assert queue.claim(per_service=2).job.id == fast      # the third slow job waits its turn
    assert queue.claim(per_service=2) is None
    queue.succeed(first)
    assert queue.claim(per_service=2).job.id == slow[2]


def test_a_new_refresh_never_joins_a_retry_and_a_retry_can_requeue_beside_a_twin(queue: JobQueue, clock: Clock) -> None:
    first = add(queue, spec(unique_key="kodi:/tv/s01"))[0]
    claim = queue.claim()
    twin = add(queue, spec(unique_key="kodi:/tv/s01", delay=10))[0]      # the first one is running
    assert twin != first
    assert queue.fail(claim, TransientError("HTTP 502")).state == "queued"   # requeued beside its twin
    third = add(queue, spec(unique_key="kodi:/tv/s01", delay=10))[0]
    assert third == twin                                  # joins the fresh twin, not the scheduled retry
    assert state(queue, first)[:2] == ("queued", 1)
    clock.now += 31
    assert queue.recover() == 0 and queue.retry([first])[first].startswith("is queued")


def test_an_old_file_with_the_unique_index_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    from notifyd import store as store_mod

    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    for statements in store_mod.MIGRATIONS[:2]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'jobs_unique'").fetchone()[0] == 1
    conn.close()
    Store(path).migrate()
    names = {r[0] for r in Store(path).connect().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "jobs_unique" not in names and "jobs_unique_key" in names
