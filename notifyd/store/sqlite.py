"""The SQLite engine: one file in WAL mode, numbered migrations, one `notifyd serve` at a time.

Every thread uses its own connection (made on first use); connections run in autocommit mode, so
each write is an explicit `BEGIN IMMEDIATE … COMMIT` (`writing`). The threads of one process
take turns for write transactions on the store's own lock, and meet SQLite's busy handler only
when another process (the CLI) holds the database: that handler sleeps in steps of up to 100 ms,
so threads waiting in it for each other would spend most of their time asleep beside a free file.

Writes land in the write-ahead log (`<file>-wal`) and checkpoints move them into the database file.
When that file cannot be written, or a reader never lets go, commits still succeed while the log
grows without end; `health` watches for that, outside the write lock, on a connection of its own.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifyd.errors import StoreTooNew, StoreUnavailable
from notifyd.lock import ServeLock
from notifyd.model import Claim
from notifyd.store.sql import SqlStore

BUSY_TIMEOUT_MS = 5000
SQLITE_READONLY = 8
# SQLite checkpoints every 1000 pages (4 MiB), so a healthy log stays near that size, and a burst
# (a purge, an ingest flood) adds a few MiB before the next checkpoint. Sixteen times that is only
# reached after minutes of commits that no checkpoint could move, yet is still small enough for
# the disk and for the checkpoint that must finally copy it.
WAL_LIMIT = 64 * 1024 * 1024
# A log over an eighth of its limit (twice what the automatic checkpoint lets a healthy one reach)
# is watched: /health runs a checkpoint to learn why. Below it, /health only reads the file's size.
# A log that grew past it and was then emptied is cut back to it at its next reuse
# (journal_size_limit), so only a log that checkpoints cannot empty stays above it.
WAL_WATCH_FRACTION = 8
CHECKPOINT_EVERY = 10.0    # while the log is watched, /health asks for a checkpoint at most this often
BUSY_CHECKPOINTS = 3       # one busy checkpoint means another was running; this many in a row do not

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


@dataclass(frozen=True)
class Checkpoint:
    """What the last passive checkpoint of the write-ahead log did."""

    error: str | None = None      # it failed: why (the database file cannot be written, …)
    busy: int = 0                 # how many checkpoints in a row found another one running
    complete: bool = True         # every frame of the log is in the database file now


class SqliteStore(SqlStore):
    """The embedded engine: a database file beside which `notifyd serve` holds a lock."""

    engine = "sqlite"
    multi_node = False
    claim_from = "jobs INDEXED BY jobs_claim"

    def __init__(self, path: Path, *, synchronous: str = "NORMAL", node_id: str = "local",
                 wal_limit: int = WAL_LIMIT) -> None:
        super().__init__(node_id)
        self.path = Path(path)
        self.location = str(self.path)
        self.synchronous = synchronous
        self.wal_limit = wal_limit
        self.wal_watch = wal_limit // WAL_WATCH_FRACTION
        self.write_lock = threading.Lock()
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        self._health_lock = threading.Lock()
        self._health_conn: sqlite3.Connection | None = None
        self._checkpoint = Checkpoint()
        self._checkpointed_at = float("-inf")

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
            conn.execute(f"PRAGMA journal_size_limit = {self.wal_watch}")
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

    def _discard(self, conn: sqlite3.Connection) -> None:
        """Close a connection and forget it, so the next use opens a fresh one."""
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._opened_lock:
            if conn in self._opened:
                self._opened.remove(conn)
        try:
            conn.close()
        except sqlite3.Error:
            pass

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
            refused: sqlite3.OperationalError | None = None
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                refused = exc
            finally:
                if waited_ms:
                    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if refused is not None:
                self._discard_if_read_only(conn, refused)
                raise StoreUnavailable(_reason(refused)) from None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                self._discard_if_read_only(conn, exc)
                mapped = self.map_error(exc)
                if mapped is not None:
                    raise mapped from None
                raise
        finally:
            self.write_lock.release()

    def _discard_if_read_only(self, conn: sqlite3.Connection, exc: BaseException) -> None:
        # A connection opened while the file could not be written is read-only for good; a
        # fresh one takes writes again once the file does.
        if isinstance(exc, sqlite3.Error) and (exc.sqlite_errorcode or 0) & 0xFF == SQLITE_READONLY:
            self._discard(conn)

    def claim(self, now: float, lease: float, *, passed_over: Collection[str] = ()) -> Claim | None:
        """As every engine's claim, but under `synchronous = FULL` its commit is not flushed by
        itself: a claim a power cut takes back only queues its job again (at least once, as after
        a crash), and the outcome's commit, which is flushed, carries the claim's pages with it
        (the log is written in order). One flush per delivery instead of two."""
        if self.synchronous.upper() == "NORMAL":
            return super().claim(now, lease, passed_over=passed_over)
        conn = self._conn()
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            return super().claim(now, lease, passed_over=passed_over)
        finally:
            try:
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            except sqlite3.Error:       # the claim closed a connection gone bad: the next one opens FULL
                pass

    def changed(self) -> bool:
        """SQLite's data_version: it moves when any other connection commits (this process's
        other threads included), and costs no read of the database."""
        with self.reading() as conn:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
        last = getattr(self._local, "data_version", None)
        self._local.data_version = (conn, version)
        return last is None or last[0] is not conn or last[1] != version

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
        with self._health_lock:
            self._health_conn = None

    def hand_back_files(self) -> None:
        if os.geteuid() != 0:
            return
        try:
            folder = self.path.parent.stat()
        except OSError:
            return
        if folder.st_uid == 0:
            return
        for name in (self.path.name, f"{self.path.name}-wal", f"{self.path.name}-shm"):
            file = self.path.with_name(name)
            try:
                found = file.lstat()
                if found.st_uid == 0 and stat.S_ISREG(found.st_mode):
                    os.chown(file, folder.st_uid, folder.st_gid, follow_symlinks=False)
            except OSError:
                continue            # gone already (the last close removes the log), or not ours to change

    # -- the write-ahead log ----------------------------------------------------------------------

    def health(self, now: float) -> list[str]:
        """The write-ahead log's problems: once it is over `wal_watch`, checkpoints that fail or
        keep finding another one running, and a log over `wal_limit` that they cannot empty.

        Cheap: a stat of the log file; only a log over `wal_watch` costs a passive checkpoint
        (which never waits for a lock, and copies only what the automatic ones could not), at most
        every CHECKPOINT_EVERY seconds, or at once while the log is over its limit, where an
        up-to-date answer matters. A healthy log is left to the automatic checkpoints."""
        size = self.wal_size()
        if size <= self.wal_watch:
            self._checkpointed_at = float("-inf")     # if it grows again, look afresh
            return []
        with self._health_lock:
            if size > self.wal_limit or not 0 <= now - self._checkpointed_at < CHECKPOINT_EVERY:
                self._checkpoint = self._run_checkpoint()
                self._checkpointed_at = now
            checkpoint = self._checkpoint
        problems = []
        if size > self.wal_limit and not checkpoint.complete:
            why = checkpoint.error or ("checkpoints keep finding another one running" if checkpoint.busy
                                       else "a reader holds old pages of it, or the database file cannot be written")
            problems.append(f"the write-ahead log {self.path.name}-wal is {_mib(size)}, over its limit of "
                            f"{_mib(self.wal_limit)}, and checkpoints cannot move it into the database file: {why}")
        elif checkpoint.error:
            problems.append(f"checkpoints cannot move the write-ahead log into the database file ({checkpoint.error}), "
                            f"so it grows with every write (now {_mib(size)})")
        elif checkpoint.busy >= BUSY_CHECKPOINTS:
            problems.append(f"{checkpoint.busy} checkpoints in a row found another one running; the write-ahead "
                            f"log is {_mib(size)}")
        return problems

    def wal_size(self) -> int:
        """The size of the write-ahead log file, in bytes (0 when there is none)."""
        try:
            return os.stat(f"{self.path}-wal").st_size
        except OSError:
            return 0

    def _run_checkpoint(self) -> Checkpoint:
        """One PRAGMA wal_checkpoint(PASSIVE), on the health check's own connection (never a
        thread's, never under the write lock: writers go on while it copies)."""
        try:
            if self._health_conn is None:
                self._health_conn = self.connect()
            busy, frames, copied = self._health_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except StoreUnavailable as exc:
            return Checkpoint(error=str(exc), complete=False)
        except sqlite3.Error as exc:
            # Opened while the file could not be written, this connection stays read-only: start afresh.
            if self._health_conn is not None:
                self._discard(self._health_conn)
                self._health_conn = None
            return Checkpoint(error=_reason(exc), complete=False)
        if busy:
            return Checkpoint(busy=self._checkpoint.busy + 1, complete=False)
        return Checkpoint(complete=copied >= frames)

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


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"the database is locked by another writer ({text})"
    if "full" in text:
        return f"the disk is full ({text})"
    if "readonly" in text or "read-only" in text:
        return f"the database is read-only ({text})"
    return f"the database cannot be written ({text})"
