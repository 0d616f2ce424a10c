"""Workers: outcomes recorded per job, skips for disabled services, wake-ups without spinning, and
a store that refuses writes costing a job seconds, not its lease.

No test here times anything: a test that needs a wake-up to come from one cause sets the pool's
other timers (POLL, IDLE_WAIT, STORE_BACKOFF) to an hour, and holds slow deliveries at the
receiver's gate instead of sleeping through them. How soon work is picked up is measured by
tests/bench/bench_pickup.py."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from notifyd import worker
from notifyd.config import Config, parse_config
from notifyd.errors import StoreUnavailable
from notifyd.ingest import record_event
from notifyd.job_handlers import ChannelCache, JobContext
from notifyd.logs import Redactor
from notifyd.model import Claim, Event, Outcome
from notifyd.store import Store
from notifyd.worker import RECORD_RETRIES, WorkerPool, run_job

from conftest import Receiver, wait_for

HOUR = 3600.0      # a timer set this long never fires within a test: a wake-up must have another cause
HANG = 30.0        # how long a test waits for what must happen before calling it a hang: never the thing tested


def make_config(url: str, enabled: bool = True, threads: int = 2, lease: str = "30s") -> Config:
    return parse_config({"worker": {"backoff": ["50ms"], "max_attempts": 2, "lease": lease, "threads": threads},
                         "services": {"sink": {"type": "apprise", "url": url, "enabled": enabled}}}, path=None)


def add_event(store: Store, config: Config, title: str = "hello") -> int:
    with store.transaction() as tx:
        result = record_event(tx, Event(source="generic", source_type="generic", kind="backup", title=title),
                              config, time.time())
    return result.jobs[0].id


def job_row(store: Store, job_id: int) -> tuple:
    job = store.get_job(job_id)
    return job.state, job.attempts, job.last_error


def claim(store: Store, config: Config) -> Claim:
    claimed = store.claim(time.time(), config.worker.lease)
    assert claimed is not None
    return claimed


def deliver(store: Store, claimed: Claim, config: Config, channels: ChannelCache, redact: Redactor) -> Outcome:
    return run_job(claimed, JobContext(store, config, channels), redact)


def test_a_job_for_a_service_disabled_since_is_skipped(store: Store, receiver: Receiver) -> None:
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    outcome = deliver(store, claim(store, config), make_config(receiver.json_url, enabled=False), ChannelCache(),
                      Redactor())
    assert outcome.state == "skipped" and job_row(store, job_id)[2] == "service disabled"
    assert receiver.bodies() == []


def test_a_job_for_a_removed_service_is_skipped(store: Store, receiver: Receiver) -> None:
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    deliver(store, claim(store, config), replace(config, services={}), ChannelCache(), Redactor())
    assert job_row(store, job_id)[0] == "skipped"


def test_a_crashing_channel_is_a_transient_failure_not_a_dead_worker(store: Store, receiver: Receiver,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    channels = ChannelCache()
    channel = channels.get(config.services["sink"], config.worker.timeout)
    monkeypatch.setattr(channel, "deliver", lambda delivery: 1 / 0)
    outcome = deliver(store, claim(store, config), config, channels, Redactor())
    assert outcome.state == "queued"
    assert job_row(store, job_id)[2].startswith("internal error: ZeroDivisionError")


def test_errors_are_redacted_before_they_are_stored(store: Store, receiver: Receiver) -> None:
    receiver.default_status = 500
    config = make_config(f"json://user:pw-hidden-123@127.0.0.1:{receiver.port}/x")
    job_id = add_event(store, config)
    deliver(store, claim(store, config), config, ChannelCache(), Redactor(config.secrets()))
    [attempt] = store.job_attempts(job_id)
    detail = attempt.error + attempt.detail
    assert "HTTP 500" in detail and "pw-hidden-123" not in detail


class ClaimLog:
    """Wraps a store's claim: `empty` counts the claims that found nothing to do, `taken` the jobs claimed."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.empty = 0
        self.taken: list[int] = []
        self._lock = threading.Lock()
        real = store.claim

        def claim(*args: Any, **kwargs: Any) -> Claim | None:
            got = real(*args, **kwargs)
            with self._lock:
                if got is None:
                    self.empty += 1
                else:
                    self.taken.append(got.job.id)
            return got

        monkeypatch.setattr(store, "claim", claim)


