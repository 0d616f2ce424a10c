"""The store contract, run against every engine (a SQLite file, a real PostgreSQL server): queue
order, leases and their expiry, unique-key collapsing, outcomes, replay, purge, the dedupe
window, runs, service state, retention scheduling and the read views."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from notifyd.backoff import RetryPolicy
from notifyd.errors import NotFound, PermanentError, TransientError
from notifyd.model import AttemptOutcome, Claim, Event, JobKind, JobSpec, JobState, Outcome, Run, RunStatus
from notifyd.outcomes import failed, record_outcome, skipped, succeeded
from notifyd.retention import UNIQUE_KEY, schedule_retention
from notifyd.run_state import new_run
from notifyd.store import Store

NOW = 1_700_000_000.0
LEASE = 30.0
POLICY = RetryPolicy((10.0, 60.0))


class Queue:
    """The worker's view of a store, with a clock the test moves."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.now = NOW

    def add(self, *specs: JobSpec, now: float | None = None, max_attempts: int = 3,
            event_id: int | None = None) -> list[int]:
        with self.store.transaction() as tx:
            return [e.id for e in tx.enqueue(event_id, specs, max_attempts, self.now if now is None else now)]

    def claim(self, passed_over: tuple[str, ...] = ()) -> Claim | None:
        return self.store.claim(self.now, LEASE, passed_over=passed_over)

    def succeed(self, claim: Claim, detail: str = "") -> Outcome:
        return record_outcome(self.store, claim, succeeded(detail), self.now)

    def fail(self, claim: Claim, error: TransientError | PermanentError) -> Outcome:
        return record_outcome(self.store, claim, failed(claim.job, error, POLICY, self.now, lambda: 0.5), self.now)

    def state(self, job_id: int) -> tuple[Any, ...]:
        job = self.store.get_job(job_id)
        return (job.state, job.attempts, job.run_at, job.last_error)

    def outcomes(self, job_id: int) -> list[str | None]:
        return [a.outcome for a in self.store.job_attempts(job_id)]


@pytest.fixture
def queue(store: Store) -> Queue:
    return Queue(store)


def spec(service: str = "s", priority: int = 5, delay: float = 0.0, unique_key: str | None = None) -> JobSpec:
    return JobSpec(service=service, kind=JobKind.NOTIFY, priority=priority, delay=delay, unique_key=unique_key)


def event(source: str = "generic", kind: str = "download", **media: Any) -> Event:
    return Event(source=source, source_type="generic", kind=kind, title=f"{kind} title", body="b",
                 paths=("/tv/a",), media=media, payload='{"k": 1}')


# -- the queue -------------------------------------------------------------------------------------

def test_claims_by_priority_then_due_time_then_id(queue: Queue) -> None:
    late_low = queue.add(spec("a", priority=7), now=NOW - 5)[0]
    high = queue.add(spec("b", priority=3), now=NOW - 1)[0]
    early_low = queue.add(spec("c", priority=7), now=NOW - 10)[0]
    same_time_1, same_time_2 = queue.add(spec("d", priority=7), spec("e", priority=7), now=NOW - 5)
    future = queue.add(spec("f", priority=1, delay=60))[0]
    order = []
    while (claim := queue.claim()) is not None:
        order.append(claim.job.id)
    assert order == [high, early_low, late_low, same_time_1, same_time_2]
    assert future not in order
    queue.now += 61
    claim = queue.claim()
    assert claim is not None and claim.job.id == future


def test_claim_leases_counts_an_attempt_and_names_the_node(queue: Queue) -> None:
    job_id = queue.add(spec())[0]
    claim = queue.claim()
    assert claim is not None
    assert claim.job.id == job_id and claim.job.state == JobState.RUNNING and claim.job.attempts == 1
    assert claim.job.lease_until == NOW + LEASE
    assert queue.claim() is None
    [attempt] = queue.store.job_attempts(job_id)
    assert (attempt.started_at, attempt.outcome, attempt.node) == (NOW, None, "test-node")


