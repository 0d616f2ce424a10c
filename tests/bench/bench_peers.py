"""Benchmark of notifyd's durable queue against two well-known peers, SqliteHuey and procrastinate.

What it measures, on one machine and in one run (issue 14, item 5; design §12):

1. SQLite. Each side gets a fresh database file in one temporary folder, its connection opened
   (and its schema made) before the clock starts, and is driven from one thread:

   - huey (``SqliteHuey(name, filename=...)``, every other option at its default): enqueue
     ``--jobs`` tasks by calling a ``@huey.task()`` function (``TaskWrapper.__call__`` ->
     ``Huey.enqueue`` -> ``SqliteStorage.enqueue``: one ``begin exclusive`` transaction with an
     INSERT), then dequeue and finish each as huey's consumer does (``Worker.loop``:
     ``huey.dequeue()``, then ``huey.execute(task)``). Per task that is: a read
     (``select 1 from task``); one ``begin exclusive`` transaction that selects the first task
     and DELETEs it; in ``execute``, a read of the revocation keys (``peek_many``), the task
     function (which returns None, so no result is stored: huey writes a result only for a
     value that is not None), and one more ``begin exclusive`` transaction that looks for the
     task's revocation key to delete it (``pop_data``; it finds none and writes nothing). So one
     writing transaction to enqueue and one to dequeue; the task is gone from the database once
     dequeued.
   - notifyd (``SqliteStore``, migrated): enqueue ``--jobs`` jobs one transaction each, as the
     ingest of one webhook does (``with store.transaction() as tx: tx.enqueue(event_id, [spec],
     max_attempts, now)``; the jobs only, not the event row a webhook also writes), then for each
     what a worker does around a delivery: ``store.claim(now, lease)`` (one ``BEGIN IMMEDIATE``
     transaction: the claim UPDATE ... RETURNING and the attempt row opened) and
     ``record_outcome(store, claim, succeeded(""), now)`` (one more: the lease-guarded finish
     UPDATE and the attempt row closed); once a second the claim also looks for expired leases.
     So one writing transaction to enqueue and two to claim and complete; the job and its
     attempt stay, as history.
     A "(diag.)" row enqueues ``--batch`` jobs per transaction (what ingest's group commit does
     when requests wait together); huey has no batched enqueue.

   Durability (read from each side's connection and printed in the notes): huey opens its
   database in WAL mode and leaves ``synchronous`` at SQLite's default, FULL (its ``fsync=True``
   sets FULL too; ``fsync=False`` sets OFF), so every commit is fsynced and survives a power cut.
   notifyd runs WAL with ``synchronous=NORMAL`` by default (``[store] synchronous = "FULL"`` by
   config): a killed process (``kill -9``) loses nothing committed, but a power cut or kernel
   crash may take back the last commits (the file stays consistent). So the headline compares
   the two at the same durability, notifyd with ``synchronous = "FULL"`` against huey's
   defaults; notifyd's defaults against huey's defaults are shown beside it, and, as a
   diagnostic, huey with ``synchronous=NORMAL`` (not a huey option: a subclass of its storage
   sets the pragma) against notifyd's defaults. What neither setting changes: huey deletes a
   task when it is dequeued, so a consumer killed while running it loses it (at most once);
   notifyd leases the job and runs it again once the lease ends (at least once). That lease is
   the second transaction per job.
   Before the timed runs, one untimed pass of 20 jobs per side traces every SQL statement the
   side sends (``set_trace_callback``) and prints, per job, the statements, the transactions
   and the transactions that write (each of which is one fsync at FULL).

2. PostgreSQL, both sides on one server, each on a fresh database of its own per run:

   - procrastinate (``App(connector=PsycopgConnector(conninfo=url))``, its defaults: an
     ``AsyncConnectionPool`` that checks each connection it hands out), its schema applied
     (``schema_manager.apply_schema_async()``) before the clock starts, driven with asyncio as
     its worker drives it: defer ``--jobs`` jobs with ``task.defer_async(...)`` (one
     ``procrastinate_defer_jobs_v1`` call each, one transaction), then, with a worker id from
     ``job_manager.register_worker()``, for each job ``job_manager.fetch_job(queues=None,
     worker_id=...)`` and ``job_manager.finish_job(job, status=SUCCEEDED, delete_job=False)``,
     the two calls its worker makes around a job (``Worker._fetch_and_process_jobs`` and
     ``_persist_job_status``; its default ``delete_jobs`` is "never"). The task itself is not run.
   - notifyd (``PostgresStore(url, pool_size=8)``, the daemon's pool size, migrated): the same
     calls as in 1, from one thread (the store is synchronous).

   Between the enqueue and the dequeue phase each database gets an untimed ``VACUUM ANALYZE``
   and ``CHECKPOINT`` (where the role may), on both sides alike, so the claims run with planner
   statistics and without the enqueue's pages still being written out. Both sides commit on
   the same server with its ``fsync`` and ``synchronous_commit`` (printed): a commit is durable
   for both, or for neither.
   The server is $NOTIFYD_TEST_POSTGRES_URL when set (an admin URL: the benchmark creates its
   databases there and drops them at the end), else one the ``pgserver`` package starts in a
   temporary folder for the run (tests/bench/pg_server.py).

Reported, per engine: jobs/s for the enqueue, for the dequeue (claim + complete; fetch +
finish; dequeue + execute) and for the round trip (both phases of one run: ``--jobs`` / their
summed time), each with notifyd's ratio to the peer (targets: >= 2x SqliteHuey, >= 1x
procrastinate). Each figure is the best of ``--repeat`` runs; in each round every side runs
once, their order rotated from round to round, so drift on the machine falls on every side.
``--json PATH`` writes every figure (name, value, unit, reference and its value, ratio, target,
verdict) and the notes as JSON; ``--profile`` adds a cProfile of notifyd's side.

Run it from the repository root, with the peers installed (``pip install -e '.[bench]'``):

    python tests/bench/bench_peers.py                     # defaults: --jobs 2000 --repeat 3, both engines
    python tests/bench/bench_peers.py --json bench-peers.json
    python tests/bench/bench_peers.py --engine sqlite --jobs 500 --repeat 1          # a smoke run
    python tests/bench/bench_peers.py --profile sqlite    # + cProfile of notifyd's side, at FULL and NORMAL

At FULL every commit waits for the disk, so the SQLite figures at that setting measure the
disk's fsync as much as either program; so do all the PostgreSQL figures (the server's default
``synchronous_commit = on``). The defaults took 5 to 6 minutes on a 2-core machine shared with
other benchmarks, PostgreSQL's commits most of it; its fastest rounds suggest about two minutes
on a quiet one. It is a script, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.metadata
import io
import json
import logging
import os
import platform
import pstats
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from notifyd.config import Config, parse_config
from notifyd.ingest import record_event
from notifyd.model import Event, JobKind, JobSpec
from notifyd.outcomes import record_outcome, succeeded
from notifyd.store import Store
from notifyd.store.sqlite import SqliteStore

HUEY_TARGET = 2.0
PROCRASTINATE_TARGET = 1.0
PRIORITIES = (3, 5, 7)   # notifyd's jobs cycle through these, as in bench_queue.py
KIND = str(JobKind.NOTIFY)
TRACE_JOBS = 20          # jobs per side in the untimed statement-counting pass
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
VERBOSE = False          # --verbose: print every timed run, not only the best


@dataclass
class Row:
    """One figure: a line of the results table and an entry of the JSON."""

    section: str
    case: str
    jobs: int
    seconds: float
    reference: Row | None = None     # the row whose jobs/s the ratio divides by
    target: float | None = None      # the ratio it should reach, where there is one

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else float("inf")

    @property
    def ratio(self) -> float | None:
        """jobs/s relative to the reference's (same job count, so a ratio of times)."""
        return self.reference.seconds / self.seconds if self.reference is not None else None

    @property
    def verdict(self) -> str | None:
        if self.target is None or self.ratio is None:
            return None
        return "met" if self.ratio >= self.target else "MISSED"

    def as_json(self) -> dict[str, Any]:
        """The figure in the shape the other benchmarks write (figure, name, measured, reference,
        ratio, target, verdict), with its numbers beside."""
        return {"figure": self.section, "name": self.case, "measured": f"{self.rate:,.0f} jobs/s",
                "value": round(self.rate, 1), "unit": "jobs/s", "jobs": self.jobs, "seconds": round(self.seconds, 4),
                "reference": self.reference.case if self.reference else None,
                "reference_value": round(self.reference.rate, 1) if self.reference else None,
                "ratio": round(self.ratio, 3) if self.ratio is not None else None,
                "target": f"≥ {self.target:g}×" if self.target is not None else None,
                "target_ratio": self.target, "verdict": self.verdict}


