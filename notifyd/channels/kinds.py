"""Channel kinds: what each service `type` needs in the config, its job kind, and where its code
lives. Data only, importing nothing, so reading a config never imports a channel's (possibly
heavy) library and the config model can name a service's job kind without a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


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
