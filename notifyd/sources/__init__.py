"""Sources turn a decoded webhook body into an Event; one module per sender type.

A parser takes the body (a dict) and the names it was posted under, and returns an Event or
raises BadPayload naming the field that is wrong; every value is read through `fields`, the one
vocabulary of checked kinds of value (years, sizes, ids, paths, names, prose) that POST /runs
shares. A source type also declares whether its
events report on tracked runs (§7), so ingest never asks which sender it was.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from notifyd.model import Event
from notifyd.sources.arr import parse_lidarr, parse_radarr, parse_readarr, parse_sonarr
from notifyd.sources.comfydeploy import parse_comfydeploy
from notifyd.sources.generic import parse_generic

SourceParser = Callable[[Mapping[str, Any], str, str, str], Event]


@dataclass(frozen=True)
class SourceType:
    """A built-in sender: its parser, and whether its events move tracked runs (media["run_id"])."""

    parse: SourceParser
    tracks_runs: bool = False


SOURCE_TYPES: dict[str, SourceType] = {
    "generic": SourceType(parse_generic),
    "radarr": SourceType(parse_radarr),
    "sonarr": SourceType(parse_sonarr),
    "lidarr": SourceType(parse_lidarr),
    "readarr": SourceType(parse_readarr),
    "comfydeploy": SourceType(parse_comfydeploy, tracks_runs=True),
}


def tracks_run(event: Event) -> bool:
    """Whether this event reports on a tracked run, by what its source type declares."""
    source = SOURCE_TYPES.get(event.source_type)
    return source is not None and source.tracks_runs and "run_id" in event.media