def test_an_expired_lease_makes_the_job_claimable_again(queue: Queue) -> None:
    job_id = queue.add(spec())[0]
    first = queue.claim()
    assert first is not None
    queue.now += 29
    assert queue.claim() is None
    queue.now += 2
    second = queue.claim()
    assert second is not None and second.job.id == job_id and second.job.attempts == 2
    assert queue.outcomes(job_id) == ["lost", None]
    # the first worker's late outcome cannot overwrite the new owner's lease
    assert queue.succeed(first).state == "lost"
    assert queue.succeed(second).state == "succeeded"
    assert queue.outcomes(job_id) == ["lost", "succeeded"]


def test_extended_lease_does_not_expire(queue: Queue) -> None:
    queue.add(spec())
    claim = queue.claim()
    assert claim is not None
    queue.now += 25
    queue.store.extend([claim], queue.now + LEASE)
    queue.now += 25
    assert queue.claim() is None
    assert queue.store.next_wakeup(queue.now) == pytest.approx(5.0)


def test_expired_lease_on_last_attempt_is_dead(queue: Queue) -> None:
    job_id = queue.add(spec(), max_attempts=1)[0]
    queue.claim()
    queue.now += 31
    assert queue.claim() is None
    assert queue.state(job_id)[0] == JobState.DEAD


def test_unique_key_collapses_while_queued_only(queue: Queue, store: Store) -> None:
    first = queue.add(spec(unique_key="kodi:/tv/show/s01", delay=30))[0]
    with store.transaction() as tx:
        again = tx.enqueue(None, [spec(unique_key="kodi:/tv/show/s01", delay=30)], 3, NOW + 10)
    assert again[0].id == first and again[0].collapsed
    assert queue.state(first)[2] == NOW + 30        # the first one's scan window is kept
    other = queue.add(spec(unique_key="kodi:/tv/other"))[0]
    assert other != first
    queue.now += 30
    claim = queue.claim()
    assert claim is not None and claim.job.id == other
    claim = queue.claim()
    assert claim is not None and claim.job.id == first
    after = queue.add(spec(unique_key="kodi:/tv/show/s01"))[0]
    assert after not in (first, other)              # a refresh after the scan started runs again


def test_a_collapsed_job_serves_every_event_that_joined_it(queue: Queue, store: Store) -> None:
    with store.transaction() as tx:
        one = tx.insert_event(replace(event(), payload='{"body": "as received"}'), NOW)
        two = tx.insert_event(event(), NOW)
        [job] = tx.enqueue(one, [spec(unique_key="refresh:x")], 3, NOW)
        [joined] = tx.enqueue(two, [spec(unique_key="refresh:x")], 3, NOW)
    assert joined.collapsed and joined.id == job.id
    jobs = store.jobs_of_events([one, two])
    assert [j.id for j in jobs[one]] == [job.id] and [j.id for j in jobs[two]] == [job.id]
    assert [e.id for e in store.events_of_job(job.id)] == [one, two]      # a digest reads them all, oldest first
    assert [e.id for e in store.events_of_job(job.id, limit=1)] == [one]
    with store.transaction() as tx:
        assert tx.event_services(two) == {"s"}                            # it has a job: the one it joined
    assert {e.event.payload for e in store.events_of_job(job.id)} == {"{}"}  # without the bodies as received


def test_a_job_without_events_has_none(queue: Queue, store: Store) -> None:
    [job] = queue.add(spec())
    assert store.events_of_job(job) == []


def test_recent_events_of_a_source_and_kinds_oldest_first(store: Store) -> None:
    with store.transaction() as tx:
        old = tx.insert_event(event("sonarr"), NOW - 100)
        first = tx.insert_event(event("sonarr"), NOW - 10)
        tx.insert_event(event("radarr"), NOW - 5)
        tx.insert_event(event("sonarr", kind="grab"), NOW - 5)
        second = tx.insert_event(event("sonarr", kind="upgrade", download_id="d1"), NOW)
        found = tx.recent_events("sonarr", NOW - 10, ("download", "upgrade"))
        assert tx.recent_events("sonarr", NOW, ()) == []
    assert [e.id for e in found] == [first, second] and old not in [e.id for e in found]
    assert found[1].event.media == {"download_id": "d1"} and found[1].received_at == NOW


