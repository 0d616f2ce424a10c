"""Quiet hours: a daily window of local time in which a service's notifications wait.

`quiet_hours = "23:00-07:30"` on a service defers what would reach it inside the window to the
window's end; nothing is dropped, and the queue keeps the order (same priority, same due time:
the older job first). `quiet_bypass = ["failure"]` lets levels through. Local time is
`[server] timezone` (an IANA name such as "Europe/Berlin"), else the system's. Pure: the clock
and the zone are passed in; daylight-saving changes are taken from the zone database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifyd.config.model import ServiceConfig
    from notifyd.model import JobSpec

_WINDOW = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
LEVELS = ("info", "success", "warning", "failure")


@dataclass(frozen=True)
class QuietHours:
    """A daily window [start, end) of wall-clock time; it crosses midnight when end <= start."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def ends_after(self, moment: float, zone: tzinfo | None) -> float | None:
        """When the window holding `moment` (POSIX seconds) ends, or None when `moment` is outside it."""
        local = datetime.fromtimestamp(moment, zone).replace(tzinfo=None)
        today = local.date()
        for day in (today - timedelta(days=1), today):
            opens = datetime.combine(day, self.start)
            closes = datetime.combine(day if self.end > self.start else day + timedelta(days=1), self.end)
            if opens <= local < closes:
                return _posix(closes, zone, after=moment)
        return None


def parse_quiet_hours(value: object) -> QuietHours:
    """"HH:MM-HH:MM" (24-hour local time) as a window; ValueError saying the form otherwise."""
    match = _WINDOW.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected a daily window such as \"23:00-07:30\", got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"expected hours 00-23 and minutes 00-59, got {value!r}")
    start, end = time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)
    if start == end:
        raise ValueError(f"the window {value!r} is empty: its start and end are the same time")
    return QuietHours(start, end)


def severity(level: str) -> int:
    """A level's rank, info lowest and failure highest (an unknown one as info)."""
    return LEVELS.index(level) if level in LEVELS else 0


def parse_levels(value: object) -> tuple[str, ...]:
    """A list of levels (`quiet_bypass = ["failure", "warning"]`)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of levels ({', '.join(LEVELS)}), got {value!r}")
    unknown = [v for v in value if v not in LEVELS]
    if unknown:
        raise ValueError(f"expected levels from {', '.join(LEVELS)}; got {', '.join(map(repr, unknown))}")
    return tuple(dict.fromkeys(value))


def parse_timezone(value: object) -> str:
    """An IANA zone name the system's zone database knows ("Europe/Berlin", "UTC")."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a time zone name such as \"Europe/Berlin\", got {value!r}")
    # Imported here: reading a config needs the zone database for this one key only.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"no time zone {value!r} in the system's zone database (expected a name such as "
                         "\"Europe/Berlin\" or \"America/New_York\")") from None
    return value.strip()


def zone_of(name: str | None) -> tzinfo | None:
    """The zone for a validated name; None means the system's local time."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(name) if name else None


def deferred_until(moment: float, quiet: QuietHours | None, *, zone: tzinfo | None, level: str,
                   bypass: tuple[str, ...] = ()) -> float | None:
    """When a notification due at `moment` may go: the end of the quiet window it falls in, or
    None when it may go at `moment` (no window, outside it, or its level passes)."""
    if quiet is None or level in bypass:
        return None
    until = quiet.ends_after(moment, zone)
    return until if until is not None and until > moment else None      # never "wait until now"


def defer_quiet(specs: Sequence[JobSpec], services: Iterable[ServiceConfig], *, level: str, now: float,
                zone: tzinfo | None) -> list[JobSpec]:
    """The specs with each quiet service's jobs due at the end of its window when they would fall
    inside it. Jobs of one window get one due time, so the queue's order (priority, due time, id)
    keeps them in the order they came."""
    by_name: Mapping[str, ServiceConfig] = {s.name: s for s in services}
    timed = []
    for spec in specs:
        service = by_name.get(spec.service)
        window = service_window(service) if service is not None else None
        if window is not None:
            until = deferred_until(now + spec.delay, window[0], zone=zone, level=level, bypass=window[1])
            if until is not None:
                spec = replace(spec, delay=until - now)
        timed.append(spec)
    return timed


def service_window(service: ServiceConfig) -> tuple[QuietHours, tuple[str, ...]] | None:
    """A service's quiet window and the levels `quiet_bypass` lets through it, or None."""
    quiet = service.options.get("quiet_hours")
    if not isinstance(quiet, QuietHours):
        return None
    return quiet, tuple(service.options.get("quiet_bypass", ()))


def _posix(local: datetime, zone: tzinfo | None, *, after: float) -> float:
    """A naive local wall-clock time as POSIX seconds, the later of its two readings: a time a
    spring-forward gap skips (02:30 on that night) is read with the offset before the gap (it
    becomes 03:30), an ambiguous one (autumn) as its second occurrence; so the window never ends
    early."""
    stamps = [local.replace(tzinfo=zone, fold=fold).timestamp() if zone else local.replace(fold=fold).timestamp()
              for fold in (0, 1)]
    later = max(stamps)
    return later if later > after else after
