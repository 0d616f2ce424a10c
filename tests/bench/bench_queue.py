"""Benchmark of notifyd's job queue, on each store engine, against raw driver loops.

What it measures, on one machine and in one run:

1. Enqueue throughput on SQLite (jobs/s). notifyd: ``with store.transaction() as tx:
   tx.enqueue(event_id, [spec], ...)``, one transaction per job and then ``--batch`` jobs per
   transaction. Baseline: a raw ``sqlite3`` loop doing the same INSERT into a jobs table with the
   same columns, CHECK constraints and foreign key but only the claim index, with the same
   pragmas (WAL, synchronous NORMAL, busy_timeout 5000, foreign_keys ON). Both ways, single and
   batched; a "(diag.)" row runs the raw INSERT on notifyd's schema, to separate index cost from
   Python cost.
2. Claim+complete throughput on SQLite (jobs/s) over ``--jobs`` pre-enqueued jobs. notifyd:
   ``store.claim(now, lease)`` then ``record_outcome(store, claim, succeeded(""), now)`` (what a
   worker does around a delivery). Baseline: the minimal equivalent, two ``BEGIN IMMEDIATE``
   transactions per job (UPDATE ... WHERE id = (SELECT id ... ORDER BY priority, run_at, id
   LIMIT 1) RETURNING ...; then UPDATE state = 'succeeded'), on a jobs table with notifyd's
   columns and constraints and only the claim index. Reported with the ratio notifyd/raw
   (design target >= 0.7). Three "(diag.)" rows: the same raw loop on notifyd's own schema (all
   its indexes) with the claim pinned ``INDEXED BY jobs_claim``, which shows what index upkeep
   costs apart from the query plan; and notifyd's own statements (its claim, its attempt row
   opened, its token-guarded finish, the attempt closed; copied from notifyd.store.sql) run from
   that raw loop, so what is left between that row and notifyd's is notifyd's Python. (A
   service's cap on running jobs is kept by the worker pool, not in the claim, so the daemon's
   workers make this same call.) The plan notifyd's claim really gets
   (caught with a trace callback and EXPLAIN QUERY PLAN) is printed below the table.
3. notifyd claim+complete on SQLite with a large finished history (``--history`` succeeded
   jobs, plus their attempts and events, inserted directly by SQL) against an empty table, and
   the ratio history/empty (design target >= 0.9).
4. Claim+complete throughput on PostgreSQL (jobs/s) over ``--jobs`` pre-enqueued jobs, each
   side on a fresh database of one server. notifyd: ``PostgresStore`` (its pool, one
   connection in use), the same calls as in 2. Baseline: a raw psycopg loop on one connection,
   two explicit ``BEGIN ... COMMIT`` transactions per job (the claim UPDATE with ``FOR UPDATE
   SKIP LOCKED`` in its subquery, RETURNING the job; then UPDATE state = 'succeeded'), on a
   jobs table with notifyd's columns and constraints and only the claim index. Ratio
   notifyd/raw, design target >= 0.7. The "(diag.)" rows of 2 (notifyd's schema; notifyd's
   statements), and one more: the raw loop with each UPDATE a
   single autocommit statement (its own implicit transaction: two round trips per job, the
   fewest possible).
   The server is $NOTIFYD_TEST_POSTGRES_URL when set (an admin URL: the benchmark creates its
   databases there and drops them at the end), else one the ``pgserver`` package starts in a
   temporary folder for the run. Every PostgreSQL jobs table gets VACUUM ANALYZE and then a
   CHECKPOINT (where the role may) after it is filled, untimed, so each side is timed with
   planner statistics and without the set-up's pages still being written out.

Each figure is the best of ``--repeat`` runs, the sides interleaved (their order rotated each
round) so drift on the machine hits every side alike, each on a fresh database (the SQLite
history database is built once and reused; each repeat adds ``--jobs`` rows to it).
``--json PATH`` writes every figure (its name, jobs/s, reference, ratio, target and verdict)
and the notes as JSON.

Run it from the repository root:

    python tests/bench/bench_queue.py                        # defaults: --jobs 2000 --history 100000 --repeat 3
    python tests/bench/bench_queue.py --json bench-queue.json
    python tests/bench/bench_queue.py --jobs 1000 --history 20000 --repeat 1        # a smoke run
    python tests/bench/bench_queue.py --engine sqlite                               # no PostgreSQL
    python tests/bench/bench_queue.py --profile postgresql     # + cProfile of notifyd's claim loop
    python tests/bench/bench_queue.py --verbose                # + every timed run, not only the best

The defaults finish in about two and a half minutes on a 2-core machine (PostgreSQL's commits,
one fsync each, are most of it; its figures also vary most from run to run). It is a script,
not a test: pytest does not collect it (the file name matches neither ``test_*.py`` nor
``*_test.py``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifyd.config import Config, parse_config
from notifyd.ingest import record_event
from notifyd.model import Event, JobKind, JobSpec
from notifyd.outcomes import record_outcome, succeeded
from notifyd.store import Store
from notifyd.store.sql import JOB_COLUMNS
from notifyd.store.sqlite import BUSY_TIMEOUT_MS, SqliteStore

CLAIM_TARGET = 0.7
HISTORY_TARGET = 0.9
PRIORITIES = (3, 5, 7)  # jobs cycle through these, so the ORDER BY has real work to do
KIND = str(JobKind.NOTIFY)
TOKEN = "0123456789abcdef"

# -- SQLite baseline -----------------------------------------------------------------------------

# The baseline schema: notifyd's columns and constraints, and only the index a claim needs.
RAW_SCHEMA = [
    "CREATE TABLE events (id INTEGER PRIMARY KEY, received_at REAL NOT NULL)",
    """CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        event_id INTEGER REFERENCES events(id) ON DELETE CASCADE,
        service TEXT NOT NULL,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 10),
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'running', 'succeeded', 'dead', 'cancelled', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        run_at REAL NOT NULL,
        lease_until REAL,
        lease_token TEXT,
        unique_key TEXT,
        last_error TEXT,
        created_at REAL NOT NULL,
        finished_at REAL,
        payload TEXT NOT NULL DEFAULT '{}',
        node TEXT
    )""",
    "CREATE INDEX jobs_claim ON jobs(priority, run_at, id) WHERE state = 'queued'",
]

RAW_INSERT = ("INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
              "unique_key, created_at, payload) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, '{}')")
RAW_CLAIM = ("UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, lease_token = ? "
             "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ? "
             f"ORDER BY priority, run_at, id LIMIT 1) RETURNING {JOB_COLUMNS}")
RAW_SUCCEED = ("UPDATE jobs SET state = 'succeeded', finished_at = ?, last_error = NULL, lease_until = NULL, "
               "lease_token = NULL WHERE id = ?")
# The same claim pinned to the claim index: on notifyd's schema this measures index upkeep, not the plan.
RAW_CLAIM_PINNED = RAW_CLAIM.replace("(SELECT id FROM jobs WHERE", "(SELECT id FROM jobs INDEXED BY jobs_claim WHERE")
CLAIM_SUBQUERY = ("SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ? "
                  "ORDER BY priority, run_at, id LIMIT 1")
# The rest of what notifyd's claim() and finish() write (notifyd.store.sql), for the diag. rows
# that run notifyd's own statements from a raw loop: its attempt row, opened and closed, and the
# finish UPDATE guarded by the lease token.
RAW_CLAIM_AS_NOTIFYD = ("UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, "
                        "lease_token = ?, node = ? WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim "
                        "WHERE state = 'queued' AND run_at <= ? ORDER BY priority, run_at, id LIMIT 1) "
                        f"RETURNING {JOB_COLUMNS}")
RAW_OPEN_ATTEMPT = "INSERT INTO attempts (job_id, started_at, node) VALUES (?, ?, ?) RETURNING id"
RAW_FINISH = ("UPDATE jobs SET state = ?, finished_at = ?, last_error = ?, lease_until = NULL, "
              "lease_token = NULL WHERE id = ? AND lease_token = ? AND state = 'running'")
RAW_CLOSE_ATTEMPT = "UPDATE attempts SET finished_at = ?, outcome = ?, error = ?, detail = ? WHERE id = ?"

# -- PostgreSQL baseline -------------------------------------------------------------------------

# notifyd's jobs columns and constraints in PostgreSQL's types, and only the claim index.
PG_RAW_SCHEMA = [
    "CREATE TABLE events (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
    "received_at DOUBLE PRECISION NOT NULL)",
    """CREATE TABLE jobs (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        event_id BIGINT REFERENCES events(id) ON DELETE CASCADE,
        service TEXT NOT NULL,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 10),
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'running', 'succeeded', 'dead', 'cancelled', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        run_at DOUBLE PRECISION NOT NULL,
        lease_until DOUBLE PRECISION,
        lease_token TEXT,
        unique_key TEXT,
        last_error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        payload TEXT NOT NULL DEFAULT '{}',
        node TEXT
    )""",
    "CREATE INDEX jobs_claim ON jobs(priority, run_at, id) WHERE state = 'queued'",
]
PG_INSERT = RAW_INSERT.replace("?", "%s")
PG_CLAIM_SUBQUERY = ("SELECT id FROM jobs WHERE state = 'queued' AND run_at <= %s "
                     "ORDER BY priority, run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED")
PG_CLAIM = ("UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = %s, lease_token = %s "
            f"WHERE id = ({PG_CLAIM_SUBQUERY}) RETURNING {JOB_COLUMNS}")
PG_SUCCEED = RAW_SUCCEED.replace("?", "%s")
PG_CLAIM_AS_NOTIFYD = (RAW_CLAIM_AS_NOTIFYD.replace(" INDEXED BY jobs_claim", "")
                       .replace("LIMIT 1)", "LIMIT 1 FOR UPDATE SKIP LOCKED)").replace("?", "%s"))
PG_OPEN_ATTEMPT = RAW_OPEN_ATTEMPT.replace("?", "%s")
PG_FINISH = RAW_FINISH.replace("?", "%s")
PG_CLOSE_ATTEMPT = RAW_CLOSE_ATTEMPT.replace("?", "%s")


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
        return "ok" if self.ratio >= self.target else "MISSED"

    def as_json(self) -> dict[str, Any]:
        return {"section": self.section, "name": self.case, "jobs": self.jobs, "seconds": round(self.seconds, 4),
                "jobs_per_s": round(self.rate, 1),
                "reference": self.reference.case if self.reference else None,
                "reference_jobs_per_s": round(self.reference.rate, 1) if self.reference else None,
                "ratio": round(self.ratio, 3) if self.ratio is not None else None,
                "target": self.target, "verdict": self.verdict}


# -- set-up: SQLite ----------------------------------------------------------------------------


def spec_for(i: int) -> JobSpec:
    return JobSpec(service="bench", kind=KIND, priority=PRIORITIES[i % len(PRIORITIES)])


def notifyd_sqlite(directory: Path, name: str) -> SqliteStore:
    """A migrated notifyd SQLite store, opened the way the daemon opens it."""
    store = SqliteStore(directory / name, node_id="bench")
    store.migrate()
    return store


def raw_connect(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with notifyd's pragmas, in autocommit mode."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def raw_db(directory: Path, name: str) -> sqlite3.Connection:
    """The baseline database: the minimal schema, one event row for the jobs to point at."""
    conn = raw_connect(directory / name)
    conn.execute("BEGIN IMMEDIATE")
    for statement in RAW_SCHEMA:
        conn.execute(statement)
    conn.execute("INSERT INTO events (id, received_at) VALUES (1, ?)", (time.time(),))
    conn.execute("COMMIT")
    return conn


def one_event(store: Store, config: Config) -> int:
    """An events row (via ingest's record_event; the default config has no services, so no jobs)."""
    event = Event(source="generic", source_type="generic", kind="bench", title="benchmark")
    with store.transaction() as tx:
        return record_event(tx, event, config, time.time()).event_id


def fill_notifyd(store: Store, event_id: int, jobs: int, max_attempts: int) -> None:
    """Queue `jobs` jobs through notifyd's enqueue, 500 per transaction (set-up, not timed)."""
    for start in range(0, jobs, 500):
        with store.transaction() as tx:
            tx.enqueue(event_id, [spec_for(i) for i in range(start, min(jobs, start + 500))], max_attempts,
                       time.time())


def fill_raw(conn: sqlite3.Connection, jobs: int, max_attempts: int) -> None:
    """Queue `jobs` jobs in the baseline table, 500 per transaction (set-up, not timed)."""
    for start in range(0, jobs, 500):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(RAW_INSERT, [(1, "bench", KIND, spec_for(i).priority, max_attempts, now, None, now)
                                      for i in range(start, min(jobs, start + 500))])
        conn.execute("COMMIT")


def add_history(store: SqliteStore, rows: int) -> None:
    """`rows` succeeded jobs, each with its event and one succeeded attempt, straight in SQL."""
    if rows <= 0:
        return
    base = time.time() - 7 * 86400
    with store.writing() as conn:
        first_event = (conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]) + 1
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < ?) "
            "INSERT INTO events (id, source, source_type, kind, title, body, received_at) "
            "SELECT ? + x, 'generic', 'generic', 'bench', 'history ' || x, 'body', ? + x * 0.001 FROM n",
            (rows, first_event, base))
        first_job = (conn.execute("SELECT coalesce(max(id), 0) FROM jobs").fetchone()[0]) + 1
        conn.execute(
            "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < ?) "
            "INSERT INTO jobs (id, event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
            "created_at, finished_at) "
            "SELECT ? + x, ? + x, 'bench', ?, 3 + 2 * (x % 3), 'succeeded', 1, 8, "
            "? + x * 0.001, ? + x * 0.001, ? + x * 0.001 + 0.5 FROM n",
            (rows, first_job, first_event, KIND, base, base, base))
        conn.execute(
            "INSERT INTO attempts (job_id, started_at, finished_at, outcome, detail, node) "
            "SELECT id, run_at, finished_at, 'succeeded', '', 'bench' FROM jobs WHERE id >= ?", (first_job,))