@dataclass
class Timing:
    """One run of one side: seconds to enqueue and (where the side has it) to dequeue."""

    enqueue: float
    dequeue: float | None = None


@dataclass
class Side:
    """A way of running the queue, timed once per round."""

    name: str
    run: Callable[[], Timing]
    runs: list[Timing] = field(default_factory=list)

    def best_enqueue(self) -> float:
        return min(t.enqueue for t in self.runs)

    def best_dequeue(self) -> float:
        return min(t.dequeue for t in self.runs if t.dequeue is not None)

    def best_round_trip(self) -> float:
        return min(t.enqueue + t.dequeue for t in self.runs if t.dequeue is not None)


def rounds(sides: list[Side], repeat: int, label: str) -> None:
    """Run every side once per round, the order rotated each round so none is always first."""
    for round_ in range(repeat):
        for k in range(len(sides)):
            side = sides[(k + round_) % len(sides)]
            side.runs.append(side.run())
    if VERBOSE:
        for side in sides:
            runs = ", ".join(f"{t.enqueue:.3f}+{t.dequeue:.3f}" if t.dequeue is not None else f"{t.enqueue:.3f}"
                             for t in side.runs)
            print(f"  {label} {side.name}: enqueue+dequeue s, in order: {runs}", flush=True)


# -- notifyd, either engine ------------------------------------------------------------------


