"""Ingest: an Event becomes an events row and its jobs in one transaction, or nothing at all.

`record_event` is the transaction's body. `IngestWriter` is the listener's single writer thread:
requests waiting together are committed together (one fsync for many webhooks), and each caller
learns its own result only after that commit.
"""

from __future__ import annotations

import json
import logging
import queue as queue_mod
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Iterable, TYPE_CHECKING


from notifyd.config import Config
from notifyd.errors import NotifydError, StoreUnavailable
from notifyd.events import Event
from notifyd.fanout import plan_jobs
from notifyd.queue import Enqueued, enqueue
from notifyd.runs import apply_status, link_final_event
from notifyd.store import Store, write

if TYPE_CHECKING:
    import sqlite_utils

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


def record_event(db: sqlite_utils.Database, event: Event, config: Config, now: float,
                 dedupe_key: str | None = None, only: Iterable[str] | None = None) -> IngestResult:
    """Insert the event and one job per matching service, inside the caller's transaction.

    A repeat (same source and dedupe key within server.dedupe_window) inserts nothing and returns
    the first event with duplicate=True.
    """
    conn = db.conn
    if dedupe_key:
        row = conn.execute(
            "SELECT id, kind FROM events WHERE source = ? AND dedupe_key = ? AND received_at >= ? "
            "ORDER BY id LIMIT 1", (event.source, dedupe_key, now - config.server.dedupe_window)).fetchone()
        if row is not None:
            jobs = [Enqueued(r[0], r[1]) for r in conn.execute(
                "SELECT id, service FROM jobs WHERE event_id = ? ORDER BY id", (row[0],))]
            return IngestResult(row[0], row[1], jobs, duplicate=True)
    run = apply_status(db, event, now) if event.source_type == "comfydeploy" and "run_id" in event.media else None
    if run is not None:
        event = run.event
    event_id = conn.execute(
        "INSERT INTO events (source, source_type, kind, title, body, paths, media, payload, dedupe_key, "
        "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (event.source, event.source_type, event.kind, event.title, event.body, json.dumps(list(event.paths)),
         json.dumps(dict(event.media)), event.payload, dedupe_key, now)).lastrowid
    gone = {r[0] for r in conn.execute("SELECT service FROM service_state")}
    services = [s for s in config.services.values() if s.name not in gone]
    if run is None:
        specs = plan_jobs(event, services, only)
    elif run.fan_out:
        link_final_event(db, run.run_id, event_id)
        callback = (run.run_id, run.callback_url) if run.callback_url else None
        specs = plan_jobs(event, services, notify=run.notify, callback=callback)
    else:
        specs = []
    jobs = enqueue(db, event_id, specs, config.worker.max_attempts, now)
    return IngestResult(event_id, event.kind, jobs, run_id=run.run_id if run else None)


@dataclass
class _Request:
    event: Event
    dedupe_key: str | None
    future: Future


class _Probe:
    """A request to check that the store takes writes, answered through `future`."""

    def __init__(self) -> None:
        self.future: Future = Future()


class _Call:
    """Another write (a run's registration) done in the writer's turn: fn(db, now) → result."""

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

    def start(self) -> "IngestWriter":
        self._thread.start()
        return self

    def submit(self, event: Event, dedupe_key: str | None = None) -> Future:
        """Queue an event for the next commit; the Future gives an IngestResult or StoreUnavailable."""
        future: Future = Future()
        if self._stopped:
            future.set_exception(StoreUnavailable("the daemon is shutting down"))
            return future
        self._queue.put(_Request(event, dedupe_key, future))
        return future

    def call(self, fn: Callable) -> Future:
        """Run fn(db, now) inside the writer's next transaction; the Future gives its result."""
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
        db: sqlite_utils.Database | None = None
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
                if db is None:
                    db = self.store.connect()
                self._commit(db, batch)
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
        if db is not None:
            db.close()

    def _commit(self, db: sqlite_utils.Database, batch: list) -> None:
        config = self.config()
        now = self.clock()
        results: list[tuple[Future, object]] = []
        with write(db):
            for entry in batch:
                if isinstance(entry, _Probe):
                    db.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('write_probe', ?)", (str(now),))
                    results.append((entry.future, None))
                    continue
                db.conn.execute("SAVEPOINT one_event")
                try:
                    if isinstance(entry, _Call):
                        result = entry.fn(db, now)
                    else:
                        result = record_event(db, entry.event, config, now, entry.dedupe_key)
                    db.conn.execute("RELEASE one_event")
                    results.append((entry.future, result))
                except sqlite3.Error:
                    raise  # the store failed: the whole batch fails, and nobody hears "accepted"
                except Exception as exc:
                    db.conn.execute("ROLLBACK TO one_event")
                    db.conn.execute("RELEASE one_event")
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
