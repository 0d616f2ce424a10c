"""`notifyd store copy`: a SQLite store's whole history into an empty PostgreSQL database.

Tables go in foreign-key order, each with its ids as they were (so `jobs show 42` still names
the same job), inside one transaction on the target: a copy that fails leaves it empty. The
daemon must be stopped first, or jobs it finishes meanwhile would be lost in the move.
"""

from __future__ import annotations

from collections.abc import Callable

from notifyd.errors import StoreError
from notifyd.store.postgres import PostgresStore
from notifyd.store.sqlite import SqliteStore

# Parents before children; meta holds only the /health write probe and is not history.
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("events", ("id", "source", "source_type", "kind", "title", "body", "paths", "media", "payload", "dedupe_key",
                "received_at")),
    ("jobs", ("id", "event_id", "service", "kind", "priority", "state", "attempts", "max_attempts", "run_at",
              "lease_until", "lease_token", "unique_key", "last_error", "created_at", "finished_at", "payload",
              "node")),
    ("attempts", ("id", "job_id", "started_at", "finished_at", "outcome", "error", "detail", "node")),
    ("job_events", ("job_id", "event_id")),
    ("runs", ("id", "name", "status", "progress", "live_status", "notify", "context", "callback_url", "cost_amount",
              "cost_unit", "outputs", "error", "registered", "source", "created_at", "updated_at", "started_at",
              "finished_at", "final_event_id")),
    ("service_state", ("service", "disabled_reason", "disabled_at")),
)


class CopyRefused(StoreError):
    """The copy cannot start: a daemon holds the source, or the target already has data."""


def _reporter(progress: Callable[[str, int], None], table: str) -> Callable[[int], None]:
    return lambda rows: progress(table, rows)


def rows_to_copy(source: SqliteStore) -> dict[str, int]:
    """How many rows each table will copy (for a progress bar)."""
    counts = source.info().counts
    return {table: counts.get(table, 0) for table, _ in TABLES}


def copy_store(source: SqliteStore, target: PostgresStore,
               progress: Callable[[str, int], None] = lambda table, n: None) -> dict[str, int]:
    """Copy every table; `progress(table, rows)` is called as rows go. Returns rows per table."""
    holder = source.daemon_holder()
    if holder is not None:
        raise CopyRefused(f"a notifyd serve ({holder}) is using {source.location}; stop it first, so nothing "
                          "it does during the copy is lost")
    source.migrate()
    target.migrate()
    if not target.is_empty():
        raise CopyRefused(f"{target.location} already holds notifyd data; copy into an empty database")
    copied: dict[str, int] = {}
    with target.copying() as load:
        for table, columns in TABLES:
            copied[table] = load(table, columns, source.rows(table), _reporter(progress, table))
    target.reset_identities()
    target.reserve_copied_dedupe_keys()
    return copied
