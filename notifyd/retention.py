"""Retention as a job: a low-priority maintenance job that applies store.keep_succeeded and
store.keep_dead in bounded batches, then schedules the next run."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from notifyd.fanout import JobSpec
from notifyd.queue import enqueue
from notifyd.store import write

if TYPE_CHECKING:
    import sqlite_utils

SERVICE = "(retention)"          # not a valid service name, so it can never collide with one
KIND = "maintenance"
UNIQUE_KEY = "maintenance:retention"
PRIORITY = 9
EVERY = 3600.0
FIRST_AFTER = 60.0


def schedule_retention(db: sqlite_utils.Database, delay: float, now: float | None = None) -> bool:
    """Queue the next retention run unless one is already queued or running; True if queued now."""
    now = time.time() if now is None else now
    with write(db):
        pending = db.conn.execute("SELECT 1 FROM jobs WHERE unique_key = ? AND state IN ('queued', 'running')",
                                  (UNIQUE_KEY,)).fetchone()
        if pending:
            return False
        enqueue(db, None, [JobSpec(service=SERVICE, kind=KIND, priority=PRIORITY, delay=delay,
                                   unique_key=UNIQUE_KEY)], 3, now)
    return True


def retention_detail(purged: int, keep_succeeded: float, keep_dead: float) -> str:
    return json.dumps({"purged_jobs": purged, "keep_succeeded_s": keep_succeeded, "keep_dead_s": keep_dead})
