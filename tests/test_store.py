"""The store: pragmas, migrations that upgrade an old file, and errors that name the problem."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from notifyd import store as store_mod
from notifyd.errors import StoreTooNew, StoreUnavailable
from notifyd.store import SCHEMA_VERSION, Store, write


def test_connection_pragmas(tmp_path: Path) -> None:
    s = Store(tmp_path / "sub" / "n.db", synchronous="FULL")
    s.migrate()
    db = s.connect()
    pragma = lambda name: db.execute(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("synchronous") == 2            # FULL
    assert pragma("foreign_keys") == 1
    assert pragma("busy_timeout") == 5000
    assert pragma("user_version") == SCHEMA_VERSION
    assert Store(tmp_path / "sub" / "n.db").connect().execute("PRAGMA synchronous").fetchone()[0] == 1


def test_migrate_is_idempotent_and_reports_the_old_version(tmp_path: Path) -> None:
    s = Store(tmp_path / "n.db")
    assert s.migrate() == 0
    assert s.migrate() == SCHEMA_VERSION
    tables = {r[0] for r in s.connect().execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", "jobs", "attempts", "meta"} <= tables


def test_an_older_file_is_upgraded_and_keeps_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Store(tmp_path / "n.db")
    s.migrate()
    with write(s.connect()) as db:
        db.execute("INSERT INTO events (source, source_type, kind, received_at) VALUES ('g', 'generic', 'x', 1)")
    newer = [*store_mod.MIGRATIONS, ["ALTER TABLE events ADD COLUMN note TEXT DEFAULT 'upgraded'"]]
    monkeypatch.setattr(store_mod, "MIGRATIONS", newer)
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", len(newer))
    assert s.migrate() == SCHEMA_VERSION
    db = s.connect()
    assert db.execute("SELECT source, note FROM events").fetchall() == [("g", "upgraded")]
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "n.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreTooNew, match="Upgrade notifyd"):
        Store(path).migrate()


def test_a_locked_database_is_unavailable_not_an_exception_soup(tmp_path: Path, monkeypatch) -> None:
    s = Store(tmp_path / "n.db")
    s.migrate()
    holder = sqlite3.connect(s.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_MS", 100)
    db = s.connect()
    with pytest.raises(StoreUnavailable, match="locked"):
        with write(db):
            pass
    holder.execute("ROLLBACK")
    with write(db):
        db.execute("INSERT INTO meta VALUES ('k', 'v')")
    assert db.execute("SELECT value FROM meta").fetchone()[0] == "v"


def test_one_stores_connections_take_turns_on_its_write_lock(tmp_path: Path, monkeypatch) -> None:
    s = Store(tmp_path / "n.db")
    s.migrate()
    first, second = s.connect(), s.connect()
    assert first.write_lock is second.write_lock is s.write_lock
    assert Store(tmp_path / "n.db").write_lock is not s.write_lock
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_MS", 100)
    with write(first):
        assert s.write_lock.locked()
        with pytest.raises(StoreUnavailable, match="queued for it"):
            with write(second):
                pass
    assert not s.write_lock.locked()
    with write(second):                  # released after the first commit, and after a failure
        second.execute("INSERT INTO meta VALUES ('k', 'v')")
    with pytest.raises(ZeroDivisionError):
        with write(first):
            1 / 0
    assert not s.write_lock.locked()


def test_queueing_for_the_lock_comes_off_the_busy_timeout(tmp_path: Path, monkeypatch) -> None:
    s = Store(tmp_path / "n.db")
    s.migrate()
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_MS", 600)
    holder = sqlite3.connect(s.path, isolation_level=None)     # another process, in effect
    holder.execute("BEGIN IMMEDIATE")
    first, second = s.connect(), s.connect()
    outcomes: dict[str, tuple[float, str]] = {}

    def attempt(name: str, db) -> None:
        started = time.monotonic()
        try:
            with write(db):
                outcome = "written"
        except StoreUnavailable as exc:
            outcome = str(exc)
        outcomes[name] = (time.monotonic() - started, outcome)

    a = threading.Thread(target=attempt, args=("first", first))
    a.start()
    time.sleep(0.05)                      # the first now holds the lock, waiting in SQLite's handler
    attempt("second", second)
    a.join()
    holder.execute("ROLLBACK")
    for name, (took, outcome) in outcomes.items():
        assert "locked" in outcome, (name, outcome)
        assert took < 0.95, (name, took)  # one 0.6 s budget in all, not 0.6 s in the queue + 0.6 s in SQLite
    with write(second):                   # and the connection's own busy timeout is back
        pass
    assert second.execute("PRAGMA busy_timeout").fetchone()[0] == 600


def test_a_failed_transaction_rolls_back(tmp_path: Path) -> None:
    s = Store(tmp_path / "n.db")
    s.migrate()
    db = s.connect()
    with pytest.raises(ZeroDivisionError):
        with write(db):
            db.execute("INSERT INTO meta VALUES ('k', 'v')")
            1 / 0
    assert db.execute("SELECT count(*) FROM meta").fetchone()[0] == 0


def test_a_read_only_file_is_unavailable(tmp_path: Path) -> None:
    s = Store(tmp_path / "n.db")
    s.migrate()
    ro = sqlite3.connect(f"file:{s.path}?mode=ro", uri=True, isolation_level=None)
    import sqlite_utils

    with pytest.raises(StoreUnavailable, match="read-only|cannot be written"):
        with write(sqlite_utils.Database(ro, execute_plugins=False)) as db:
            db.execute("INSERT INTO meta VALUES ('k', 'v')")
