"""A service's address as people may see it: any password in its URL replaced by ***. Kept apart
from the HTTP channels so that listing services (`notifyd services list`) imports no HTTP client."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit


def mask_url(url: str) -> str:
    """The URL with any password in it replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe_url(service: Any) -> str:
    """The target of a service whose `url` is a plain http(s) address: that URL, masked."""
    return mask_url(service.options["url"])