# -- set-up: PostgreSQL ------------------------------------------------------------------------


def notifyd_postgres(url: str) -> Store:
    """A migrated notifyd PostgreSQL store on `url`, with the daemon's default pool size."""
    from notifyd.store.postgres import PostgresStore

    store = PostgresStore(url, node_id="bench", pool_size=8)
    store.migrate()
    return store


def pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)


def pg_raw_db(url: str) -> Any:
    """The PostgreSQL baseline database: the minimal schema, one event row for the jobs."""
    conn = pg_connect(url)
    with conn.transaction():
        for statement in PG_RAW_SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO events (id, received_at) VALUES (1, %s)", (time.time(),))
    return conn


def pg_fill_raw(conn: Any, jobs: int, max_attempts: int) -> None:
    """Queue `jobs` jobs in the baseline table, 500 per transaction (set-up, not timed)."""
    for start in range(0, jobs, 500):
        now = time.time()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(PG_INSERT, [(1, "bench", KIND, spec_for(i).priority, max_attempts, now, None, now)
                                        for i in range(start, min(jobs, start + 500))])


def pg_vacuum(url: str) -> None:
    """Planner statistics and a clean visibility map for the freshly filled tables, then a
    checkpoint (where the role may), so no side is timed while the server still writes out the
    set-up's pages (untimed)."""
    import psycopg

    with pg_connect(url) as conn:
        conn.execute("VACUUM ANALYZE jobs")
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass


def pg_claim_plan(url: str) -> str:
    with pg_connect(url) as conn:
        rows = conn.execute("EXPLAIN (COSTS OFF) " + PG_CLAIM_SUBQUERY, (time.time(),)).fetchall()
    return "; ".join(r[0].strip() for r in rows)


# -- timed loops ---------------------------------------------------------------------------------


def time_notifyd_enqueue(store: Store, event_id: int, jobs: int, batch: int, max_attempts: int) -> float:
    specs = [spec_for(i) for i in range(jobs)]
    start = time.perf_counter()
    for first in range(0, jobs, batch):
        with store.transaction() as tx:
            tx.enqueue(event_id, specs[first:first + batch], max_attempts, time.time())
    return time.perf_counter() - start


def time_raw_enqueue(conn: sqlite3.Connection, jobs: int, batch: int, max_attempts: int,
                     event_id: int = 1) -> float:
    priorities = [spec_for(i).priority for i in range(jobs)]
    start = time.perf_counter()
    for first in range(0, jobs, batch):
        conn.execute("BEGIN IMMEDIATE")
        now = time.time()
        for priority in priorities[first:first + batch]:
            conn.execute(RAW_INSERT, (event_id, "bench", KIND, priority, max_attempts, now, None, now))
        conn.execute("COMMIT")
    return time.perf_counter() - start


