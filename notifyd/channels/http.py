"""What the HTTP-speaking channels share: one httpx client per service, and one place that turns
transport errors and status codes into TransientError or PermanentError."""

from __future__ import annotations

import email.utils
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from notifyd.channels.masking import describe_url, mask_url
from notifyd.channels.transport import client_args
from notifyd.errors import PermanentError, TransientError

TRANSIENT_STATUS = frozenset({408, 425, 429})
SET_COOKIE = (b"set-cookie", b"set-cookie2")    # the headers http.cookiejar reads
URLS_KEPT = 64                                  # parsed URLs a client keeps (a service uses a handful)


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


class ReceivedCookies(httpx.Cookies):
    """httpx's cookie store, extracting only from an answer that sets cookies (http.cookiejar reads
    nothing else): for every answer httpx builds urllib and email stand-ins first, which cost about a
    fifth of the client's CPU per request."""

    def extract_cookies(self, response: httpx.Response) -> None:
        for name, _ in response.headers.raw:
            if name.lower() in SET_COOKIE:
                super().extract_cookies(response)
                return


class ChannelClient(httpx.Client):
    """httpx.Client as the channels use it, cheaper per request and the same on the wire: a URL string
    seen before is reused parsed, and cookies are extracted only from answers that set them."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = kwargs.get("cookies")        # kept as ReceivedCookies
        self._urls: dict[str, httpx.URL] = {}

    @property
    def cookies(self) -> httpx.Cookies:
        return self._received

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._received = ReceivedCookies(cookies)

    def request(self, method: str, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        if isinstance(url, str):
            parsed = self._urls.get(url)
            if parsed is None:
                parsed = httpx.URL(url)
                if len(self._urls) < URLS_KEPT:
                    self._urls[url] = parsed
            url = parsed
        return super().request(method, url, **kwargs)


class HttpChannel:
    """Base of the HTTP channels: a client with the service's timeout, no redirects followed."""

    credential = "credentials"           # named in a 401/403 reason

    def __init__(self, url: str, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.target = mask_url(self.url)
        # no transport given: the pooled one (httpx's own where an environment proxy applies)
        self.client = ChannelClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                    follow_redirects=False, **client_args(transport))

    @staticmethod
    def describe(service: Any) -> str:
        """The service's URL with any password masked."""
        return describe_url(service)

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
