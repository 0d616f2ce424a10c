"""The store contract: every read and write notifyd makes, whatever engine holds the data.

Two levels, both implemented by each engine:

- `Store` is shared by every thread of a process. Each of its methods is one transaction of its
  own (or a plain read) and is safe to call from any thread: the queue's claims and outcomes,
  the operator's retry, cancel and purge, service state, and the read views that the CLI, HTTP,
  /health and /metrics show.
- `Tx` is one write transaction, opened with `Store.transaction()`, for work that must commit or
  fail as a whole: an event with its dedupe check, its run's move and its fan-out jobs; a run's
  registration; a manual send. The ingest writer commits many events in one `Tx`, each inside
  its own savepoint.

Records cross this boundary (`notifyd.model`), never rows or connections. Errors: a store that
cannot be reached or written raises StoreUnavailable; anything else is a bug. Times are POSIX
seconds passed in by the caller (injected clocks), never read from the database's own clock.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from notifyd.model import (
    FINISHED_JOB_STATES,
    Attempt,
    Claim,
    Enqueued,
    Event,
    Finish,
    Job,
    JobSpec,
    Run,
    StoredEvent,
)


@dataclass(frozen=True)
class Duplicate:
    """A repeat of an event already stored within the dedupe window: its id, kind and jobs."""

    event_id: int
    kind: str
    jobs: list[Enqueued]


@dataclass(frozen=True)
class QueueDepth:
    """Delivery jobs waiting, running and dead, and how long the oldest due one has waited."""

    queued: int
    running: int
    dead: int
    oldest_queued_s: float


@dataclass(frozen=True)
class Stats:
    """One screen of numbers for `notifyd stats` (delivery jobs only, not maintenance)."""

    jobs_by_state: Mapping[str, int]
    jobs_by_service: Mapping[str, Mapping[str, int]]
    events_last_hour: int
    finished_last_hour: Mapping[str, int]
    events_total: int
    dead_recent: list[Job]


@dataclass(frozen=True)
class StoreInfo:
    """What `notifyd store info` shows: no secret (the location has its password masked)."""

    engine: str
    location: str
    schema_version: int
    counts: Mapping[str, int] = field(default_factory=dict)


class Tx(ABC):
    """One write transaction. Use only inside `with store.transaction() as tx:`."""

    @abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit: an exception inside rolls back only its own writes, then propagates."""

    @abstractmethod
    def claim_dedupe_key(self, source: str, key: str, now: float, window: float) -> Duplicate | None:
        """Reserve (source, key) for the event about to be inserted, or, when an event within
        `window` seconds already holds it, return that event. A unique constraint decides, so
        two writers (two nodes) racing on one key cannot both win."""

    @abstractmethod
    def insert_event(self, event: Event, now: float, dedupe_key: str | None = None, *,
                     media_json: str | None = None) -> int:
        """Store the event, under the dedupe key it reserved; returns its id. `media_json`: its
        media as strict_json.dumps writes them, from a caller that has made that text already."""

    @abstractmethod
    def update_event(self, event_id: int, *, title: str, media: Mapping[str, object]) -> None:
        """Rewrite an event's title and media (a run registered after its final status)."""

    @abstractmethod
    def load_event(self, event_id: int) -> StoredEvent:
        """The event, or NotFound."""

    @abstractmethod
    def enqueue(self, event_id: int | None, specs: Sequence[JobSpec], max_attempts: int,
                now: float) -> list[Enqueued]:
        """Insert one job per spec. A spec whose unique_key names a queued job that has not run
        yet collapses into it (the event is linked to that job) instead of adding another."""

    @abstractmethod
    def event_services(self, event_id: int) -> set[str]:
        """The services that already have a job for this event: its own, or one it joined (a digest)."""

    @abstractmethod
    def disabled_services(self) -> set[str]:
        """Services a receiver switched off (410 Gone)."""

    @abstractmethod
    def run_for_update(self, run_id: str, *, create: Run | None = None) -> Run | None:
        """The run, locked until the transaction ends; inserted first from `create` if it does
        not exist (so two writers creating one run meet on its primary key)."""

    @abstractmethod
    def save_run(self, run: Run) -> None:
        """Write every field of a run that `run_for_update` returned (or created)."""

    @abstractmethod
    def schedule_unique(self, spec: JobSpec, max_attempts: int, now: float, *, besides: int | None = None) -> bool:
        """Queue `spec` unless a job with its unique_key (other than job `besides`, the one
        scheduling its own successor) is queued or running; True if queued."""

    @abstractmethod
    def recent_events(self, source: str, since: float, kinds: Collection[str]) -> list[StoredEvent]:
        """The events of these kinds that `source` sent at or after `since`, oldest first (the
        earlier webhooks of one download, notifyd.folding)."""

    @abstractmethod
    def delay_jobs(self, event_ids: Collection[int], kinds: Collection[str], until: float) -> int:
        """Make the queued jobs of these kinds that deliver these events wait until at least
        `until` (a later event of the same download arrived); returns how many moved. A job that
        is running or finished is never touched."""

    @abstractmethod
    def skip_jobs(self, event_ids: Collection[int], services: Collection[str], kinds: Collection[str],
                  reason: str, now: float) -> list[int]:
        """End the queued jobs of these kinds that deliver these events to these services as
        `skipped`, with `reason` as their last error (their event was folded into another, which
        tells instead); returns their ids. A job that is running or finished is never touched."""

    @abstractmethod
    def write_probe(self, now: float) -> None:
        """A write that proves the store takes writes (/health)."""


