"""Sources turn a decoded webhook body into an Event; one module per sender type.

A parser takes the body (a dict) and the names it was posted under, and returns an Event or
raises BadPayload naming the field that is wrong.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from notifyd.events import Event
from notifyd.sources.arr import parse_lidarr, parse_radarr, parse_readarr, parse_sonarr
from notifyd.sources.comfydeploy import parse_comfydeploy
from notifyd.sources.generic import parse_generic

SourceParser = Callable[[Mapping[str, Any], str, str, str], Event]

SOURCE_TYPES: dict[str, SourceParser] = {
    "generic": parse_generic,
    "radarr": parse_radarr,
    "sonarr": parse_sonarr,
    "lidarr": parse_lidarr,
    "readarr": parse_readarr,
    "comfydeploy": parse_comfydeploy,
}
