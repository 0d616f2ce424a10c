"""Channel kinds: what each service `type` needs in the config, and where its code lives.

The table is data, so reading a config never imports a channel's (possibly heavy) library;
`load_channel` imports the implementation when a job first needs it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from notifyd.channels.base import Channel
    from notifyd.config import ServiceConfig


@dataclass(frozen=True)
class ChannelSpec:
    """A service type: its config fields, its job kind and default priority, and its module."""

    type: str
    job_kind: str                      # notify | refresh | callback
    default_priority: int
    module: str                        # "package.module:ClassName"
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    secret_fields: tuple[str, ...] = field(default=())


CHANNEL_TYPES: dict[str, ChannelSpec] = {
    "apprise": ChannelSpec(
        type="apprise", job_kind="notify", default_priority=5,
        module="notifyd.channels.apprise_channel:AppriseChannel",
        required=("url",),
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
