"""The records that cross the store boundary, and the states they move through.

Sources make `Event`s; fan-out turns them into `JobSpec`s; the store keeps `Job`s and leases them
as `Claim`s; a channel delivers a `Delivery`; an attempt ends in a `Finish` the store records and
an `Outcome` the worker logs; tracked runs are `Run`s. This module imports nothing of notifyd, so
every layer (sources, fan-out, store engines, channels, HTTP, CLI) can share it without a cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any


class JobState(StrEnum):
    """Where a job is; `queued` includes a scheduled retry (attempts > 0)."""

    QUEUED = "queued"
    RUNNING = "running"          # leased by a worker
    SUCCEEDED = "succeeded"
    DEAD = "dead"                # attempts exhausted, or a permanent error
    CANCELLED = "cancelled"
    SKIPPED = "skipped"          # its service was disabled or removed before it ran


FINISHED_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.DEAD, JobState.CANCELLED, JobState.SKIPPED})
RETRYABLE_JOB_STATES = frozenset({JobState.DEAD, JobState.CANCELLED})      # what `jobs retry` brings back


class DeliveryStatus(StrEnum):
    """A job's state as the person waiting for a message sees it."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


DELIVERY_OF_STATE: Mapping[str, DeliveryStatus] = {
    JobState.QUEUED: DeliveryStatus.PENDING, JobState.RUNNING: DeliveryStatus.PENDING,
    JobState.SUCCEEDED: DeliveryStatus.SENT, JobState.DEAD: DeliveryStatus.FAILED,
    JobState.CANCELLED: DeliveryStatus.SKIPPED, JobState.SKIPPED: DeliveryStatus.SKIPPED,
}


class JobKind(StrEnum):
    """What a job does; the worker dispatches on it."""

    NOTIFY = "notify"            # a message through Apprise
    REFRESH = "refresh"          # a media server's library scan
    CALLBACK = "callback"        # a signed HTTP POST (a webhook service, a run's callback_url)
    MAINTENANCE = "maintenance"  # retention


class AttemptOutcome(StrEnum):
    """How one attempt ended, as its attempt row records it."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # the daemon stopped while it ran
    LOST = "lost"                # its lease expired: the worker stopped answering


class RunStatus(StrEnum):
    """A tracked run's status; it only moves forward, and never out of a final one."""

    QUEUED = "queued"
    STARTED = "started"
    RUNNING = "running"
    UPLOADING = "uploading"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"


FINAL_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.CANCELLED})


@dataclass(frozen=True)
class Event:
    """One received webhook (or manual `send`), normalized by its source.

    `source` is the name the sender posted to (a built-in type or a configured instance);
    `payload` is the body exactly as received, kept for history and templates.
    """

    source: str
    source_type: str
    kind: str
    title: str
    body: str = ""
    paths: tuple[str, ...] = ()
    media: Mapping[str, Any] = field(default_factory=dict)
    payload: str = "{}"


@dataclass(frozen=True)
class StoredEvent:
    """An Event as stored, with its id and receive time."""

    id: int
    received_at: float
    event: Event


@dataclass(frozen=True)
class JobSpec:
    """A job to enqueue for one service; `unique_key` collapses it into a queued twin."""

    service: str
    kind: str
    priority: int
    delay: float = 0.0
    unique_key: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """A job as stored."""

    id: int
    event_id: int | None
    service: str
    kind: str
    priority: int
    state: JobState
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
    def data(self) -> dict[str, Any]:
        """The job's own parameters (a refresh's folder, a callback's run), decoded."""
        decoded: dict[str, Any] = json.loads(self.payload)
        return decoded

    @property
    def delivery(self) -> DeliveryStatus:
        return DELIVERY_OF_STATE[self.state]


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
class Attempt:
    """One try at a job, as its history shows it."""

    id: int
    job_id: int
    started_at: float
    finished_at: float | None
    outcome: str | None
    error: str | None
    detail: str | None
    node: str | None = None


@dataclass(frozen=True)
class Finish:
    """What an attempt did to its leased job: the job's next state and the attempt row's ending.
    `run_at` is set when the job is queued again (a retry)."""

    state: JobState
    outcome: AttemptOutcome
    last_error: str | None = None
    error: str | None = None
    detail: str = ""
    run_at: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What recording an attempt did to its job, for the log; `retry_in` is set for a retry.
    `state` is "lost" when the lease had been taken back before the outcome could be recorded."""

    state: str
    attempt: int
    max_attempts: int
    retry_in: float | None = None


@dataclass(frozen=True)
class Delivery:
    """What a channel gets for one attempt: the job's own parameters, decoded, and a way to its
    event that reads the store only if the channel needs it (a refresh never does). A digest job
    (`data["digest"]`) delivers every event gathered in its window: `events`, oldest first."""

    job_id: int
    service: str
    kind: str
    data: Mapping[str, Any]
    load_event: Callable[[], StoredEvent]
    load_events: Callable[[], list[StoredEvent]] = list
    allow_private: bool = False     # [runs] allow_private_callbacks: may what it fetches (pictures) be on the LAN

    @cached_property
    def event(self) -> StoredEvent:
        return self.load_event()

    @cached_property
    def events(self) -> list[StoredEvent]:
        return self.load_events() or [self.event]

    @property
    def digest(self) -> bool:
        return bool(self.data.get("digest"))


@dataclass(frozen=True)
class Run:
    """A tracked run (an AI generation, an upload) as stored."""

    id: str
    status: RunStatus
    created_at: float
    updated_at: float
    name: str = ""
    progress: float | None = None
    live_status: str | None = None
    notify: tuple[str, ...] = ()
    context: Mapping[str, str] = field(default_factory=dict)
    callback_url: str | None = None
    cost_amount: float | None = None
    cost_unit: str | None = None
    outputs: tuple[Any, ...] = ()
    error: str | None = None
    registered: bool = False
    source: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    final_event_id: int | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_RUN_STATUSES