def test_notify_wakes_an_idle_pool(store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "POLL", HOUR)                  # no timer wakes anyone: only notify can
    monkeypatch.setattr(worker, "IDLE_WAIT", HOUR)
    claims = ClaimLog(store, monkeypatch)
    config = make_config(receiver.json_url)
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor()).start()
    try:
        wait_for(lambda: claims.empty >= 2, HANG, interval=0.01, message="both workers idle")   # then asleep
        first = add_event(store, config, "notified")
        pool.notify()
        wait_for(lambda: job_row(store, first)[0] == "succeeded", HANG, interval=0.01, message="the notified job")
        assert claims.taken == [first] and receiver.bodies()[0]["title"] == "notified"
    finally:
        assert pool.stop(grace=2) == 0


def test_the_idle_poller_sees_jobs_other_writers_queued(store: Store, receiver: Receiver,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "IDLE_WAIT", HOUR)             # only the poller's POLL can find the job
    claims = ClaimLog(store, monkeypatch)
    config = make_config(receiver.json_url)
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor()).start()
    try:
        wait_for(lambda: claims.empty >= 2, HANG, interval=0.01, message="both workers idle")
        second = add_event(store, config, "from another process")      # nobody calls notify
        wait_for(lambda: job_row(store, second)[0] == "succeeded", HANG, interval=0.02, message="the polled job")
        assert claims.taken == [second] and receiver.bodies()[0]["title"] == "from another process"
    finally:
        assert pool.stop(grace=2) == 0