def notifyd_claim_loop(store: Store, jobs: int, lease: float) -> None:
    """What a worker does around each delivery: claim the next due job, record that it succeeded."""
    for _ in range(jobs):
        claim = store.claim(time.time(), lease)
        if claim is None:
            raise RuntimeError("notifyd claim found nothing due; the set-up queued too few jobs")
        record_outcome(store, claim, succeeded(""), time.time())


def time_notifyd_claims(store: Store, jobs: int, lease: float) -> float:
    start = time.perf_counter()
    notifyd_claim_loop(store, jobs, lease)
    return time.perf_counter() - start


def time_raw_claims(conn: sqlite3.Connection, jobs: int, lease: float, claim_sql: str = RAW_CLAIM) -> float:
    start = time.perf_counter()
    for _ in range(jobs):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(claim_sql, (now + lease, TOKEN, now)).fetchone()
        conn.execute("COMMIT")
        if row is None:
            raise RuntimeError("raw claim found nothing due; the set-up queued too few jobs")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(RAW_SUCCEED, (time.time(), row[0]))
        conn.execute("COMMIT")
    return time.perf_counter() - start


def time_raw_notifyd_statements(conn: Any, jobs: int, lease: float, claim_sql: str, open_attempt: str,
                                finish: str, close_attempt: str, begin: str) -> float:
    """notifyd's own statements in its two transactions per job, from a plain loop on one
    connection: what its SQL costs without its Python (the once-a-second expiry check aside)."""
    start = time.perf_counter()
    for _ in range(jobs):
        now = time.time()
        conn.execute(begin)
        row = conn.execute(claim_sql, (now + lease, TOKEN, "bench", now)).fetchone()
        if row is None:
            raise RuntimeError("raw claim found nothing due; the set-up queued too few jobs")
        attempt_id = conn.execute(open_attempt, (row[0], now, "bench")).fetchone()[0]
        conn.execute("COMMIT")
        now = time.time()
        conn.execute(begin)
        conn.execute(finish, ("succeeded", now, None, row[0], TOKEN))
        conn.execute(close_attempt, (now, "succeeded", None, "", attempt_id))
        conn.execute("COMMIT")
    return time.perf_counter() - start


