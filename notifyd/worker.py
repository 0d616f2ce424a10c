"""Workers: threads that claim due jobs, run them through the handler of their kind, and record
the outcome.

They sleep until the next job is due, a lease expires, or they are told new work arrived (by
this process's listener, or by the store when another node enqueues); a job enqueued by another
process that the store cannot announce (the CLI on SQLite) is seen within POLL seconds.

A store that refuses writes (a full disk, files briefly unwritable) costs a job seconds, not its
lease: its outcome is tried again for RECORD_WINDOW seconds, then the job is given back to the
queue, or, if even that fails, given back by the claim loop as soon as the store answers. The
claim loop and the lease keeper back off on store errors, and the outage is logged once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from notifyd.backoff import RetryPolicy
from notifyd.config import Config
from notifyd.errors import (
    Deferred,
    DeliveryError,
    NotFound,
    PermanentError,
    ReceiverGone,
    Skipped,
    StoreUnavailable,
    TransientError,
)
from notifyd.fanout import CALLBACK_SERVICE
from notifyd.job_handlers import HANDLERS, ChannelCache, JobContext, retry_due
from notifyd.logs import Redactor
from notifyd.model import Claim, Finish, JobState, Outcome
from notifyd.outcomes import failed, record_outcome, skipped, succeeded
from notifyd.store import Store
from notifyd.units import format_duration

log = logging.getLogger("notifyd.worker")
POLL = 1.0          # how soon the idle poller sees a job another process (the CLI) queued
IDLE_WAIT = 30.0    # the other idle workers sleep until told, or until a job is due
RECORD_RETRIES = (0.5, 1.0, 2.0)   # waits before recording a refused outcome again, then the job is given back
RECORD_WINDOW = 4.0     # …no new try once this has passed (a try itself may wait out a lock's 5 s busy timeout)
STORE_BACKOFF = (0.5, 1.0, 2.0, 4.0)   # the claim loop's and lease keeper's waits after store errors, then the last


Observer = Callable[[str, str, "float | None"], None]     # service, outcome, seconds


def _ignore(service: str, outcome: str, seconds: float | None) -> None:
    pass


def run_job(claim: Claim, ctx: JobContext, redact: Redactor, *, policy: RetryPolicy | None = None,
            observe: Observer = _ignore, rand: Callable[[], float] = random.random,
            pause: Callable[[float], None] = time.sleep) -> Outcome:
    """Run one claimed job through its kind's handler and record the outcome: sent, retry, dead
    or skipped. A 410 Gone switches the service off. Store errors never escape: an outcome the
    store will not take leaves the job "released" (queued again, this attempt not counted) or,
    if even that fails, "unrecorded" (the caller gives it back later; its lease is the last resort)."""
    job = claim.job
    policy = policy or RetryPolicy(ctx.config.worker.backoff)
    handler = HANDLERS.get(job.kind)
    started = time.monotonic()
    finish: Finish | None = None
    error: DeliveryError | None = None
    try:
        if handler is None:
            raise PermanentError(f"no handler for jobs of kind {job.kind!r}")
        detail = handler(job, ctx)
    except Deferred as exc:
        return _defer(claim, ctx, exc, observe)
    except Skipped as exc:
        finish = skipped(redact(exc.error))
    except NotFound as exc:
        error = PermanentError(str(exc))
    except DeliveryError as exc:
        error = exc
    except StoreUnavailable as exc:                 # reading its event or run failed: try again later
        error = TransientError(f"the store could not be read: {exc}")
    except Exception as exc:  # a bug in a channel: keep the job, log the trace, try again later
        log.exception("job %d %s: unexpected error", job.id, job.service)
        error = TransientError(f"internal error: {type(exc).__name__}: {exc}")
    else:
        finish = succeeded(redact(detail))
    elapsed = time.monotonic() - started
    now = ctx.clock()
    if error is not None:
        error.error = redact(error.error)
        error.detail = redact(error.detail)
        if isinstance(error, ReceiverGone) and job.service != CALLBACK_SERVICE:
            _switch_off(ctx, job.service, error.error, now)
        finish = failed(job, error, policy, now, rand)
        if finish.run_at is not None:
            try:
                finish = replace(finish, run_at=retry_due(job, ctx, finish.run_at))
            except Exception:     # a bug here must not end the worker: the retry keeps its backoff time
                log.exception("job %d %s: placing its retry after quiet hours failed", job.id, job.service)
    assert finish is not None
    outcome, refused = _record(ctx.store, claim, finish, now, pause)
    _report(claim, finish, outcome, error, elapsed, refused, observe)
    return outcome


def _defer(claim: Claim, ctx: JobContext, deferred: Deferred, observe: Observer) -> Outcome:
    """Give the job back unfinished, due when its service's quiet hours end, the attempt not counted.
    A store that will not take it leaves it "unrecorded" (given back later; its lease the last resort)."""
    job = claim.job
    now = ctx.clock()
    try:
        state = "deferred" if ctx.store.release(claim, run_at=deferred.until) else "lost"
    except StoreUnavailable as exc:
        log.warning("job %d %s: %s, but the store could not give it back: %s", job.id, job.service, deferred, exc)
        return Outcome("unrecorded", job.attempts, job.max_attempts)
    if state == "deferred":
        log.info("job %d %s waits: %s, due in %s", job.id, job.service, deferred,
                 format_duration(max(0.0, deferred.until - now)))
        observe(job.service, "deferred", None)
    return Outcome(state, job.attempts - 1, job.max_attempts, retry_in=deferred.until - now)


def _switch_off(ctx: JobContext, service: str, reason: str, now: float) -> None:
    try:
        ctx.store.disable_service(service, reason, now)
    except StoreUnavailable as exc:     # the job is dead all the same; the next 410 tries again
        log.error("service %s answered 410 Gone (%s) but cannot be switched off: %s", service, reason, exc)
        return
    log.error("service %s switched off: %s (`notifyd services enable %s` switches it back on)",
              service, reason, service)


def _record(store: Store, claim: Claim, finish: Finish, now: float,
            pause: Callable[[float], None]) -> tuple[Outcome, StoreUnavailable | None]:
    """Record the outcome, trying again after each of RECORD_RETRIES while the store refuses it
    (within RECORD_WINDOW); then give the job back. Returns the outcome, and the store's last
    refusal when the outcome could not be recorded."""
    deadline = time.monotonic() + RECORD_WINDOW
    waits = iter(RECORD_RETRIES)
    refused: StoreUnavailable | None = None
    while True:
        try:
            outcome = record_outcome(store, claim, finish, now)
        except StoreUnavailable as exc:
            refused = exc
        else:
            if outcome.state == "lost" and refused is not None and _recorded(store, claim, finish):
                # A refusal whose write went through after all (a commit whose answer was lost).
                outcome = Outcome(str(finish.state), outcome.attempt, outcome.max_attempts,
                                  retry_in=finish.run_at - now if finish.run_at is not None else None)
            return outcome, None
        wait = next(waits, None)
        if wait is None or time.monotonic() + wait > deadline:
            break
        pause(wait)
    job = claim.job
    try:
        state = "released" if store.release(claim) else "lost"
    except StoreUnavailable:
        state = "unrecorded"
    return Outcome(state, job.attempts, job.max_attempts), refused


def _recorded(store: Store, claim: Claim, finish: Finish) -> bool:
    try:
        return any(a.id == claim.attempt_id and a.outcome == finish.outcome for a in store.job_attempts(claim.job.id))
    except StoreUnavailable:
        return False


def _report(claim: Claim, finish: Finish, outcome: Outcome, error: DeliveryError | None, elapsed: float,
            refused: StoreUnavailable | None, observe: Observer) -> None:
    """One log line for the attempt, and its outcome for the metrics."""
    job = claim.job
    attempt = f"attempt {outcome.attempt}/{outcome.max_attempts}"
    if refused is not None:
        what = ("sent" if finish.state == JobState.SUCCEEDED else
                f"failed ({error.error})" if error is not None else f"skipped ({finish.error})")
        then = {"released": "given back to the queue, it will run again",
                "unrecorded": "it could not be given back either; it will be once the store answers, "
                              "or when its lease ends",
                "lost": "its lease had already been taken back"}[outcome.state]
        log.warning("job %d %s %s %s, but the store could not record it: %s; %s", job.id, job.service,
                    attempt, what, refused, then)
        observe(job.service, "unrecorded", elapsed)
    elif outcome.state == "lost":
        log.warning("job %d %s: lease lost before the outcome was recorded", job.id, job.service)
        observe(job.service, "lost", elapsed)
    elif outcome.state == "skipped":
        log.info("job %d %s skipped: %s", job.id, job.service, finish.error)
        observe(job.service, "skipped", None)
    elif outcome.state == "succeeded":
        log.info("job %d %s %s sent (%s)", job.id, job.service, attempt, format_duration(elapsed))
        observe(job.service, "succeeded", elapsed)
    elif outcome.state == "queued":
        assert error is not None
        log.warning("job %d %s %s failed: %s, retry in %s", job.id, job.service, attempt, error.error,
                    format_duration(outcome.retry_in or 0))
        observe(job.service, "retry", elapsed)
    else:
        assert error is not None
        log.error("job %d %s %s failed: %s; dead", job.id, job.service, attempt, error.error)
        observe(job.service, outcome.state, elapsed)


class _Outage:
    """Whether the store refuses this pool's writes: logged once when first met and once when a
    write works again, however many threads keep trying in between."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def failed(self, exc: StoreUnavailable) -> None:
        with self._lock:
            first = self._since is None
            if first:
                self._since = time.monotonic()
        if first:
            log.warning("store unavailable: %s (workers retry with a backoff, quietly, until it answers)", exc)
        else:
            log.debug("store still unavailable: %s", exc)

    def over(self) -> None:
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.info("store available again after %s", format_duration(time.monotonic() - since))