def test_delay_jobs_moves_only_queued_jobs_of_those_events_and_kinds_and_only_later(
        queue: Queue, store: Store) -> None:
    with store.transaction() as tx:
        one, two, other = (tx.insert_event(event(), NOW) for _ in range(3))
        [notify, refresh] = tx.enqueue(one, [spec("a", delay=10),
                                             JobSpec(service="k", kind=JobKind.REFRESH, priority=3, delay=10)], 3, NOW)
        [late] = tx.enqueue(two, [spec("a", delay=500)], 3, NOW)
        [elsewhere] = tx.enqueue(other, [spec("a", delay=10)], 3, NOW)
        [running] = tx.enqueue(two, [spec("b")], 3, NOW)
    claim = queue.claim()
    assert claim is not None and claim.job.id == running.id
    with store.transaction() as tx:
        moved = tx.delay_jobs([one, two], (JobKind.NOTIFY, JobKind.CALLBACK), NOW + 100)
        assert tx.delay_jobs([], (JobKind.NOTIFY,), NOW + 100) == 0
    assert moved == 1
    assert [queue.state(j.id)[2] for j in (notify, refresh, late, elsewhere)] == [NOW + 100, NOW + 10, NOW + 500,
                                                                                 NOW + 10]
    assert queue.state(running.id)[0] == JobState.RUNNING


def test_one_enqueue_of_many_jobs_gives_each_spec_its_own_job_in_order(queue: Queue, store: Store) -> None:
    # More than one INSERT's worth, with collapsing twins between them: each spec's job is its own.
    specs = [spec(f"s{n}", priority=1 + n % 9, delay=float(n)) for n in range(150)]
    specs[40] = spec("refresh", unique_key="refresh:/tv/a")
    specs[90] = spec("refresh", unique_key="refresh:/tv/a")
    with store.transaction() as tx:
        event_id = tx.insert_event(event(), NOW)
        jobs = tx.enqueue(event_id, specs, 3, NOW)
    assert [j.service for j in jobs] == [s.service for s in specs]
    assert [j.collapsed for j in jobs] == [n == 90 for n in range(150)] and jobs[90].id == jobs[40].id
    new = [j.id for j in jobs if not j.collapsed]
    assert new == sorted(new) and len(set(new)) == 149
    for job, wanted in zip(jobs, specs, strict=True):
        stored = store.get_job(job.id)
        assert (stored.service, stored.priority, stored.run_at, stored.event_id) == (
            wanted.service, wanted.priority, NOW + wanted.delay, event_id)


def test_skip_jobs_ends_queued_jobs_of_those_events_services_and_kinds(queue: Queue, store: Store) -> None:
    with store.transaction() as tx:
        one, two = tx.insert_event(event(), NOW), tx.insert_event(event(), NOW)
        a1, b1, k1 = tx.enqueue(one, [spec("a"), spec("b"),
                                      JobSpec(service="a", kind=JobKind.REFRESH, priority=3)], 3, NOW)
        [a2] = tx.enqueue(two, [spec("a", priority=1)], 3, NOW)
    claim = queue.claim()
    assert claim is not None and claim.job.id == a2.id              # running: left alone
    with store.transaction() as tx:
        skipped_ids = tx.skip_jobs([one, two], {"a"}, (JobKind.NOTIFY,), "folded into event 9", NOW + 1)
        assert tx.skip_jobs([one], (), (JobKind.NOTIFY,), "x", NOW) == []
    assert skipped_ids == [a1.id]
    job = store.get_job(a1.id)
    assert (job.state, job.last_error, job.finished_at, job.delivery) == (JobState.SKIPPED, "folded into event 9",
                                                                          NOW + 1, "skipped")
    assert [queue.state(j.id)[0] for j in (b1, k1, a2)] == [JobState.QUEUED, JobState.QUEUED, JobState.RUNNING]
    assert store.job_attempts(a1.id) == []


