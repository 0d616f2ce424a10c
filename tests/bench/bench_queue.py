"""Benchmark of notifyd's SQLite job queue against a raw sqlite3 baseline.

What it measures, on one machine and in one run:

1. Enqueue throughput (jobs/s). notifyd: ``with write(db): enqueue(db, event_id, [spec], ...)``,
   one transaction per job and then ``--batch`` jobs per transaction. Baseline: a raw
   ``sqlite3`` loop doing the same INSERT into a jobs table with the same columns, CHECK
   constraints and foreign key but only the claim index, with the same pragmas (WAL,
   synchronous NORMAL, busy_timeout 5000, foreign_keys ON). Both ways, single and batched; a
   "(diag.)" row runs the raw INSERT on notifyd's schema, to separate index cost from Python cost.
2. Claim+complete throughput (jobs/s) over ``--jobs`` pre-enqueued jobs. notifyd:
   ``JobQueue.claim()`` then ``.succeed(claim)``. Baseline: the minimal equivalent, two
   ``BEGIN IMMEDIATE`` transactions per job (UPDATE ... WHERE id = (SELECT id ... ORDER BY
   priority, run_at, id LIMIT 1) RETURNING ...; then UPDATE state = 'succeeded'). Reported with
   the ratio notifyd/raw (design target >= 0.7). A "(diag.)" row runs the same raw loop on
   notifyd's own schema (all its indexes) with the claim pinned ``INDEXED BY jobs_claim``, so
   it shows what index upkeep costs apart from the query plan; the plan notifyd's claim
   really gets (caught with a trace callback and EXPLAIN QUERY PLAN) is printed below the table.
3. notifyd claim+complete with a large finished history (``--history`` succeeded jobs, plus
   their attempts and events, inserted directly by SQL) against an empty table, and the ratio
   history/empty (design target >= 0.9).

Each figure is the best of ``--repeat`` runs on a fresh database in a temporary directory
(the history database is built once and reused; each repeat adds ``--jobs`` rows to it).

Run it from the repository root:

    python tests/bench/bench_queue.py                  # defaults: --jobs 5000 --history 200000
    python tests/bench/bench_queue.py --jobs 2000 --history 50000 --repeat 1

It is a script, not a test: pytest does not collect it (the file name matches neither
``test_*.py`` nor ``*_test.py``).
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from notifyd.config import Config, parse_config
from notifyd.events import Event
from notifyd.fanout import JobSpec
from notifyd.ingest import record_event
from notifyd.queue import JobQueue, enqueue
from notifyd.store import BUSY_TIMEOUT_MS, Store, write

CLAIM_TARGET = 0.7
HISTORY_TARGET = 0.9
PRIORITIES = (3, 5, 7)  # jobs cycle through these, so the ORDER BY has real work to do

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
        finished_at REAL
    )""",
    "CREATE INDEX jobs_claim ON jobs(priority, run_at, id) WHERE state = 'queued'",
]

RAW_INSERT = ("INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
              "unique_key, created_at) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)")
RAW_CLAIM = ("UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, lease_token = ? "
             "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ? "
             "ORDER BY priority, run_at, id LIMIT 1) "
             "RETURNING id, event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
             "lease_until, unique_key, last_error, created_at, finished_at")
RAW_SUCCEED = ("UPDATE jobs SET state = 'succeeded', finished_at = ?, last_error = NULL, lease_until = NULL, "
               "lease_token = NULL WHERE id = ?")
# The same claim pinned to the claim index: on notifyd's schema this measures index upkeep, not the plan.
RAW_CLAIM_PINNED = RAW_CLAIM.replace("(SELECT id FROM jobs WHERE", "(SELECT id FROM jobs INDEXED BY jobs_claim WHERE")
CLAIM_SUBQUERY = ("SELECT id FROM jobs WHERE state = 'queued' AND run_at <= ? "
                  "ORDER BY priority, run_at, id LIMIT 1")


@dataclass
class Row:
    """One line of the results table."""

    section: str
    case: str
    jobs: int
    seconds: float
    ratio: str = ""
    target: str = ""

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else float("inf")


# -- set-up ------------------------------------------------------------------------------------


def spec_for(i: int) -> JobSpec:
    return JobSpec(service="bench", kind="apprise", priority=PRIORITIES[i % len(PRIORITIES)])


