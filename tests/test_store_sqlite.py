"""The SQLite engine's own promises: pragmas, migrations that upgrade an old file, the write lock
its threads take turns on, errors that name the problem, and the partial indexes claims use."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from notifyd.errors import AlreadyRunning, StoreTooNew, StoreUnavailable
from notifyd.model import JobKind, JobSpec
from notifyd.outcomes import record_outcome, succeeded
from notifyd.store import sqlite as engine
from notifyd.store.sqlite import SCHEMA_VERSION, SqliteStore

from conftest import wait_for

NOW = 1_700_000_000.0


def migrated(path: Path, **options: str) -> SqliteStore:
    store = SqliteStore(path, **options)  # type: ignore[arg-type]
    store.migrate()
    return store


def test_connection_pragmas(tmp_path: Path) -> None:
    s = migrated(tmp_path / "sub" / "n.db", synchronous="FULL")
    conn = s.connect()
    pragma = lambda name: conn.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 2            # FULL
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") == 5000
    assert pragma("user_version") == SCHEMA_VERSION
    assert SqliteStore(tmp_path / "sub" / "n.db").connect().execute("PRAGMA synchronous").fetchone()[0] == 1


def test_changed_tells_of_other_connections_commits(tmp_path: Path) -> None:
    """What the idle poller asks before it tries a claim: true after another connection (a CLI
    process, another thread) committed, false while nobody did."""
    s = migrated(tmp_path / "n.db")
    assert s.changed() is True                   # the first look cannot know: it claims
    assert s.changed() is False
    other = SqliteStore(tmp_path / "n.db")
    with other.transaction() as tx:
        tx.write_probe(NOW)
    assert s.changed() is True
    assert s.changed() is False
    with other.transaction():                    # a transaction that wrote nothing changes nothing
        pass
    assert s.changed() is False
    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(s.changed()))     # each thread asks for itself
    thread.start()
    thread.join()
    assert seen == [True] and s.changed() is False


def test_under_full_a_claim_is_flushed_with_the_outcome_that_follows_it(tmp_path: Path) -> None:
    """synchronous FULL flushes every commit but the claim's: a claim a power cut takes back only
    queues its job again, and the outcome's flushed commit carries it (the log is written in order)."""
    s = migrated(tmp_path / "n.db", synchronous="FULL")
    with s.transaction() as tx:
        tx.enqueue(None, [JobSpec(service="a", kind=JobKind.NOTIFY, priority=5)], 3, NOW)
    conn = s._conn()
    said: list[str] = []
    conn.set_trace_callback(said.append)
    claim = s.claim(NOW, 30)
    assert claim is not None
    record_outcome(s, claim, succeeded(""), NOW)
    conn.set_trace_callback(None)
    pragmas = [(i, line) for i, line in enumerate(said) if line.startswith("PRAGMA synchronous")]
    commits = [i for i, line in enumerate(said) if line == "COMMIT"]
    assert [line for _, line in pragmas] == ["PRAGMA synchronous = NORMAL", "PRAGMA synchronous = FULL"]
    assert pragmas[0][0] < commits[0] < pragmas[1][0] < commits[1]      # the claim's commit alone is light
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2          # FULL again for every other write
    light = migrated(tmp_path / "m.db")                                   # NORMAL already: nothing switched
    lconn = light._conn()
    said.clear()
    lconn.set_trace_callback(said.append)
    light.claim(NOW, 30)
    lconn.set_trace_callback(None)
    assert not [line for line in said if line.startswith("PRAGMA")]


