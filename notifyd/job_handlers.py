"""What each kind of job does, as one table the worker dispatches on: notify and refresh go to the
service's channel, callback to a webhook service or a tracked run's own callback URL, maintenance
runs retention or the poll of stale runs (by the job's service: "(retention)", "(run poll)"). A
handler returns the attempt's detail or raises a DeliveryError (Skipped when nobody is left to
deliver to); recording the outcome is the worker's business.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from notifyd.channels import CHANNEL_TYPES, load_channel
from notifyd.channels.base import Channel
from notifyd.config import Config, ServiceConfig
from notifyd.errors import Deferred, NotFound, PermanentError, Skipped, StoreUnavailable
from notifyd.fanout import CALLBACK_SERVICE, DIGEST_MAX
from notifyd.model import Delivery, Job, JobKind, StoredEvent
from notifyd.quiet_hours import deferred_until, service_window, severity, zone_of
from notifyd.retention import EVERY as RETENTION_EVERY
from notifyd.retention import SERVICE as RETENTION_SERVICE
from notifyd.retention import purge_by_retention, retention_detail, schedule_retention
from notifyd.run_poll import SERVICE as RUN_POLL_SERVICE
from notifyd.run_poll import cursor_of, run_poll
from notifyd.store import Store
from notifyd.units import format_duration

log = logging.getLogger("notifyd.worker")


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

    def keep_only(self, names: Iterable[str]) -> None:
        """Close the channels of services no longer configured (their connections, their sockets)."""
        wanted = set(names)
        for name in [n for n in self._channels if n not in wanted]:
            _close(self._channels.pop(name)[1])


def _close(channel: Channel) -> None:
    close = getattr(channel, "close", None)
    if close is not None:
        close()


@dataclass(frozen=True)
class JobContext:
    """What a handler may use: the store, the config of this moment, the channels, the clock."""

    store: Store
    config: Config
    channels: ChannelCache
    clock: Callable[[], float] = time.time


JobHandler = Callable[[Job, JobContext], str]


def delivery_for(job: Job, store: Store) -> Delivery:
    """The job as a channel sees it; its event is read only if the channel asks."""

    def load_event() -> StoredEvent:
        if job.event_id is None:
            raise PermanentError("the job has no event to deliver")
        return store.get_event(job.event_id)

    return Delivery(job_id=job.id, service=job.service, kind=job.kind, data=job.data, load_event=load_event,
                    load_events=lambda: store.events_of_job(job.id, limit=DIGEST_MAX + 1))


def deliver_to_service(job: Job, ctx: JobContext) -> str:
    """Through the configured service's channel, unless it was disabled, removed or switched off."""
    service = ctx.config.services.get(job.service)
    gone = ctx.store.service_disabled(job.service)
    if service is None or not service.enabled or gone:
        raise Skipped("service removed from the config" if service is None
                      else f"service switched off: {gone}" if gone else "service disabled")
    # pictures a message attaches are fetched under the same rule as callbacks (design §15)
    delivery = replace(delivery_for(job, ctx.store), allow_private=ctx.config.runs.allow_private_callbacks)
    # A job queued before its service had quiet hours, a retry run by hand, one a lost lease gave
    # back: whatever brought it here now, it waits for the window's end like the rest (but
    # `services test`, asked for now).
    now = ctx.clock()
    until = quiet_until(job, ctx, now, delivery) if job.kind == JobKind.NOTIFY and not job.data.get("test") else None
    if until is not None:
        raise Deferred(until, f"quiet hours ({service.options['quiet_hours']})")
    return ctx.channels.get(service, ctx.config.worker.timeout).deliver(delivery)


def deliver_callback(job: Job, ctx: JobContext) -> str:
    """A webhook service's POST, or a finished run's signed callback to its own callback_url."""
    if job.service != CALLBACK_SERVICE:
        return deliver_to_service(job, ctx)
    from notifyd.channels.webhook import deliver_run_callback

    delivery = delivery_for(job, ctx.store)
    run = ctx.store.get_run(delivery.data["run_id"])
    return deliver_run_callback(delivery, run, ctx.config, ctx.config.worker.timeout)


def run_retention(job: Job, ctx: JobContext) -> str:
    """Purge in bounded batches (on one node at a time), then schedule the next run."""
    started = time.monotonic()
    store = ctx.config.store
    with ctx.store.maintenance_lock() as ours:
        purged = purge_by_retention(ctx.store, store.keep_succeeded, store.keep_dead, ctx.clock()) if ours else None
    schedule_retention(ctx.store, delay=RETENTION_EVERY, now=ctx.clock(), besides=job.id)
    if purged is None:
        log.info("job %d retention: another node is purging; stood aside", job.id)
    else:
        log.info("job %d retention: purged %d finished job(s) in %s", job.id, purged,
                 format_duration(time.monotonic() - started))
    return retention_detail(purged, store.keep_succeeded, store.keep_dead)


def poll_stale_runs(job: Job, ctx: JobContext) -> str:
    """Ask the status APIs about runs that heard nothing for [runs] stale_after; schedules the next poll."""
    return run_poll(ctx.store, ctx.config, ctx.clock, job_id=job.id, after=cursor_of(job.data))


MAINTENANCE: dict[str, JobHandler] = {RETENTION_SERVICE: run_retention, RUN_POLL_SERVICE: poll_stale_runs}


def run_maintenance(job: Job, ctx: JobContext) -> str:
    """The maintenance task its service names."""
    task = MAINTENANCE.get(job.service)
    if task is None:
        raise PermanentError(f"no maintenance task named {job.service!r}")
    return task(job, ctx)


def retry_due(job: Job, ctx: JobContext, run_at: float) -> float:
    """When a notification's retry may go: `run_at`, or the end of its service's quiet hours when
    it falls inside them (and its event's level does not pass them)."""
    if job.kind != JobKind.NOTIFY:
        return run_at
    return quiet_until(job, ctx, run_at, delivery_for(job, ctx.store)) or run_at


def quiet_until(job: Job, ctx: JobContext, moment: float, delivery: Delivery) -> float | None:
    """The end of the job's service's quiet window holding `moment`, or None: no window, outside
    it, or a level `quiet_bypass` lets through (a digest's most severe one). The events are read
    only when a bypass needs their level; unreadable, the message is held like an info one."""
    service = ctx.config.services.get(job.service)
    window = service_window(service) if service is not None else None
    if window is None:
        return None
    quiet, bypass = window
    level = "info"
    if bypass and job.event_id is not None:
        try:
            events = delivery.events if delivery.digest else [delivery.event]
            level = max((str(e.event.media.get("level", "info")) for e in events), key=severity)
        except (NotFound, StoreUnavailable, PermanentError):
            pass
    return deferred_until(moment, quiet, zone=zone_of(ctx.config.server.timezone), level=level, bypass=bypass)


HANDLERS: dict[str, JobHandler] = {
    JobKind.NOTIFY: deliver_to_service,
    JobKind.REFRESH: deliver_to_service,
    JobKind.CALLBACK: deliver_callback,
    JobKind.MAINTENANCE: run_maintenance,
}
