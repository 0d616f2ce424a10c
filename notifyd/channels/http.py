"""What the HTTP-speaking channels share: one httpx client per service, and one place that turns
transport errors and status codes into TransientError or PermanentError."""

from __future__ import annotations

import email.utils
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from notifyd.errors import PermanentError, TransientError

TRANSIENT_STATUS = frozenset({408, 425, 429})


def mask_url(url: str) -> str:
    """The URL with any password in it replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpChannel:
    """Base of the HTTP channels: a client with the service's timeout, no redirects followed."""

    credential = "credentials"           # named in a 401/403 reason

    def __init__(self, url: str, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.target = mask_url(self.url)
        self.client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                   follow_redirects=False, transport=transport)

    @staticmethod
    def describe(service: Any) -> str:
        """The service's URL with any password masked."""
        return mask_url(service.options["url"])

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send, and raise the right DeliveryError for anything but a 2xx answer."""
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise TransientError(f"timed out talking to {self.target}") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach {self.target}: {_reason(exc)}") from None
        return self.check(response)

    def check(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        where = f"{response.request.method} {urlsplit(str(response.request.url)).path}"
        if 200 <= status < 300:
            return response
        if status in (401, 403):
            raise PermanentError(f"HTTP {status} from {self.target} ({where}): check the {self.credential}")
        if status in TRANSIENT_STATUS or status >= 500:
            raise TransientError(f"HTTP {status} from {self.target} ({where})",
                                 retry_after=parse_retry_after(response.headers.get("retry-after")))
        if 300 <= status < 400:
            raise PermanentError(f"HTTP {status} from {self.target} ({where}): redirects are not followed; "
                                 "set the URL it points to")
        raise PermanentError(f"HTTP {status} from {self.target} ({where})")

    def close(self) -> None:
        self.client.close()


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "ConnectError" in type(exc).__name__:
        return "connection refused" if "refused" in text.lower() else text
    return text
