"""Fan-out: which jobs an event becomes. Pure: an Event and services in, job specs out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from notifyd.config import ServiceConfig
from notifyd.events import Event


@dataclass(frozen=True)
class JobSpec:
    """A job to enqueue for one service; `unique_key` collapses it into a queued twin."""

    service: str
    kind: str
    priority: int
    delay: float = 0.0
    unique_key: str | None = None


def plan_jobs(event: Event, services: Iterable[ServiceConfig],
              only: Iterable[str] | None = None) -> list[JobSpec]:
    """One job per enabled service whose `events` filter takes this event's kind.

    A test event gets no jobs. `only` (a manual send naming services) replaces the filter.
    """
    if event.kind == "test":
        return []
    named = set(only) if only is not None else None
    specs = []
    for service in services:
        if not service.enabled:
            continue
        if named is not None:
            if service.name not in named:
                continue
        elif not service.wants(event.kind):
            continue
        specs.append(JobSpec(service=service.name, kind=service.job_kind, priority=service.priority))
    return specs
