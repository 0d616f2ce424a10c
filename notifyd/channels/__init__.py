"""Channels: the table of kinds (`kinds`), importing a kind's implementation when a job first needs
it, and a service's target as people may see it (secrets masked).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from notifyd.channels.kinds import CHANNEL_TYPES, LIBRARY_CHANGES, ChannelSpec

if TYPE_CHECKING:
    from notifyd.channels.base import Channel
    from notifyd.config.model import ServiceConfig

__all__ = ["CHANNEL_TYPES", "LIBRARY_CHANGES", "ChannelSpec", "describe_target", "load_channel"]


def load_channel(spec: ChannelSpec) -> type[Channel]:
    """Import and return the channel class named by `spec.module`."""
    module_name, _, class_name = spec.module.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def describe_target(service: ServiceConfig) -> str:
    """The service's address with every secret masked: the channel's own masking, then the same
    redaction the logs get, so a token in a URL path is hidden in the CLI as it is in the logs."""
    from notifyd.config.model import url_secrets
    from notifyd.logs import Redactor

    spec = CHANNEL_TYPES[service.type]
    if spec.describe is not None:          # without importing the channel (and its HTTP client)
        module_name, _, function = spec.describe.partition(":")
        shown = getattr(importlib.import_module(module_name), function)(service)
    else:
        shown = load_channel(spec).describe(service)
    url = service.options.get("url")
    return Redactor(url_secrets(url))(shown) if isinstance(url, str) else shown
