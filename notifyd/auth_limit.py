"""Failed-token limiting per client address: after `limit` failures within a minute the address gets
429 until that minute is over, and its failures are logged once per minute instead of once each.

The window is fixed (it starts at an address's first failure), so a client that keeps guessing is
refused for the rest of every minute in which it used up its allowance. Only failures count: a
sender with the right token never notices the limiter. Memory is bounded by `max_clients`; when a
flood of addresses passes it, the oldest windows are forgotten first.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from notifyd.errors import TooManyFailures

WINDOW = 60.0
MAX_CLIENTS = 10_000


@dataclass
class _Window:
    started: float
    failures: int = 0
    refused: int = 0          # requests answered 429 in this window
    logged: bool = False      # the window's first failure has been logged


class AuthLimiter:
    """Counts failed tokens per client address; one instance per listener, shared by its handlers."""

    def __init__(self, *, log: logging.Logger, window: float = WINDOW, max_clients: int = MAX_CLIENTS) -> None:
        self._log = log
        self._window = window
        self._max_clients = max_clients
        self._clients: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, client: str, now: float, *, limit: int) -> None:
        """Raise TooManyFailures when `client` has used up its failures for the current window."""
        with self._lock:
            window = self._current(client, now)
            if window is None or window.failures < limit:
                return
            window.refused += 1
            retry_after = max(1, math.ceil(window.started + self._window - now))
        raise TooManyFailures(f"too many failed tokens from {client}; try again in {retry_after} s",
                              retry_after=retry_after)

    def failed(self, client: str, now: float, reason: str) -> None:
        """Count one failed token from `client`; logs the first of each window, summarises the rest."""
        with self._lock:
            window = self._current(client, now)
            if window is None:
                window = self._clients[client] = _Window(started=now)
                self._forget_oldest()
            window.failures += 1
            first = not window.logged
            window.logged = True
        if first:
            self._log.info("refused a token from %s: %s (more failures from it within %d s are counted, "
                           "not logged)", client, reason, int(self._window))

    def flush(self, now: float) -> None:
        """Log and forget every window that has ended; the listener calls this now and then."""
        with self._lock:
            ended = [(client, w) for client, w in self._clients.items() if now - w.started >= self._window]
            for client, _ in ended:
                del self._clients[client]
        for client, window in ended:
            self._summarise(client, window)

    def _current(self, client: str, now: float) -> _Window | None:
        """The window of `client` that still runs at `now` (an ended one is summarised and dropped)."""
        window = self._clients.get(client)
        if window is not None and now - window.started >= self._window:
            del self._clients[client]
            self._summarise(client, window)
            return None
        return window

    def _summarise(self, client: str, window: _Window) -> None:
        if window.failures > 1 or window.refused:
            self._log.info("%d failed token(s) from %s within %d s; %d request(s) refused with 429",
                           window.failures, client, int(self._window), window.refused)

    def _forget_oldest(self) -> None:
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)


def client_address(scope_client: tuple[str, int] | None) -> str:
    """The address a limit applies to: the peer's IP (behind a proxy, the proxy's)."""
    return scope_client[0] if scope_client else "unknown"
