"""The Event: what a sender told us, normalized, before it becomes jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


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