def _backoff(failures: int) -> float:
    return STORE_BACKOFF[min(failures, len(STORE_BACKOFF)) - 1]


class WorkerPool:
    """N delivery threads and one lease keeper, woken by `notify` or by the clock."""

    def __init__(self, store: Store, config: Callable[[], Config], threads: int, redact: Redactor,
                 clock: Callable[[], float] = time.time, observe: Observer = _ignore) -> None:
        self.store = store
        self.observe = observe
        self.config = config
        self.redact = redact
        self.clock = clock
        self.thread_count = threads
        # A slow or failing service may hold all but one thread, so the others' jobs keep moving.
        self.per_service = max(1, threads - 1)
        self._cond = threading.Condition()
        self._signal = 0
        self._poller: str | None = None     # the one idle worker that looks for other writers' jobs
        self._stopping = False
        self._running: dict[int, Claim] = {}
        self._unreleased: list[Claim] = []     # done here, but neither recorded nor given back yet
        self._running_lock = threading.Lock()
        self._outage = _Outage()
        self._claim_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._keeper_stop = threading.Event()

    def start(self) -> WorkerPool:
        for n in range(self.thread_count):
            thread = threading.Thread(target=self._work, name=f"notifyd-worker-{n + 1}", daemon=True)
            thread.start()
            self._threads.append(thread)
        keeper = threading.Thread(target=self._keep_leases, name="notifyd-lease-keeper", daemon=True)
        keeper.start()
        self._threads.append(keeper)
        return self

    def notify(self, count: int = 1) -> None:
        """New jobs are queued: wake the idle workers."""
        with self._cond:
            self._signal += 1
            self._cond.notify_all()

    def alive(self) -> bool:
        """Every thread this pool started is still running (a dead one means a bug: let systemd restart us)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def running(self) -> list[Claim]:
        with self._running_lock:
            return list(self._running.values())

    def stop(self, grace: float = 10.0) -> int:
        """Stop claiming, let running jobs finish within `grace` seconds, give the rest back.
        Returns how many leases were given back unfinished."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._keeper_stop.set()
        waiting = len(self.running())
        if waiting:
            log.info("waiting up to %s for %d running job(s)", format_duration(grace), waiting)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        leftover = self.running()
        with self._running_lock:
            unreleased, self._unreleased = self._unreleased, []
        for claim in leftover + unreleased:
            try:
                if self.store.release(claim):
                    log.warning("job %d %s given back unfinished at shutdown", claim.job.id, claim.job.service)
            except StoreUnavailable as exc:
                log.warning("job %d %s: cannot give it back (%s); its lease will expire", claim.job.id,
                            claim.job.service, exc)
        return len(leftover)

    def _claim(self, config: Config) -> Claim | None:
        """The next due job, passing over services that hold `per_service` of this pool's threads.

        This pool's claims take turns, so two threads cannot both see a service one job under
        its cap and both take one; the cap is this pool's own, so every node adds capacity."""
        with self._claim_lock:
            self._give_back()
            with self._running_lock:
                running = Counter(c.job.service for c in self._running.values())
            busy = [service for service, n in running.items() if n >= self.per_service]
            claim = self.store.claim(self.clock(), config.worker.lease, passed_over=busy)
            self._outage.over()             # the store answered, with a job or without
            if claim is not None:
                with self._running_lock:
                    self._running[claim.job.id] = claim
        return claim

    def _give_back(self) -> None:
        """Give back the jobs whose outcome the store refused and whose release failed then too,
        now that it may answer (a StoreUnavailable here makes the claim loop back off, as a claim's would)."""
        with self._running_lock:
            pending = list(self._unreleased)
        for claim in pending:
            try:
                released = self.store.release(claim)
            except StoreUnavailable:
                raise                       # still down: the claim loop backs off and comes back
            except Exception:               # anything else would stall every claim: its lease is the last resort
                log.exception("job %d %s: cannot be given back; its lease will bring it back", claim.job.id,
                              claim.job.service)
                released = False
            self._outage.over()
            with self._running_lock:
                self._unreleased.remove(claim)
            if released:
                log.info("job %d %s given back to the queue now that the store answers", claim.job.id,
                         claim.job.service)

    def _work(self) -> None:
        me = threading.current_thread().name
        seen_config: Config | None = None
        channels = ChannelCache()
        failures = 0                        # store errors in a row, for the backoff
        quiet_until = 0.0                   # (self.clock) nothing falls due before this but a change
        idle_look = False                   # this turn is the idle poller's timed look, not a wake-up
        while not self._stopping:
            seen = self._signal
            wait: float | None = None
            if idle_look and self.clock() < quiet_until and not self._store_changed():
                # Nothing committed since the last look and nothing due yet: no claim to try (an
                # idle daemon stays near 0 % CPU; a job another process queues is a change).
                wait = quiet_until - self.clock() if quiet_until != float("inf") else None
            else:
                try:
                    config = self.config()
                    if config is not seen_config:
                        channels.keep_only(config.services)
                        seen_config = config
                    claim = self._claim(config)
                    if claim is not None:
                        with self._cond:
                            if self._poller == me:
                                self._poller = None     # busy now: an idle peer takes over polling
                        self.notify()                   # there may be more: let idle peers look too
                        failures = 0
                        try:
                            outcome = run_job(claim, JobContext(self.store, config, channels, self.clock),
                                              self.redact, observe=self.observe)
                        finally:
                            with self._running_lock:
                                self._running.pop(claim.job.id, None)
                        if outcome.state == "unrecorded":
                            with self._running_lock:
                                self._unreleased.append(claim)
                        continue
                    failures = 0
                    now = self.clock()
                    wait = self.store.next_wakeup(now)
                    quiet_until = float("inf") if wait is None else now + wait
                    if wait == 0:
                        # Something is due that claim did not give us: mostly a service already at its
                        # cap (the worker that finishes one of its jobs claims the next). Re-claiming at
                        # once would spin; sleep until told, or the poller's POLL picks up the rest (a
                        # job due a moment after our claim, a lease the once-a-second check had not
                        # expired yet) within a second or two.
                        wait = None
                except StoreUnavailable as exc:
                    failures += 1
                    self._outage.failed(exc)
                except Exception:
                    failures += 1
                    log.exception("worker loop error")
            if failures:
                # Back off whatever wakes us: new work cannot be claimed from a store that refuses writes.
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, _backoff(failures))
                continue
            with self._cond:
                if self._signal == seen and not self._stopping:
                    if self._poller is None:
                        self._poller = me
                    limit = POLL if self._poller == me else IDLE_WAIT
                    self._cond.wait(min(wait if wait is not None else limit, limit))
                    idle_look = self._poller == me and self._signal == seen
                else:
                    idle_look = False

    def _store_changed(self) -> bool:
        """Whether another writer may have committed since this thread last asked (True when the
        store cannot tell, or cannot be asked: then the claim finds out)."""
        try:
            return self.store.changed()
        except Exception:
            return True

    def _keep_leases(self) -> None:
        failures = 0
        # After a refused extension, try again soon: the next regular turn may come after the lease ends.
        while not self._keeper_stop.wait(min(self.config().worker.lease / 3,
                                             _backoff(failures) if failures else float("inf"))):
            claims = self.running()
            if not claims:
                failures = 0
                continue
            try:
                self.store.extend(claims, self.clock() + self.config().worker.lease)
            except StoreUnavailable as exc:
                failures += 1
                self._outage.failed(exc)
            else:
                failures = 0
                self._outage.over()
