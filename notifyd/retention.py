"""Retention as a job: a low-priority maintenance job that applies store.keep_succeeded and
store.keep_dead in bounded batches, then schedules the next run. Where nodes share a store, one
node at a time purges (the store's maintenance lock); the others record that they stood aside."""

from __future__ import annotations

import json
from collections.abc import Callable

from notifyd.model import FINISHED_JOB_STATES, JobKind, JobSpec, JobState
from notifyd.store import Store

SERVICE = "(retention)"          # not a valid service name, so it can never collide with one
UNIQUE_KEY = "maintenance:retention"
PRIORITY = 9
EVERY = 3600.0
FIRST_AFTER = 60.0
KEPT_UNTIL_SUCCEEDED_CUTOFF = tuple(sorted(FINISHED_JOB_STATES - {JobState.DEAD}))


def schedule_retention(store: Store, delay: float, now: float, *, besides: int | None = None) -> bool:
    """Queue the next retention run unless one (other than job `besides`, the run scheduling its
    successor) is already queued or running; True if queued now."""
    spec = JobSpec(service=SERVICE, kind=JobKind.MAINTENANCE, priority=PRIORITY, delay=delay, unique_key=UNIQUE_KEY)
    with store.transaction() as tx:
        return tx.schedule_unique(spec, 3, now, besides=besides)


def purge_by_retention(store: Store, keep_succeeded: float, keep_dead: float, now: float, *,
                       progress: Callable[[int], None] | None = None) -> int:
    """Succeeded, cancelled and skipped jobs after `keep_succeeded`; dead ones after `keep_dead`
    (they are the ones an operator still needs to see). Returns jobs deleted."""
    return (store.purge(now - keep_succeeded, KEPT_UNTIL_SUCCEEDED_CUTOFF, progress=progress)
            + store.purge(now - keep_dead, (JobState.DEAD,), progress=progress))


def retention_detail(purged: int | None, keep_succeeded: float, keep_dead: float) -> str:
    if purged is None:
        return json.dumps({"skipped": "another node holds the maintenance lock"})
    return json.dumps({"purged_jobs": purged, "keep_succeeded_s": keep_succeeded, "keep_dead_s": keep_dead})