def test_transient_failure_retries_after_backoff_then_dies(queue: Queue) -> None:
    job_id = queue.add(spec())[0]
    outcome = queue.fail(queue.claim(), TransientError("HTTP 503"))  # type: ignore[arg-type]
    assert outcome.state == "queued" and outcome.retry_in == 10.0
    assert queue.state(job_id) == (JobState.QUEUED, 1, NOW + 10, "HTTP 503")
    assert queue.claim() is None
    queue.now += 10
    outcome = queue.fail(queue.claim(), TransientError("HTTP 503"))  # type: ignore[arg-type]
    assert outcome.retry_in == 60.0
    queue.now += 60
    outcome = queue.fail(queue.claim(), TransientError("HTTP 503", "detail"))  # type: ignore[arg-type]
    assert outcome.state == "dead" and outcome.attempt == 3
    state = queue.state(job_id)
    assert state[0] == JobState.DEAD and state[3] == "HTTP 503 (gave up after 3 attempts)"
    assert queue.outcomes(job_id) == ["retry", "retry", "failed"]
    assert queue.store.job_attempts(job_id)[-1].detail == "detail"


def test_retry_after_wins_over_backoff(queue: Queue) -> None:
    queue.add(spec())
    outcome = queue.fail(queue.claim(), TransientError("HTTP 429", retry_after=120))  # type: ignore[arg-type]
    assert outcome.retry_in == 120


def test_permanent_failure_is_dead_at_once(queue: Queue) -> None:
    job_id = queue.add(spec())[0]
    outcome = queue.fail(queue.claim(), PermanentError("HTTP 401: check the credentials"))  # type: ignore[arg-type]
    assert outcome.state == "dead"
    assert queue.state(job_id)[:2] == (JobState.DEAD, 1)
    assert queue.store.get_job(job_id).finished_at == NOW


def test_skip_records_the_reason(queue: Queue) -> None:
    job_id = queue.add(spec())[0]
    claim = queue.claim()
    assert claim is not None
    assert record_outcome(queue.store, claim, skipped("service disabled"), NOW).state == "skipped"
    assert queue.state(job_id)[0] == JobState.SKIPPED and queue.state(job_id)[3] == "service disabled"
    assert queue.outcomes(job_id) == [AttemptOutcome.SKIPPED]


def test_retry_gives_dead_jobs_a_fresh_budget_and_keeps_history(queue: Queue) -> None:
    job_id = queue.add(spec())[0]
    queue.fail(queue.claim(), PermanentError("HTTP 404"))  # type: ignore[arg-type]
    assert queue.store.dead_ids() == [job_id]
    assert queue.store.retry([job_id, 999], NOW) == {job_id: "queued", 999: "not found"}
    assert queue.state(job_id)[:2] == (JobState.QUEUED, 0)
    claim = queue.claim()
    assert claim is not None and claim.job.attempts == 1
    assert queue.store.retry([job_id], NOW)[job_id].startswith("is running")
    queue.succeed(claim)
    assert len(queue.store.job_attempts(job_id)) == 2


def test_cancel_only_queued(queue: Queue) -> None:
    a, b = queue.add(spec("a"), spec("b"))
    claim = queue.claim()
    assert claim is not None and claim.job.id == a
    results = queue.store.cancel([a, b, 12345], NOW)
    assert results[a].startswith("is running") and results[b] == "cancelled" and results[12345] == "not found"
    assert queue.state(b)[0] == JobState.CANCELLED
    assert queue.store.retry([b], NOW) == {b: "queued"}


def test_release_gives_the_job_back_without_counting(queue: Queue) -> None:
    job_id = queue.add(spec())[0]
    claim = queue.claim()
    assert claim is not None
    assert queue.store.release(claim)
    assert queue.state(job_id)[:3] == (JobState.QUEUED, 0, NOW)          # due as it was
    assert queue.store.job_attempts(job_id) == []
    assert not queue.store.release(claim)
    claim = queue.claim()
    assert claim is not None and queue.store.release(claim, run_at=NOW + 3600)     # quiet hours: due later
    assert queue.state(job_id)[:3] == (JobState.QUEUED, 0, NOW + 3600)
    assert queue.claim() is None


def test_an_outcome_sent_again_is_recorded_once(queue: Queue) -> None:
    """What lets the worker send an outcome again after the store refused it."""
    job_id = queue.add(spec())[0]
    claim = queue.claim()
    assert claim is not None
    assert queue.succeed(claim).state == "succeeded"
    assert queue.succeed(claim).state == "lost"          # nothing written the second time
    assert queue.outcomes(job_id) == ["succeeded"] and queue.state(job_id)[:2] == (JobState.SUCCEEDED, 1)
    assert not queue.store.release(claim)                # nor can it be given back once recorded