def spec_for(i: int) -> JobSpec:
    return JobSpec(service="bench", kind=KIND, priority=PRIORITIES[i % len(PRIORITIES)])


def one_event(store: Store, config: Config) -> int:
    """An events row for the jobs to point at (ingest's record_event; no services, so no jobs)."""
    event = Event(source="generic", source_type="generic", kind="bench", title="benchmark")
    with store.transaction() as tx:
        return record_event(tx, event, config, time.time()).event_id


def notifyd_enqueue(store: Store, event_id: int, jobs: int, max_attempts: int, batch: int = 1) -> float:
    """`jobs` jobs, `batch` per transaction (1: as the ingest of one webhook with one service)."""
    specs = [spec_for(i) for i in range(jobs)]
    start = time.perf_counter()
    for first in range(0, jobs, batch):
        with store.transaction() as tx:
            tx.enqueue(event_id, specs[first:first + batch], max_attempts, time.time())
    return time.perf_counter() - start


def notifyd_claims(store: Store, jobs: int, lease: float) -> float:
    """What a worker does around each delivery: claim the next due job, record that it succeeded."""
    start = time.perf_counter()
    for _ in range(jobs):
        claim = store.claim(time.time(), lease)
        if claim is None:
            raise RuntimeError("notifyd's claim found nothing due; the enqueue queued too few jobs")
        record_outcome(store, claim, succeeded(""), time.time())
    return time.perf_counter() - start


# -- SQLite: huey and notifyd -----------------------------------------------------------------