def test_an_idle_poller_claims_only_after_another_writer_commits(store: Store, receiver: Receiver,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite the poller asks the file whether anyone committed (its data_version) and tries no
    claim, a write, while nobody did; a job another writer queues is still found at the next look."""
    monkeypatch.setattr(worker, "IDLE_WAIT", HOUR)
    monkeypatch.setattr(worker, "POLL", 0.02)
    claims = ClaimLog(store, monkeypatch)
    looks = [0]
    real_changed = store.changed

    def changed() -> bool:
        looks[0] += 1
        return real_changed()

    monkeypatch.setattr(store, "changed", changed)
    config = make_config(receiver.json_url)
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor()).start()
    try:
        wait_for(lambda: claims.empty >= 2 and looks[0] >= 2, HANG, interval=0.01, message="both workers idle")
        empty, seen = claims.empty, looks[0]
        wait_for(lambda: looks[0] >= seen + 10, HANG, interval=0.01, message="ten more looks")
        if store.engine == "sqlite":
            assert claims.empty == empty            # nothing changed: no claim tried
        else:
            assert claims.empty >= empty + 9        # PostgreSQL cannot tell: each look claims
        job = add_event(store, config, "from another writer")       # nobody calls notify
        wait_for(lambda: job_row(store, job)[0] == "succeeded", HANG, interval=0.02, message="the polled job")
        assert claims.taken == [job]
    finally:
        assert pool.stop(grace=2) == 0


def test_pool_retries_on_its_own_schedule(store: Store, receiver: Receiver) -> None:
    receiver.script = [503]
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    pool = WorkerPool(store, lambda: config, threads=1, redact=Redactor()).start()
    try:
        wait_for(lambda: job_row(store, job_id)[0] == "succeeded", HANG, message="retried job")
        assert job_row(store, job_id)[1] == 2
        assert [a.outcome for a in store.job_attempts(job_id)] == ["retry", "succeeded"]
    finally:
        pool.stop(grace=2)


def two_services(slow_url: str, fast_url: str) -> Config:
    # A timeout and a lease longer than any test waits: a delivery held at the gate never ends as a
    # timed-out try, and no worker wakes for a lease's end.
    return parse_config({"worker": {"backoff": ["50ms"], "max_attempts": 2, "timeout": "2m", "lease": "1h"},
                         "services": {"slow": {"type": "apprise", "url": slow_url, "events": ["slow"]},
                                      "fast": {"type": "apprise", "url": fast_url, "events": ["fast"]}}}, path=None)


def add_kind(store: Store, config: Config, kind: str, title: str) -> int:
    with store.transaction() as tx:
        result = record_event(tx, Event(source="generic", source_type="generic", kind=kind, title=title),
                              config, time.time())
    return result.jobs[0].id


@dataclass
class SlowAndFast:
    """A slow and a fast receiver, a config with a service for each, and a 3-thread pool to start."""

    store: Store
    slow: Receiver
    fast: Receiver
    config: Config
    pool: WorkerPool | None = None

    def start(self) -> WorkerPool:
        self.pool = WorkerPool(self.store, lambda: self.config, threads=3, redact=Redactor()).start()
        return self.pool

    def add(self, kind: str, title: str) -> int:
        return add_kind(self.store, self.config, kind, title)


@pytest.fixture
def slow_and_fast(store: Store) -> Iterator[SlowAndFast]:
    slow, fast = Receiver(), Receiver()
    slow.gate.clear()                            # the slow service's deliveries wait until a test lets them go
    setup = SlowAndFast(store, slow, fast, two_services(slow.json_url, fast.json_url))
    try:
        yield setup
    finally:
        slow.gate.set()
        if setup.pool is not None:
            setup.pool.stop(grace=5)
        slow.close()
        fast.close()


def test_a_slow_service_never_holds_every_worker(slow_and_fast: SlowAndFast) -> None:
    s = slow_and_fast
    slow_jobs = [s.add("slow", f"slow {n}") for n in range(4)]
    pool = s.start()
    wait_for(lambda: s.slow.held >= 2, HANG, interval=0.01, message="two slow deliveries in flight")
    job = s.add("fast", "fast one")
    pool.notify()
    # Done while both slow deliveries are still held: it never waited for one of them.
    wait_for(lambda: job_row(s.store, job)[0] == "succeeded", HANG, interval=0.02, message="the fast job")
    assert s.slow.held == 2 and s.slow.bodies() == [] and s.fast.bodies()[0]["title"] == "fast one"
    assert sorted(job_row(s.store, j)[0] for j in slow_jobs) == ["queued", "queued", "running", "running"]
    s.slow.gate.set()
    wait_for(lambda: all(job_row(s.store, j)[0] == "succeeded" for j in slow_jobs), HANG, message="the slow jobs")
    assert [job_row(s.store, j)[1] for j in slow_jobs] == [1, 1, 1, 1]      # none timed out meanwhile


def test_a_worker_passed_over_by_the_cap_sleeps_instead_of_spinning(slow_and_fast: SlowAndFast,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    s = slow_and_fast
    monkeypatch.setattr(worker, "POLL", HOUR)       # no timer wakes the idle worker: each claim has a cause
    monkeypatch.setattr(worker, "IDLE_WAIT", HOUR)
    claims = ClaimLog(s.store, monkeypatch)
    jobs = [s.add("slow", f"slow {n}") for n in range(4)]
    s.start()
    # Two workers deliver slowly (held at the gate); two slow jobs are due but capped. The third
    # worker's claims find nothing: once, then once per wake-up, and the only ones to come are
    # the two notifies of the two claims that succeeded. A spinning worker claims without end.
    wait_for(lambda: s.slow.held == 2 and claims.empty >= 1, HANG, interval=0.01,
             message="two slow deliveries in flight and the third worker passed over")
    time.sleep(0.5)                  # room to spin; a slower machine spins less, never more
    assert len(claims.taken) == 2 and claims.empty <= 3, (claims.taken, claims.empty)
    s.slow.gate.set()
    # The capped jobs are claimed by the workers whose jobs finish (no poll comes: POLL is an hour).
    wait_for(lambda: all(job_row(s.store, job)[0] == "succeeded" for job in jobs), HANG,
             message="the capped jobs, claimed as the first ones finish")
    assert sorted(claims.taken) == sorted(jobs)


def test_polling_moves_to_an_idle_worker_while_the_poller_is_busy(slow_and_fast: SlowAndFast,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    s = slow_and_fast
    monkeypatch.setattr(worker, "IDLE_WAIT", HOUR)      # only the poller looks for jobs nobody announced
    claims = ClaimLog(s.store, monkeypatch)
    s.start()
    wait_for(lambda: claims.empty >= 3, HANG, interval=0.01, message="all three workers idle")
    s.add("slow", "keeps the poller busy")              # nobody calls notify: only the poller can find it
    wait_for(lambda: s.slow.held == 1, HANG, interval=0.01, message="the poller inside the slow delivery")
    job = s.add("fast", "queued by another process")   # nobody calls notify
    # Found while the poller is still held: another worker took over the polling.
    wait_for(lambda: job_row(s.store, job)[0] == "succeeded", HANG, interval=0.02, message="the polled job")
    assert s.slow.held == 1 and s.slow.bodies() == []


def test_channel_cache_closes_what_the_config_no_longer_has() -> None:
    cache = ChannelCache()
    jf = parse_config({"services": {"jf": {"type": "jellyfin", "url": "http://127.0.0.1:9", "api_key": "k1"}}},
                      path=None).services["jf"]
    first = cache.get(jf, 5)
    assert cache.get(jf, 5) is first
    changed = replace(jf, options={**jf.options, "api_key": "k2"})
    second = cache.get(changed, 5)
    assert second is not first and first.client.is_closed and not second.client.is_closed
    cache.keep_only([])
    assert second.client.is_closed


# -- a store that refuses writes ------------------------------------------------------------------------

class Outage:
    """While `on`, the store's `methods` raise StoreUnavailable, as they do when its files cannot be
    written; `refused` counts the calls turned away. With begin_after_claim, the outage begins the
    moment a claim commits, so it always meets that job mid-delivery."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch, *methods: str,
                 begin_after_claim: bool = False) -> None:
        self.on = False
        self.refused: Counter[str] = Counter()
        self._begin_after_claim = begin_after_claim
        for name in methods:
            monkeypatch.setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self.on:
                self.refused[name] += 1
                raise StoreUnavailable("the database cannot be written (disk I/O error)")
            result = real(*args, **kwargs)
            if name == "claim" and self._begin_after_claim and result is not None:
                self.on, self._begin_after_claim = True, False
            return result
        return call


