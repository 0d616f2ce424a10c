"""The store contract in SQL that SQLite and PostgreSQL both speak.

Statements are written once, with `?` placeholders; an engine whose driver wants another style
translates them (`Conn`). Where the engines differ, `SqlStore` asks its subclass: how to open a
read connection and a write transaction, what the claim statement adds (SQLite's `INDEXED BY`,
PostgreSQL's `FOR UPDATE SKIP LOCKED`), how to serialise writers on one key (an advisory lock, or
nothing where the engine has one writer at a time), how to tell other nodes that jobs arrived,
and which driver errors mean "the store is unavailable".
"""

from __future__ import annotations

import json
import secrets
import time
from abc import abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from notifyd import strict_json
from notifyd.errors import NotFound
from notifyd.model import (
    FINAL_RUN_STATUSES,
    FINISHED_JOB_STATES,
    RETRYABLE_JOB_STATES,
    Attempt,
    Claim,
    Enqueued,
    Event,
    Finish,
    Job,
    JobKind,
    JobSpec,
    JobState,
    Run,
    RunStatus,
    StoredEvent,
)
from notifyd.store.base import Duplicate, QueueDepth, Stats, Store, StoreInfo, Tx

EXPIRY_CHECK_INTERVAL = 1.0
INSERT_ROWS = 64            # jobs one INSERT statement adds at most
TABLES = ("events", "jobs", "attempts", "job_events", "runs", "service_state")
DELIVERIES = f"kind != '{JobKind.MAINTENANCE}'"       # what queue depth and listings count by default
JOB_COLUMNS = ("id, event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
               "lease_until, unique_key, last_error, created_at, finished_at, payload")
EVENT_COLUMNS = "id, source, source_type, kind, title, body, paths, media, payload, received_at"
CLOSE_ATTEMPT = "UPDATE attempts SET finished_at = ?, outcome = ?, error = ?, detail = ? WHERE id = ?"
RUN_COLUMNS = ("id, status, created_at, updated_at, name, progress, live_status, notify, context, callback_url, "
               "cost_amount, cost_unit, outputs, error, registered, source, started_at, finished_at, final_event_id")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Conn(Protocol):
    """What the shared SQL needs of a connection: execute with `?` placeholders."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...


def job_from_row(row: Sequence[Any]) -> Job:
    return Job(row[0], row[1], row[2], row[3], row[4], JobState(row[5]), *row[6:])


def event_from_row(row: Sequence[Any]) -> StoredEvent:
    event = Event(source=row[1], source_type=row[2], kind=row[3], title=row[4], body=row[5],
                  paths=tuple(json.loads(row[6])), media=json.loads(row[7]), payload=row[8])
    return StoredEvent(row[0], row[9], event)


def run_from_row(row: Sequence[Any]) -> Run:
    return Run(id=row[0], status=RunStatus(row[1]), created_at=row[2], updated_at=row[3], name=row[4],
               progress=row[5], live_status=row[6], notify=tuple(json.loads(row[7])),
               context=json.loads(row[8]), callback_url=row[9], cost_amount=row[10], cost_unit=row[11],
               outputs=tuple(json.loads(row[12])), error=row[13], registered=bool(row[14]), source=row[15],
               started_at=row[16], finished_at=row[17], final_event_id=row[18])


def run_values(run: Run) -> tuple[Any, ...]:
    """A run's fields in RUN_COLUMNS order, encoded for storage."""
    return (run.id, str(run.status), run.created_at, run.updated_at, run.name, run.progress, run.live_status,
            strict_json.dumps(list(run.notify)), strict_json.dumps(dict(run.context)), run.callback_url,
            run.cost_amount, run.cost_unit, strict_json.dumps(list(run.outputs)), run.error, int(run.registered),
            run.source, run.started_at, run.finished_at, run.final_event_id)


def _newest(select: str, equal: Mapping[str, Any], where: Sequence[str] = ()) -> tuple[str, list[Any]]:
    """`select` filtered by column = value for each value given, newest first, ending in LIMIT ?."""
    conditions = [*where, *(f"{column} = ?" for column, value in equal.items() if value)]
    params = [value for value in equal.values() if value]
    return select + (" WHERE " + " AND ".join(conditions) if conditions else "") + " ORDER BY id DESC LIMIT ?", params


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" for _ in items)


