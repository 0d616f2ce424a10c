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
    """A built-in sender: its parser, whether its events move tracked runs (media["run_id"]), and
    how a named source of its type is protected. `signs`: the sender can sign its bodies (Standard
    Webhooks), so a `secret` makes sense; a sender that never signs is protected by a token, and
    `token_hint` tells its user where to put it."""

    parse: SourceParser
    sender: str
    tracks_runs: bool = False
    signs: bool = False
    token_hint: str = "put ?token=… in the webhook URL"


# The *arr apps' webhook connection has Username and Password fields, sent as Basic auth.
_ARR_TOKEN = "enter it as the webhook's Password in the app (or put ?token=… in the webhook URL)"

SOURCE_TYPES: dict[str, SourceType] = {
    "generic": SourceType(parse_generic, "A generic sender", signs=True),
    "radarr": SourceType(parse_radarr, "Radarr", token_hint=_ARR_TOKEN),
    "sonarr": SourceType(parse_sonarr, "Sonarr", token_hint=_ARR_TOKEN),
    "lidarr": SourceType(parse_lidarr, "Lidarr", token_hint=_ARR_TOKEN),
    "readarr": SourceType(parse_readarr, "Readarr", token_hint=_ARR_TOKEN),
    "comfydeploy": SourceType(parse_comfydeploy, "ComfyDeploy", tracks_runs=True),
}


def tracks_run(event: Event) -> bool:
    """Whether this event reports on a tracked run, by what its source type declares."""
    source = SOURCE_TYPES.get(event.source_type)
    return source is not None and source.tracks_runs and "run_id" in event.media