def open_huey(path: Path, *, synchronous: int | None = None) -> tuple[Any, Any]:
    """A SqliteHuey on `path` at its defaults (or, for the diagnostic, with `synchronous` forced
    by a subclass of its storage), its connection open; and its task that returns None."""
    from huey import SqliteHuey  # type: ignore[import-untyped]
    from huey.storage import SqliteStorage  # type: ignore[import-untyped]

    if synchronous is None:
        huey = SqliteHuey("bench", filename=str(path))
    else:
        class ForcedSyncStorage(SqliteStorage):
            def _create_connection(self) -> Any:
                conn = super()._create_connection()
                conn.execute(f"pragma synchronous={synchronous}")
                return conn

        huey = SqliteHuey("bench", filename=str(path), storage_class=ForcedSyncStorage)

    @huey.task()
    def deliver(n: int) -> None:
        return None

    huey.storage.conn   # noqa: B018 - opens the connection (huey opens it lazily), outside the clock
    return huey, deliver


def huey_enqueue(deliver: Any, jobs: int) -> float:
    start = time.perf_counter()
    for i in range(jobs):
        deliver(i)
    return time.perf_counter() - start


def huey_dequeue(huey: Any, jobs: int) -> float:
    """What huey's consumer (Worker.loop) does per task: dequeue it, execute it."""
    start = time.perf_counter()
    for _ in range(jobs):
        task = huey.dequeue()
        if task is None:
            raise RuntimeError("huey's dequeue found nothing; the enqueue queued too few tasks")
        huey.execute(task)
    return time.perf_counter() - start


def huey_run(root: Path, name: str, jobs: int, *, synchronous: int | None = None) -> Timing:
    huey, deliver = open_huey(root / f"{name}.db", synchronous=synchronous)
    try:
        enqueue = huey_enqueue(deliver, jobs)
        dequeue = huey_dequeue(huey, jobs)
        if huey.pending_count():
            raise RuntimeError("huey still has tasks queued after the dequeue")
        return Timing(enqueue, dequeue)
    finally:
        huey.storage.close()


def notifyd_sqlite(path: Path, synchronous: str) -> SqliteStore:
    store = SqliteStore(path, synchronous=synchronous, node_id="bench")
    store.migrate()
    return store


def notifyd_sqlite_run(root: Path, name: str, jobs: int, config: Config, *, synchronous: str,
                       batch: int = 1, claims: bool = True) -> Timing:
    store = notifyd_sqlite(root / f"{name}.db", synchronous)
    try:
        event_id = one_event(store, config)
        enqueue = notifyd_enqueue(store, event_id, jobs, config.worker.max_attempts, batch)
        dequeue = notifyd_claims(store, jobs, config.worker.lease) if claims else None
        return Timing(enqueue, dequeue)
    finally:
        store.close()


@dataclass
class Trace:
    """SQL statements one connection ran, counted by a trace callback."""

    statements: int = 0
    transactions: int = 0
    writing: int = 0          # transactions with an INSERT/UPDATE/DELETE: one fsync each at FULL
    pages: int = 0            # pages appended to the write-ahead log
    _writes: bool = False

    def __call__(self, sql: str) -> None:
        self.statements += 1
        head = sql.lstrip()[:7].upper()
        if head.startswith("BEGIN"):
            self._writes = False
        elif head.startswith("COMMIT"):
            self.transactions += 1
            self.writing += self._writes
        elif head.startswith(WRITES):
            self._writes = True

    def per_job(self, jobs: int) -> str:
        return (f"{self.statements / jobs:.1f} statements, {self.transactions / jobs:.1f} transactions "
                f"({self.writing / jobs:.1f} writing), {self.pages / jobs:.1f} WAL pages")


def traced(conn: sqlite3.Connection, wal: Path, action: Callable[[], object]) -> Trace:
    """Run `action` with a trace on `conn` (with automatic checkpoints off, so the pages the
    action writes to the write-ahead log `wal` can be counted from its growth)."""
    trace = Trace()
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    frame = conn.execute("PRAGMA page_size").fetchone()[0] + 24     # a WAL frame: a page and its header
    before = wal.stat().st_size if wal.exists() else 0
    conn.set_trace_callback(trace)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    trace.pages = (wal.stat().st_size - before) // frame
    return trace