def test_recover_requeues_what_a_dead_process_left(queue: Queue, store: Store) -> None:
    job_id = queue.add(spec())[0]
    queue.claim()
    if store.multi_node:
        # Other nodes' running jobs are alive: only an expired lease is taken back.
        assert store.recover(NOW + 1) == 0
        assert store.recover(NOW + LEASE + 1) == 1
        assert queue.outcomes(job_id) == ["lost"]
    else:
        assert store.recover(NOW) == 1
        assert queue.outcomes(job_id) == ["interrupted"]
    assert queue.state(job_id)[:2] == (JobState.QUEUED, 1)
    queue.now += LEASE + 1
    claim = queue.claim()
    assert claim is not None and claim.job.id == job_id


def test_next_wakeup(queue: Queue) -> None:
    assert queue.store.next_wakeup(NOW) is None
    queue.add(spec(delay=7))
    assert queue.store.next_wakeup(NOW) == pytest.approx(7)
    queue.add(spec())
    assert queue.store.next_wakeup(NOW) == 0


def test_passed_over_services_wait_their_turn(queue: Queue) -> None:
    slow = queue.add(spec("slow"), spec("slow"), now=NOW - 10)
    fast = queue.add(spec("fast"), now=NOW - 1)[0]
    first = queue.claim(passed_over=("slow",))
    assert first is not None and first.job.id == fast      # the older slow jobs wait
    assert queue.claim(passed_over=("slow", "fast")) is None
    second = queue.claim()
    assert second is not None and second.job.id == slow[0]


def test_a_new_refresh_never_joins_a_retry_and_a_retry_can_requeue_beside_a_twin(queue: Queue) -> None:
    first = queue.add(spec(unique_key="kodi:/tv/s01"))[0]
    claim = queue.claim()
    twin = queue.add(spec(unique_key="kodi:/tv/s01", delay=10))[0]      # the first one is running
    assert twin != first
    assert queue.fail(claim, TransientError("HTTP 502")).state == "queued"  # type: ignore[arg-type]
    third = queue.add(spec(unique_key="kodi:/tv/s01", delay=10))[0]
    assert third == twin                              # joins the fresh twin, not the scheduled retry
    assert queue.state(first)[:2] == (JobState.QUEUED, 1)
    assert queue.store.retry([first], NOW)[first].startswith("is queued")


def together(count: int, work: Callable[[], Any]) -> list[Any]:
    """Run `work` in `count` threads that start at the same moment; what each returned."""
    start = threading.Barrier(count)
    results: list[Any] = []
    lock = threading.Lock()

    def run() -> None:
        start.wait(30)
        result = work()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == count, "a thread failed"
    return results


def test_concurrent_claimers_never_share_a_job(store: Store) -> None:
    queue = Queue(store)
    ids = queue.add(*[spec(f"s{n % 7}", priority=1 + n % 10) for n in range(300)], now=0)

    def claim_all() -> list[int]:
        mine = []
        while (claim := store.claim(NOW, LEASE)) is not None:
            mine.append(claim.job.id)
            record_outcome(store, claim, succeeded(""), NOW)
        return mine

    claimed = [job_id for mine in together(4, claim_all) for job_id in mine]
    assert sorted(claimed) == sorted(ids)             # every job once, none twice
    assert store.job_counts() == {"succeeded": 300}
    assert all(store.get_job(i).attempts == 1 for i in ids[:20])


# -- operator and retention ---------------------------------------------------------------------

