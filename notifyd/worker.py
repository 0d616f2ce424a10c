"""Workers: threads that claim due jobs, deliver them through their channel, and record the outcome.

They sleep until the next job is due, a lease expires, or they are told new work arrived; a job
enqueued by another process (the CLI) is seen within POLL seconds.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable, Iterable

from notifyd.backoff import RetryPolicy
from notifyd.channels import CHANNEL_TYPES, load_channel
from notifyd.channels.base import Channel
from notifyd.config import Config, ServiceConfig
from notifyd.errors import DeliveryError, NotFound, PermanentError, StoreUnavailable, TransientError
from notifyd.channels.webhook import ReceiverGone, deliver_run_callback
from notifyd.fanout import CALLBACK_SERVICE
from notifyd.history import load_event
from notifyd.logs import Redactor
from notifyd.queue import Claim, JobQueue, Outcome
from notifyd.retention import EVERY as RETENTION_EVERY
from notifyd.retention import KIND as RETENTION_KIND
from notifyd.retention import retention_detail, schedule_retention
from notifyd.store import Store
from notifyd.units import format_duration

log = logging.getLogger("notifyd.worker")
POLL = 1.0          # how soon the idle poller sees a job another process (the CLI) queued
IDLE_WAIT = 30.0    # the other idle workers sleep until told, or until a job is due


class ChannelCache:
    """One channel object per service, rebuilt when that service's config changes."""

    def __init__(self) -> None:
        self._channels: dict[str, tuple[str, Channel]] = {}

    def get(self, service: ServiceConfig, timeout: float) -> Channel:
        key = json.dumps([service.type, dict(service.options), timeout], sort_keys=True, default=str)
        cached = self._channels.get(service.name)
        if cached is None or cached[0] != key:
            if cached is not None:
                _close(cached[1])
            channel_class = load_channel(CHANNEL_TYPES[service.type])
            cached = (key, channel_class(service, timeout))
            self._channels[service.name] = cached
        return cached[1]

    def keep_only(self, names: "Iterable[str]") -> None:
        """Close the channels of services no longer configured (their connections, their sockets)."""
        wanted = set(names)
        for name in [n for n in self._channels if n not in wanted]:
            _close(self._channels.pop(name)[1])


def _close(channel: Channel) -> None:
    close = getattr(channel, "close", None)
    if close is not None:
        close()


Observer = Callable[[str, str, "float | None"], None]     # service, outcome, seconds


def _ignore(service: str, outcome: str, seconds: float | None) -> None:
    pass


def run_maintenance(claim: Claim, queue: JobQueue, config: Config) -> Outcome:
    """The retention job: purge in bounded batches, record what it removed, schedule the next run."""
    started = time.monotonic()
    purged = queue.purge_by_retention(config.store.keep_succeeded, config.store.keep_dead)
    outcome = queue.succeed(claim, retention_detail(purged, config.store.keep_succeeded, config.store.keep_dead))
    schedule_retention(queue.db, delay=RETENTION_EVERY)
    log.info("job %d retention: purged %d finished job(s) in %s", claim.job.id, purged,
             format_duration(time.monotonic() - started))
    return outcome


def deliver_claim(claim: Claim, queue: JobQueue, config: Config, channels: ChannelCache,
                  redact: Redactor, observe: Observer = _ignore) -> Outcome:
    """Run one claimed job to an outcome and record it: sent, retry, dead or skipped."""
    job = claim.job
    if job.kind == RETENTION_KIND:
        return run_maintenance(claim, queue, config)
    if job.service == CALLBACK_SERVICE:
        return _deliver(claim, queue, redact, observe,
                        lambda: deliver_run_callback(job, queue.db, config, config.worker.timeout))
    service = config.services.get(job.service)
    gone = queue.service_disabled(job.service)
    if service is None or not service.enabled or gone:
        reason = ("service removed from the config" if service is None
                  else f"service switched off: {gone}" if gone else "service disabled")
        outcome = queue.skip(claim, reason)
        log.info("job %d %s skipped: %s", job.id, job.service, reason)
        observe(job.service, "skipped", None)
        return outcome
    def send() -> str:
        stored = load_event(queue.db, job.event_id) if job.event_id is not None else None
        if stored is None:
            raise PermanentError("the job has no event to deliver")
        return channels.get(service, config.worker.timeout).deliver(job, stored)

    return _deliver(claim, queue, redact, observe, send)


