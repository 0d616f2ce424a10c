"""Workers: threads that claim due jobs, run them through the handler of their kind, and record
the outcome.

They sleep until the next job is due, a lease expires, or they are told new work arrived (by
this process's listener, or by the store when another node enqueues); a job enqueued by another
process that the store cannot announce (the CLI on SQLite) is seen within POLL seconds.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable

from notifyd.backoff import RetryPolicy
from notifyd.config import Config
from notifyd.errors import (
    DeliveryError,
    NotFound,
    PermanentError,
    ReceiverGone,
    Skipped,
    StoreUnavailable,
    TransientError,
)
from notifyd.fanout import CALLBACK_SERVICE
from notifyd.job_handlers import HANDLERS, ChannelCache, JobContext
from notifyd.logs import Redactor
from notifyd.model import Claim, Outcome
from notifyd.outcomes import failed, record_outcome, skipped, succeeded
from notifyd.store import Store
from notifyd.units import format_duration

log = logging.getLogger("notifyd.worker")
POLL = 1.0          # how soon the idle poller sees a job another process (the CLI) queued
IDLE_WAIT = 30.0    # the other idle workers sleep until told, or until a job is due


Observer = Callable[[str, str, "float | None"], None]     # service, outcome, seconds


def _ignore(service: str, outcome: str, seconds: float | None) -> None:
    pass


def run_job(claim: Claim, ctx: JobContext, redact: Redactor, *, policy: RetryPolicy | None = None,
            observe: Observer = _ignore, rand: Callable[[], float] = random.random) -> Outcome:
    """Run one claimed job through its kind's handler and record the outcome: sent, retry, dead
    or skipped. A 410 Gone switches the service off."""
    job = claim.job
    policy = policy or RetryPolicy(ctx.config.worker.backoff)
    handler = HANDLERS.get(job.kind)
    started = time.monotonic()
    try:
        if handler is None:
            raise PermanentError(f"no handler for jobs of kind {job.kind!r}")
        detail = handler(job, ctx)
    except Skipped as exc:
        reason = redact(exc.error)
        outcome = record_outcome(ctx.store, claim, skipped(reason), ctx.clock())
        log.info("job %d %s skipped: %s", job.id, job.service, reason)
        observe(job.service, "skipped", None)
        return outcome
    except NotFound as exc:
        error: DeliveryError = PermanentError(str(exc))
    except DeliveryError as exc:
        error = exc
    except StoreUnavailable as exc:                 # reading its event or run failed: try again later
        error = TransientError(f"the store could not be read: {exc}")
    except Exception as exc:  # a bug in a channel: keep the job, log the trace, try again later
        log.exception("job %d %s: unexpected error", job.id, job.service)
        error = TransientError(f"internal error: {type(exc).__name__}: {exc}")
    else:
        elapsed = time.monotonic() - started
        outcome = record_outcome(ctx.store, claim, succeeded(redact(detail)), ctx.clock())
        log.info("job %d %s attempt %d/%d sent (%s)", job.id, job.service, outcome.attempt,
                 outcome.max_attempts, format_duration(elapsed))
        observe(job.service, "succeeded", elapsed)
        return outcome
    elapsed = time.monotonic() - started
    error.error = redact(error.error)
    error.detail = redact(error.detail)
    if isinstance(error, ReceiverGone) and job.service != CALLBACK_SERVICE:
        ctx.store.disable_service(job.service, error.error, ctx.clock())
        log.error("service %s switched off: %s (`notifyd services enable %s` switches it back on)",
                  job.service, error.error, job.service)
    outcome = record_outcome(ctx.store, claim, failed(job, error, policy, ctx.clock(), rand), ctx.clock())
    observe(job.service, {"queued": "retry"}.get(outcome.state, outcome.state), elapsed)
    if outcome.state == "queued":
        log.warning("job %d %s attempt %d/%d failed: %s, retry in %s", job.id, job.service, outcome.attempt,
                    outcome.max_attempts, error.error, format_duration(outcome.retry_in or 0))
    elif outcome.state == "dead":
        log.error("job %d %s attempt %d/%d failed: %s; dead", job.id, job.service, outcome.attempt,
                  outcome.max_attempts, error.error)
    else:
        log.warning("job %d %s: lease lost before the outcome was recorded", job.id, job.service)
    return outcome


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
        self._running_lock = threading.Lock()
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
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        leftover = self.running()
        for claim in leftover:
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
            with self._running_lock:
                running = Counter(c.job.service for c in self._running.values())
            busy = [service for service, n in running.items() if n >= self.per_service]
            claim = self.store.claim(self.clock(), config.worker.lease, passed_over=busy)
            if claim is not None:
                with self._running_lock:
                    self._running[claim.job.id] = claim
        return claim

    def _work(self) -> None:
        me = threading.current_thread().name
        seen_config: Config | None = None
        channels = ChannelCache()
        while not self._stopping:
            seen = self._signal
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
                    try:
                        run_job(claim, JobContext(self.store, config, channels, self.clock), self.redact,
                                observe=self.observe)
                    finally:
                        with self._running_lock:
                            self._running.pop(claim.job.id, None)
                    continue
                wait = self.store.next_wakeup(self.clock())
                if wait == 0:
                    # Something is due that claim did not give us: mostly a service already at its
                    # cap (the worker that finishes one of its jobs claims the next). Re-claiming at
                    # once would spin; sleep until told, or the poller's POLL picks up the rest (a
                    # job due a moment after our claim, a lease the once-a-second check had not
                    # expired yet) within a second or two.
                    wait = None
            except StoreUnavailable as exc:
                log.warning("worker: store unavailable: %s", exc)
                wait = POLL
            except Exception:
                log.exception("worker loop error")
                wait = POLL
            with self._cond:
                if self._signal == seen and not self._stopping:
                    if self._poller is None:
                        self._poller = me
                    limit = POLL if self._poller == me else IDLE_WAIT
                    self._cond.wait(min(wait if wait is not None else limit, limit))

    def _keep_leases(self) -> None:
        while not self._keeper_stop.wait(self.config().worker.lease / 3):
            claims = self.running()
            if not claims:
                continue
            try:
                self.store.extend(claims, self.clock() + self.config().worker.lease)
            except StoreUnavailable as exc:
                log.warning("lease keeper: store unavailable: %s", exc)