def test_migrate_is_idempotent_and_reports_the_old_version(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "n.db")
    assert s.migrate() == 0
    assert s.migrate() == SCHEMA_VERSION
    tables = {r[0] for r in s.connect().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", "jobs", "attempts", "meta", "runs", "service_state"} <= tables


def test_an_older_file_is_upgraded_and_keeps_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = migrated(tmp_path / "n.db")
    with s.writing() as conn:
        conn.execute("INSERT INTO events (source, source_type, kind, received_at) VALUES ('g', 'generic', 'x', 1)")
    newer = [*engine.MIGRATIONS, ["ALTER TABLE events ADD COLUMN note TEXT DEFAULT 'upgraded'"]]
    monkeypatch.setattr(engine, "MIGRATIONS", newer)
    monkeypatch.setattr(engine, "SCHEMA_VERSION", len(newer))
    assert s.migrate() == SCHEMA_VERSION
    conn = s.connect()
    assert conn.execute("SELECT source, note FROM events").fetchall() == [("g", "upgraded")]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_file_from_before_the_store_contract_keeps_its_dedupe_keys(tmp_path: Path) -> None:
    """A version 4 file upgrades in place: its events still answer repeats, and its attempts and
    jobs gain the node column."""
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    for statements in engine.MIGRATIONS[:4]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    conn.execute("INSERT INTO events (source, source_type, kind, dedupe_key, received_at) "
                 "VALUES ('radarr', 'radarr', 'grab', 'k1', ?)", (NOW,))
    conn.commit()
    conn.close()
    s = SqliteStore(path)
    assert s.migrate() == 4
    with s.transaction() as tx:
        duplicate = tx.claim_dedupe_key("radarr", "k1", NOW + 5, 3600)
    assert duplicate is not None and duplicate.kind == "grab"
    assert s.job_attempts(1) == []                   # attempts has its new node column


def test_an_old_file_with_the_unique_index_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    for statements in engine.MIGRATIONS[:2]:
        for statement in statements:
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'jobs_unique'").fetchone()[0] == 1
    conn.close()
    s = migrated(path)
    names = {r[0] for r in s.connect().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "jobs_unique" not in names and "jobs_unique_key" in names


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreTooNew, match="Upgrade notifyd"):
        SqliteStore(path).migrate()


def test_a_locked_database_is_unavailable_not_an_exception_soup(tmp_path: Path, monkeypatch) -> None:
    s = migrated(tmp_path / "n.db")
    holder = sqlite3.connect(s.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 100)
    fresh = SqliteStore(s.path)
    with pytest.raises(StoreUnavailable, match="locked"):
        with fresh.writing():
            pass
    holder.execute("ROLLBACK")
    with fresh.writing() as conn:
        conn.execute("INSERT INTO meta VALUES ('k', 'v')")
    assert fresh.connect().execute("SELECT value FROM meta").fetchone()[0] == "v"


def test_one_stores_threads_take_turns_on_its_write_lock(tmp_path: Path, monkeypatch) -> None:
    s = migrated(tmp_path / "n.db")
    assert SqliteStore(tmp_path / "n.db").write_lock is not s.write_lock
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 100)
    seen: list[str] = []

    def second_writer() -> None:
        try:
            with s.writing():
                seen.append("written")
        except StoreUnavailable as exc:
            seen.append(str(exc))

    with s.writing():
        assert s.write_lock.locked()
        other = threading.Thread(target=second_writer)
        other.start()
        other.join()
    assert "queued for it" in seen[0]
    assert not s.write_lock.locked()
    second_writer()                      # released after the first commit, and after a failure
    assert seen[1] == "written"
    with pytest.raises(ZeroDivisionError):
        with s.writing():
            raise ZeroDivisionError
    assert not s.write_lock.locked()


def traced_statements(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(thread name, SQL) of each statement the store's new connections run, as SQLite runs them."""
    statements: list[tuple[str, str]] = []
    real_connect = store.connect

    def connect() -> sqlite3.Connection:
        conn = real_connect()
        conn.set_trace_callback(lambda sql: statements.append((threading.current_thread().name, sql)))
        return conn

    monkeypatch.setattr(store, "connect", connect)
    return statements


class QueueClock:
    """The engine's `time`, but for the thread that made it, its monotonic clock says the write
    lock took `waited` seconds to get (any other thread reads the real clock)."""

    def __init__(self, waited: float) -> None:
        self._ticks = iter([100.0, 100.0 + waited])
        self._thread = threading.get_ident()

    def monotonic(self) -> float:
        return next(self._ticks) if threading.get_ident() == self._thread else time.monotonic()

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


def test_queueing_for_the_lock_comes_off_the_busy_timeout(tmp_path: Path, monkeypatch) -> None:
    migrated(tmp_path / "n.db")
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 2000)
    s = SqliteStore(tmp_path / "n.db")                          # its connections open with the 2 s timeout
    statements = traced_statements(s, monkeypatch)
    holder = sqlite3.connect(s.path, isolation_level=None)     # another process, in effect
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(engine, "time", QueueClock(waited=1.5))
    with pytest.raises(StoreUnavailable, match="locked"):
        with s.writing():
            pass
    holder.execute("ROLLBACK")
    # One 2 s budget in all: 1.5 s queued for the lock leaves SQLite's busy handler 0.5 s, not a fresh 2 s.
    assert [sql for _, sql in statements] == ["PRAGMA busy_timeout = 500", "BEGIN IMMEDIATE",
                                              "PRAGMA busy_timeout = 2000"]
    monkeypatch.setattr(engine, "time", time)
    with s.writing() as conn:             # and the connection's own busy timeout is back
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2000