def sqlite_statement_notes(root: Path, config: Config, notes: dict[str, str]) -> None:
    """Per job, what each side sends to SQLite (an untimed pass of TRACE_JOBS jobs each)."""
    huey, deliver = open_huey(root / "trace-huey.db")
    try:
        conn, wal = huey.storage.conn, root / "trace-huey.db-wal"
        enq = traced(conn, wal, lambda: huey_enqueue(deliver, TRACE_JOBS))
        deq = traced(conn, wal, lambda: huey_dequeue(huey, TRACE_JOBS))
        notes["sqlite: huey per task"] = (f"enqueue {enq.per_job(TRACE_JOBS)}; dequeue+execute "
                                          f"{deq.per_job(TRACE_JOBS)}")
    finally:
        huey.storage.close()
    store = notifyd_sqlite(root / "trace-notifyd.db", "NORMAL")
    try:
        event_id = one_event(store, config)
        wal = root / "trace-notifyd.db-wal"
        with store.reading() as conn:
            enq = traced(conn, wal, lambda: notifyd_enqueue(store, event_id, TRACE_JOBS, config.worker.max_attempts))
            deq = traced(conn, wal, lambda: notifyd_claims(store, TRACE_JOBS, config.worker.lease))
        notes["sqlite: notifyd per job"] = (f"enqueue {enq.per_job(TRACE_JOBS)}; claim+record_outcome "
                                            f"{deq.per_job(TRACE_JOBS)}")
    finally:
        store.close()


SYNC_NAMES = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def pragmas(conn: sqlite3.Connection) -> str:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    return f"journal_mode {mode.upper()}, synchronous {SYNC_NAMES.get(sync, sync)}"


def sqlite_durability_notes(root: Path, notes: dict[str, str]) -> None:
    """The journal mode and synchronous level each side's connection really runs with."""
    for label, sync in (("huey defaults", None), ("huey diag.", 1)):
        huey, _ = open_huey(root / f"pragmas-{sync}.db", synchronous=sync)
        try:
            notes[f"sqlite: {label}"] = pragmas(huey.storage.conn)
        finally:
            huey.storage.close()
    for label, level in (("notifyd defaults", "NORMAL"), ('notifyd [store] synchronous = "FULL"', "FULL")):
        store = notifyd_sqlite(root / f"pragmas-{level}.db", level)
        try:
            with store.reading() as conn:
                notes[f"sqlite: {label}"] = pragmas(conn)
        finally:
            store.close()


def run_sqlite(jobs: int, batch: int, repeat: int, root: Path, config: Config, notes: dict[str, str]) -> list[Row]:
    notes["sqlite: versions"] = f"SQLite {sqlite3.sqlite_version}, huey {importlib.metadata.version('huey')}"
    notes["sqlite: files"] = f"{root} on {filesystem(root)}"
    sqlite_durability_notes(root, notes)
    sqlite_statement_notes(root, config, notes)
    counter = iter(range(1_000_000))

    def fresh(prefix: str) -> str:
        return f"{prefix}-{next(counter)}"

    huey_full = Side("huey", lambda: huey_run(root, fresh("huey"), jobs))
    huey_normal = Side("huey NORMAL", lambda: huey_run(root, fresh("huey-normal"), jobs, synchronous=1))
    notifyd_full = Side("notifyd FULL", lambda: notifyd_sqlite_run(root, fresh("notifyd-full"), jobs, config,
                                                                   synchronous="FULL"))
    notifyd_normal = Side("notifyd NORMAL", lambda: notifyd_sqlite_run(root, fresh("notifyd-normal"), jobs, config,
                                                                       synchronous="NORMAL"))
    sides = [huey_full, notifyd_full, huey_normal, notifyd_normal]
    batched = Side("notifyd FULL batched", lambda: notifyd_sqlite_run(
        root, fresh("notifyd-batch"), jobs, config, synchronous="FULL", batch=batch, claims=False))
    if batch > 1:
        sides.append(batched)
    rounds(sides, repeat, "sqlite")

    rows: list[Row] = []
    phases: list[tuple[str, Callable[[Side], float]]] = [
        ("sqlite enqueue", Side.best_enqueue), ("sqlite dequeue+complete", Side.best_dequeue),
        ("sqlite round trip", Side.best_round_trip)]
    for section, best in phases:
        what = {"sqlite enqueue": "1 job/txn", "sqlite dequeue+complete": "claim+record_outcome",
                "sqlite round trip": "enqueue, claim, complete"}[section]
        huey_what = {"sqlite enqueue": "task()", "sqlite dequeue+complete": "dequeue+execute",
                     "sqlite round trip": "task(), dequeue, execute"}[section]
        ref = Row(section, f"SqliteHuey defaults (WAL, FULL), {huey_what}", jobs, best(huey_full))
        ref_normal = Row(section, f"SqliteHuey, synchronous NORMAL (diag.), {huey_what}", jobs, best(huey_normal))
        rows.append(ref)
        rows.append(Row(section, f'notifyd, synchronous FULL, {what}', jobs, best(notifyd_full), ref, HUEY_TARGET))
        rows.append(Row(section, f"notifyd defaults (WAL, NORMAL), {what}", jobs, best(notifyd_normal), ref))
        if section == "sqlite enqueue" and batch > 1:
            rows.append(Row(section, f"notifyd, synchronous FULL, {batch} jobs/txn (diag.)", jobs,
                            best(batched), ref))
        rows.append(ref_normal)
        rows.append(Row(section, f"notifyd defaults vs SqliteHuey NORMAL (diag.), {what}", jobs, best(notifyd_normal),
                        ref_normal))
    return rows


