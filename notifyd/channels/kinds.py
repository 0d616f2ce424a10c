"""Channel kinds: what each service `type` needs in the config, its job kind, and where its code
lives. Data only (and the one rule for a URL's {placeholders}), importing nothing of notifyd, so
reading a config never imports a channel's (possibly heavy) library and the config model can name
a service's job kind without a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def url_placeholders(url: str) -> list[str]:
    """The {names} in a service URL that a tracked run's context fills in, in order, once each."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(url)))


@dataclass(frozen=True)
class ChannelSpec:
    """A service type: its config fields (name → kind of value), its job kind, default priority
    and events, the module that implements it, and for a refresher the media it keeps libraries of.

    Field kinds: apprise_url, http_url, string, secret, path, path_map, duration, positive_duration,
    templates, bool, size, quiet_hours, levels.
    """

    type: str
    job_kind: str                      # notify | refresh | callback
    default_priority: int
    module: str                        # "package.module:ClassName"
    fields: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    default_events: tuple[str, ...] | None = None     # None: every kind except test
    fills_placeholders: bool = False   # its `url` may hold {placeholders}, filled from a run's context
    media_types: frozenset[str] | None = None          # a refresher's libraries (an event's media_type); None: any
    describe: str | None = None        # "package.module:function" showing its target; None: the channel's own

    def can_refresh(self, media_type: str | None) -> bool:
        """Whether this kind keeps a library for that media (media of no known type: yes)."""
        return self.media_types is None or media_type is None or media_type in self.media_types


# Refreshes only make sense when files changed; a health warning must not rescan a library. A
# retag (Lidarr, Readarr) rewrote the files' tags, which the server reads again on a scan.
LIBRARY_CHANGES = ("download", "upgrade", "rename", "retag", "delete", "file_delete")
# Kodi keeps video and music libraries, no books (Readarr); Jellyfin, Emby and Plex take any folder.
KODI_MEDIA = frozenset({"movie", "series", "episode", "music"})
_REFRESH = {"path_map": "path_map", "scan_delay": "duration", "test_path": "path"}
# A notifying service's say over when and how its messages go (design §15): a digest window, quiet
# hours and the levels that pass them, and pictures attached.
_MESSAGES = {"digest": "positive_duration", "digest_all": "bool", "quiet_hours": "quiet_hours",
             "quiet_bypass": "levels", "attach": "bool", "attach_max": "size"}

MASKED_URL = "notifyd.channels.masking:describe_url"   # an http(s) address, its password masked

CHANNEL_TYPES: dict[str, ChannelSpec] = {
    "apprise": ChannelSpec(
        type="apprise", job_kind="notify", default_priority=5,
        module="notifyd.channels.apprise_channel:AppriseChannel",
        fields={"url": "apprise_url", "templates": "templates", **_MESSAGES}, required=("url",),
        fills_placeholders=True,
    ),
    "kodi": ChannelSpec(
        type="kodi", job_kind="refresh", default_priority=3, module="notifyd.channels.kodi:KodiChannel",
        describe=MASKED_URL,
        fields={"url": "http_url", "username": "string", "password": "secret", **_REFRESH},
        required=("url",), default_events=LIBRARY_CHANGES, media_types=KODI_MEDIA,
    ),
    "jellyfin": ChannelSpec(
        type="jellyfin", job_kind="refresh", default_priority=3,
        module="notifyd.channels.jellyfin:JellyfinChannel", describe=MASKED_URL,
        fields={"url": "http_url", "api_key": "secret", **_REFRESH},
        required=("url", "api_key"), default_events=LIBRARY_CHANGES,
    ),
    "emby": ChannelSpec(
        type="emby", job_kind="refresh", default_priority=3, module="notifyd.channels.jellyfin:EmbyChannel",
        describe=MASKED_URL,
        fields={"url": "http_url", "api_key": "secret", **_REFRESH},
        required=("url", "api_key"), default_events=LIBRARY_CHANGES,
    ),
    "webhook": ChannelSpec(
        type="webhook", job_kind="callback", default_priority=5, module="notifyd.channels.webhook:WebhookChannel",
        describe=MASKED_URL,
        fields={"url": "http_url", "secret": "webhook_secret", "timeout": "duration"}, required=("url",),
    ),
    "plex": ChannelSpec(
        type="plex", job_kind="refresh", default_priority=3, module="notifyd.channels.plex:PlexChannel",
        describe=MASKED_URL,
        fields={"url": "http_url", "token": "secret", **_REFRESH},
        required=("url", "token"), default_events=LIBRARY_CHANGES,
    ),
}
