"""The SQLite engine: one file in WAL mode, numbered migrations, one `notifyd serve` at a time.

Every thread uses its own connection (made on first use); connections run in autocommit mode, so
each write is an explicit `BEGIN IMMEDIATE … COMMIT` (`writing`). The threads of one process
take turns for write transactions on the store's own lock, and meet SQLite's busy handler only
when another process (the CLI) holds the database: that handler sleeps in steps of up to 100 ms,
so threads waiting in it for each other would spend most of their time asleep beside a free file.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from notifyd.errors import StoreTooNew, StoreUnavailable
from notifyd.lock import ServeLock
from notifyd.store.sql import SqlStore

BUSY_TIMEOUT_MS = 5000

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_type TEXT NOT NULL,
            kind TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            paths TEXT NOT NULL DEFAULT '[]',
            media TEXT NOT NULL DEFAULT '{}',
            payload TEXT NOT NULL DEFAULT '{}',
            dedupe_key TEXT,
            received_at REAL NOT NULL
        )""",
        "CREATE INDEX events_dedupe ON events(source, dedupe_key, received_at)",
        "CREATE INDEX events_received ON events(received_at)",
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
        # Matches the claim's ORDER BY and holds only queued rows, so history never slows a claim.
        "CREATE INDEX jobs_claim ON jobs(priority, run_at, id) WHERE state = 'queued'",
        "CREATE INDEX jobs_lease ON jobs(lease_until) WHERE state = 'running'",
        "CREATE UNIQUE INDEX jobs_unique ON jobs(unique_key) WHERE state = 'queued' AND unique_key IS NOT NULL",
        "CREATE INDEX jobs_event ON jobs(event_id)",
        # Finished jobs by age, for retention; partial so the planner never takes it for a claim.
        "CREATE INDEX jobs_finished ON jobs(finished_at) WHERE finished_at IS NOT NULL",
        """CREATE TABLE attempts (
            id INTEGER PRIMARY KEY,
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            started_at REAL NOT NULL,
            finished_at REAL,
            outcome TEXT,
            error TEXT,
            detail TEXT
        )""",
        "CREATE INDEX attempts_job ON attempts(job_id)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
    ],
    [
        # What a job needs beyond its event (a refresh's mapped folder), and the events a
        # collapsed refresh also serves, so each of them shows that job's delivery.
        "ALTER TABLE jobs ADD COLUMN payload TEXT NOT NULL DEFAULT '{}'",
        """CREATE TABLE job_events (
            job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
            event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
            PRIMARY KEY (job_id, event_id)
        )""",
        "CREATE INDEX job_events_event ON job_events(event_id)",
    ],
    [
        # Collapsing is decided when a job is enqueued; a uniqueness constraint instead made
        # requeueing a job (a retry, an expired lease, `jobs retry`) fail whenever a twin was queued.
        "DROP INDEX IF EXISTS jobs_unique",
        "CREATE INDEX jobs_unique_key ON jobs(unique_key) WHERE state = 'queued' AND unique_key IS NOT NULL",
    ],
    [
        # Tracked runs (AI generations, uploads) and their bookkeeping, fed by status webhooks.
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL,
            progress REAL,
            live_status TEXT,
            notify TEXT NOT NULL DEFAULT '[]',
            context TEXT NOT NULL DEFAULT '{}',
            callback_url TEXT,
            cost_amount REAL,
            cost_unit TEXT,
            outputs TEXT NOT NULL DEFAULT '[]',
            error TEXT,
            registered INTEGER NOT NULL DEFAULT 0,
            source TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            final_event_id INTEGER REFERENCES events(id) ON DELETE SET NULL
        )""",
        "CREATE INDEX runs_created ON runs(created_at)",
        # A receiver that answered 410 Gone switches its service off here, whatever the config file says.
        "CREATE TABLE service_state (service TEXT PRIMARY KEY, disabled_reason TEXT, disabled_at REAL)",
    ],
    [
        # Which node made each attempt (hostname:pid), as the history shows it, and which node
        # holds (or last held) each job's lease: a service's cap on running jobs is per node.
        "ALTER TABLE attempts ADD COLUMN node TEXT",
        "ALTER TABLE jobs ADD COLUMN node TEXT",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)


class SqliteStore(SqlStore):
    """The embedded engine: a database file beside which `notifyd serve` holds a lock."""

    engine = "sqlite"
    multi_node = False
    claim_from = "jobs INDEXED BY jobs_claim"

    def __init__(self, path: Path, *, synchronous: str = "NORMAL", node_id: str = "local") -> None:
        super().__init__(node_id)
        self.path = Path(path)
        self.location = str(self.path)
        self.synchronous = synchronous
        self.write_lock = threading.Lock()
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()

    # -- connections ------------------------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A new connection with WAL, the busy timeout and foreign keys on."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot open {self.path}: {exc}") from None
        with self._opened_lock:
            self._opened.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        return conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn()
        except sqlite3.Error as exc:
            mapped = self.map_error(exc)
            if mapped is not None:
                raise mapped from None
            raise

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction, after this process's other writers.

        Time spent queueing on the store's lock comes off the busy timeout, so a write gives up
        after BUSY_TIMEOUT_MS in all. Not reentrant: a thread inside writing() must not open
        another write on the same store."""
        conn = self._conn()
        started = time.monotonic()
        if not self.write_lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise StoreUnavailable(f"the database is locked: this process's writes have queued for it for "
                                   f"{BUSY_TIMEOUT_MS // 1000} s (another process holds it, or a write is stuck)")
        waited_ms = int((time.monotonic() - started) * 1000)
        try:
            if waited_ms:
                conn.execute(f"PRAGMA busy_timeout = {max(1, BUSY_TIMEOUT_MS - waited_ms)}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(_reason(exc)) from None
            finally:
                if waited_ms:
                    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                mapped = self.map_error(exc)
                if mapped is not None:
                    raise mapped from None
                raise
        finally:
            self.write_lock.release()

    def map_error(self, exc: BaseException) -> Exception | None:
        if isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError)) and not isinstance(
                exc, sqlite3.IntegrityError):
            return StoreUnavailable(_reason(exc))
        return None

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    # -- schema -------------------------------------------------------------------------------------

    def migrate(self) -> int:
        with self.writing() as conn:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreTooNew(f"{self.path} has schema version {version}; this notifyd knows "
                                  f"up to {SCHEMA_VERSION}. Upgrade notifyd.")
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return version

    def schema_version(self) -> int:
        with self.reading() as conn:
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        return version

    # -- one daemon per file --------------------------------------------------------------------

    @contextmanager
    def serve_lock(self) -> Iterator[None]:
        lock = ServeLock(self.path).acquire()
        try:
            yield
        finally:
            lock.release()

    def daemon_holder(self) -> str | None:
        return ServeLock(self.path).holder()

    @contextmanager
    def maintenance_lock(self) -> Iterator[bool]:
        yield True              # one daemon per file: nobody else runs maintenance on it

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        """Every row of a table as a dict, in primary-key order (for `store copy`)."""
        import sqlite_utils  # here, not at the top: it costs the CLI's --help a tenth of a second

        db = sqlite_utils.Database(self._conn(), execute_plugins=False)
        yield from db[table].rows_where(order_by="rowid")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"the database is locked by another writer ({text})"
    if "full" in text:
        return f"the disk is full ({text})"
    if "readonly" in text or "read-only" in text:
        return f"the database is read-only ({text})"
    return f"the database cannot be written ({text})"
