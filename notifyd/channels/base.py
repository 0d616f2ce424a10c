"""The channel contract: a configured service that delivers one job, or raises a DeliveryError."""

from __future__ import annotations

from typing import Protocol

from notifyd.config import ServiceConfig
from notifyd.history import StoredEvent
from notifyd.queue import Job


class Channel(Protocol):
    """One service's delivery, built once from its config and reused for every job.

    `deliver` returns a detail string (safe to store) on success and raises TransientError or
    PermanentError otherwise. `target` is the service's address with every secret masked.
    """

    target: str

    def __init__(self, service: ServiceConfig, timeout: float) -> None: ...

    def deliver(self, job: Job, stored: StoredEvent) -> str: ...

    @staticmethod
    def describe(service: ServiceConfig) -> str: ...
