"""Ingest: an Event becomes an events row and its jobs in one transaction, or nothing at all.

`record_event` is the transaction's body; what it stores is always deliverable: the title and
body are cut to what a notification carries (notifyd.fields TITLE_MAX, TEXT_MAX), and the media
must serialise as strict JSON. `IngestWriter` is the listener's single writer thread:
requests waiting together are committed together (one fsync for many webhooks), and each caller
learns its own result only after that commit. A caller on an event loop (`submit_async`) is
answered with the others of its commit in one wake-up of that loop, not one cross-thread call each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from notifyd import strict_json
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
_STRICT_JSON = json.JSONEncoder(allow_nan=False)     # json.dumps(…, allow_nan=False), without an encoder per call


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
    event, media_json = stored_form(event)
    event_id = tx.insert_event(event, now, dedupe_key, media_json=media_json)
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
    return stored_form(event)[0]


def stored_form(event: Event) -> tuple[Event, str]:
    """`deliverable(event)`, and its media as the store writes them (strict_json.dumps): the
    check is that very serialisation, so the writer does it once per event, not twice."""
    title, body = clip(event.title, TITLE_MAX), clip(event.body, TEXT_MAX)
    media = dict(event.media)
    try:
        text = _STRICT_JSON.encode(media)
    except (ValueError, TypeError, RecursionError):
        raise BadPayload("the event's fields hold a value JSON cannot carry (NaN, an infinity, or "
                         "nesting too deep); nothing was stored") from None
    if "\\ud" in text or "\\uD" in text:   # maybe an unpaired surrogate: stored as strict_json makes it
        text = strict_json.dumps(media)
    if (title, body) == (event.title, event.body):
        return event, text
    return replace(event, title=title, body=body), text


class _LoopReply:
    """The writer's side of an asyncio Future: what it is told is kept until the writer hands
    every reply of its batch to the caller's loop at once (`_Replies.send`)."""

    __slots__ = ("loop", "future", "outcome", "failed", "replies")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future, replies: _Replies) -> None:
        self.loop = loop
        self.future = future
        self.replies = replies
        self.outcome: Any = None
        self.failed: bool | None = None     # None: not answered yet

    def set_running_or_notify_cancel(self) -> bool:
        return not self.future.cancelled()  # a caller that gave up is told nothing, and nothing is written

    def done(self) -> bool:
        return self.failed is not None

    def set_result(self, result: Any) -> None:
        self.outcome, self.failed = result, False
        self.replies.waiting.append(self)

    def set_exception(self, exc: BaseException) -> None:
        self.outcome, self.failed = exc, True
        self.replies.waiting.append(self)


class _Replies:
    """Answers for callers on event loops, sent once per batch: one call_soon_threadsafe per loop."""

    def __init__(self) -> None:
        self.waiting: list[_LoopReply] = []

    def send(self) -> None:
        if not self.waiting:
            return
        by_loop: dict[asyncio.AbstractEventLoop, list[_LoopReply]] = {}
        for reply in self.waiting:
            by_loop.setdefault(reply.loop, []).append(reply)
        self.waiting = []
        for loop, replies in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, replies)
            except RuntimeError:        # the loop is closed: nobody is left to tell
                pass


def _settle(replies: list[_LoopReply]) -> None:
    """On the caller's loop: each Future gets its answer, unless its caller has gone meanwhile."""
    for reply in replies:
        if not reply.future.done():
            if reply.failed:
                reply.future.set_exception(reply.outcome)
            else:
                reply.future.set_result(reply.outcome)


@dataclass
class _Request:
    event: Event
    dedupe_key: str | None
    future: Future | _LoopReply
    only: tuple[str, ...] | None = None


class _Retry(Exception):
    """A batch written without savepoints met an entry that fails: write it again with them."""


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
        self._replies = _Replies()       # touched by the writer thread only

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

    def submit_async(self, event: Event, dedupe_key: str | None = None, *,
                     only: Iterable[str] | None = None) -> asyncio.Future:
        """`submit` for a caller on the running event loop: the Future is of that loop, and is
        answered (after the commit) together with the others of its batch."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self._stopped:
            future.set_exception(StoreUnavailable("the daemon is shutting down"))
            return future
        reply = _LoopReply(loop, future, self._replies)
        self._queue.put(_Request(event, dedupe_key, reply, None if only is None else tuple(only)))
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
            finally:
                self._replies.send()

    def _write(self, batch: list, config: Config, now: float, *,
               isolated: bool) -> list[tuple[Future | _LoopReply, object]]:
        """One transaction for the batch; each entry's result, to be told once it has committed.
        Not `isolated`: an entry that fails raises _Retry, which rolls the whole batch back."""
        results: list[tuple[Future | _LoopReply, object]] = []
        with self.store.transaction() as tx:
            for entry in batch:
                if isinstance(entry, _Probe):
                    tx.write_probe(now)
                    results.append((entry.future, None))
                    continue
                if not isolated:
                    try:
                        result = record_event(tx, entry.event, config, now, entry.dedupe_key, entry.only)
                    except StoreUnavailable:
                        raise  # the store failed: the whole batch fails, and nobody hears "accepted"
                    except Exception:
                        raise _Retry() from None
                    results.append((entry.future, result))
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
        return results

    def _commit(self, batch: list) -> None:
        config = self.config()
        now = self.clock()
        # Events are written first without a savepoint each (two statements fewer per event); the
        # rare batch in which one fails is rolled back whole and written again with a savepoint
        # around each, so that only the failing one is refused. Runs' writes always go that way.
        results: list[tuple[Future | _LoopReply, object]] | None = None
        if not any(isinstance(entry, _Call) for entry in batch):
            try:
                results = self._write(batch, config, now, isolated=False)
            except _Retry:
                results = None
        if results is None:
            results = self._write(batch, config, now, isolated=True)
        jobs = 0
        for future, result in results:
            future.set_result(result)
            if isinstance(result, IngestResult) and not result.duplicate:
                jobs += sum(1 for j in result.jobs if not j.collapsed)
        self._replies.send()            # the senders first: the workers' wake-up can wait a moment
        if jobs:
            self.on_commit(jobs)