def test_two_writers_queued_on_a_file_another_process_holds_share_one_budget(tmp_path: Path, monkeypatch) -> None:
    migrated(tmp_path / "n.db")
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 2000)
    s = SqliteStore(tmp_path / "n.db")
    statements = traced_statements(s, monkeypatch)
    holder = sqlite3.connect(s.path, isolation_level=None)     # another process, in effect
    holder.execute("BEGIN IMMEDIATE")
    outcomes: dict[str, str] = {}

    def attempt() -> None:
        try:
            with s.writing():
                outcome = "written"
        except StoreUnavailable as exc:
            outcome = str(exc)
        outcomes[threading.current_thread().name] = outcome

    def ran(name: str) -> list[str]:
        return [sql for thread, sql in statements if thread == name]

    first = threading.Thread(target=attempt, name="first")
    first.start()
    # The first holds the store's lock and waits in SQLite's busy handler; the second queues behind it.
    wait_for(lambda: "BEGIN IMMEDIATE" in ran("first"), 30, interval=0.005, message="the first writer in SQLite")
    second = threading.Thread(target=attempt, name="second")
    second.start()
    first.join()
    second.join()
    holder.execute("ROLLBACK")
    assert "locked" in outcomes["first"] and "locked" in outcomes["second"], outcomes
    # The second spent its budget queueing, or met SQLite with what was left of it, never a fresh one.
    if "queued for it for 2 s" not in outcomes["second"]:
        assert ran("second")[1:] == ["BEGIN IMMEDIATE", "PRAGMA busy_timeout = 2000"], ran("second")
        assert 1 <= int(ran("second")[0].removeprefix("PRAGMA busy_timeout = ")) < 2000, ran("second")


def test_a_failed_transaction_rolls_back(tmp_path: Path) -> None:
    s = migrated(tmp_path / "n.db")
    with pytest.raises(ZeroDivisionError):
        with s.writing() as conn:
            conn.execute("INSERT INTO meta VALUES ('k', 'v')")
            raise ZeroDivisionError
    assert s.connect().execute("SELECT count(*) FROM meta").fetchone()[0] == 0


def test_a_read_only_file_is_unavailable(tmp_path: Path) -> None:
    s = migrated(tmp_path / "n.db")
    s.close()
    s.path.chmod(0o444)
    (tmp_path).chmod(0o555)
    try:
        readonly = SqliteStore(s.path)
        ro = sqlite3.connect(f"file:{s.path}?mode=ro", uri=True, isolation_level=None)
        readonly._local.conn = ro                  # as a file the process may only read
        with pytest.raises(StoreUnavailable, match="read-only|cannot be written"):
            with readonly.writing() as conn:
                conn.execute("INSERT INTO meta VALUES ('k', 'v')")
    finally:
        (tmp_path).chmod(0o755)
        s.path.chmod(0o644)


def test_claim_and_purge_use_their_partial_indexes(tmp_path: Path) -> None:
    conn = migrated(tmp_path / "n.db").connect()

    def plan(sql: str, *params: object) -> str:
        return " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))

    claim = plan("SELECT id FROM jobs INDEXED BY jobs_claim WHERE state = 'queued' AND run_at <= ? "
                 "ORDER BY priority, run_at, id LIMIT 1", NOW)
    assert "jobs_claim" in claim and "TEMP B-TREE" not in claim
    due = plan("SELECT min(run_at) FROM jobs INDEXED BY jobs_claim WHERE state = 'queued'")
    assert "jobs_claim" in due
    purge = plan("SELECT id FROM jobs WHERE state IN ('succeeded', 'dead') AND finished_at < ? LIMIT 10", NOW)
    assert "jobs_finished" in purge


def test_one_daemon_per_file(tmp_path: Path) -> None:
    s = migrated(tmp_path / "n.db")
    assert s.daemon_holder() is None
    with s.serve_lock():
        assert s.daemon_holder() is not None and "pid" in (s.daemon_holder() or "")
        with pytest.raises(AlreadyRunning, match="another notifyd serve"):
            with SqliteStore(s.path).serve_lock():
                pass
    assert s.daemon_holder() is None


def _claim_all(db_path: str, results: multiprocessing.Queue[list[int]], start, threads: int = 3) -> None:
    store = SqliteStore(Path(db_path))
    start.wait(60)                                    # every claimer begins together
    claimed: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        mine = []
        while (claim := store.claim(NOW, 30.0)) is not None:
            mine.append(claim.job.id)
            record_outcome(store, claim, succeeded(""), NOW)
        with lock:
            claimed.extend(mine)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put(claimed)


