"""Ingest: an Event becomes an events row and its jobs in one transaction, or nothing at all.

`record_event` is the transaction's body; what it stores is always deliverable: the title and
body are cut to what a notification carries (notifyd.fields TITLE_MAX, TEXT_MAX), and the media
must serialise as strict JSON. `IngestWriter` is the listener's single writer thread:
requests waiting together are committed together (one fsync for many webhooks), and each caller
learns its own result only after that commit.
"""

from __future__ import annotations

import json
import logging
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from notifyd.config import Config
from notifyd.errors import BadPayload, NotifydError, StoreUnavailable
from notifyd.fanout import SKIPPED_SERVICES, plan_jobs, unfillable
from notifyd.fields import TEXT_MAX, TITLE_MAX, clip
from notifyd.folding import find_fold, plan_fold
from notifyd.model import Enqueued, Event
from notifyd.quiet_hours import defer_quiet, zone_of
from notifyd.runs import apply_status, link_final_event
from notifyd.sources import tracks_run
from notifyd.store import Store, Tx

log = logging.getLogger("notifyd.ingest")
MAX_BATCH = 256


@dataclass(frozen=True)
class IngestResult:
    """What the sender is told: the event id, its kind, its jobs, and whether it was a repeat."""

    event_id: int
    kind: str
    jobs: list[Enqueued] = field(default_factory=list)
    duplicate: bool = False
    run_id: str | None = None


def record_event(tx: Tx, event: Event, config: Config, now: float,
                 dedupe_key: str | None = None, only: Iterable[str] | None = None) -> IngestResult:
    """Store the event and one job per matching service, inside the caller's transaction.

    A repeat (same source and dedupe key within server.dedupe_window) stores nothing and returns
    the first event with duplicate=True. The webhooks of one Sonarr download are folded into one
    notification per service (notifyd.folding).
    """
    if dedupe_key:
        duplicate = tx.claim_dedupe_key(event.source, dedupe_key, now, config.server.dedupe_window)
        if duplicate is not None:
            return IngestResult(duplicate.event_id, duplicate.kind, duplicate.jobs, duplicate=True)
    run = apply_status(tx, event, now) if tracks_run(event) else None
    if run is not None:
        event = run.event
    # One notification for a download Sonarr tells of file by file and then as a whole.
    fold = find_fold(tx, event, now) if run is None and only is None else None
    if fold is not None:
        event = fold.event
    gone = tx.disabled_services()
    services = [s for s in config.services.values() if s.name not in gone]
    if only is None and (run is None or run.fan_out):
        # Services whose filter takes this kind but whose URL the run context cannot fill get no
        # job (one sure to die); the event records which and why.
        gaps = unfillable(event, services, run.notify if run is not None else ())
        if gaps:
            event = replace(event, media={**event.media, SKIPPED_SERVICES: gaps})
    event = deliverable(event)
    event_id = tx.insert_event(event, now, dedupe_key)
    if run is None:
        specs = plan_jobs(event, services, only)
        if fold is not None:
            specs = plan_fold(tx, fold, event_id, specs, now, config.server.fold_window)
    elif run.fan_out:
        link_final_event(tx, run.run_id, event_id)
        callback = (run.run_id, run.callback_url) if run.callback_url else None
        specs = plan_jobs(event, services, notify=run.notify, callback=callback)
    else:
        specs = []
    specs = defer_quiet(specs, services, level=str(event.media.get("level", "info")), now=now,
                        zone=zone_of(config.server.timezone))
    jobs = tx.enqueue(event_id, specs, config.worker.max_attempts, now)
    return IngestResult(event_id, event.kind, jobs, run_id=run.run_id if run else None)