def time_pg_raw_claims(conn: Any, jobs: int, lease: float, explicit: bool = True) -> float:
    """Two transactions per job: explicit BEGIN/COMMIT around each UPDATE, or (explicit=False)
    each UPDATE alone in autocommit, its own implicit transaction."""
    start = time.perf_counter()
    for _ in range(jobs):
        now = time.time()
        if explicit:
            conn.execute("BEGIN")
        row = conn.execute(PG_CLAIM, (now + lease, TOKEN, now)).fetchone()
        if explicit:
            conn.execute("COMMIT")
        if row is None:
            raise RuntimeError("raw claim found nothing due; the set-up queued too few jobs")
        if explicit:
            conn.execute("BEGIN")
        conn.execute(PG_SUCCEED, (time.time(), row[0]))
        if explicit:
            conn.execute("COMMIT")
    return time.perf_counter() - start


def claim_plan(conn: sqlite3.Connection) -> str:
    """The plan SQLite picks for the plain (unpinned) claim subquery on this connection's schema."""
    rows = conn.execute("EXPLAIN QUERY PLAN " + CLAIM_SUBQUERY, (time.time(),)).fetchall()
    return "; ".join(r[-1] for r in rows)


def notifyd_claim_plan(store: SqliteStore, lease: float) -> str:
    """The plan of the claim UPDATE notifyd really runs: one claim+succeed (untimed) with a trace
    callback catching its SQL, which is then explained. Uses up one queued job."""
    seen: list[str] = []

    def trace(sql: str) -> None:
        if sql.lstrip().upper().startswith("UPDATE JOBS SET STATE = 'RUNNING'"):
            seen.append(sql)

    with store.reading() as conn:      # this thread's connection, the one claim() writes on
        conn.set_trace_callback(trace)
        try:
            claim = store.claim(time.time(), lease)
        finally:
            conn.set_trace_callback(None)
        if claim is None or not seen:
            return "(not captured)"
        record_outcome(store, claim, succeeded(""), time.time())
        rows = conn.execute("EXPLAIN QUERY PLAN " + seen[0]).fetchall()
    return "; ".join(r[-1] for r in rows)


VERBOSE = False   # --verbose: print every timed run, not only the best


def best(*timers: Callable[[], float], repeat: int, label: str = "") -> list[float]:
    """The best time of each timer over `repeat` rounds, the timers interleaved in each round and
    their order rotated from one round to the next, so no side is always the first or the last."""
    found = [float("inf")] * len(timers)
    runs: list[list[float]] = [[] for _ in timers]
    for round_ in range(repeat):
        for k in range(len(timers)):
            i = (k + round_) % len(timers)
            runs[i].append(timers[i]())
            found[i] = min(found[i], runs[i][-1])
    if VERBOSE:
        print(f"  {label} runs (s, in order): " + " | ".join(", ".join(f"{t:.3f}" for t in r) for r in runs),
              flush=True)
    return found


# -- the run -----------------------------------------------------------------------------------