class Store(ABC):
    """One engine's store, shared by all threads of a process. See the module docstring."""

    engine: str           # "sqlite" | "postgresql"
    location: str         # where the data is, safe to print (a URL's password masked)
    node_id: str          # this process, as attempts and /health name it
    multi_node: bool      # whether several `notifyd serve` may share it

    # -- lifecycle ------------------------------------------------------------------------------

    @abstractmethod
    def migrate(self) -> int:
        """Bring the schema up to date (once, even when several nodes start together); returns
        the version it was at. StoreTooNew if a newer notifyd wrote it."""

    @abstractmethod
    def info(self) -> StoreInfo:
        """Engine, location, schema version and row counts per table."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection this store opened."""

    @abstractmethod
    def serve_lock(self) -> AbstractContextManager[None]:
        """Held by `notifyd serve` while it runs: AlreadyRunning where the engine allows one daemon
        only (SQLite); nothing to hold where nodes share the store (PostgreSQL)."""

    @abstractmethod
    def daemon_holder(self) -> str | None:
        """Which daemon serves this store now ("pid 123"), or None: for commands that need the daemon
        stopped, and for those that queue work and must say plainly when nobody will run it."""

    def hand_back_files(self) -> None:
        """After a command run by root on a store that another user owns (the systemd unit's
        dynamic user): the files this process created beside it go back to that owner, so the
        daemon can still open them. Nothing to do where the engine keeps no files (PostgreSQL)."""
        return None

    def health(self, now: float) -> list[str]:
        """Problems that do not stop writes yet but will, for /health: SQLite's write-ahead log
        that checkpoints cannot empty into the database file, or that has grown past its limit.
        Empty when all is well (always, where the engine has no such log of its own to watch).
        Never raises; cheap enough for every /health request."""
        return []

    def changed(self) -> bool:
        """Whether another connection may have committed since this thread last asked: the idle
        worker that polls for other processes' jobs skips its claim when not. Engines that cannot
        tell cheaply say True."""
        return True

    def subscribe(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` whenever another process enqueues jobs; returns a function that stops it.
        Engines without cross-process notifications do nothing (workers poll for the CLI's jobs)."""
        return lambda: None

    # -- writes that belong together --------------------------------------------------------------

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Tx]:
        """One write transaction: committed when the block ends, rolled back if it raises."""

    # -- the worker's side of the queue -----------------------------------------------------------

    @abstractmethod
    def claim(self, now: float, lease: float, *, passed_over: Collection[str] = ()) -> Claim | None:
        """Lease the due queued job with the lowest (priority, run_at, id) for `lease` seconds
        and open its attempt row, after taking back expired leases (at most once a second). A
        job is never leased to two claimers at once. Jobs of the `passed_over` services (the
        claimer's pool has as many of them running as it allows) are left for later. None when
        nothing is due."""

    @abstractmethod
    def claim_job(self, job_id: int, now: float, lease: float) -> Claim | None:
        """Lease one particular queued job now (`services test`); None if it is not queued."""

    @abstractmethod
    def finish(self, claim: Claim, finish: Finish, now: float) -> bool:
        """Record an attempt's end and move its job; False (nothing written) when the lease is no
        longer this claim's (it expired and another worker took the job). Safe to call again after
        StoreUnavailable: the lease token guards the move, so an outcome is never recorded twice."""

    @abstractmethod
    def extend(self, claims: Iterable[Claim], until: float) -> None:
        """Push the leases of jobs still running here to `until`."""

    @abstractmethod
    def release(self, claim: Claim, *, run_at: float | None = None) -> bool:
        """Give a lease back unfinished (shutdown, an outcome the store would not take, quiet hours):
        queued again, due at `run_at` when given, the attempt not counted; False when the lease is no
        longer this claim's. It is a
        write like any other, so it too can raise StoreUnavailable: then only the lease's expiry
        brings the job back."""

    @abstractmethod
    def recover(self, now: float) -> int:
        """On start: requeue what a dead predecessor left running. With one daemon per store every
        running job is abandoned; where nodes share it, only expired leases are. Returns how many."""

    @abstractmethod
    def next_wakeup(self, now: float) -> float | None:
        """Seconds until a queued job is due or a lease expires; 0 if one is due, None if idle."""

    # -- the operator's side ------------------------------------------------------------------------

    @abstractmethod
    def cancel(self, ids: Iterable[int], now: float) -> dict[int, str]:
        """Cancel queued jobs; per id, "cancelled" or why not."""

    @abstractmethod
    def retry(self, ids: Iterable[int], now: float) -> dict[int, str]:
        """Queue dead or cancelled jobs again with a fresh attempt budget; per id, "queued" or why
        not. Their attempt history stays."""

    @abstractmethod
    def dead_ids(self) -> list[int]:
        """Every dead job's id, oldest first."""

    @abstractmethod
    def purge(self, cutoff: float, states: Sequence[str] = tuple(FINISHED_JOB_STATES), *,
              batch: int = 500, pause: float = 0.03, progress: Callable[[int], None] | None = None) -> int:
        """Delete jobs in `states` that finished before `cutoff`, their attempts, events left
        without jobs and expired dedupe keys, in short batches with `pause` between them so
        ingest is never starved. Returns jobs deleted."""

    @abstractmethod
    def maintenance_lock(self) -> AbstractContextManager[bool]:
        """Whether this process may run maintenance now: True for one node at a time."""

    @abstractmethod
    def service_disabled(self, service: str) -> str | None:
        """Why a receiver switched this service off (410 Gone), or None."""

    @abstractmethod
    def services_switched_off(self) -> dict[str, str]:
        """Every service a receiver switched off (410 Gone), with why: one read, for listings."""

    @abstractmethod
    def disable_service(self, service: str, reason: str, now: float) -> None:
        """Switch a service off whatever its config says, until `enable_service`."""

    @abstractmethod
    def enable_service(self, service: str) -> bool:
        """Clear a receiver's switch-off; True if there was one."""

    # -- status page sessions ----------------------------------------------------------------------

    @abstractmethod
    def secret(self, name: str) -> str:
        """A random secret (64 hex digits) kept in the store under `name`, made on first use: every
        node sharing the store gets the same one, and it outlives restarts."""

    @abstractmethod
    def revoke_session(self, sid: str, until: float) -> None:
        """Remember a logged-out session id until its cookie would have expired anyway (and forget
        the ids whose time has passed)."""

    @abstractmethod
    def session_revoked(self, sid: str) -> bool:
        """Whether a session id was logged out."""

    # -- read views -----------------------------------------------------------------------------

    @abstractmethod
    def get_job(self, job_id: int) -> Job:
        """The job, or NotFound."""

    @abstractmethod
    def job_attempts(self, job_id: int) -> list[Attempt]:
        """Every attempt of a job, first first."""

    @abstractmethod
    def list_jobs(self, *, state: str | None = None, service: str | None = None, limit: int = 50,
                  include_maintenance: bool = False) -> list[Job]:
        """Newest first, optionally of one state and one service."""

    @abstractmethod
    def get_event(self, event_id: int) -> StoredEvent:
        """The event, or NotFound."""

    @abstractmethod
    def list_events(self, *, source: str | None = None, kind: str | None = None,
                    limit: int = 50) -> list[StoredEvent]:
        """Newest first."""

    @abstractmethod
    def jobs_of_events(self, event_ids: Sequence[int]) -> dict[int, list[Job]]:
        """Per event, the jobs that deliver it: its own and those it collapsed into."""

    @abstractmethod
    def events_of_job(self, job_id: int, *, limit: int = 1000) -> list[StoredEvent]:
        """The events one job delivers, oldest first, at most `limit`: its own and those that
        collapsed into it (a digest's window, a folder's refresh), without their bodies as received
        (`payload` is "{}"). Empty when it has none (maintenance)."""

    @abstractmethod
    def get_run(self, run_id: str) -> Run:
        """The run, or NotFound."""

    @abstractmethod
    def list_runs(self, limit: int = 50) -> list[Run]:
        """Newest first."""

    @abstractmethod
    def stale_runs(self, before: float, sources: Collection[str], limit: int, *,
                   after: tuple[float, str] | None = None) -> list[Run]:
        """Runs of these sources that are not final and were last updated before `before`, in
        (updated_at, id) order, at most `limit`; `after` (a run's updated_at and id) continues a
        listing past the runs it already gave (notifyd.run_poll)."""

    @abstractmethod
    def queue_depth(self, now: float) -> QueueDepth:
        """Delivery jobs by waiting state, and the oldest due job's age."""

    @abstractmethod
    def job_counts(self) -> dict[str, int]:
        """Delivery jobs by state (metrics)."""

    @abstractmethod
    def stats(self, now: float) -> Stats:
        """The numbers `notifyd stats` shows."""


__all__ = ["Duplicate", "QueueDepth", "Stats", "Store", "StoreInfo", "Tx"]
