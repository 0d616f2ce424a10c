"""Digest messages: the events a service gathered in one window (`digest = "2m"`), told as one.

What summarises well is summarised per kind: a series' imported episodes as ranges per season
("Severance S02E01–E10 imported · 10 files, 24.1 GiB"), movies as a list ("3 movies imported:
Arrival (2016), Dune (2021), Heat (1995)"); anything else keeps its own message's title, one line
each, in the order the events came. The per-file events of a Sonarr download whose Import
Complete is in the same digest are told by it, once. Pure: stored events and the service's
template overrides in, a Message out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifyd.fanout import DIGEST_MAX
from notifyd.messages import Message
from notifyd.model import Event, StoredEvent
from notifyd.quiet_hours import severity
from notifyd.templates import render
from notifyd.units import filesize

IMPORTS = ("download", "upgrade")
MAX_LISTED = 10          # movies named in one line before "and N more"


@dataclass
class _Group:
    """What one line of a digest sums up: a season's episodes, or the movies."""

    size: int = 0
    files: int = 0
    episodes: set[int] = field(default_factory=set)
    titles: list[str] = field(default_factory=list)
    upgrades: int = 0
    count: int = 0

    def add_size(self, media: Mapping[str, Any], default_files: int) -> None:
        size = media.get("size")
        if isinstance(size, int) and not isinstance(size, bool):
            self.size += size
        files = media.get("files")
        self.files += files if isinstance(files, int) and not isinstance(files, bool) else default_files


def render_digest(events: Sequence[StoredEvent], overrides: Mapping[str, Mapping[str, str]] | None = None) -> Message:
    """One message for a digest's events (oldest first); a digest of one event is that event's own.
    Past DIGEST_MAX, the last line says there were more (the job's events are read DIGEST_MAX + 1 at most)."""
    more = len(events) > DIGEST_MAX
    kept = told_once([e.event for e in events[:DIGEST_MAX]])
    if len(kept) == 1 and not more:
        return render(kept[0], overrides)
    lines: list[str] = []
    groups: dict[tuple[str, ...], tuple[int, _Group]] = {}     # a group's line, filled once every event is in
    for event in kept:
        key = _group_key(event)
        if key is None:
            lines.append(_one_line(render(event, overrides)))
            continue
        if key not in groups:
            groups[key] = (len(lines), _Group())
            lines.append("")
        _add(groups[key][1], key, event)
    for key, (line, group) in groups.items():
        lines[line] = _describe(key, group)
    level = max((str(e.media.get("level", "info")) for e in kept), key=severity)
    if more:
        lines.append(f"… and more after these {DIGEST_MAX} (`notifyd events list` has them all)")
    if len(lines) == 1:
        title, _, body = lines[0].partition(" · ")
        return Message(title=title, body=body or title, level=level)
    return Message(title=f"{len(kept)} notifications", body="\n".join(lines), level=level)


def told_once(events: Sequence[Event]) -> list[Event]:
    """The events without the per-file Downloads that an Import Complete among them sums up."""
    summed = {e.media.get("download_id") for e in events
              if e.media.get("import_complete") and isinstance(e.media.get("download_id"), str)}
    return [e for e in events if e.media.get("import_complete") or e.media.get("download_id") not in summed]


def _group_key(event: Event) -> tuple[str, ...] | None:
    if event.kind not in IMPORTS:
        return None
    media = event.media
    episodes = media.get("episodes")
    if media.get("media_type") == "episode" and isinstance(media.get("series"), str) and episodes:
        seasons = {e.get("season") for e in episodes if isinstance(e, Mapping)}
        if len(seasons) == 1:
            return ("episodes", event.source, media["series"], str(seasons.pop()))
    if media.get("media_type") == "movie":
        return ("movies", event.source)
    return None


def _add(group: _Group, key: tuple[str, ...], event: Event) -> None:
    group.count += 1
    group.upgrades += event.kind == "upgrade"
    if key[0] == "episodes":
        numbers = {int(e["episode"]) for e in event.media["episodes"] if isinstance(e.get("episode"), int)}
        group.episodes |= numbers
        group.add_size(event.media, default_files=len(numbers))
    else:
        group.titles.append(event.title)
        group.add_size(event.media, default_files=1)


def _describe(key: tuple[str, ...], group: _Group) -> str:
    verb = "upgraded" if group.upgrades == group.count else "imported"
    details = []
    if group.files:
        details.append(f"{group.files} file{'s' if group.files != 1 else ''}")
    if group.size:
        details.append(filesize(group.size))
    tail = f" · {', '.join(details)}" if details else ""
    if key[0] == "episodes":
        return f"{key[2]} S{int(key[3]):02d}{episode_ranges(sorted(group.episodes))} {verb}{tail}"
    names = list(dict.fromkeys(group.titles))
    if len(names) == 1:
        return f"{names[0]} {verb}{tail}"
    shown = ", ".join(names[:MAX_LISTED]) + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")
    return f"{len(names)} movies {verb}: {shown}{tail}"


def episode_ranges(numbers: Sequence[int]) -> str:
    """E01–E10, or E01–E03, E05 with gaps; numbers sorted."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    return ", ".join(f"E{a:02d}" if a == b else f"E{a:02d}–E{b:02d}" for a, b in runs)


def _one_line(message: Message) -> str:
    """A message as one digest line: its title, and its body when that is short and says more."""
    body = " ".join(message.body.split())
    if body and body != message.title and len(body) <= 100:
        return f"{message.title} — {body}"
    return message.title