def worker_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "notifyd.worker" and r.levelno >= logging.WARNING]


def test_an_outcome_the_store_refuses_for_a_moment_is_recorded_when_it_answers(
        store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    claimed = claim(store, config)
    outage = Outage(store, monkeypatch, "finish")
    outage.on = True
    waits: list[float] = []

    def pause(seconds: float) -> None:
        waits.append(seconds)
        outage.on = len(waits) < 2                      # refused twice, then the store answers

    outcome = run_job(claimed, JobContext(store, config, ChannelCache()), Redactor(), pause=pause)
    assert outcome.state == "succeeded" and waits == list(RECORD_RETRIES[:2])
    assert job_row(store, job_id)[:2] == ("succeeded", 1) and len(receiver.bodies()) == 1


@pytest.mark.parametrize("status", [200, 500])
def test_an_outcome_the_store_will_not_take_gives_the_job_back_and_is_never_reported_sent(
        store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        status: int) -> None:
    receiver.default_status = status
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    claimed = claim(store, config)
    outage = Outage(store, monkeypatch, "finish")
    outage.on = True
    waits: list[float] = []
    seen: list[str] = []
    caplog.set_level(logging.INFO, logger="notifyd.worker")
    outcome = run_job(claimed, JobContext(store, config, ChannelCache()), Redactor(), pause=waits.append,
                      observe=lambda service, result, seconds: seen.append(result))
    assert outcome.state == "released" and waits == list(RECORD_RETRIES)
    assert outcome.state != "succeeded" and seen == ["unrecorded"]
    assert job_row(store, job_id)[:2] == ("queued", 0) and store.job_attempts(job_id) == []
    [warning] = [w for w in worker_warnings(caplog) if "disk I/O error" in w]   # one line for the job, none per try
    assert ("sent, but the store could not record it" if status == 200 else "failed (")in warning
    assert "given back to the queue" in warning and "disk I/O error" in warning
    assert not [r for r in caplog.records if r.getMessage().startswith(f"job {job_id} sink attempt 1/2 sent (")]
    again = claim(store, config)                        # at least once: it is delivered again
    assert again.job.id == job_id and again.job.attempts == 1


def test_a_job_whose_release_is_refused_too_is_given_back_once_the_store_answers(
        store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Two threads: one job of a service at a time. A lease of an hour: the job can only come back
    # by being given back, never by its lease ending.
    config = make_config(receiver.json_url, lease="1h")
    first, second = add_event(store, config, "first"), add_event(store, config, "second")
    outage = Outage(store, monkeypatch, "claim", "finish", "release", "extend", begin_after_claim=True)
    seen: list[str] = []
    caplog.set_level(logging.INFO, logger="notifyd.worker")
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor(),
                      observe=lambda service, result, seconds: seen.append(result)).start()
    try:
        # The first job is sent while the store refuses writes: its outcome, then its release, are refused,
        # and the claim loop keeps trying to give it back.
        wait_for(lambda: outage.refused["release"] >= 2, HANG, message="a give-back retried by the claim loop")
        assert job_row(store, first)[0] == "running" and job_row(store, second)[0] == "queued"
        outage.on = False
        # Given back (its lease has most of an hour to run), sent again, and the service's next job follows.
        wait_for(lambda: job_row(store, first)[0] == job_row(store, second)[0] == "succeeded", HANG,
                 message="both jobs sent")
    finally:
        pool.stop(grace=2)
    assert job_row(store, first)[1] == 1                 # the refused attempt was not counted
    assert "lost" not in [a.outcome for a in store.job_attempts(first)]     # given back, not taken back
    assert sorted(b["title"] for b in receiver.bodies()) == ["first", "first", "second"]
    assert seen.count("unrecorded") == 1 and seen.count("succeeded") == 2
    warnings = [w for w in worker_warnings(caplog) if "disk I/O error" in w]   # not another test's leftover thread
    assert sum(w.startswith(f"job {first} sink") and "could not record it" in w for w in warnings) == 1
    assert sum(w.startswith("store unavailable") for w in warnings) == 1


def test_a_store_that_refuses_claims_is_backed_off_whatever_wakes_the_pool_and_logged_once(
        store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(worker, "STORE_BACKOFF", (HOUR,))    # a backoff that only stop() may end
    config = make_config(receiver.json_url)
    add_event(store, config)
    outage = Outage(store, monkeypatch, "claim")
    outage.on = True
    caplog.set_level(logging.INFO, logger="notifyd.worker")
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor()).start()
    try:
        wait_for(lambda: outage.refused["claim"] >= 2, HANG, message="one refused claim per thread")
        for _ in range(50):                               # being told of new work must not end a backoff
            pool.notify()
            time.sleep(0.01)
        assert outage.refused["claim"] == 2               # each thread still in its first backoff
    finally:
        pool.stop(grace=2)
    [warning] = [w for w in worker_warnings(caplog) if "disk I/O error" in w]
    assert warning.startswith("store unavailable")
    assert not [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], StoreUnavailable)]  # no traceback


