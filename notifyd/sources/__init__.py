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
from enum import StrEnum
from typing import Any

from notifyd.model import Event
from notifyd.multipart import Unwrapped
from notifyd.sources.arr import parse_lidarr, parse_prowlarr, parse_radarr, parse_readarr, parse_sonarr
from notifyd.sources.comfydeploy import STATUS_API_PATH, STATUS_API_URL, parse_comfydeploy, parse_comfydeploy_run
from notifyd.sources.generic import parse_generic
from notifyd.sources.jellyfin import parse_jellyfin, unwrap_jellyfin
from notifyd.sources.overseerr import parse_overseerr
from notifyd.sources.plex import parse_plex, unwrap_plex
from notifyd.sources.uptimekuma import parse_uptimekuma

SourceParser = Callable[[Mapping[str, Any], str, str, str], Event]
# A sender whose body is not bare JSON: (raw body, Content-Type) → the JSON document inside it.
BodyUnwrapper = Callable[[bytes, str | None], Unwrapped]


class TokenForm(StrEnum):
    """How a sender can carry notifyd's token: only in the URL it posts to, as the password of
    Basic auth (the *arr apps' Username/Password fields), or as an Authorization header it lets
    its user type (Overseerr's "Authorization Header")."""

    QUERY = "query"
    BASIC = "basic"
    BEARER = "bearer"


@dataclass(frozen=True)
class StatusApi:
    """A sender's API that answers for one run (notifyd.run_poll): `path` under the source's
    `api_url`, with {run_id}; `parse` turns its JSON answer into the event the run's status
    webhook would have made (args: answer, source name, source type); `example` is its base URL."""

    path: str
    parse: Callable[[Mapping[str, Any], str, str], Event]
    example: str


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
    token_form: TokenForm = TokenForm.QUERY
    settings: str = ""          # where in the sender's own settings the URL goes, for `notifyd sources`
    status_api: StatusApi | None = None     # asked about runs whose final webhook never came ([runs] stale_after)
    # A body that is not bare JSON (Plex's form, Jellyfin's text/plain): what the listener decodes instead.
    unwrap: BodyUnwrapper | None = None


# The *arr apps' webhook connection has Username and Password fields, sent as Basic auth.
_ARR_TOKEN = "enter it as the webhook's Password in the app (or put ?token=… in the webhook URL)"
_ARR_SETTINGS = "Settings → Connect → + → Webhook: URL, Method POST; the token as Password"
_GENERIC_SETTINGS = ("wherever your script or app takes a webhook URL; it POSTs JSON {\"title\", \"body\", "
                     "\"level\"?, \"kind\"?, \"paths\"?}")
# ComfyDeploy is told the webhook per run: DeploymentRunRequest's `webhook` (comfy-deploy/api).
_COMFY_SETTINGS = ("the \"webhook\" field of each run you queue (POST /api/run/deployment/queue); "
                   "\"webhook_intermediate_status\": true also reports progress")

# Prowlarr's English UI calls its Connect page "Notifications" (the same page, /settings/connect).
_PROWLARR_SETTINGS = "Settings → Notifications → + → Webhook: URL, Method POST; the token as Password"
# Overseerr's and Jellyseerr's webhook agent sends its "Authorization Header" field as typed.
_OVERSEERR_TOKEN = "enter `Bearer <token>` as the webhook's Authorization Header (or put ?token=… in the webhook URL)"
_OVERSEERR_SETTINGS = "Settings → Notifications → Webhook: Webhook URL, and Authorization Header"
_UPTIMEKUMA_SETTINGS = ("Settings → Notifications → Set Up Notification → Notification Type Webhook: Post URL, "
                        "HTTP Method POST, Request Body: Preset - application/json")
_PLEX_SETTINGS = "Plex Web → Settings → (your account) Webhooks → Add Webhook: the URL (needs Plex Pass)"
_JELLYFIN_SETTINGS = ("Dashboard → Plugins → Webhook → Add Generic Destination: Webhook Url; tick the "
                      "notification and item types, and Send All Properties (or write a JSON template)")

SOURCE_TYPES: dict[str, SourceType] = {
    "generic": SourceType(parse_generic, "A generic sender", signs=True, settings=_GENERIC_SETTINGS),
    "radarr": SourceType(parse_radarr, "Radarr", token_hint=_ARR_TOKEN, token_form=TokenForm.BASIC,
                         settings=_ARR_SETTINGS),
    "sonarr": SourceType(parse_sonarr, "Sonarr", token_hint=_ARR_TOKEN, token_form=TokenForm.BASIC,
                         settings=_ARR_SETTINGS),
    "lidarr": SourceType(parse_lidarr, "Lidarr", token_hint=_ARR_TOKEN, token_form=TokenForm.BASIC,
                         settings=_ARR_SETTINGS),
    "readarr": SourceType(parse_readarr, "Readarr", token_hint=_ARR_TOKEN, token_form=TokenForm.BASIC,
                          settings=_ARR_SETTINGS),
    "prowlarr": SourceType(parse_prowlarr, "Prowlarr", token_hint=_ARR_TOKEN, token_form=TokenForm.BASIC,
                           settings=_PROWLARR_SETTINGS),
    "overseerr": SourceType(parse_overseerr, "Overseerr (or Jellyseerr)", token_hint=_OVERSEERR_TOKEN,
                            token_form=TokenForm.BEARER, settings=_OVERSEERR_SETTINGS),
    "uptimekuma": SourceType(parse_uptimekuma, "Uptime Kuma", token_form=TokenForm.QUERY,
                             settings=_UPTIMEKUMA_SETTINGS),
    "plex": SourceType(parse_plex, "Plex Media Server", token_form=TokenForm.QUERY, settings=_PLEX_SETTINGS,
                       unwrap=unwrap_plex),
    "jellyfin": SourceType(parse_jellyfin, "Jellyfin (Webhook plugin)", token_form=TokenForm.QUERY,
                           settings=_JELLYFIN_SETTINGS, unwrap=unwrap_jellyfin),
    "comfydeploy": SourceType(parse_comfydeploy, "ComfyDeploy", tracks_runs=True, settings=_COMFY_SETTINGS,
                              status_api=StatusApi(STATUS_API_PATH, parse_comfydeploy_run, STATUS_API_URL)),
}


def tracks_run(event: Event) -> bool:
    """Whether this event reports on a tracked run, by what its source type declares."""
    source = SOURCE_TYPES.get(event.source_type)
    return source is not None and source.tracks_runs and "run_id" in event.media
