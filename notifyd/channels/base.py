"""The channel contract: a configured service that delivers one job, or raises a DeliveryError."""

from __future__ import annotations

from typing import Protocol

from notifyd.config.model import ServiceConfig
from notifyd.model import Delivery


class Channel(Protocol):
    """One service's delivery, built once from its config and reused for every job.

    `deliver` takes one attempt's `Delivery` (the job's decoded parameters, and its event only
    on request), returns a detail string (safe to store) on success and raises TransientError or
    PermanentError otherwise. `target` is the service's address with every secret masked.
    """

    target: str

    def __init__(self, service: ServiceConfig, timeout: float) -> None: ...

    def deliver(self, delivery: Delivery) -> str: ...

    @staticmethod
    def describe(service: ServiceConfig) -> str: ...