def test_purge_deletes_old_finished_jobs_their_attempts_and_orphaned_events(queue: Queue, store: Store) -> None:
    with store.transaction() as tx:
        old_event = tx.insert_event(event(), NOW - 100)
        tx.enqueue(old_event, [spec("old"), spec("fresh")], 3, NOW - 100)
    claim = queue.claim()
    assert claim is not None
    queue.succeed(claim)                              # finished at NOW
    queue.now += 50
    queue.succeed(queue.claim())  # type: ignore[arg-type]  # finished at NOW + 50
    assert store.purge(NOW + 100 - 60, batch=1, pause=0) == 1   # only the one finished 100 s before
    assert [j.service for j in store.list_jobs()] == ["fresh"]
    assert store.info().counts["attempts"] == 1
    assert store.info().counts["events"] == 1          # still has a job
    progress: list[int] = []
    assert store.purge(NOW + 200 - 60, progress=progress.append) == 1
    assert sum(progress) == 1
    assert store.info().counts["events"] == 0
    with pytest.raises(NotFound):
        store.get_event(old_event)


def test_queued_jobs_are_never_purged(queue: Queue, store: Store) -> None:
    queue.add(spec(), now=NOW - 10_000)
    assert store.purge(NOW) == 0


def test_retention_is_scheduled_once(store: Store) -> None:
    assert schedule_retention(store, delay=60, now=NOW)
    assert not schedule_retention(store, delay=60, now=NOW)
    [job] = store.list_jobs(include_maintenance=True)
    assert job.unique_key == UNIQUE_KEY and job.run_at == NOW + 60 and job.kind == JobKind.MAINTENANCE
    assert store.list_jobs() == []                    # maintenance is not a delivery
    claim = store.claim(NOW + 60, LEASE)
    assert claim is not None
    # the running retention job schedules its successor
    assert not schedule_retention(store, delay=3600, now=NOW + 61)
    assert schedule_retention(store, delay=3600, now=NOW + 61, besides=claim.job.id)


def test_maintenance_lock(store: Store) -> None:
    with store.maintenance_lock() as ours:
        assert ours
        if store.multi_node:
            with store.maintenance_lock() as again:       # another holder: one node at a time
                assert not again
    with store.maintenance_lock() as ours:
        assert ours


def test_service_state(store: Store) -> None:
    assert store.service_disabled("hook") is None
    store.disable_service("hook", "HTTP 410 Gone", NOW)
    store.disable_service("hook", "HTTP 410 Gone again", NOW + 1)
    assert store.service_disabled("hook") == "HTTP 410 Gone again"
    assert store.services_switched_off() == {"hook": "HTTP 410 Gone again"}
    with store.transaction() as tx:
        assert tx.disabled_services() == {"hook"}
    assert store.enable_service("hook") and not store.enable_service("hook")
    assert store.service_disabled("hook") is None and store.services_switched_off() == {}


# -- events and idempotency ------------------------------------------------------------------------

def test_an_event_round_trips(store: Store) -> None:
    original = event(year=1999, nested={"a": [1, 2]})
    with store.transaction() as tx:
        event_id = tx.insert_event(original, NOW)
        assert tx.load_event(event_id).event == original
    stored = store.get_event(event_id)
    assert stored.id == event_id and stored.received_at == NOW and stored.event == original
    with pytest.raises(NotFound):
        store.get_event(event_id + 100)