# -- PostgreSQL: procrastinate and notifyd ----------------------------------------------------


def pg_settle(url: str) -> None:
    """Untimed, between the phases: planner statistics for the new rows and a checkpoint."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass


async def procrastinate_timed(url: str, jobs: int) -> Timing:
    import procrastinate
    from procrastinate.jobs import Status

    # procrastinate warns when its App is made in __main__ (its workers import the app by name);
    # nothing imports this one, so that warning is only noise here.
    blueprints_log = logging.getLogger("procrastinate.blueprints")
    level = blueprints_log.level
    blueprints_log.setLevel(logging.ERROR)
    try:
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
    finally:
        blueprints_log.setLevel(level)

    @app.task(name="deliver")
    async def deliver(n: int) -> None:
        return None

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        start = time.perf_counter()
        for i in range(jobs):
            await deliver.defer_async(n=i)
        enqueue = time.perf_counter() - start
        await asyncio.to_thread(pg_settle, url)
        manager = app.job_manager
        worker_id = await manager.register_worker()
        start = time.perf_counter()
        for _ in range(jobs):
            job = await manager.fetch_job(queues=None, worker_id=worker_id)
            if job is None:
                raise RuntimeError("procrastinate's fetch_job found nothing; the defer queued too few jobs")
            await manager.finish_job(job, status=Status.SUCCEEDED, delete_job=False)
        dequeue = time.perf_counter() - start
        if await manager.fetch_job(queues=None, worker_id=worker_id) is not None:
            raise RuntimeError("procrastinate still has jobs to do after the fetches")
        await manager.unregister_worker(worker_id)
    return Timing(enqueue, dequeue)


def notifyd_postgres(url: str) -> Store:
    from notifyd.store.postgres import PostgresStore

    store = PostgresStore(url, node_id="bench", pool_size=8)
    store.migrate()
    return store


def notifyd_postgres_run(url: str, jobs: int, config: Config) -> Timing:
    store = notifyd_postgres(url)
    try:
        event_id = one_event(store, config)
        enqueue = notifyd_enqueue(store, event_id, jobs, config.worker.max_attempts)
        pg_settle(url)
        dequeue = notifyd_claims(store, jobs, config.worker.lease)
        return Timing(enqueue, dequeue)
    finally:
        store.close()


def postgres_server() -> Any:
    try:
        from pg_server import PostgresServer
    except ImportError:        # imported from elsewhere than tests/bench/
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from pg_server import PostgresServer
    return PostgresServer()


def run_postgres(jobs: int, repeat: int, config: Config, notes: dict[str, str]) -> list[Row]:
    started = time.perf_counter()
    server = postgres_server()
    try:
        notes["postgresql: server"] = (f"{server.version()} from {server.origin}, "
                                       f"started in {time.perf_counter() - started:.1f} s")
        notes["postgresql: versions"] = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in
                                                  ("procrastinate", "psycopg", "psycopg-pool"))
        procrastinate = Side("procrastinate", lambda: asyncio.run(
            procrastinate_timed(server.new_database("bench_peer_procrastinate"), jobs)))
        notifyd = Side("notifyd", lambda: notifyd_postgres_run(server.new_database("bench_peer_notifyd"), jobs,
                                                               config))
        rounds([procrastinate, notifyd], repeat, "postgresql")
    finally:
        server.stop()
    rows: list[Row] = []
    for section, best, theirs, ours in (
            ("postgresql enqueue", Side.best_enqueue, "defer_async", "1 job/txn"),
            ("postgresql dequeue+complete", Side.best_dequeue, "fetch_job+finish_job", "claim+record_outcome"),
            ("postgresql round trip", Side.best_round_trip, "defer, fetch, finish", "enqueue, claim, complete")):
        ref = Row(section, f"procrastinate, {theirs}", jobs, best(procrastinate))
        rows.append(ref)
        rows.append(Row(section, f"notifyd PostgresStore, {ours}", jobs, best(notifyd), ref, PROCRASTINATE_TARGET))
    return rows


# -- profile ----------------------------------------------------------------------------------


def profile_notifyd(engine: str, jobs: int, root: Path, config: Config, *, synchronous: str = "FULL",
                    top: int = 15) -> str:
    """cProfile of notifyd's side (enqueue, then claim+complete) as timed, by own time."""
    profiler = cProfile.Profile()
    server = None
    if engine == "sqlite":
        store: Store = notifyd_sqlite(root / f"profile-{synchronous}.db", synchronous)
    else:
        server = postgres_server()
        url = server.new_database("bench_peer_profile")
        store = notifyd_postgres(url)
    try:
        event_id = one_event(store, config)
        profiler.enable()
        notifyd_enqueue(store, event_id, jobs, config.worker.max_attempts)
        profiler.disable()
        if server is not None:
            pg_settle(url)
        profiler.enable()
        notifyd_claims(store, jobs, config.worker.lease)
        profiler.disable()
    finally:
        store.close()
        if server is not None:
            server.stop()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- report ------------------------------------------------------------------------------------


