"""Failed-token limiting per client address: after `limit` failures within a minute the address gets
429 until that minute is over, and its failures are logged at most once a minute instead of once each.

The window is fixed (it starts at an address's first failure), so a client that keeps guessing is
refused for the rest of every minute in which it used up its allowance — whatever it presents,
the right token included, so a guess is never confirmed inside the window. A request that offers
several tokens (a header and ?token=, say) counts one failure per wrong token. IPv6 clients are
counted per /64, the block one host usually holds. Memory is bounded by `max_clients`; when a
flood of addresses passes it, the oldest are forgotten first.

Behind a reverse proxy every request comes from the proxy's address, so one guesser there makes
every sender wait: put the limit on the proxy, or raise `server.auth_failures`.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from notifyd.errors import TooManyFailures

WINDOW = 60.0
MAX_CLIENTS = 10_000
FLUSH_EVERY = 10.0


@dataclass
class _Client:
    window_started: float
    failures: int = 0             # in the current window, against the limit
    last_logged: float | None = None
    unlogged_failures: int = 0    # since the last log line
    unlogged_refused: int = 0     # requests answered 429 since the last log line


class AuthLimiter:
    """Counts failed tokens per client address; one per listener, shared by the API and the status page."""

    def __init__(self, *, log: logging.Logger, window: float = WINDOW, max_clients: int = MAX_CLIENTS) -> None:
        self._log = log
        self._window = window
        self._max_clients = max_clients
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()
        self._flushed: float | None = None

    def check(self, client: str, now: float, *, limit: int) -> None:
        """Raise TooManyFailures when `client` has used up its failures for the current window."""
        self._maybe_flush(now)
        with self._lock:
            state = self._clients.get(client)
            if state is None or now - state.window_started >= self._window or state.failures < limit:
                return
            state.unlogged_refused += 1
            retry_after = max(1, math.ceil(state.window_started + self._window - now))
        raise TooManyFailures(f"too many failed tokens from {client}; try again in {retry_after} s",
                              retry_after=retry_after)

    def failed(self, client: str, now: float, reason: str, *, count: int = 1) -> None:
        """Count `count` failed tokens from `client`; logs a line if none was logged for it this minute."""
        with self._lock:
            state = self._clients.get(client)
            if state is None:
                state = self._clients[client] = _Client(window_started=now)
                while len(self._clients) > self._max_clients:
                    self._clients.popitem(last=False)
            if now - state.window_started >= self._window:
                state.window_started, state.failures = now, 0
            state.failures += count
            if state.last_logged is not None and now - state.last_logged < self._window:
                state.unlogged_failures += count
                return
            line = self._line(client, state, f"refused a token from {client}: {reason}", extra=count - 1)
            state.last_logged = now
        self._log.info("%s", line)

    def _maybe_flush(self, now: float) -> None:
        if self._flushed is not None and now - self._flushed < FLUSH_EVERY:
            return
        self._flushed = now
        self.flush(now)

    def flush(self, now: float) -> None:
        """Log what each client did since its last line (once that line is a minute old), and forget
        clients with nothing left to count or say."""
        lines = []
        with self._lock:
            for client, state in list(self._clients.items()):
                if state.last_logged is not None and now - state.last_logged < self._window:
                    continue
                if state.unlogged_failures or state.unlogged_refused:
                    lines.append(self._line(client, state, f"failed tokens from {client}"))
                    state.last_logged = now
                elif now - state.window_started >= self._window:
                    del self._clients[client]
        for line in lines:
            self._log.info("%s", line)

    @staticmethod
    def _line(client: str, state: _Client, head: str, *, extra: int = 0) -> str:
        """`head`, with what was counted since the last line; resets those counts."""
        more = state.unlogged_failures + extra
        refused = state.unlogged_refused
        state.unlogged_failures = state.unlogged_refused = 0
        if not more and not refused:
            return f"{head} (further failures from it within a minute are counted, not logged)"
        return f"{head} ({more} more failed token(s) and {refused} request(s) refused with 429 since the last line)"


def client_address(scope_client: tuple[str, int] | None) -> str:
    """The address a limit applies to: the peer's IPv4 address, or its IPv6 /64 (behind a proxy,
    the proxy's)."""
    if not scope_client:
        return "unknown"
    host = scope_client[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else host