class SqlTx(Tx):
    """The transaction-level operations, over one connection inside an open transaction."""

    def __init__(self, store: SqlStore, conn: Conn) -> None:
        self.store = store
        self.conn = conn
        self._depth = 0
        self._disabled: set[str] | None = None

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        # Named by depth, not by count: the ingest writer opens one per event, and a name per
        # event would be a new statement each time, pushing the inserts out of the driver's cache.
        self._depth += 1
        name = f"sp_{self._depth}"
        try:
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException as exc:
                self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                self.conn.execute(f"RELEASE SAVEPOINT {name}")
                mapped = self.store.map_error(exc)
                if mapped is not None:
                    raise mapped from None
                raise
            self.conn.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def claim_dedupe_key(self, source: str, key: str, now: float, window: float) -> Duplicate | None:
        holder = self.store.dedupe_holder(self.conn, source, key, now, window)
        if holder is None:
            return None
        row = self.conn.execute("SELECT kind FROM events WHERE id = ?", (holder,)).fetchone()
        jobs = [Enqueued(r[0], r[1]) for r in self.conn.execute(
            "SELECT id, service FROM jobs WHERE event_id = ? ORDER BY id", (holder,)).fetchall()]
        return Duplicate(holder, row[0], jobs)

    def insert_event(self, event: Event, now: float, dedupe_key: str | None = None, *,
                     media_json: str | None = None) -> int:
        media = strict_json.dumps(dict(event.media)) if media_json is None else media_json
        event_id: int = self.conn.execute(
            "INSERT INTO events (source, source_type, kind, title, body, paths, media, payload, dedupe_key, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (event.source, event.source_type, event.kind, event.title, event.body, strict_json.dumps(list(event.paths)),
             media, event.payload, dedupe_key, now)).fetchone()[0]
        return event_id

    def update_event(self, event_id: int, *, title: str, media: Mapping[str, object]) -> None:
        self.conn.execute("UPDATE events SET title = ?, media = ? WHERE id = ?",
                          (title, strict_json.dumps(dict(media)), event_id))

    def load_event(self, event_id: int) -> StoredEvent:
        row = self.conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            raise NotFound(f"no event {event_id}")
        return event_from_row(row)

    def enqueue(self, event_id: int | None, specs: Sequence[JobSpec], max_attempts: int,
                now: float) -> list[Enqueued]:
        created: list[Enqueued] = []
        plain: list[JobSpec] = []           # jobs without a unique_key, inserted together in their order
        for spec in specs:
            if spec.unique_key is None:
                plain.append(spec)
                continue
            created += self._insert_jobs(event_id, plain, max_attempts, now)
            plain = []
            self.store.lock_key(self.conn, spec.unique_key)
            # Only into a twin that has not run yet: a scheduled retry may be hours away, or doomed.
            # Locked until this transaction ends (PostgreSQL): another node's claim skips it meanwhile,
            # so a digest is never claimed, and its events read, between this link and its commit.
            row = self.conn.execute(
                "SELECT id FROM jobs WHERE state = 'queued' AND unique_key = ? AND attempts = 0"
                + self.store.row_lock, (spec.unique_key,)).fetchone()
            if row is not None:
                if event_id is not None:
                    self.conn.execute("INSERT INTO job_events (job_id, event_id) VALUES (?, ?) "
                                      "ON CONFLICT DO NOTHING", (row[0], event_id))
                created.append(Enqueued(row[0], spec.service, collapsed=True))
                continue
            created += self._insert_jobs(event_id, [spec], max_attempts, now)
        created += self._insert_jobs(event_id, plain, max_attempts, now)
        if any(not job.collapsed for job in created):
            self.store.jobs_added(self.conn)
        return created

    def _insert_jobs(self, event_id: int | None, specs: Sequence[JobSpec], max_attempts: int,
                     now: float) -> list[Enqueued]:
        """New queued jobs, up to INSERT_ROWS in one statement (one round trip for an event's fan-out).
        Both engines number the rows of one INSERT in their order, so the ids sorted are the specs'."""
        created = []
        for start in range(0, len(specs), INSERT_ROWS):
            chunk = specs[start:start + INSERT_ROWS]
            values: list[Any] = []
            for spec in chunk:
                values += (event_id, spec.service, str(spec.kind), spec.priority, max_attempts, now + spec.delay,
                           spec.unique_key, now, strict_json.dumps(dict(spec.payload)) if spec.payload else "{}")
            rows = self.conn.execute(
                "INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, "
                "unique_key, created_at, payload) VALUES "
                + ", ".join(["(?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)"] * len(chunk)) + " RETURNING id",
                values).fetchall()
            ids = sorted(r[0] for r in rows)
            created += [Enqueued(job_id, spec.service) for job_id, spec in zip(ids, chunk, strict=True)]
        return created

    def event_services(self, event_id: int) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT service FROM jobs WHERE event_id = ? UNION SELECT j.service FROM jobs j "
            "JOIN job_events l ON l.job_id = j.id WHERE l.event_id = ?", (event_id, event_id)).fetchall()}

    def disabled_services(self) -> set[str]:
        # Read once per transaction: the ingest writer asks for every event of its batch.
        if self._disabled is None:
            self._disabled = {r[0] for r in self.conn.execute("SELECT service FROM service_state").fetchall()}
        return set(self._disabled)

    def run_for_update(self, run_id: str, *, create: Run | None = None) -> Run | None:
        if create is not None:
            self.conn.execute(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({_marks(RUN_COLUMNS.split(','))}) "
                              "ON CONFLICT (id) DO NOTHING", run_values(create))
        row = self.conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?{self.store.row_lock}",
                                (run_id,)).fetchone()
        return run_from_row(row) if row is not None else None

    def save_run(self, run: Run) -> None:
        names = RUN_COLUMNS.split(", ")[1:]
        self.conn.execute(f"UPDATE runs SET {', '.join(n + ' = ?' for n in names)} WHERE id = ?",
                          (*run_values(run)[1:], run.id))

    def schedule_unique(self, spec: JobSpec, max_attempts: int, now: float, *, besides: int | None = None) -> bool:
        assert spec.unique_key is not None
        self.store.lock_key(self.conn, spec.unique_key)
        pending = self.conn.execute("SELECT 1 FROM jobs WHERE unique_key = ? AND state IN ('queued', 'running') "
                                    "AND id != ?", (spec.unique_key, -1 if besides is None else besides)).fetchone()
        if pending:
            return False
        self.enqueue(None, [spec], max_attempts, now)
        return True

    def recent_events(self, source: str, since: float, kinds: Collection[str]) -> list[StoredEvent]:
        wanted = list(kinds)
        if not wanted:
            return []
        rows = self.conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE source = ? AND received_at >= ? "
                                 f"AND kind IN ({_marks(wanted)}) ORDER BY id", (source, since, *wanted)).fetchall()
        return [event_from_row(row) for row in rows]

    def delay_jobs(self, event_ids: Collection[int], kinds: Collection[str], until: float) -> int:
        ids, wanted = list(event_ids), list(kinds)
        if not ids or not wanted:
            return 0
        # Guarded by state: a job a worker has claimed meanwhile (another node) is left alone.
        return self.conn.execute(
            f"UPDATE jobs SET run_at = ? WHERE event_id IN ({_marks(ids)}) AND kind IN ({_marks(wanted)}) "
            "AND state = 'queued' AND run_at < ?", (until, *ids, *wanted, until)).rowcount

    def skip_jobs(self, event_ids: Collection[int], services: Collection[str], kinds: Collection[str],
                  reason: str, now: float) -> list[int]:
        ids, names, wanted = list(event_ids), list(services), list(kinds)
        if not ids or not names or not wanted:
            return []
        rows = self.conn.execute(
            f"UPDATE jobs SET state = 'skipped', finished_at = ?, last_error = ?, lease_until = NULL "
            f"WHERE event_id IN ({_marks(ids)}) AND service IN ({_marks(names)}) AND kind IN ({_marks(wanted)}) "
            "AND state = 'queued' RETURNING id", (now, reason, *ids, *names, *wanted)).fetchall()
        return sorted(row[0] for row in rows)

    def write_probe(self, now: float) -> None:
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('write_probe', ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(now),))