def test_two_processes_and_threads_never_claim_one_job_twice(tmp_path: Path) -> None:
    store = migrated(tmp_path / "q.db")
    with store.transaction() as tx:
        ids = [e.id for e in tx.enqueue(None, [JobSpec(service=f"s{n}", kind=JobKind.NOTIFY, priority=1 + n % 10)
                                               for n in range(1500)], 3, 0)]
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start = ctx.Barrier(3)
    procs = [ctx.Process(target=_claim_all, args=(str(store.path), results, start)) for _ in range(2)]
    for p in procs:
        p.start()
    here = threading.Thread(target=_claim_all, args=(str(store.path), results, start))
    here.start()
    collected = [results.get(timeout=120) for _ in range(3)]
    here.join()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    claimed = [job for part in collected for job in part]
    assert sorted(claimed) == sorted(ids)             # every job once, none twice
    assert sum(1 for part in collected if part) >= 2   # the work really was shared
    assert store.job_counts() == {"succeeded": 1500}


# -- the write-ahead log, as /health sees it --------------------------------------------------------

WAL_LIMIT = 256 * 1024


def write_pages(store: SqliteStore, rows: int) -> None:
    with store.writing() as conn:
        for n in range(rows):
            conn.execute("INSERT INTO meta VALUES (?, ?)", (f"k{time.monotonic_ns()}-{n}", "x" * 4000))


def test_a_log_that_grew_in_a_burst_is_healthy_and_is_cut_back(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "n.db", wal_limit=WAL_LIMIT)
    s.migrate()
    assert s.health(NOW) == []
    write_pages(s, 300)                                   # over the limit before the automatic checkpoint
    assert s.wal_size() > WAL_LIMIT
    assert s.health(NOW + 1) == []                        # a checkpoint can empty it: nothing is wrong
    write_pages(s, 1)                                     # the next write reuses the log and cuts it back
    assert s.wal_size() <= s.wal_watch < WAL_LIMIT


def test_a_log_that_a_reader_holds_open_degrades_health_until_it_lets_go(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "n.db", wal_limit=WAL_LIMIT)
    s.migrate()
    reader = sqlite3.connect(s.path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM meta").fetchone()     # holds its snapshot: no checkpoint gets past it
    for _ in range(3):
        write_pages(s, 100)
    [problem] = s.health(NOW)
    assert "n.db-wal" in problem and "over its limit of 0.2 MiB" in problem and "reader" in problem
    reader.execute("COMMIT")
    assert s.health(NOW + 0.1) == []                      # over the limit: checked again at once


def counting_checkpoints(s: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    real = s._run_checkpoint
    runs: list[int] = []

    def counting() -> engine.Checkpoint:
        runs.append(1)
        return real()

    monkeypatch.setattr(s, "_run_checkpoint", counting)
    return runs


def test_health_leaves_a_small_log_alone_and_checkpoints_a_watched_one_now_and_then(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = SqliteStore(tmp_path / "n.db", wal_limit=4 * 1024 * 1024)
    s.migrate()
    runs = counting_checkpoints(s, monkeypatch)
    polls = [NOW + n / 2 for n in range(int(engine.CHECKPOINT_EVERY) * 2)]     # /health twice a second
    write_pages(s, 1)
    assert s.wal_size() <= s.wal_watch
    assert all(s.health(t) == [] for t in polls) and runs == []      # only a stat
    write_pages(s, 200)                    # over the watch mark, under the limit and the automatic checkpoint
    assert s.wal_watch < s.wal_size() < s.wal_limit
    assert all(s.health(t) == [] for t in polls) and len(runs) == 1
    assert s.health(polls[0] + engine.CHECKPOINT_EVERY) == [] and len(runs) == 2
    assert not s.write_lock.locked()


def test_busy_checkpoints_degrade_health_only_when_they_repeat(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    s = SqliteStore(tmp_path / "n.db", wal_limit=4 * 1024 * 1024)
    s.migrate()
    write_pages(s, 200)
    monkeypatch.setattr(s, "_run_checkpoint", lambda: engine.Checkpoint(busy=s._checkpoint.busy + 1, complete=False))
    answers = [s.health(NOW + n * engine.CHECKPOINT_EVERY) for n in range(engine.BUSY_CHECKPOINTS)]
    assert answers[:-1] == [[]] * (engine.BUSY_CHECKPOINTS - 1)
    assert "in a row found another one running" in answers[-1][0]


def test_a_connection_opened_read_only_is_replaced_once_the_file_takes_writes(tmp_path: Path) -> None:
    s = migrated(tmp_path / "n.db")
    ro = sqlite3.connect(f"file:{s.path}?mode=ro", uri=True, isolation_level=None)
    s._local.conn = ro                    # as one opened while the file could not be written
    with pytest.raises(StoreUnavailable, match="read-only"):
        with s.writing() as conn:
            conn.execute("INSERT INTO meta VALUES ('k', 'v')")
    with s.writing() as conn:             # a fresh connection: the file takes writes
        conn.execute("INSERT INTO meta VALUES ('k', 'v')")
    assert s.connect().execute("SELECT value FROM meta").fetchone()[0] == "v"
