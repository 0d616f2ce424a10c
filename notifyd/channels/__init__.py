"""Channel kinds: what each service `type` needs in the config, and where its code lives.

The table is data, so reading a config never imports a channel's (possibly heavy) library;
`load_channel` imports the implementation when a job first needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from notifyd.channels.base import Channel
    from notifyd.config import ServiceConfig


@dataclass(frozen=True)
class ChannelSpec:
    """A service type: its config fields (name → kind of value), its job kind, default priority
    and events, and the module that implements it.

    Field kinds: apprise_url, http_url, string, secret, path, path_map, duration, templates.
    """

    type: str
    job_kind: str                      # notify | refresh | callback
    default_priority: int
    module: str                        # "package.module:ClassName"
    fields: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    default_events: tuple[str, ...] | None = None     # None: every kind except test


# Refreshes only make sense when files changed; a health warning must not rescan a library.
LIBRARY_CHANGES = ("download", "upgrade", "rename", "delete", "file_delete")
_REFRESH = {"path_map": "path_map", "scan_delay": "duration", "test_path": "path"}

CHANNEL_TYPES: dict[str, ChannelSpec] = {
    "apprise": ChannelSpec(
        type="apprise", job_kind="notify", default_priority=5,
        module="notifyd.channels.apprise_channel:AppriseChannel",
        fields={"url": "apprise_url", "templates": "templates"}, required=("url",),
    ),
    "kodi": ChannelSpec(
        type="kodi", job_kind="refresh", default_priority=3, module="notifyd.channels.kodi:KodiChannel",
        fields={"url": "http_url", "username": "string", "password": "secret", **_REFRESH},
        required=("url",), default_events=LIBRARY_CHANGES,
    ),
    "jellyfin": ChannelSpec(
        type="jellyfin", job_kind="refresh", default_priority=3,
        module="notifyd.channels.jellyfin:JellyfinChannel",
        fields={"url": "http_url", "api_key": "secret", **_REFRESH},
        required=("url", "api_key"), default_events=LIBRARY_CHANGES,
    ),
    "emby": ChannelSpec(
        type="emby", job_kind="refresh", default_priority=3, module="notifyd.channels.jellyfin:EmbyChannel",
        fields={"url": "http_url", "api_key": "secret", **_REFRESH},
        required=("url", "api_key"), default_events=LIBRARY_CHANGES,
    ),
    "webhook": ChannelSpec(
        type="webhook", job_kind="callback", default_priority=5, module="notifyd.channels.webhook:WebhookChannel",
        fields={"url": "http_url", "secret": "webhook_secret", "timeout": "duration"}, required=("url",),
    ),
    "plex": ChannelSpec(
        type="plex", job_kind="refresh", default_priority=3, module="notifyd.channels.plex:PlexChannel",
        fields={"url": "http_url", "token": "secret", **_REFRESH},
        required=("url", "token"), default_events=LIBRARY_CHANGES,
    ),
}


def load_channel(spec: ChannelSpec) -> type["Channel"]:
    """Import and return the channel class named by `spec.module`."""
    module_name, _, class_name = spec.module.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def describe_target(service: "ServiceConfig") -> str:
    """The service's address with every secret masked: the channel's own masking, then the same
    redaction the logs get, so a token in a URL path is hidden in the CLI as it is in the logs."""
    from notifyd.config import url_secrets
    from notifyd.logs import Redactor

    shown = load_channel(CHANNEL_TYPES[service.type]).describe(service)
    url = service.options.get("url")
    return Redactor(url_secrets(url))(shown) if isinstance(url, str) else shown