def test_dedupe_key_holds_within_the_window_only(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.claim_dedupe_key("radarr", "k1", NOW, 3600) is None
        first = tx.insert_event(event("radarr"), NOW, "k1")
        [job] = tx.enqueue(first, [spec()], 3, NOW)
    with store.transaction() as tx:
        duplicate = tx.claim_dedupe_key("radarr", "k1", NOW + 10, 3600)
        assert duplicate is not None
        assert (duplicate.event_id, duplicate.kind, [j.id for j in duplicate.jobs]) == (first, "download", [job.id])
        assert tx.claim_dedupe_key("sonarr", "k1", NOW + 10, 3600) is None     # keys are per source
        tx.insert_event(event("sonarr"), NOW + 10, "k1")
    with store.transaction() as tx:
        assert tx.claim_dedupe_key("radarr", "k1", NOW + 3601, 3600) is None   # the window has passed
        again = tx.insert_event(event("radarr"), NOW + 3601, "k1")
    with store.transaction() as tx:
        duplicate = tx.claim_dedupe_key("radarr", "k1", NOW + 3602, 3600)
        assert duplicate is not None and duplicate.event_id == again


def test_a_rolled_back_event_leaves_its_key_free(store: Store) -> None:
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.claim_dedupe_key("radarr", "k", NOW, 3600)
            tx.insert_event(event("radarr"), NOW, "k")
            raise RuntimeError("the request failed")
    with store.transaction() as tx:
        assert tx.claim_dedupe_key("radarr", "k", NOW, 3600) is None
    assert store.list_events() == []


def test_a_savepoint_undoes_only_its_own_writes(store: Store) -> None:
    with store.transaction() as tx:
        kept = tx.insert_event(event(kind="kept"), NOW)
        with pytest.raises(ValueError):
            with tx.savepoint():
                tx.insert_event(event(kind="undone"), NOW)
                raise ValueError("one bad event")
        with tx.savepoint():
            tx.insert_event(event(kind="after"), NOW)
    assert [e.event.kind for e in store.list_events()] == ["after", "kept"]
    assert store.get_event(kept).event.kind == "kept"


def test_concurrent_writers_of_one_key_store_one_event(store: Store) -> None:
    def post() -> int | None:
        with store.transaction() as tx:
            if tx.claim_dedupe_key("radarr", "same", NOW, 3600) is None:
                return tx.insert_event(event("radarr"), NOW, "same")
        return None

    winners = [event_id for event_id in together(4, post) if event_id is not None]
    assert len(winners) == 1 and len(store.list_events()) == 1


# -- runs ----------------------------------------------------------------------------------------------

def test_runs_are_created_once_locked_and_saved(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.run_for_update("r1") is None
        run = tx.run_for_update("r1", create=new_run("r1", "comfy", NOW))
        assert run == Run(id="r1", status=RunStatus.QUEUED, created_at=NOW, updated_at=NOW, source="comfy")
        again = tx.run_for_update("r1", create=new_run("r1", "other", NOW + 5))
        assert again == run                            # an existing run is not replaced
        tx.save_run(Run(id="r1", status=RunStatus.COMPLETED, created_at=NOW, updated_at=NOW + 9, name="n",
                        progress=1.0, live_status="done", notify=("a", "b"), context={"chat_id": "7"},
                        callback_url="https://cb.example/x", cost_amount=0.5, cost_unit="minute",
                        outputs=({"url": "u"},), error=None, registered=True, source="comfy",
                        started_at=NOW + 1, finished_at=NOW + 9))
    saved = store.get_run("r1")
    assert saved.status == RunStatus.COMPLETED and saved.final and saved.notify == ("a", "b")
    assert saved.context == {"chat_id": "7"} and saved.outputs == ({"url": "u"},) and saved.registered
    assert [r.id for r in store.list_runs()] == ["r1"]
    with pytest.raises(NotFound):
        store.get_run("nope")


def test_stale_runs_are_the_silent_unfinished_runs_of_those_sources_in_pages(store: Store) -> None:
    def put(run_id: str, source: str | None, updated_at: float, status: RunStatus = RunStatus.RUNNING) -> None:
        with store.transaction() as tx:
            run = tx.run_for_update(run_id, create=new_run(run_id, source, updated_at))
            assert run is not None
            tx.save_run(replace(run, status=status, updated_at=updated_at))

    put("b", "comfy", NOW - 50)
    put("a", "comfy", NOW - 50)                                    # same time: by id
    put("c", "comfy2", NOW - 40, RunStatus.QUEUED)
    put("young", "comfy", NOW - 5)                                 # heard from lately
    put("done", "comfy", NOW - 90, RunStatus.COMPLETED)            # final: nothing to ask
    put("gone", "comfy", NOW - 90, RunStatus.CANCELLED)
    put("other", "radarr-ish", NOW - 90)                           # a source not asked
    put("api", "api", NOW - 90)                                    # registered, never reported on
    stale = store.stale_runs(NOW - 10, ("comfy", "comfy2"), 10)
    assert [r.id for r in stale] == ["a", "b", "c"] and stale[2].status == RunStatus.QUEUED
    first = store.stale_runs(NOW - 10, ("comfy", "comfy2"), 2)
    assert [r.id for r in first] == ["a", "b"]
    rest = store.stale_runs(NOW - 10, ("comfy", "comfy2"), 2, after=(first[-1].updated_at, first[-1].id))
    assert [r.id for r in rest] == ["c"]
    assert [r.id for r in store.stale_runs(NOW - 10, ("comfy",), 10, after=(NOW - 50, "a"))] == ["b"]
    assert [r.id for r in store.stale_runs(NOW, ("comfy",), 10)] == ["a", "b", "young"]
    assert store.stale_runs(NOW, (), 10) == []


def test_an_event_can_be_rewritten(store: Store) -> None:
    with store.transaction() as tx:
        event_id = tx.insert_event(event(), NOW)
        tx.enqueue(event_id, [spec("a"), spec("b")], 3, NOW)
        assert tx.event_services(event_id) == {"a", "b"}
        tx.update_event(event_id, title="renamed", media={"name": "x"})
    stored = store.get_event(event_id).event
    assert stored.title == "renamed" and stored.media == {"name": "x"}


# -- read views --------------------------------------------------------------------------------------

def test_views_list_filter_and_count(queue: Queue, store: Store) -> None:
    with store.transaction() as tx:
        a = tx.insert_event(event("radarr", "download"), NOW - 10)
        b = tx.insert_event(event("sonarr", "grab"), NOW - 5)
        tx.enqueue(a, [spec("discord"), spec("kodi")], 3, NOW - 10)
        tx.enqueue(b, [spec("discord")], 3, NOW - 5)
    assert [e.id for e in store.list_events()] == [b, a]
    assert [e.id for e in store.list_events(source="radarr")] == [a]
    assert [e.id for e in store.list_events(kind="grab")] == [b]
    assert [e.id for e in store.list_events(limit=1)] == [b]
    claim = queue.claim()
    assert claim is not None
    queue.fail(claim, PermanentError("HTTP 404"))
    assert [j.service for j in store.list_jobs(service="discord")] == ["discord", "discord"]
    assert [j.id for j in store.list_jobs(state="dead")] == [claim.job.id]
    depth = store.queue_depth(NOW)
    assert (depth.queued, depth.running, depth.dead) == (2, 0, 1)
    assert depth.oldest_queued_s == pytest.approx(10)
    assert store.job_counts() == {"queued": 2, "dead": 1}
    stats = store.stats(NOW)
    assert stats.jobs_by_state == {"queued": 2, "dead": 1}
    assert stats.jobs_by_service == {"discord": {"queued": 1, "dead": 1}, "kodi": {"queued": 1}}
    assert stats.events_last_hour == 2 and stats.events_total == 2
    assert stats.finished_last_hour == {"dead": 1} and [j.id for j in stats.dead_recent] == [claim.job.id]
    info = store.info()
    assert info.engine == store.engine and info.schema_version >= 1
    assert info.counts["events"] == 2 and info.counts["jobs"] == 3


def test_migrating_again_changes_nothing(store: Store) -> None:
    version = store.info().schema_version
    assert store.migrate() == version
    assert store.info().schema_version == version


def test_the_write_probe_commits(store: Store) -> None:
    with store.transaction() as tx:
        tx.write_probe(NOW)
    with store.transaction() as tx:
        tx.write_probe(NOW + 1)                          # again: an upsert, never a conflict


def test_a_store_in_good_health_names_no_problem(queue: Queue, store: Store) -> None:
    assert store.health(NOW) == []
    queue.add(*(spec(f"s{n}") for n in range(20)))
    while (claim := queue.claim()) is not None:
        queue.succeed(claim)
    assert store.health(NOW + 60) == [] and store.health(NOW + 60.5) == []


def test_a_secret_is_made_once_and_shared(store: Store) -> None:
    first = store.secret("ui-session")
    assert len(first) == 64 and int(first, 16) >= 0
    assert store.secret("ui-session") == first
    assert store.secret("other") != first


def test_revoked_sessions_are_remembered_until_they_expire(store: Store) -> None:
    assert not store.session_revoked("sid-1")
    store.revoke_session("sid-1", time.time() + 3600)
    store.revoke_session("sid-old", time.time() - 1)      # already expired: forgotten at the next revoke
    assert store.session_revoked("sid-1") and store.session_revoked("sid-old")
    store.revoke_session("sid-2", time.time() + 3600)
    assert store.session_revoked("sid-1") and store.session_revoked("sid-2")
    assert not store.session_revoked("sid-old")