def run_sqlite(jobs: int, history: int, batch: int, repeat: int, root: Path, config: Config,
               notes: dict[str, str]) -> list[Row]:
    max_attempts = config.worker.max_attempts
    lease = config.worker.lease
    rows: list[Row] = []
    counter = iter(range(1_000_000))

    def fresh(prefix: str) -> str:
        return f"{prefix}-{next(counter)}.db"

    # 1. enqueue ---------------------------------------------------------------------------
    section = "sqlite enqueue"
    for size in (1, batch):
        def notifyd_enqueue(size: int = size) -> float:
            store = notifyd_sqlite(root, fresh("enq-notifyd"))
            try:
                return time_notifyd_enqueue(store, one_event(store, config), jobs, size, max_attempts)
            finally:
                store.close()

        def raw_enqueue(size: int = size) -> float:
            conn = raw_db(root, fresh("enq-raw"))
            try:
                return time_raw_enqueue(conn, jobs, size, max_attempts)
            finally:
                conn.close()

        def raw_enqueue_notifyd_schema(size: int = size) -> float:
            store = notifyd_sqlite(root, fresh("enq-raw-nschema"))
            try:
                event_id = one_event(store, config)
                with store.reading() as conn:
                    return time_raw_enqueue(conn, jobs, size, max_attempts, event_id)
            finally:
                store.close()

        n_secs, r_secs, rn_secs = best(notifyd_enqueue, raw_enqueue, raw_enqueue_notifyd_schema, repeat=repeat,
                                       label=f"sqlite enqueue {size}/txn: notifyd | raw | raw notifyd schema")
        label = "1 job/txn" if size == 1 else f"{size} jobs/txn"
        raw = Row(section, f"raw sqlite3, {label}", jobs, r_secs)
        rows.append(raw)
        rows.append(Row(section, f"raw sqlite3, notifyd schema (diag.), {label}", jobs, rn_secs, raw))
        rows.append(Row(section, f"notifyd enqueue, {label}", jobs, n_secs, raw))

    # 2. claim + complete ------------------------------------------------------------------
    section = "sqlite claim+complete"

    def notifyd_claims() -> float:
        store = notifyd_sqlite(root, fresh("claim-notifyd"))
        try:
            fill_notifyd(store, one_event(store, config), jobs + 1, max_attempts)
            plan = notifyd_claim_plan(store, lease)  # takes the extra job
            notes.setdefault("sqlite: notifyd claim plan (as run)", plan)
            with store.reading() as conn:
                notes.setdefault("sqlite: plain claim subquery on notifyd schema", claim_plan(conn))
            return time_notifyd_claims(store, jobs, lease)
        finally:
            store.close()

    def raw_claims() -> float:
        conn = raw_db(root, fresh("claim-raw"))
        try:
            fill_raw(conn, jobs, max_attempts)
            notes.setdefault("sqlite: plain claim subquery on minimal schema", claim_plan(conn))
            return time_raw_claims(conn, jobs, lease)
        finally:
            conn.close()

    def raw_claims_notifyd_schema() -> float:
        store = notifyd_sqlite(root, fresh("claim-raw-nschema"))
        try:
            fill_notifyd(store, one_event(store, config), jobs, max_attempts)
            with store.reading() as conn:
                return time_raw_claims(conn, jobs, lease, RAW_CLAIM_PINNED)
        finally:
            store.close()

    def raw_notifyd_statements() -> float:
        store = notifyd_sqlite(root, fresh("claim-raw-nstatements"))
        try:
            fill_notifyd(store, one_event(store, config), jobs, max_attempts)
            with store.reading() as conn:
                return time_raw_notifyd_statements(conn, jobs, lease, RAW_CLAIM_AS_NOTIFYD, RAW_OPEN_ATTEMPT,
                                                   RAW_FINISH, RAW_CLOSE_ATTEMPT, "BEGIN IMMEDIATE")
        finally:
            store.close()

    n_secs, r_secs, rn_secs, rs_secs = best(
        notifyd_claims, raw_claims, raw_claims_notifyd_schema, raw_notifyd_statements, repeat=repeat,
        label="sqlite claim: notifyd | raw | raw notifyd schema | raw notifyd statements")
    raw = Row(section, "raw sqlite3, minimal schema", jobs, r_secs)
    rows.append(raw)
    rows.append(Row(section, "raw sqlite3, notifyd schema, pinned (diag.)", jobs, rn_secs, raw))
    rows.append(Row(section, "raw sqlite3, notifyd schema and statements (diag.)", jobs, rs_secs, raw))
    rows.append(Row(section, "notifyd claim()+finish()", jobs, n_secs, raw, CLAIM_TARGET))

    # 3. claim + complete with a finished history -----------------------------------------
    if history > 0:
        section = f"sqlite history {history:,}"
        hist = notifyd_sqlite(root, fresh("history"))
        hist_event = one_event(hist, config)
        setup = time.perf_counter()
        add_history(hist, history)
        notes["sqlite: history set-up"] = (f"{history:,} succeeded jobs + attempts + events inserted by SQL in "
                                           f"{time.perf_counter() - setup:.1f} s")

        def history_claims() -> float:
            fill_notifyd(hist, hist_event, jobs + 1, max_attempts)
            notes.setdefault("sqlite: notifyd claim plan (as run) with history", notifyd_claim_plan(hist, lease))
            return time_notifyd_claims(hist, jobs, lease)

        try:
            e_secs, h_secs = best(notifyd_claims, history_claims, repeat=repeat,
                                  label="sqlite history: empty | history")
        finally:
            hist.close()
        empty = Row(section, "notifyd, empty table", jobs, e_secs)
        rows.append(empty)
        rows.append(Row(section, f"notifyd, {history:,} succeeded rows", jobs, h_secs, empty, HISTORY_TARGET))
    return rows


