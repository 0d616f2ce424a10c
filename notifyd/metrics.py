"""Prometheus metrics: counters the listener and workers move, and queue gauges read at scrape time.

Everything lives in one CollectorRegistry owned by the daemon (no global registry), so tests and
a second daemon in one process never share counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notifyd.model import JobState
from notifyd.store import Store

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _QueueCollector(Collector):
    """Queue depth by state and the oldest due job's age, read from the store on each scrape."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.store.job_counts()
        depth = GaugeMetricFamily("notifyd_jobs", "Jobs in the store by state.", labels=["state"])
        for state in JobState:
            depth.add_metric([str(state)], counts.get(state, 0))
        yield depth
        oldest = GaugeMetricFamily("notifyd_oldest_queued_seconds",
                                   "Age of the oldest queued job that is due (0 when none is waiting).")
        oldest.add_metric([], self.store.queue_depth(self.clock()).oldest_queued_s)
        yield oldest


class Metrics:
    """The daemon's metrics; `observe_*` are called by the listener and the workers."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = Counter("notifyd_events_received", "Webhooks accepted, by source and kind.",
                              ["source", "kind"], registry=self.registry)
        self.outcomes = Counter("notifyd_job_outcomes", "Job attempts by service and outcome "
                                "(succeeded, retry, dead, skipped).", ["service", "outcome"], registry=self.registry)
        self.duration = Histogram("notifyd_delivery_seconds", "How long one delivery attempt took, by service.",
                                  ["service"], registry=self.registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.registry.register(_QueueCollector(store, clock))
        # The counter of each (source, kind) seen: labels() checks and locks on every call, and
        # observe_event is called for every webhook accepted.
        self._event_counters: dict[tuple[str, str], Any] = {}

    def observe_event(self, source: str, kind: str) -> None:
        counter = self._event_counters.get((source, kind))
        if counter is None:
            counter = self._event_counters[(source, kind)] = self.events.labels(source=source, kind=kind)
        counter.inc()

    def observe_outcome(self, service: str, outcome: str, seconds: float | None) -> None:
        self.outcomes.labels(service=service, outcome=outcome).inc()
        if seconds is not None:
            self.duration.labels(service=service).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
