"""Durations ("30s", "2h", "1h30m", "30d") and sizes ("1MiB", "512KB") as users write them, and sizes as
people read them (29.3 GiB)."""

from __future__ import annotations

import math
import re
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3}


def parse_duration(value: str | int | float) -> float:
    """Seconds from a number of seconds or a string such as "30s", "2m", "1h30m", "30d"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"30s\", got a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a duration of 0 or more, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"30s\", got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("expected a duration such as \"30s\", got an empty string")
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
        pos = match.end()
    if pos != len(text) or not math.isfinite(total):
        raise ValueError(f"expected a duration such as \"30s\", \"2m\", \"1h30m\" or \"30d\", got {value!r}")
    return total


def parse_size(value: str | int) -> int:
    """Bytes from a number of bytes or a string such as "1MiB", "512KB", "2048"."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as \"1MiB\", got a boolean")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"expected a size above 0, got {value}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as \"1MiB\", got {type(value).__name__}")
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"expected a size such as \"1MiB\" or \"512KB\", got {value!r}")
    size = int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    if size <= 0:
        raise ValueError(f"expected a size above 0, got {value!r}")
    return size


_DURATION_STEPS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def _duration_parts(ms: int) -> list[str]:
    """Whole milliseconds as their non-zero units, largest first: ["1h", "30m", "15s"]."""
    parts = []
    for unit, size in _DURATION_STEPS:
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return parts


def format_duration(seconds: float) -> str:
    """A short human form: 850ms, 30s, 2m, 1h30m, 3d (the two largest units, to the second)."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    return "".join(_duration_parts(int(round(seconds)) * 1000)[:2]) or "0s"


def duration_text(seconds: float) -> str:
    """A duration exactly as a config takes it back: "1h30m15s", "2s500ms", "0s" (to the millisecond)."""
    return "".join(_duration_parts(int(round(seconds * 1000)))) or "0s"


def size_text(size: int) -> str:
    """A size exactly as a config takes it back, in the largest unit that divides it: "1MiB", "64KB", "1500B"."""
    for unit in ("gib", "mib", "kib", "gb", "mb", "kb"):
        if size % _SIZE_UNITS[unit] == 0:
            return f"{size // _SIZE_UNITS[unit]}{unit[0].upper()}{unit[1:-1]}B"
    return f"{size}B"


def filesize(value: Any) -> str:
    """Bytes as people read them: 29.3 GiB, 512 MiB; empty for nothing."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 2**63:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit in ("B", "KiB") else f"{size:.1f} {unit}"
        size /= 1024
    return ""
