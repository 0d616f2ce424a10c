"""What a notification says, once rendered: title, body and level."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """A rendered notification; `level` is info, success, warning or failure."""

    title: str
    body: str
    level: str = "info"
