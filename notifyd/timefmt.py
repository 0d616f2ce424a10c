"""Stored times are float Unix seconds; every answer shows them as ISO 8601 UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with millisecond precision, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