def filesystem(path: Path) -> str:
    """The file system type and device `path` is on (from /proc/self/mounts), for the notes."""
    best = ("", "?", "?")
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return "?"
    resolved = str(path.resolve())
    for line in lines:
        device, mount, kind = line.split()[:3]
        if (resolved == mount or resolved.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} ({best[2]}, mounted at {best[0]})"


def target_text(row: Row) -> str:
    return f"≥ {row.target:g}× {row.verdict}" if row.target is not None else ""


def ratio_text(row: Row) -> str:
    return f"{row.ratio:.2f}" if row.ratio is not None else ""


def print_plain(rows: list[Row]) -> None:
    headers = ("section", "case", "jobs", "seconds", "jobs/s", "ratio", "target")
    cells = [(r.section, r.case, f"{r.jobs:,}", f"{r.seconds:.3f}", f"{r.rate:,.0f}", ratio_text(r), target_text(r))
             for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    right = {2, 3, 4, 5}

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    previous = None
    for row, cell in zip(rows, cells, strict=True):
        if previous is not None and row.section != previous:
            print()
        previous = row.section
        print(line(cell))


def print_markdown(rows: list[Row]) -> None:
    print("| section | case | jobs/s | reference | ratio | target |")
    print("|---|---|--:|---|--:|---|")
    for r in rows:
        reference = r.reference.case if r.reference else ""
        print(f"| {r.section} | {r.case} | {r.rate:,.0f} | {reference} | {ratio_text(r)} | {target_text(r)} |")


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count(),
            "machine": platform.machine(), "system": platform.system(), "load_average": os.getloadavg()}