def test_a_store_that_refuses_claims_is_tried_again_until_it_answers(
        store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    outage = Outage(store, monkeypatch, "claim")
    outage.on = True
    caplog.set_level(logging.INFO, logger="notifyd.worker")
    pool = WorkerPool(store, lambda: config, threads=2, redact=Redactor()).start()
    try:
        wait_for(lambda: outage.refused["claim"] >= 3, HANG, message="claims refused, and tried again")
        outage.on = False                                 # nobody calls notify: the backoff's end brings the claim
        wait_for(lambda: job_row(store, job_id)[0] == "succeeded", HANG, message="the job, once the store answers")
    finally:
        pool.stop(grace=2)
    assert job_row(store, job_id)[:2] == ("succeeded", 1) and len(receiver.bodies()) == 1
    assert sum(w.startswith("store unavailable") for w in worker_warnings(caplog)) == 1
    assert any(r.getMessage().startswith("store available again") for r in caplog.records)


def test_every_outage_is_logged_even_with_an_empty_queue(
        store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    config = make_config(receiver.json_url)
    outage = Outage(store, monkeypatch, "claim")
    caplog.set_level(logging.INFO, logger="notifyd.worker")
    pool = WorkerPool(store, lambda: config, threads=1, redact=Redactor()).start()
    try:
        for n in (1, 2):
            outage.on = True
            pool.notify()
            wait_for(lambda n=n: sum(w.startswith("store unavailable") for w in worker_warnings(caplog)) == n,
                     10, message=f"outage {n} logged")
            outage.on = False
            pool.notify()
            wait_for(lambda n=n: sum(r.getMessage().startswith("store available again")
                                     for r in caplog.records) == n, 10, message=f"the end of outage {n} logged")
    finally:
        pool.stop(grace=2)


def test_an_outcome_whose_refusal_was_written_after_all_is_not_reported_lost(
        store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(receiver.json_url)
    job_id = add_event(store, config)
    claimed = claim(store, config)
    real_finish = store.finish
    calls: list[int] = []

    def finish_whose_answer_is_lost(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        result = real_finish(*args, **kwargs)
        if len(calls) == 1:                       # committed, but the caller hears an error
            raise StoreUnavailable("the connection was lost")
        return result

    monkeypatch.setattr(store, "finish", finish_whose_answer_is_lost)
    outcome = run_job(claimed, JobContext(store, config, ChannelCache()), Redactor(), pause=lambda s: None)
    assert outcome.state == "succeeded" and len(calls) == 2
    assert job_row(store, job_id)[:2] == ("succeeded", 1)