def run_postgres(jobs: int, repeat: int, config: Config, notes: dict[str, str]) -> list[Row]:
    from pg_server import PostgresServer

    max_attempts = config.worker.max_attempts
    lease = config.worker.lease
    started = time.perf_counter()
    server = PostgresServer()
    try:
        notes["postgresql: server"] = (f"{server.version()} from {server.origin}, "
                                       f"started in {time.perf_counter() - started:.1f} s")

        def notifyd_claims() -> float:
            url = server.new_database("bench_claim_notifyd")
            store = notifyd_postgres(url)
            try:
                fill_notifyd(store, one_event(store, config), jobs, max_attempts)
                pg_vacuum(url)
                notes.setdefault("postgresql: claim subquery plan on notifyd schema", pg_claim_plan(url))
                return time_notifyd_claims(store, jobs, lease)
            finally:
                store.close()

        def raw_claims(explicit: bool = True) -> float:
            url = server.new_database("bench_claim_raw")
            with pg_raw_db(url) as conn:
                pg_fill_raw(conn, jobs, max_attempts)
                pg_vacuum(url)
                notes.setdefault("postgresql: claim subquery plan on minimal schema", pg_claim_plan(url))
                return time_pg_raw_claims(conn, jobs, lease, explicit)

        def raw_claims_notifyd_schema() -> float:
            url = server.new_database("bench_claim_raw_nschema")
            store = notifyd_postgres(url)
            try:
                fill_notifyd(store, one_event(store, config), jobs, max_attempts)
            finally:
                store.close()
            pg_vacuum(url)
            with pg_connect(url) as conn:
                return time_pg_raw_claims(conn, jobs, lease)

        def raw_notifyd_statements() -> float:
            url = server.new_database("bench_claim_raw_nstatements")
            store = notifyd_postgres(url)
            try:
                fill_notifyd(store, one_event(store, config), jobs, max_attempts)
            finally:
                store.close()
            pg_vacuum(url)
            with pg_connect(url) as conn:
                return time_raw_notifyd_statements(conn, jobs, lease, PG_CLAIM_AS_NOTIFYD, PG_OPEN_ATTEMPT, PG_FINISH,
                                                   PG_CLOSE_ATTEMPT, "BEGIN")

        n_secs, r_secs, rn_secs, rs_secs, ra_secs = best(
            notifyd_claims, raw_claims, raw_claims_notifyd_schema, raw_notifyd_statements,
            lambda: raw_claims(explicit=False), repeat=repeat,
            label="postgresql claim: notifyd | raw | raw notifyd schema | raw notifyd statements | raw autocommit")
    finally:
        server.stop()
    section = "postgresql claim+complete"
    raw = Row(section, "raw psycopg, minimal schema, BEGIN/COMMIT", jobs, r_secs)
    return [raw,
            Row(section, "raw psycopg, notifyd schema (diag.)", jobs, rn_secs, raw),
            Row(section, "raw psycopg, notifyd schema and statements (diag.)", jobs, rs_secs, raw),
            Row(section, "raw psycopg, minimal schema, autocommit statements (diag.)", jobs, ra_secs, raw),
            Row(section, "notifyd claim()+finish()", jobs, n_secs, raw, CLAIM_TARGET)]