class SqlStore(Store):
    """The contract's operations in shared SQL; engines supply connections and their differences."""

    tables: tuple[str, ...] = TABLES            # what `info` counts
    claim_from = "jobs"        # SQLite pins the claim to its partial index here
    claim_lock = ""            # PostgreSQL: " FOR UPDATE SKIP LOCKED"
    row_lock = ""              # PostgreSQL: " FOR UPDATE"

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._expiry_checked = float("-inf")

    # -- what an engine supplies ----------------------------------------------------------------

    @abstractmethod
    def reading(self) -> AbstractContextManager[Conn]:
        """A connection for reads (no transaction needed beyond each statement)."""

    @abstractmethod
    def writing(self) -> AbstractContextManager[Conn]:
        """A connection inside a write transaction, committed on exit; errors mapped."""

    @abstractmethod
    def map_error(self, exc: BaseException) -> Exception | None:
        """The StoreUnavailable that a driver error means, or None for anything else."""

    def dedupe_holder(self, conn: Conn, source: str, key: str, now: float, window: float) -> int | None:
        """Inside a write transaction: the id of the event that holds (source, key) within
        `window` seconds, or None after reserving the key for the event about to be stored.
        Here a read decides, which is race-free only where writers take turns on the whole
        database (SQLite); an engine with concurrent writers overrides it with a constraint."""
        row = conn.execute("SELECT id FROM events WHERE source = ? AND dedupe_key = ? AND received_at >= ? "
                           "ORDER BY id LIMIT 1", (source, key, now - window)).fetchone()
        return int(row[0]) if row is not None else None

    def purge_dedupe_keys(self, cutoff: float) -> None:
        """Forget reserved keys older than `cutoff` (where the engine keeps them apart from events)."""

    def lock_key(self, conn: Conn, key: str) -> None:
        """Serialise this transaction with others that lock the same key (until it ends)."""

    def jobs_added(self, conn: Conn) -> None:
        """Tell other processes, once this transaction commits, that jobs were queued."""

    # -- writes that belong together -------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self.writing() as conn:
            yield SqlTx(self, conn)

    # -- the worker's side -------------------------------------------------------------------------

    def claim(self, now: float, lease: float, *, passed_over: Collection[str] = ()) -> Claim | None:
        token = secrets.token_hex(8)
        with self.writing() as conn:
            self._expire_now_and_then(conn, now)
            row = self._take_due(conn, now, lease, token, tuple(passed_over))
            if row is None:
                return None
            attempt_id = self._open_attempt(conn, row[0], now)
        return Claim(job_from_row(row), token, attempt_id)

    def _expiry_due(self, now: float) -> bool:
        # Leases are 30 s long: looking for expired ones once a second is prompt enough, and
        # keeps that query off the per-claim path.
        return now - self._expiry_checked >= EXPIRY_CHECK_INTERVAL or now < self._expiry_checked

    def _expire_now_and_then(self, conn: Conn, now: float) -> None:
        if self._expiry_due(now):
            self._expire_leases(conn, now)
            self._expiry_checked = now

    def _take_due(self, conn: Conn, now: float, lease: float, token: str, passed_over: Sequence[str]) -> Any:
        """Lease the first due job (one statement); its row in JOB_COLUMNS order, or None."""
        sql, params = self._take_due_statement(now, lease, token, passed_over)
        return conn.execute(sql, params).fetchone()

    def _take_due_statement(self, now: float, lease: float, token: str,
                            passed_over: Sequence[str]) -> tuple[str, list[Any]]:
        busy, params = "", [now + lease, token, self.node_id, now]
        if passed_over:
            busy = f"AND service NOT IN ({_marks(passed_over)}) "
            params.extend(passed_over)
        return (f"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, lease_token = ?, "
                f"node = ? WHERE id = (SELECT id FROM {self.claim_from} WHERE state = 'queued' AND run_at <= ? "
                f"{busy}ORDER BY priority, run_at, id LIMIT 1{self.claim_lock}) RETURNING {JOB_COLUMNS}", params)

    def claim_job(self, job_id: int, now: float, lease: float) -> Claim | None:
        token = secrets.token_hex(8)
        with self.writing() as conn:
            row = conn.execute(
                f"UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?, lease_token = ?, "
                f"node = ? WHERE id = ? AND state = 'queued' RETURNING {JOB_COLUMNS}",
                (now + lease, token, self.node_id, job_id)).fetchone()
            if row is None:
                return None
            attempt_id = self._open_attempt(conn, job_id, now)
        return Claim(job_from_row(row), token, attempt_id)

    def _open_attempt(self, conn: Conn, job_id: int, now: float) -> int:
        attempt_id: int = conn.execute("INSERT INTO attempts (job_id, started_at, node) VALUES (?, ?, ?) RETURNING id",
                                       (job_id, now, self.node_id)).fetchone()[0]
        return attempt_id

    def finish(self, claim: Claim, finish: Finish, now: float) -> bool:
        move, params = self._move_statement(claim, finish, now)
        with self.writing() as conn:
            if not conn.execute(move, params).rowcount:
                return False
            conn.execute(CLOSE_ATTEMPT, (*self._close_params(claim, finish, now),))
        return True

    @staticmethod
    def _move_statement(claim: Claim, finish: Finish, now: float) -> tuple[str, tuple[Any, ...]]:
        """The job's move out of `running`, guarded by the claim's lease token."""
        if finish.state == JobState.QUEUED:
            return ("UPDATE jobs SET state = 'queued', run_at = ?, last_error = ?, lease_until = NULL, "
                    "lease_token = NULL WHERE id = ? AND lease_token = ? AND state = 'running'",
                    (finish.run_at if finish.run_at is not None else now, finish.last_error, claim.job.id,
                     claim.token))
        return ("UPDATE jobs SET state = ?, finished_at = ?, last_error = ?, lease_until = NULL, "
                "lease_token = NULL WHERE id = ? AND lease_token = ? AND state = 'running'",
                (str(finish.state), now, finish.last_error, claim.job.id, claim.token))

    @staticmethod
    def _close_params(claim: Claim, finish: Finish, now: float) -> tuple[Any, ...]:
        return (now, str(finish.outcome), finish.error, finish.detail, claim.attempt_id)

    def extend(self, claims: Iterable[Claim], until: float) -> None:
        claims = list(claims)
        if not claims:
            return
        with self.writing() as conn:
            for c in claims:
                conn.execute("UPDATE jobs SET lease_until = ? WHERE id = ? AND lease_token = ? AND state = 'running'",
                             (until, c.job.id, c.token))

    def release(self, claim: Claim, *, run_at: float | None = None) -> bool:
        with self.writing() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - 1, lease_until = NULL, "
                "lease_token = NULL, run_at = COALESCE(?, run_at) WHERE id = ? AND lease_token = ? "
                "AND state = 'running'", (run_at, claim.job.id, claim.token))
            released = bool(cursor.rowcount)
            if released:
                conn.execute("DELETE FROM attempts WHERE id = ?", (claim.attempt_id,))
        return released

    def recover(self, now: float) -> int:
        with self.writing() as conn:
            if self.multi_node:              # other nodes' jobs are alive: only expired leases are ours to take
                return self._requeue(conn, now, "state = 'running' AND lease_until < ?", (now,), "lost",
                                     "lease expired: the worker stopped answering")
            return self._requeue(conn, now, "state = 'running'", (), "interrupted", "the daemon stopped while it ran")

    def _expire_leases(self, conn: Conn, now: float) -> None:
        self._requeue(conn, now, "state = 'running' AND lease_until < ?", (now,), "lost",
                      "lease expired: the worker stopped answering")

    def _requeue(self, conn: Conn, now: float, where: str, params: tuple[Any, ...], outcome: str, reason: str) -> int:
        """Queue abandoned jobs again (dead when out of attempts) and close their open attempts.
        The job update comes first and locks the rows, so no one can claim them in between."""
        ids = [r[0] for r in conn.execute(
            "UPDATE jobs SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END, "
            "finished_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END, "
            f"run_at = ?, last_error = ?, lease_until = NULL, lease_token = NULL WHERE {where} RETURNING id",
            (now, now, reason, *params)).fetchall()]
        if ids:
            conn.execute(f"UPDATE attempts SET finished_at = ?, outcome = ?, error = ? "
                         f"WHERE job_id IN ({_marks(ids)}) AND finished_at IS NULL", (now, outcome, reason, *ids))
        return len(ids)

    def next_wakeup(self, now: float) -> float | None:
        with self.reading() as conn:
            due = conn.execute(f"SELECT min(run_at) FROM {self.claim_from} WHERE state = 'queued'").fetchone()[0]
            lease = conn.execute("SELECT min(lease_until) FROM jobs WHERE state = 'running'").fetchone()[0]
        times = [t for t in (due, lease) if t is not None]
        return max(0.0, min(times) - now) if times else None

    # -- the operator's side -------------------------------------------------------------------------

    def cancel(self, ids: Iterable[int], now: float) -> dict[int, str]:
        return self._move(ids, ("queued",), "only queued jobs can be cancelled", "cancelled",
                          "state = 'cancelled', finished_at = ?, last_error = 'cancelled by operator'", (now,))

    def retry(self, ids: Iterable[int], now: float) -> dict[int, str]:
        return self._move(ids, tuple(sorted(RETRYABLE_JOB_STATES)), "only dead or cancelled jobs can be retried",
                          "queued", "state = 'queued', attempts = 0, run_at = ?, finished_at = NULL, last_error = NULL",
                          (now,))

    def _move(self, ids: Iterable[int], allowed: tuple[str, ...], refusal: str, done: str, assignments: str,
              params: tuple[Any, ...]) -> dict[int, str]:
        results: dict[int, str] = {}
        moved = False
        with self.writing() as conn:
            for job_id in ids:
                # Guarded by state, so a job claimed meanwhile (by another node) is never changed.
                cursor = conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ? AND state IN ({_marks(allowed)})",
                                      (*params, job_id, *allowed))
                if cursor.rowcount:
                    results[job_id] = done
                    moved = True
                    continue
                row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
                results[job_id] = "not found" if row is None else f"is {row[0]}; {refusal}"
            if moved and done == "queued":
                self.jobs_added(conn)
        return results

    def dead_ids(self) -> list[int]:
        with self.reading() as conn:
            return [r[0] for r in conn.execute("SELECT id FROM jobs WHERE state = 'dead' ORDER BY id").fetchall()]

    def purge(self, cutoff: float, states: Sequence[str] = tuple(FINISHED_JOB_STATES), *,
              batch: int = 500, pause: float = 0.03, progress: Callable[[int], None] | None = None) -> int:
        # Each batch is its own short transaction, and between batches the purge steps aside for
        # `pause` seconds, so a waiting writer (the ingest writer, another process) gets the store
        # instead of being starved by back-to-back batches.
        total = 0
        while True:
            with self.writing() as conn:
                ids = [r[0] for r in conn.execute(
                    f"SELECT id FROM jobs WHERE state IN ({_marks(states)}) AND finished_at < ? LIMIT ?",
                    (*states, cutoff, batch)).fetchall()]
                if ids:
                    # Guarded again: a job retried meanwhile (another process) is kept. Its attempts
                    # go with it (ON DELETE CASCADE).
                    conn.execute(f"DELETE FROM jobs WHERE id IN ({_marks(ids)}) AND state IN ({_marks(states)}) "
                                 "AND finished_at < ?", (*ids, *states, cutoff))
            total += len(ids)
            if progress:
                progress(len(ids))
            if len(ids) < batch:
                break
            time.sleep(pause)
        while True:
            with self.writing() as conn:
                deleted = conn.execute(
                    "DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.received_at < ? "
                    "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id) "
                    "AND NOT EXISTS (SELECT 1 FROM job_events l WHERE l.event_id = e.id) LIMIT ?)",
                    (cutoff, batch)).rowcount
            if deleted < batch:
                break
            time.sleep(pause)
        self.purge_dedupe_keys(cutoff)
        return total

    def service_disabled(self, service: str) -> str | None:
        with self.reading() as conn:
            row = conn.execute("SELECT disabled_reason FROM service_state WHERE service = ?", (service,)).fetchone()
        return row[0] if row else None

    def services_switched_off(self) -> dict[str, str]:
        with self.reading() as conn:
            return dict(conn.execute("SELECT service, disabled_reason FROM service_state").fetchall())

    def disable_service(self, service: str, reason: str, now: float) -> None:
        with self.writing() as conn:
            conn.execute("INSERT INTO service_state (service, disabled_reason, disabled_at) VALUES (?, ?, ?) "
                         "ON CONFLICT (service) DO UPDATE SET disabled_reason = excluded.disabled_reason, "
                         "disabled_at = excluded.disabled_at", (service, reason, now))

    def enable_service(self, service: str) -> bool:
        with self.writing() as conn:
            return bool(conn.execute("DELETE FROM service_state WHERE service = ?", (service,)).rowcount)

    def secret(self, name: str) -> str:
        key = f"secret:{name}"
        with self.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return str(row[0])
        with self.writing() as conn:        # two nodes racing: the first insert wins, both read it
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                         (key, secrets.token_hex(32)))
            return str(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def revoke_session(self, sid: str, until: float) -> None:
        with self.writing() as conn:
            conn.execute("DELETE FROM meta WHERE key LIKE ? AND CAST(value AS DOUBLE PRECISION) < ?",
                         ("session_revoked:%", time.time()))
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                         (f"session_revoked:{sid}", repr(until)))

    def session_revoked(self, sid: str) -> bool:
        with self.reading() as conn:
            return conn.execute("SELECT 1 FROM meta WHERE key = ?", (f"session_revoked:{sid}",)).fetchone() is not None

    # -- read views ------------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job:
        with self.reading() as conn:
            row = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job {job_id}")
        return job_from_row(row)

    def job_attempts(self, job_id: int) -> list[Attempt]:
        with self.reading() as conn:
            rows = conn.execute("SELECT id, job_id, started_at, finished_at, outcome, error, detail, node "
                                "FROM attempts WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
        return [Attempt(*r) for r in rows]

    def list_jobs(self, *, state: str | None = None, service: str | None = None, limit: int = 50,
                  include_maintenance: bool = False) -> list[Job]:
        sql, params = _newest(f"SELECT {JOB_COLUMNS} FROM jobs", {"state": state, "service": service},
                              [] if include_maintenance else [DELIVERIES])
        with self.reading() as conn:
            return [job_from_row(r) for r in conn.execute(sql, (*params, limit)).fetchall()]

    def get_event(self, event_id: int) -> StoredEvent:
        with self.reading() as conn:
            row = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            raise NotFound(f"no event {event_id}")
        return event_from_row(row)

    def list_events(self, *, source: str | None = None, kind: str | None = None,
                    limit: int = 50) -> list[StoredEvent]:
        sql, params = _newest(f"SELECT {EVENT_COLUMNS} FROM events", {"source": source, "kind": kind})
        with self.reading() as conn:
            return [event_from_row(r) for r in conn.execute(sql, (*params, limit)).fetchall()]

    def jobs_of_events(self, event_ids: Sequence[int]) -> dict[int, list[Job]]:
        if not event_ids:
            return {}
        ids = list(event_ids)
        prefixed = ", ".join("j." + c for c in JOB_COLUMNS.split(", "))
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS}, event_id AS for_event FROM jobs WHERE event_id IN ({_marks(ids)}) "
                f"UNION SELECT {prefixed}, l.event_id AS for_event FROM jobs j JOIN job_events l ON l.job_id = j.id "
                f"WHERE l.event_id IN ({_marks(ids)}) ORDER BY 1", (*ids, *ids)).fetchall()
        by_event: dict[int, list[Job]] = {i: [] for i in ids}
        for row in rows:
            by_event[row[-1]].append(job_from_row(row[:-1]))
        return by_event

    def events_of_job(self, job_id: int, *, limit: int = 1000) -> list[StoredEvent]:
        # Without the bodies as received (up to max_body each): a message is made of the events' fields.
        prefixed = ", ".join("'{}'" if c == "payload" else "e." + c for c in EVENT_COLUMNS.split(", "))
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT {prefixed} FROM events e JOIN jobs j ON j.event_id = e.id WHERE j.id = ? "
                f"UNION SELECT {prefixed} FROM events e JOIN job_events l ON l.event_id = e.id WHERE l.job_id = ? "
                "ORDER BY 1 LIMIT ?", (job_id, job_id, limit)).fetchall()
        return [event_from_row(r) for r in rows]

    def get_run(self, run_id: str) -> Run:
        with self.reading() as conn:
            row = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no run {run_id!r}")
        return run_from_row(row)

    def list_runs(self, limit: int = 50) -> list[Run]:
        with self.reading() as conn:
            rows = conn.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [run_from_row(r) for r in rows]

    def stale_runs(self, before: float, sources: Collection[str], limit: int, *,
                   after: tuple[float, str] | None = None) -> list[Run]:
        names, final = list(sources), sorted(str(s) for s in FINAL_RUN_STATUSES)
        if not names:
            return []
        past, params = "", []
        if after is not None:
            past, params = " AND (updated_at > ? OR (updated_at = ? AND id > ?))", [after[0], after[0], after[1]]
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT {RUN_COLUMNS} FROM runs WHERE source IN ({_marks(names)}) AND status NOT IN ({_marks(final)}) "
                f"AND updated_at < ?{past} ORDER BY updated_at, id LIMIT ?",
                (*names, *final, before, *params, limit)).fetchall()
        return [run_from_row(r) for r in rows]

    def queue_depth(self, now: float) -> QueueDepth:
        with self.reading() as conn:
            return self._queue_depth(conn, now)

    def _queue_depth(self, conn: Conn, now: float) -> QueueDepth:
        counts = {state: n for state, n in conn.execute(
            f"SELECT state, count(*) FROM jobs WHERE state IN ('queued', 'running', 'dead') AND {DELIVERIES} "
            "GROUP BY state").fetchall()}
        oldest = conn.execute(f"SELECT min(run_at) FROM jobs WHERE state = 'queued' AND run_at <= ? AND {DELIVERIES}",
                              (now,)).fetchone()[0]
        return QueueDepth(queued=counts.get("queued", 0), running=counts.get("running", 0), dead=counts.get("dead", 0),
                          oldest_queued_s=round(now - oldest, 3) if oldest is not None else 0.0)

    def job_counts(self) -> dict[str, int]:
        with self.reading() as conn:
            return {s: n for s, n in conn.execute(
                f"SELECT state, count(*) FROM jobs WHERE {DELIVERIES} GROUP BY state").fetchall()}

    def stats(self, now: float) -> Stats:
        hour = now - 3600
        with self.reading() as conn:
            by_state = {s: n for s, n in conn.execute(
                f"SELECT state, count(*) FROM jobs WHERE {DELIVERIES} GROUP BY state").fetchall()}
            by_service: dict[str, dict[str, int]] = {}
            for service, state, n in conn.execute(
                    f"SELECT service, state, count(*) FROM jobs WHERE {DELIVERIES} "
                    "GROUP BY service, state ORDER BY service").fetchall():
                by_service.setdefault(service, {})[state] = n
            events_hour = conn.execute("SELECT count(*) FROM events WHERE received_at >= ?", (hour,)).fetchone()[0]
            finished_hour = {s: n for s, n in conn.execute(
                f"SELECT state, count(*) FROM jobs WHERE finished_at >= ? AND {DELIVERIES} GROUP BY state",
                (hour,)).fetchall()}
            dead = [job_from_row(r) for r in conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'dead' ORDER BY id DESC LIMIT 10").fetchall()]
            total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return Stats(jobs_by_state=by_state, jobs_by_service=by_service, events_last_hour=events_hour,
                     finished_last_hour=finished_hour, events_total=total, dead_recent=dead)

    def info(self) -> StoreInfo:
        with self.reading() as conn:
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in self.tables}
        return StoreInfo(engine=self.engine, location=self.location, schema_version=self.schema_version(),
                         counts=counts)

    @abstractmethod
    def schema_version(self) -> int:
        """The version the store's schema is at now."""
