"""The job queue on SQLite: enqueue, claim with a lease, record outcomes, replay and purge.

States: queued (a scheduled retry is queued with attempts > 0), running (leased), succeeded, dead,
cancelled, skipped. Every write is one `BEGIN IMMEDIATE` transaction; outcome writes are guarded
by the lease token, so a worker whose lease was taken back cannot overwrite the new owner's work.
"""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence, TYPE_CHECKING


from notifyd.backoff import RetryPolicy
from notifyd.errors import DeliveryError, PermanentError, TransientError
from notifyd.fanout import JobSpec
from notifyd.store import write

if TYPE_CHECKING:
    import sqlite_utils

STATES = ("queued", "running", "succeeded", "dead", "cancelled", "skipped")
FINISHED = ("succeeded", "dead", "cancelled", "skipped")
EXPIRY_CHECK_INTERVAL = 1.0
PURGE_BATCH = 500           # about 5 ms of lock per batch on a small machine
PURGE_PAUSE = 0.03
_COLUMNS = ("id, event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
            "lease_until, unique_key, last_error, created_at, finished_at, payload")


@dataclass(frozen=True)
class Job:
    """A row of the jobs table."""

    id: int
    event_id: int | None
    service: str
    kind: str
    priority: int
    state: str
    attempts: int
    max_attempts: int
    run_at: float
    lease_until: float | None
    unique_key: str | None
    last_error: str | None
    created_at: float
    finished_at: float | None
    payload: str = "{}"

    @property
    def data(self) -> dict:
        """The job's own parameters (a refresh's folder, …), decoded."""
        return json.loads(self.payload)


@dataclass(frozen=True)
class Enqueued:
    """A job created for an event, or the queued twin it collapsed into."""

    id: int
    service: str
    collapsed: bool = False


@dataclass(frozen=True)
class Claim:
    """A leased job: only the holder of `token` may record its outcome."""

    job: Job
    token: str
    attempt_id: int


@dataclass(frozen=True)
class Outcome:
    """What recording an attempt did to its job; `retry_in` is set for a scheduled retry."""

    state: str
    attempt: int
    max_attempts: int
    retry_in: float | None = None


def enqueue(db: sqlite_utils.Database, event_id: int | None, specs: Sequence[JobSpec],
            max_attempts: int, now: float) -> list[Enqueued]:
    """Insert jobs inside the caller's transaction; a spec whose unique_key is already queued
    collapses into that job (keeping its run time) instead of adding another."""
    conn = db.conn
    created = []
    for spec in specs:
        if spec.unique_key is not None:
            # Only into a twin that has not run yet: a scheduled retry may be hours away, or doomed.
            row = conn.execute("SELECT id FROM jobs WHERE state = 'queued' AND unique_key = ? AND attempts = 0",
                               (spec.unique_key,)).fetchone()
            if row is not None:
                if event_id is not None:
                    conn.execute("INSERT OR IGNORE INTO job_events (job_id, event_id) VALUES (?, ?)",
                                 (row[0], event_id))
                created.append(Enqueued(row[0], spec.service, collapsed=True))
                continue
        cursor = conn.execute(
            "INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
            "unique_key, created_at, payload) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)",
            (event_id, spec.service, spec.kind, spec.priority, max_attempts, now + spec.delay,
             spec.unique_key, now, json.dumps(dict(spec.payload)) if spec.payload else "{}"))
        created.append(Enqueued(cursor.lastrowid, spec.service))
    return created