def notifyd_db(directory: Path, name: str) -> sqlite_utils.Database:
    """A migrated notifyd store, connected the way the daemon connects."""
    store = Store(directory / name)
    store.migrate()
    return store.connect()


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


def one_event(db: sqlite_utils.Database, config: Config) -> int:
    """An events row (via ingest's record_event; the default config has no services, so no jobs)."""
    event = Event(source="generic", source_type="generic", kind="bench", title="benchmark")
    with write(db):
        return record_event(db, event, config, time.time()).event_id


def fill_notifyd(db: sqlite_utils.Database, event_id: int, jobs: int, max_attempts: int) -> None:
    """Queue `jobs` jobs through notifyd's enqueue, 500 per transaction (set-up, not timed)."""
    for start in range(0, jobs, 500):
        with write(db):
            now = time.time()
            enqueue(db, event_id, [spec_for(i) for i in range(start, min(jobs, start + 500))], max_attempts, now)


def fill_raw(conn: sqlite3.Connection, jobs: int, max_attempts: int) -> None:
    """Queue `jobs` jobs in the baseline table, 500 per transaction (set-up, not timed)."""
    for start in range(0, jobs, 500):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(RAW_INSERT, [(1, "bench", "apprise", spec_for(i).priority, max_attempts, now, None, now)
                                      for i in range(start, min(jobs, start + 500))])
        conn.execute("COMMIT")


def add_history(db: sqlite_utils.Database, rows: int) -> None:
    """`rows` succeeded jobs, each with its event and one succeeded attempt, straight in SQL."""
    if rows <= 0:
        return
    conn = db.conn
    base = time.time() - 7 * 86400
    with write(db):
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
            "SELECT ? + x, ? + x, 'bench', 'apprise', 3 + 2 * (x % 3), 'succeeded', 1, 8, "
            "? + x * 0.001, ? + x * 0.001, ? + x * 0.001 + 0.5 FROM n",
            (rows, first_job, first_event, base, base, base))
        conn.execute(
            "INSERT INTO attempts (job_id, started_at, finished_at, outcome, detail) "
            "SELECT id, run_at, finished_at, 'succeeded', '' FROM jobs WHERE id >= ?", (first_job,))


# -- timed loops ---------------------------------------------------------------------------------


def time_notifyd_enqueue(db: sqlite_utils.Database, event_id: int, jobs: int, batch: int,
                         max_attempts: int) -> float:
    specs = [spec_for(i) for i in range(jobs)]
    start = time.perf_counter()
    for first in range(0, jobs, batch):
        with write(db):
            enqueue(db, event_id, specs[first:first + batch], max_attempts, time.time())
    return time.perf_counter() - start


def time_raw_enqueue(conn: sqlite3.Connection, jobs: int, batch: int, max_attempts: int,
                     event_id: int = 1) -> float:
    priorities = [spec_for(i).priority for i in range(jobs)]
    start = time.perf_counter()
    for first in range(0, jobs, batch):
        conn.execute("BEGIN IMMEDIATE")
        now = time.time()
        for priority in priorities[first:first + batch]:
            conn.execute(RAW_INSERT, (event_id, "bench", "apprise", priority, max_attempts, now, None, now))
        conn.execute("COMMIT")
    return time.perf_counter() - start


def time_notifyd_claims(db: sqlite_utils.Database, jobs: int, lease: float) -> float:
    queue = JobQueue(db, lease=lease)
    start = time.perf_counter()
    for _ in range(jobs):
        claim = queue.claim()
        if claim is None:
            raise RuntimeError("notifyd claim found nothing due; the set-up queued too few jobs")
        queue.succeed(claim)
    return time.perf_counter() - start


def time_raw_claims(conn: sqlite3.Connection, jobs: int, lease: float, claim_sql: str = RAW_CLAIM) -> float:
    token = "0123456789abcdef"
    start = time.perf_counter()
    for _ in range(jobs):
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(claim_sql, (now + lease, token, now)).fetchone()
        conn.execute("COMMIT")
        if row is None:
            raise RuntimeError("raw claim found nothing due; the set-up queued too few jobs")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(RAW_SUCCEED, (time.time(), row[0]))
        conn.execute("COMMIT")
    return time.perf_counter() - start


def ratio(baseline_secs: float, secs: float) -> str:
    """Throughput relative to the baseline (same job count, so a ratio of times)."""
    return f"{baseline_secs / secs:.3f}"


def verdict(value: float, target: float) -> str:
    return f">= {target} {'ok' if value >= target else 'MISSED'}"