def _deliver(claim: Claim, queue: JobQueue, redact: Redactor, observe: Observer, send: Callable[[], str]) -> Outcome:
    """Run `send`, then record and log the outcome; a 410 Gone switches the service off."""
    job = claim.job
    started = time.monotonic()
    try:
        detail = send()
    except NotFound as exc:
        error: DeliveryError = PermanentError(str(exc))
    except DeliveryError as exc:
        error = exc
    except Exception as exc:  # a bug in a channel: keep the job, log the trace, try again later
        log.exception("job %d %s: unexpected error", job.id, job.service)
        error = TransientError(f"internal error: {type(exc).__name__}: {exc}")
    else:
        elapsed = time.monotonic() - started
        outcome = queue.succeed(claim, redact(detail))
        log.info("job %d %s attempt %d/%d sent (%s)", job.id, job.service, outcome.attempt,
                 outcome.max_attempts, format_duration(elapsed))
        observe(job.service, "succeeded", elapsed)
        return outcome
    elapsed = time.monotonic() - started
    error.error = redact(error.error)
    error.detail = redact(error.detail)
    if isinstance(error, ReceiverGone) and job.service != CALLBACK_SERVICE:
        queue.disable_service(job.service, error.error)
        log.error("service %s switched off: %s (`notifyd services enable %s` switches it back on)",
                  job.service, error.error, job.service)
    outcome = queue.fail(claim, error)
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
        self._threads: list[threading.Thread] = []
        self._keeper_stop = threading.Event()

    def start(self) -> "WorkerPool":
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
        if leftover:
            db = self.store.connect()
            try:
                queue = JobQueue(db)
                for claim in leftover:
                    if queue.release(claim):
                        log.warning("job %d %s given back unfinished at shutdown", claim.job.id, claim.job.service)
            finally:
                db.close()
        return len(leftover)

    def _queue(self, db, config: Config, queue: JobQueue | None = None) -> JobQueue:
        """This thread's queue, following the current config's backoff and lease length."""
        if queue is None or queue.db is not db:
            queue = JobQueue(db, clock=self.clock)
        queue.policy = RetryPolicy(config.worker.backoff)
        queue.lease = config.worker.lease
        return queue

    def _work(self) -> None:
        me = threading.current_thread().name
        seen_config: Config | None = None
        db = None
        queue: JobQueue | None = None
        channels = ChannelCache()
        while not self._stopping:
            seen = self._signal
            try:
                if db is None:
                    db = self.store.connect()
                config = self.config()
                if config is not seen_config:
                    channels.keep_only(config.services)
                    seen_config = config
                queue = self._queue(db, config, queue)
                claim = queue.claim(per_service=self.per_service)
                if claim is not None:
                    with self._cond:
                        if self._poller == me:
                            self._poller = None     # busy now: an idle peer takes over polling
                    self.notify()                   # there may be more: let idle peers look too
                    with self._running_lock:
                        self._running[claim.job.id] = claim
                    try:
                        deliver_claim(claim, queue, config, channels, self.redact, self.observe)
                    finally:
                        with self._running_lock:
                            self._running.pop(claim.job.id, None)
                    continue
                wait = queue.next_wakeup()
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
        if db is not None:
            db.close()

    def _keep_leases(self) -> None:
        db = None
        while not self._keeper_stop.wait(self.config().worker.lease / 3):
            claims = self.running()
            if not claims:
                continue
            try:
                if db is None:
                    db = self.store.connect()
                self._queue(db, self.config()).extend(claims)
            except StoreUnavailable as exc:
                log.warning("lease keeper: store unavailable: %s", exc)
        if db is not None:
            db.close()
