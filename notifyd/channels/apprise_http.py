"""Kept-alive connections for Apprise's plugins.

Why: the plugins send with `requests.post(...)` and its siblings, and each such call makes a new
`requests.Session` and closes it: a new TCP (and TLS) connection, a new connection pool, the
environment (proxies, netrc, CA bundle) read again, for every message. While one of notifyd's
Apprise deliveries runs, those calls go through the service's own `ServiceSession` instead:
`requests.api.request` (what every `requests.get/post/…` calls) and `requests.request` are
wrapped once, and the wrapper sends through the session of the delivery running in this context
(a ContextVar, which Apprise copies into the worker thread it sends from); anything else in the
process calls requests as before.

What a message sees stays what a fresh session gives it: the session keeps no cookies (a fresh
one starts empty every time), and takes from the environment what requests takes: its proxies
(read for every request, as requests does, when any is set; none set, none are looked for), its
CA bundle (REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, read when the session is made) and netrc.
"""

from __future__ import annotations

import http.cookiejar
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import requests
import requests.api
from requests.sessions import merge_setting

_active: ContextVar[requests.Session | None] = ContextVar("notifyd_apprise_session", default=None)
_installed: list[Any] = []              # requests' own request function, once wrapped
_install_lock = threading.Lock()


def _request(method: str, url: str, **kwargs: Any) -> requests.Response:
    """requests.request: through the session of the delivery running here, else requests' own."""
    session = _active.get()
    if session is None:
        return _installed[0](method, url, **kwargs)
    return session.request(method=method, url=url, **kwargs)


def install() -> None:
    """Wrap `requests.api.request` and `requests.request` (once per process)."""
    with _install_lock:
        if not _installed:
            _installed.append(requests.api.request)
            # requests.get/post/put/… call requests.api.request; some plugins call requests.request
            requests.api.request = _request     # type: ignore[assignment]
            requests.request = _request         # type: ignore[assignment]


class _Session(requests.Session):
    """requests.Session reading the environment once: requests looks through every variable of
    the process for proxies on each request, a good share of a message's cost here."""

    def __init__(self) -> None:
        super().__init__()
        self._proxied = bool(urllib.request.getproxies())
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if self._proxied or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        # requests' own, for an environment without proxies (get_environ_proxies gives {} then)
        if verify is True or verify is None:
            verify = self._ca_bundle or verify
        return {"proxies": merge_setting(proxies, self.proxies), "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify), "cert": merge_setting(cert, self.cert)}


class ServiceSession:
    """One service's requests Session: its connections kept between messages, no cookies kept."""

    def __init__(self) -> None:
        install()
        self.session = _Session()
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    @contextmanager
    def active(self) -> Iterator[None]:
        """Apprise's plugins send through this session meanwhile (in this context and its copies)."""
        token = _active.set(self.session)
        try:
            yield
        finally:
            _active.reset(token)

    def close(self) -> None:
        self.session.close()