def claim_plan(conn: sqlite3.Connection) -> str:
    """The plan SQLite picks for the plain (unpinned) claim subquery on this connection's schema."""
    rows = conn.execute("EXPLAIN QUERY PLAN " + CLAIM_SUBQUERY, (time.time(),)).fetchall()
    return "; ".join(r[-1] for r in rows)


def notifyd_claim_plan(db: sqlite_utils.Database, lease: float) -> str:
    """The plan of the claim UPDATE notifyd really runs: one claim+succeed (untimed) with a trace
    callback catching its SQL, which is then explained. Uses up one queued job."""
    seen: list[str] = []

    def trace(sql: str) -> None:
        if sql.lstrip().upper().startswith("UPDATE JOBS SET STATE = 'RUNNING'"):
            seen.append(sql)

    queue = JobQueue(db, lease=lease)
    db.conn.set_trace_callback(trace)
    try:
        claim = queue.claim()
    finally:
        db.conn.set_trace_callback(None)
    if claim is None or not seen:
        return "(not captured)"
    queue.succeed(claim)
    rows = db.conn.execute("EXPLAIN QUERY PLAN " + seen[0]).fetchall()
    return "; ".join(r[-1] for r in rows)


# -- the run -----------------------------------------------------------------------------------


def run(jobs: int, history: int, batch: int, repeat: int, root: Path) -> tuple[list[Row], dict[str, str]]:
    config = parse_config({}, path=None)
    max_attempts = config.worker.max_attempts
    lease = config.worker.lease
    rows: list[Row] = []
    notes: dict[str, str] = {}
    counter = iter(range(1_000_000))

    def fresh(prefix: str) -> str:
        return f"{prefix}-{next(counter)}.db"

    # 1. enqueue ---------------------------------------------------------------------------
    section = "enqueue"
    for size in (1, batch):
        def notifyd_enqueue(size: int = size) -> float:
            db = notifyd_db(root, fresh("enq-notifyd"))
            try:
                return time_notifyd_enqueue(db, one_event(db, config), jobs, size, max_attempts)
            finally:
                db.close()

        def raw_enqueue(size: int = size) -> float:
            conn = raw_db(root, fresh("enq-raw"))
            try:
                return time_raw_enqueue(conn, jobs, size, max_attempts)
            finally:
                conn.close()

        def raw_enqueue_notifyd_schema(size: int = size) -> float:
            db = notifyd_db(root, fresh("enq-raw-nschema"))
            try:
                return time_raw_enqueue(db.conn, jobs, size, max_attempts, one_event(db, config))
            finally:
                db.close()

        n_secs, r_secs, rn_secs = float("inf"), float("inf"), float("inf")
        for _ in range(repeat):  # interleaved, so drift on the machine hits every side alike
            n_secs = min(n_secs, notifyd_enqueue())
            r_secs = min(r_secs, raw_enqueue())
            rn_secs = min(rn_secs, raw_enqueue_notifyd_schema())
        label = "1 job/txn" if size == 1 else f"{size} jobs/txn"
        rows.append(Row(section, f"raw sqlite3, {label}", jobs, r_secs))
        rows.append(Row(section, f"raw sqlite3, notifyd schema (diag.), {label}", jobs, rn_secs,
                        ratio=ratio(r_secs, rn_secs)))
        rows.append(Row(section, f"notifyd enqueue, {label}", jobs, n_secs,
                        ratio=ratio(r_secs, n_secs)))

    # 2. claim + complete ------------------------------------------------------------------
    section = "claim+complete"

    def notifyd_claims() -> float:
        db = notifyd_db(root, fresh("claim-notifyd"))
        try:
            fill_notifyd(db, one_event(db, config), jobs + 1, max_attempts)
            plan = notifyd_claim_plan(db, lease)  # takes the extra job
            notes.setdefault("notifyd claim plan (as run)", plan)
            notes.setdefault("plain claim subquery on notifyd schema", claim_plan(db.conn))
            return time_notifyd_claims(db, jobs, lease)
        finally:
            db.close()

    def raw_claims() -> float:
        conn = raw_db(root, fresh("claim-raw"))
        try:
            fill_raw(conn, jobs, max_attempts)
            notes.setdefault("plain claim subquery on minimal schema", claim_plan(conn))
            return time_raw_claims(conn, jobs, lease)
        finally:
            conn.close()

    def raw_claims_notifyd_schema() -> float:
        db = notifyd_db(root, fresh("claim-raw-nschema"))
        try:
            fill_notifyd(db, one_event(db, config), jobs, max_attempts)
            return time_raw_claims(db.conn, jobs, lease, RAW_CLAIM_PINNED)
        finally:
            db.close()

    n_secs, r_secs, rn_secs = float("inf"), float("inf"), float("inf")
    for _ in range(repeat):
        n_secs = min(n_secs, notifyd_claims())
        r_secs = min(r_secs, raw_claims())
        rn_secs = min(rn_secs, raw_claims_notifyd_schema())
    claim_ratio = r_secs / n_secs
    rows.append(Row(section, "raw sqlite3, minimal schema", jobs, r_secs))
    rows.append(Row(section, "raw sqlite3, notifyd schema, pinned (diag.)", jobs, rn_secs, ratio=ratio(r_secs, rn_secs)))
    rows.append(Row(section, "notifyd claim()+succeed()", jobs, n_secs, ratio=ratio(r_secs, n_secs),
                    target=verdict(claim_ratio, CLAIM_TARGET)))

    # 3. claim + complete with a finished history -----------------------------------------
    section = f"history {history:,}"
    hist_db = notifyd_db(root, fresh("history"))
    hist_event = one_event(hist_db, config)
    setup = time.perf_counter()
    add_history(hist_db, history)
    notes["history set-up"] = (f"{history:,} succeeded jobs + attempts + events inserted by SQL in "
                               f"{time.perf_counter() - setup:.1f} s")

    def history_claims() -> float:
        fill_notifyd(hist_db, hist_event, jobs + 1, max_attempts)
        notes.setdefault("notifyd claim plan (as run) with history", notifyd_claim_plan(hist_db, lease))
        return time_notifyd_claims(hist_db, jobs, lease)

    e_secs, h_secs = float("inf"), float("inf")
    try:
        for _ in range(repeat):
            e_secs = min(e_secs, notifyd_claims())
            h_secs = min(h_secs, history_claims())
    finally:
        hist_db.close()
    hist_ratio = e_secs / h_secs
    rows.append(Row(section, "notifyd, empty table", jobs, e_secs))
    rows.append(Row(section, f"notifyd, {history:,} succeeded rows", jobs, h_secs, ratio=ratio(e_secs, h_secs),
                    target=verdict(hist_ratio, HISTORY_TARGET)))
    return rows, notes