def profile_claims(engine: str, jobs: int, root: Path, config: Config, top: int = 15) -> str:
    """cProfile of notifyd's claim+complete loop on a fresh store, sorted by cumulative time."""
    server = None
    if engine == "sqlite":
        store: Store = notifyd_sqlite(root, "profile.db")
    else:
        from pg_server import PostgresServer

        server = PostgresServer()
        url = server.new_database("bench_profile")
        store = notifyd_postgres(url)
    try:
        fill_notifyd(store, one_event(store, config), jobs, config.worker.max_attempts)
        if server is not None:
            pg_vacuum(url)
        profiler = cProfile.Profile()
        profiler.enable()
        notifyd_claim_loop(store, jobs, config.worker.lease)
        profiler.disable()
    finally:
        store.close()
        if server is not None:
            server.stop()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# -- report ------------------------------------------------------------------------------------


def target_text(row: Row) -> str:
    return f">= {row.target} {row.verdict}" if row.target is not None else ""


def ratio_text(row: Row) -> str:
    return f"{row.ratio:.3f}" if row.ratio is not None else ""


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
    print("| section | case | jobs | jobs/s | reference | ratio | target |")
    print("|---|---|--:|--:|---|--:|---|")
    for r in rows:
        reference = r.reference.case if r.reference else ""
        print(f"| {r.section} | {r.case} | {r.jobs:,} | {r.rate:,.0f} | {reference} | {ratio_text(r)} "
              f"| {target_text(r)} |")


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count(),
            "machine": platform.machine(), "system": platform.system()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per measurement")
    parser.add_argument("--history", type=int, default=100_000,
                        help="succeeded rows for the SQLite history case (0 leaves it out)")
    parser.add_argument("--batch", type=int, default=100, help="jobs per transaction in the batched enqueue")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), action="append",
                        help="measure only this engine (repeat the option); default both")
    parser.add_argument("--verbose", action="store_true", help="print every timed run, not only the best")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write every figure to PATH as JSON")
    parser.add_argument("--profile", choices=("sqlite", "postgresql"), action="append",
                        help="after the figures, profile notifyd's claim+complete loop on this engine (--jobs jobs)")
    args = parser.parse_args(argv)
    # A TERM (timeout, Ctrl-C from a supervisor) unwinds like an exception, so the finally blocks
    # stop the daemons, the sink and the PostgreSQL server this run started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.jobs < 1 or args.batch < 1 or args.repeat < 1 or args.history < 0:
        parser.error("--jobs, --batch and --repeat must be >= 1 and --history >= 0")
    engines = args.engine or ["sqlite", "postgresql"]
    global VERBOSE
    VERBOSE = args.verbose

    info = machine()
    print(f"notifyd queue benchmark: python {info['python']}, SQLite {info['sqlite']}, {info['cpus']} CPUs, "
          f"{info['machine']} {info['system']}; --jobs {args.jobs} --history {args.history} "
          f"--batch {args.batch} --repeat {args.repeat}; engines: {', '.join(engines)}", flush=True)
    config = parse_config({}, path=None, env={})
    started = time.perf_counter()
    rows: list[Row] = []
    notes: dict[str, str] = {}
    profiles: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-") as tmp:
        if "sqlite" in engines:
            rows += run_sqlite(args.jobs, args.history, args.batch, args.repeat, Path(tmp), config, notes)
            print(f"  sqlite done at {time.perf_counter() - started:.0f} s", flush=True)
        if "postgresql" in engines:
            rows += run_postgres(args.jobs, args.repeat, config, notes)
            print(f"  postgresql done at {time.perf_counter() - started:.0f} s", flush=True)
        for engine in args.profile or []:
            profiles[engine] = profile_claims(engine, args.jobs, Path(tmp), config)
    wall = time.perf_counter() - started
    print()
    print_plain(rows)
    print()
    for key, value in notes.items():
        print(f"{key}: {value}")
    print(f"total wall time: {wall:.1f} s")
    print()
    print("ratio = this row's jobs/s / its reference's jobs/s; the reference is the raw driver loop on the "
          "minimal schema of the same engine (enqueue, claim+complete) or notifyd on an empty table (history).")
    print()
    print_markdown(rows)
    for engine, text in profiles.items():
        print()
        print(f"cProfile of notifyd claim+complete on {engine}, {args.jobs:,} jobs (cumulative time):")
        print(text)
    if args.json:
        document = {"benchmark": "bench_queue", "machine": info,
                    "options": {"jobs": args.jobs, "history": args.history, "batch": args.batch,
                                "repeat": args.repeat, "engines": engines},
                    "wall_seconds": round(wall, 1), "figures": [r.as_json() for r in rows], "notes": notes}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