def missing_peers(engines: list[str]) -> list[str]:
    wanted = {"sqlite": "huey", "postgresql": "procrastinate"}
    missing = []
    for engine in engines:
        try:
            __import__(wanted[engine])
        except ImportError:
            missing.append(wanted[engine])
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per run, enqueued then dequeued")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; the best is reported")
    parser.add_argument("--batch", type=int, default=100,
                        help="jobs per transaction in notifyd's batched enqueue (diag.; 1 leaves it out)")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), action="append",
                        help="measure only this engine (repeat the option); default both")
    parser.add_argument("--verbose", action="store_true", help="print every timed run, not only the best")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write every figure to PATH as JSON")
    parser.add_argument("--profile", choices=("sqlite", "postgresql"), action="append",
                        help="after the figures, cProfile notifyd's side on this engine (--jobs jobs)")
    args = parser.parse_args(argv)
    # A TERM unwinds like an exception, so the finally blocks stop the PostgreSQL server.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.jobs < 1 or args.repeat < 1 or args.batch < 1:
        parser.error("--jobs, --repeat and --batch must be >= 1")
    engines = args.engine or ["sqlite", "postgresql"]
    missing = missing_peers(engines)
    if missing:
        parser.error(f"{' and '.join(missing)} not installed: pip install -e '.[bench]'")
    global VERBOSE
    VERBOSE = args.verbose

    info = machine()
    print(f"notifyd vs peers: python {info['python']}, SQLite {info['sqlite']}, {info['cpus']} CPUs, "
          f"{info['machine']} {info['system']}, load {', '.join(f'{x:.2f}' for x in info['load_average'])}; "
          f"--jobs {args.jobs} --repeat {args.repeat}; engines: {', '.join(engines)}", flush=True)
    config = parse_config({}, path=None, env={})
    started = time.perf_counter()
    rows: list[Row] = []
    notes: dict[str, str] = {}
    profiles: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-peers-") as tmp:
        if "sqlite" in engines:
            rows += run_sqlite(args.jobs, args.batch, args.repeat, Path(tmp), config, notes)
            print(f"  sqlite done at {time.perf_counter() - started:.0f} s", flush=True)
        if "postgresql" in engines:
            rows += run_postgres(args.jobs, args.repeat, config, notes)
            print(f"  postgresql done at {time.perf_counter() - started:.0f} s", flush=True)
        for engine in args.profile or []:
            if engine == "sqlite":       # at FULL the fsyncs; at NORMAL what is left: notifyd's SQL and Python
                for level in ("FULL", "NORMAL"):
                    profiles[f"sqlite, synchronous {level}"] = profile_notifyd(engine, args.jobs, Path(tmp), config,
                                                                               synchronous=level)
            else:
                profiles[engine] = profile_notifyd(engine, args.jobs, Path(tmp), config)
    wall = time.perf_counter() - started
    print()
    print_plain(rows)
    print()
    for key, value in notes.items():
        print(f"{key}: {value}")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"total wall time: {wall:.1f} s")
    print()
    print("ratio = notifyd's jobs/s / the peer's on the same row's phase; best of --repeat runs each. Round trip = "
          "--jobs / (enqueue + dequeue time of one run). FULL fsyncs every commit (survives a power cut); "
          "NORMAL in WAL survives a killed process, not a power cut. huey deletes a task at dequeue (lost if the "
          "consumer dies while running it); notifyd leases it (run again after the lease).")
    print()
    print_markdown(rows)
    for engine, text in profiles.items():
        print()
        print(f"cProfile of notifyd's side on {engine}, {args.jobs:,} jobs enqueued then claimed+completed "
              f"(own time):")
        print(text)
    if args.json:
        document = {"benchmark": "bench_peers", "machine": info,
                    "options": {"jobs": args.jobs, "repeat": args.repeat, "batch": args.batch, "engines": engines},
                    "wall_seconds": round(wall, 1), "figures": [r.as_json() for r in rows], "notes": notes}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