def print_plain(rows: list[Row]) -> None:
    headers = ("section", "case", "jobs", "seconds", "jobs/s", "ratio", "target")
    cells = [(r.section, r.case, f"{r.jobs:,}", f"{r.seconds:.3f}", f"{r.rate:,.0f}", r.ratio, r.target)
             for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    right = {2, 3, 4, 5}

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    previous = None
    for row, cell in zip(rows, cells):
        if previous is not None and row.section != previous:
            print()
        previous = row.section
        print(line(cell))


def print_markdown(rows: list[Row]) -> None:
    print("| section | case | jobs | jobs/s | ratio | target |")
    print("|---|---|--:|--:|--:|---|")
    for r in rows:
        print(f"| {r.section} | {r.case} | {r.jobs:,} | {r.rate:,.0f} | {r.ratio} | {r.target} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per measurement")
    parser.add_argument("--history", type=int, default=200_000, help="succeeded rows for the history case")
    parser.add_argument("--batch", type=int, default=100, help="jobs per transaction in the batched enqueue")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the best is reported")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.batch < 1 or args.repeat < 1 or args.history < 0:
        parser.error("--jobs, --batch and --repeat must be >= 1 and --history >= 0")

    print(f"notifyd queue benchmark: python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{platform.machine()} {platform.system()}; --jobs {args.jobs} --history {args.history} "
          f"--batch {args.batch} --repeat {args.repeat}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-") as tmp:
        rows, notes = run(args.jobs, args.history, args.batch, args.repeat, Path(tmp))
    print()
    print_plain(rows)
    print()
    for key, value in notes.items():
        print(f"{key}: {value}")
    print(f"total wall time: {time.perf_counter() - started:.1f} s")
    print()
    print("ratio = this row's jobs/s / the baseline's jobs/s; the baseline is the raw sqlite3 loop on the "
          "minimal schema (enqueue, claim+complete) or notifyd on an empty table (history).")
    print()
    print_markdown(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