def deliverable(event: Event) -> Event:
    """The event as it may be stored: title and body cut to what a notification carries, and
    media that serialises as strict JSON (BadPayload otherwise, which every source prevents)."""
    title, body = clip(event.title, TITLE_MAX), clip(event.body, TEXT_MAX)
    try:
        json.dumps(dict(event.media), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        raise BadPayload("the event's fields hold a value JSON cannot carry (NaN, an infinity, or "
                         "nesting too deep); nothing was stored") from None
    if (title, body) == (event.title, event.body):
        return event
    return replace(event, title=title, body=body)


@dataclass
class _Request:
    event: Event
    dedupe_key: str | None
    future: Future
    only: tuple[str, ...] | None = None


class _Probe:
    """A request to check that the store takes writes, answered through `future`."""

    def __init__(self) -> None:
        self.future: Future = Future()


class _Call:
    """Another write (a run's registration) done in the writer's turn: fn(tx, now) → result."""

    def __init__(self, fn: Callable) -> None:
        self.fn = fn
        self.future: Future = Future()


class IngestWriter:
    """The one thread that writes events; `submit` hands it an event and returns a Future."""

    def __init__(self, store: Store, config: Callable[[], Config],
                 on_commit: Callable[[int], None] = lambda n: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.on_commit = on_commit
        self.clock = clock
        self._queue: queue_mod.SimpleQueue = queue_mod.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="notifyd-ingest", daemon=True)
        self._stopped = False

    def start(self) -> IngestWriter:
        self._thread.start()
        return self

    def submit(self, event: Event, dedupe_key: str | None = None, *, only: Iterable[str] | None = None) -> Future:
        """Queue an event for the next commit; the Future gives an IngestResult or StoreUnavailable.
        `only`: jobs for these services alone (a manual message naming them), as record_event."""
        future: Future = Future()
        if self._stopped:
            future.set_exception(StoreUnavailable("the daemon is shutting down"))
            return future
        self._queue.put(_Request(event, dedupe_key, future, None if only is None else tuple(only)))
        return future

    def call(self, fn: Callable[[Tx, float], Any]) -> Future:
        """Run fn(tx, now) inside the writer's next transaction; the Future gives its result."""
        item = _Call(fn)
        if self._stopped:
            item.future.set_exception(StoreUnavailable("the daemon is shutting down"))
            return item.future
        self._queue.put(item)
        return item.future

    def probe(self) -> Future:
        """Check, in the writer's own turn, that a write transaction commits; the Future gives None or an error."""
        item = _Probe()
        self._queue.put(item)
        return item.future

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Commit what is waiting, then end the thread."""
        self._stopped = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            batch = [item] if item.future.set_running_or_notify_cancel() else []
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue_mod.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                # A caller that gave up (a /health probe that timed out, a sender that hung up)
                # has cancelled its Future: it was told nothing, so nothing is written for it.
                if nxt.future.set_running_or_notify_cancel():
                    batch.append(nxt)
            if not batch:
                continue
            try:
                self._commit(batch)
            except NotifydError as exc:
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                if isinstance(exc, StoreUnavailable):
                    log.warning("store unavailable: %s", exc)
            except Exception as exc:  # a bug must not kill the only writer
                log.exception("ingest failed")
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(StoreUnavailable(f"internal error: {type(exc).__name__}"))

    def _commit(self, batch: list) -> None:
        config = self.config()
        now = self.clock()
        results: list[tuple[Future, object]] = []
        with self.store.transaction() as tx:
            for entry in batch:
                if isinstance(entry, _Probe):
                    tx.write_probe(now)
                    results.append((entry.future, None))
                    continue
                try:
                    with tx.savepoint():
                        if isinstance(entry, _Call):
                            result = entry.fn(tx, now)
                        else:
                            result = record_event(tx, entry.event, config, now, entry.dedupe_key, entry.only)
                    results.append((entry.future, result))
                except StoreUnavailable:
                    raise  # the store failed: the whole batch fails, and nobody hears "accepted"
                except Exception as exc:
                    if isinstance(exc, NotifydError):
                        entry.future.set_exception(exc)
                    else:
                        log.exception("recording an event failed")
                        entry.future.set_exception(StoreUnavailable(f"internal error: {type(exc).__name__}"))
        jobs = 0
        for future, result in results:
            future.set_result(result)
            if isinstance(result, IngestResult) and not result.duplicate:
                jobs += sum(1 for j in result.jobs if not j.collapsed)
        if jobs:
            self.on_commit(jobs)