class JobQueue:
    """Claims and outcomes over one connection; `clock` and `rand` are passed in for tests."""

    def __init__(self, db: sqlite_utils.Database, policy: RetryPolicy | None = None, lease: float = 30.0,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random) -> None:
        self.db = db
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.clock = clock
        self.rand = rand
        self._expiry_checked = float("-inf")

    # -- the worker's side ------------------------------------------------------------------

    def claim(self, now: float | None = None, per_service: int | None = None) -> Claim | None:
        """Lease the due queued job with the lowest (priority, run_at, id), after taking back
        expired leases. With `per_service`, a service that already has that many jobs running is
        passed over, so one slow service cannot occupy every worker. None when nothing is due."""
        now = self.clock() if now is None else now
        token = secrets.token_hex(8)
        conn = self.db.conn
        with write(self.db):
            # Leases are 30 s long: looking for expired ones once a second is prompt enough, and
            # keeps that query off the per-claim path.
            if now - self._expiry_checked >= EXPIRY_CHECK_INTERVAL or now < self._expiry_checked:
                self._expire_leases(now)
                self._expiry_checked = now
            busy, params = "", [now + self.lease, token, now]
            if per_service is not None:
                busy = ("AND service NOT IN (SELECT service FROM jobs WHERE state = 'running' "
                        "GROUP BY service HAVING count(*) >= ?) ")
                params.append(per_service)
            row = conn.execute(
                f"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, lease_token = ? "
                f"WHERE id = (SELECT id FROM jobs INDEXED BY jobs_claim WHERE state = 'queued' AND run_at <= ? "
                f"{busy}ORDER BY priority, run_at, id LIMIT 1) RETURNING {_COLUMNS}", params).fetchone()
            if row is None:
                return None
            attempt_id = conn.execute("INSERT INTO attempts (job_id, started_at) VALUES (?, ?)",
                                      (row[0], now)).lastrowid
        return Claim(Job(*row), token, attempt_id)

    def claim_job(self, job_id: int, now: float | None = None) -> Claim | None:
        """Lease one particular queued job now (the CLI's `services test`); None if it is not queued."""
        now = self.clock() if now is None else now
        token = secrets.token_hex(8)
        with write(self.db):
            row = self.db.conn.execute(
                f"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, lease_token = ? "
                f"WHERE id = ? AND state = 'queued' RETURNING {_COLUMNS}",
                (now + self.lease, token, job_id)).fetchone()
            if row is None:
                return None
            attempt_id = self.db.conn.execute("INSERT INTO attempts (job_id, started_at) VALUES (?, ?)",
                                              (job_id, now)).lastrowid
        return Claim(Job(*row), token, attempt_id)

    def succeed(self, claim: Claim, detail: str = "", now: float | None = None) -> Outcome:
        """Record a delivered job."""
        now = self.clock() if now is None else now
        with write(self.db):
            if not self._finish(claim, now, "succeeded", None, "succeeded", None, detail):
                return self._lost(claim)
        return Outcome("succeeded", claim.job.attempts, claim.job.max_attempts)

    def fail(self, claim: Claim, error: DeliveryError, now: float | None = None) -> Outcome:
        """Record a failed attempt: a retry after the backoff, or dead when permanent or out of attempts."""
        now = self.clock() if now is None else now
        job = claim.job
        exhausted = job.attempts >= job.max_attempts
        permanent = isinstance(error, PermanentError) or not isinstance(error, TransientError)
        with write(self.db):
            if permanent or exhausted:
                reason = error.error if permanent else f"{error.error} (gave up after {job.attempts} attempts)"
                if not self._finish(claim, now, "dead", reason, "failed", error.error, error.detail):
                    return self._lost(claim)
                return Outcome("dead", job.attempts, job.max_attempts)
            retry_after = error.retry_after if isinstance(error, TransientError) else None
            delay = self.policy.delay(job.attempts, retry_after, self.rand)
            if not self._finish(claim, now, "queued", error.error, "retry", error.error, error.detail,
                                run_at=now + delay):
                return self._lost(claim)
        return Outcome("queued", job.attempts, job.max_attempts, retry_in=delay)

    def skip(self, claim: Claim, reason: str, now: float | None = None) -> Outcome:
        """Record a job that no longer has anyone to deliver to (its service was disabled or removed)."""
        now = self.clock() if now is None else now
        with write(self.db):
            if not self._finish(claim, now, "skipped", reason, "skipped", reason, ""):
                return self._lost(claim)
        return Outcome("skipped", claim.job.attempts, claim.job.max_attempts)

    def extend(self, claims: Iterable[Claim], now: float | None = None) -> None:
        """Push the leases of jobs still running here another lease length ahead."""
        now = self.clock() if now is None else now
        claims = list(claims)
        if not claims:
            return
        with write(self.db):
            self.db.conn.executemany(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_token = ? AND state = 'running'",
                [(now + self.lease, c.job.id, c.token) for c in claims])

    def release(self, claim: Claim) -> bool:
        """Give a lease back unfinished (shutdown): queued again, the attempt not counted."""
        with write(self.db):
            cursor = self.db.conn.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL, "
                "lease_token = NULL WHERE id = ? AND lease_token = ? AND state = 'running'",
                (claim.job.id, claim.token))
            if cursor.rowcount:
                self.db.conn.execute("DELETE FROM attempts WHERE id = ?", (claim.attempt_id,))
        return bool(cursor.rowcount)

    def recover(self, now: float | None = None) -> int:
        """On start: every job left running by a dead process is queued again at once (its
        attempt counted, and marked interrupted). Returns how many."""
        now = self.clock() if now is None else now
        with write(self.db):
            rows = self.db.conn.execute("SELECT id FROM jobs WHERE state = 'running'").fetchall()
            for (job_id,) in rows:
                self._requeue_abandoned(job_id, now, "interrupted", "the daemon stopped while it ran")
        return len(rows)

    def next_wakeup(self, now: float | None = None) -> float | None:
        """Seconds until a queued job is due or a lease expires; 0 if one is due now, None if idle."""
        now = self.clock() if now is None else now
        conn = self.db.conn
        due = conn.execute("SELECT min(run_at) FROM jobs INDEXED BY jobs_claim WHERE state = 'queued'").fetchone()[0]
        lease = conn.execute("SELECT min(lease_until) FROM jobs WHERE state = 'running'").fetchone()[0]
        times = [t for t in (due, lease) if t is not None]
        return max(0.0, min(times) - now) if times else None

    # -- the operator's side ----------------------------------------------------------------

    def cancel(self, ids: Iterable[int], now: float | None = None) -> dict[int, str]:
        """Cancel queued jobs. Returns, per id, 'cancelled' or why not."""
        now = self.clock() if now is None else now
        results: dict[int, str] = {}
        with write(self.db):
            for job_id in ids:
                state = self._state(job_id)
                if state is None:
                    results[job_id] = "not found"
                elif state != "queued":
                    results[job_id] = f"is {state}; only queued jobs can be cancelled"
                else:
                    self.db.conn.execute(
                        "UPDATE jobs SET state = 'cancelled', finished_at = ?, last_error = 'cancelled by operator' "
                        "WHERE id = ?", (now, job_id))
                    results[job_id] = "cancelled"
        return results

    def retry(self, ids: Iterable[int], now: float | None = None) -> dict[int, str]:
        """Queue dead or cancelled jobs again with a fresh attempt budget; their attempt history stays."""
        now = self.clock() if now is None else now
        results: dict[int, str] = {}
        with write(self.db):
            for job_id in ids:
                state = self._state(job_id)
                if state is None:
                    results[job_id] = "not found"
                elif state not in ("dead", "cancelled"):
                    results[job_id] = f"is {state}; only dead or cancelled jobs can be retried"
                else:
                    self.db.conn.execute(
                        "UPDATE jobs SET state = 'queued', attempts = 0, run_at = ?, finished_at = NULL, "
                        "last_error = NULL WHERE id = ?", (now, job_id))
                    results[job_id] = "queued"
        return results

    def service_disabled(self, service: str) -> str | None:
        """Why a receiver switched this service off (410 Gone), or None."""
        row = self.db.conn.execute("SELECT disabled_reason FROM service_state WHERE service = ?", (service,)).fetchone()
        return row[0] if row else None

    def disable_service(self, service: str, reason: str, now: float | None = None) -> None:
        with write(self.db):
            self.db.conn.execute("INSERT OR REPLACE INTO service_state (service, disabled_reason, disabled_at) "
                                 "VALUES (?, ?, ?)", (service, reason, self.clock() if now is None else now))

    def enable_service(self, service: str) -> bool:
        with write(self.db):
            return bool(self.db.conn.execute("DELETE FROM service_state WHERE service = ?", (service,)).rowcount)

    def dead_ids(self) -> list[int]:
        """Every dead job's id, oldest first."""
        return [r[0] for r in self.db.conn.execute("SELECT id FROM jobs WHERE state = 'dead' ORDER BY id")]

    def purge(self, older_than: float, states: Sequence[str] = FINISHED, now: float | None = None,
              batch: int = PURGE_BATCH, progress: Callable[[int], None] | None = None,
              pause: float = PURGE_PAUSE) -> int:
        """Delete finished jobs (and their attempts, and events left without jobs) that finished
        more than `older_than` seconds ago. Returns jobs deleted.

        Each batch is its own short transaction, and between batches the purge steps aside for
        `pause` seconds, so a waiting writer gets the database instead of being starved by
        back-to-back batches: in the daemon, the ingest writer queued on the store's lock; against
        `notifyd jobs purge` in another process, the daemon's writers in SQLite's busy handler,
        whose sleeps are up to 25 ms early on."""
        now = self.clock() if now is None else now
        cutoff = now - older_than
        marks = ",".join("?" for _ in states)
        total = 0
        while True:
            with write(self.db):
                ids = [r[0] for r in self.db.conn.execute(
                    f"SELECT id FROM jobs WHERE state IN ({marks}) AND finished_at < ? LIMIT ?",
                    (*states, cutoff, batch))]
                if ids:
                    id_marks = ",".join("?" for _ in ids)
                    self.db.conn.execute(f"DELETE FROM attempts WHERE job_id IN ({id_marks})", ids)
                    self.db.conn.execute(f"DELETE FROM jobs WHERE id IN ({id_marks})", ids)
            total += len(ids)
            if progress:
                progress(len(ids))
            if len(ids) < batch:
                break
            time.sleep(pause)
        while True:
            with write(self.db):
                deleted = self.db.conn.execute(
                    "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.received_at < ? "
                    "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id) "
                    "AND NOT EXISTS (SELECT 1 FROM job_events l WHERE l.event_id = e.id) LIMIT ?)",
                    (cutoff, batch)).rowcount
            if deleted < batch:
                break
            time.sleep(pause)
        return total

    def purge_by_retention(self, keep_succeeded: float, keep_dead: float, now: float | None = None,
                           progress: Callable[[int], None] | None = None) -> int:
        """The store's retention: succeeded, cancelled and skipped jobs after `keep_succeeded`,
        dead ones after `keep_dead` (they are the ones an operator still needs to see)."""
        return (self.purge(keep_succeeded, ("succeeded", "cancelled", "skipped"), now, progress=progress)
                + self.purge(keep_dead, ("dead",), now, progress=progress))

    # -- internals ----------------------------------------------------------------------------

    def _expire_leases(self, now: float) -> None:
        rows = self.db.conn.execute(
            "SELECT id FROM jobs WHERE state = 'running' AND lease_until < ?", (now,)).fetchall()
        for (job_id,) in rows:
            self._requeue_abandoned(job_id, now, "lost", "lease expired: the worker stopped answering")

    def _requeue_abandoned(self, job_id: int, now: float, outcome: str, reason: str) -> None:
        conn = self.db.conn
        conn.execute("UPDATE attempts SET finished_at = ?, outcome = ?, error = ? "
                     "WHERE job_id = ? AND finished_at IS NULL", (now, outcome, reason, job_id))
        conn.execute(
            "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, "
            "finished_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END, "
            "run_at = ?, last_error = ?, lease_until = NULL, lease_token = NULL WHERE id = ?",
            (now, now, reason, job_id))

    def _finish(self, claim: Claim, now: float, state: str, last_error: str | None, outcome: str,
                error: str | None, detail: str, run_at: float | None = None) -> bool:
        """Move a leased job to `state` and close its attempt row; False if the lease is no longer ours."""
        conn = self.db.conn
        if state == "queued":
            cursor = conn.execute(
                "UPDATE jobs SET state = 'queued', run_at = ?, last_error = ?, lease_until = NULL, "
                "lease_token = NULL WHERE id = ? AND lease_token = ? AND state = 'running'",
                (run_at, last_error, claim.job.id, claim.token))
        else:
            cursor = conn.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, last_error = ?, lease_until = NULL, "
                "lease_token = NULL WHERE id = ? AND lease_token = ? AND state = 'running'",
                (state, now, last_error, claim.job.id, claim.token))
        if not cursor.rowcount:
            return False
        conn.execute("UPDATE attempts SET finished_at = ?, outcome = ?, error = ?, detail = ? WHERE id = ?",
                     (now, outcome, error, detail, claim.attempt_id))
        return True

    def _lost(self, claim: Claim) -> Outcome:
        return Outcome("lost", claim.job.attempts, claim.job.max_attempts)

    def _state(self, job_id: int) -> str | None:
        row = self.db.conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None
