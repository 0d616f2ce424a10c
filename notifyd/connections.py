"""Connection hygiene for the listener: how long a client may take to send its headers and its body,
and how many connections may be open at once (design §3, server.header_timeout, body_timeout,
idle_timeout, max_connections).

uvicorn enforces none of this by itself: a client dripping one byte a second, or one that connects
and never sends, holds its connection for ever. `guarded_protocol` returns uvicorn's httptools
protocol with two deadlines and a connection budget added:

- headers: a request line and headers must arrive within header_timeout of connecting (or, on a
  kept-alive connection, of the next request's first byte); else 408 JSON if part of a request came,
  or a silent close if nothing did;
- body: the whole body must arrive within body_timeout of its headers; else 408 JSON (or only a
  close once an answer has started) — time spent with reading paused by our own back-pressure
  does not count against the client;
- budget: past max_connections open connections a new one is answered 503 JSON with Retry-After
  once its headers are in (a slot freed meanwhile admits it after all); as many again may wait for
  that answer, and past those a connection is closed at once.

The idle keep-alive timeout is uvicorn's own `timeout_keep_alive`, set from idle_timeout.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from notifyd.config import ServerConfig
from notifyd.errors import Overloaded, RequestTimeout
from notifyd.listener import error_response
from notifyd.units import format_duration

log = logging.getLogger("notifyd.connections")
OVERLOAD_LOG_EVERY = 60.0
Admission = Literal["admitted", "waiting", "shed"]


@dataclass(frozen=True)
class ConnectionLimits:
    """The listener's per-connection limits, in seconds and connections."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    max_connections: int = 500

    @classmethod
    def from_server(cls, server: ServerConfig) -> ConnectionLimits:
        return cls(server.header_timeout, server.body_timeout, server.idle_timeout, server.max_connections)

    @property
    def retry_after(self) -> int:
        """Seconds a turned-away client is told to wait: an idle connection gives its slot back by then."""
        return max(1, math.ceil(self.idle_timeout))


class ConnectionBudget:
    """Open connections counted against a limit. Up to `limit` are admitted; as many again may wait
    to be told 503 (or to be admitted if a slot frees before their headers are in); past that, shed.
    Used from the event loop only, so it needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.admitted = 0
        self.waiting = 0
        self._turned_away = 0
        self._last_warned: float | None = None

    def arrive(self) -> Admission:
        """A new connection's place: admitted, waiting for its 503, or to be closed at once."""
        if self.admitted < self.limit:
            self.admitted += 1
            return "admitted"
        if self.waiting < self.limit:
            self.waiting += 1
            return "waiting"
        return "shed"

    def promote(self) -> bool:
        """A waiting connection's headers are in: True (and admitted) if a slot has freed since."""
        if self.admitted >= self.limit:
            return False
        self.waiting -= 1
        self.admitted += 1
        return True

    def leave(self, admission: Admission) -> None:
        if admission == "admitted":
            self.admitted -= 1
        elif admission == "waiting":
            self.waiting -= 1

    def turned_away(self, now: float) -> int | None:
        """Count one connection turned away; the count to log when a warning is due (the first, then
        at most one a minute), else None."""
        self._turned_away += 1
        if self._last_warned is not None and now - self._last_warned < OVERLOAD_LOG_EVERY:
            return None
        count, self._turned_away, self._last_warned = self._turned_away, 0, now
        return count


def timeout_answer(detail: str) -> bytes:
    """A whole 408 response, JSON body and `Connection: close`, to write straight to a transport."""
    response = error_response(RequestTimeout.status, RequestTimeout.code, detail)
    head = [STATUS_LINE[RequestTimeout.status]]
    head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + response.body


def overloaded_answer(limits: ConnectionLimits) -> JSONResponse:
    """The 503 for a turned-away connection: JSON, Retry-After, and `Connection: close`."""
    error = Overloaded(f"more than {limits.max_connections} connections are open (server.max_connections); "
                       "try again shortly", retry_after=limits.retry_after)
    response = error_response(error.status, error.code, error.detail)
    response.headers["Retry-After"] = str(error.retry_after)
    response.headers["Connection"] = "close"
    return response


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a connection budget.

    One timer at a time: the headers phase runs from connecting (or from the first byte of a later
    request) to the end of the headers, the body phase from there to the end of the body. Between
    requests uvicorn's keep-alive timer (idle_timeout) is the only one. A new connection arms a timer
    for its first request; later, one is only armed when a read ends mid-phase, so a request that
    arrives in one read on a kept-alive connection costs no timer at all."""

    limits: ConnectionLimits
    budget: ConnectionBudget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admission: Admission | None = None
        self._phase: Literal["headers", "body"] | None = None
        self._deadline = 0.0
        self._partial = False                   # some bytes of the request in its headers phase came
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._admission = self.budget.arrive()
        if self._admission == "shed":
            self._note_turned_away()
            log.debug("closed a connection from %s at once: over twice server.max_connections", self._peer())
            transport.close()
            return
        if self._admission == "waiting":
            self.app = self._turn_away
        self._begin("headers", self.limits.header_timeout)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._phase = None
        if self._admission is not None:
            self.budget.leave(self._admission)
            self._admission = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase is None:                 # the first byte of a next request (or stray bytes)
            self._begin("headers", self.limits.header_timeout)
        if self._phase == "headers":
            self._partial = True
        super().data_received(data)
        if self._phase is not None and self._timer is None and not self.transport.is_closing():
            self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is None:                 # a pipelined request in the same read as the last one
            self._begin("headers", self.limits.header_timeout)
        self._partial = True

    def on_headers_complete(self) -> None:
        self._disarm()
        self._begin("body", self.limits.body_timeout)
        if self._admission == "waiting" and self.budget.promote():
            self._admission = "admitted"
            self.app = self.config.loaded_app
        elif self._admission == "waiting":
            self._note_turned_away()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = None
        super().on_message_complete()

    async def _turn_away(self, scope: Scope, receive: Receive, send: Send) -> None:
        await overloaded_answer(self.limits)(scope, receive, send)

    def _begin(self, phase: Literal["headers", "body"], timeout: float) -> None:
        self._phase = phase
        self._deadline = self.loop.time() + timeout
        self._partial = False

    def _arm(self) -> None:
        self._timer = self.loop.call_at(self._deadline, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if self._phase is None or self.transport.is_closing():
            return
        if self.flow.read_paused:
            # We stopped reading (back-pressure, a pipelined request waiting): not the client's delay.
            self._deadline = self.loop.time() + (self.limits.header_timeout if self._phase == "headers"
                                                 else self.limits.body_timeout)
            self._arm()
            return
        cycle = self.cycle
        free_to_answer = cycle is None or cycle.response_complete      # no earlier answer under way
        if self._phase == "headers" and not self._partial:
            log.debug("closed a connection from %s: no request within %s", self._peer(),
                      format_duration(self.limits.header_timeout))
        elif self._phase == "headers":
            what = f"the request line and headers did not arrive within {format_duration(self.limits.header_timeout)}"
            self._answer_timeout(what, answer=free_to_answer)
        else:
            what = f"the body did not arrive within {format_duration(self.limits.body_timeout)}"
            self._answer_timeout(what, answer=cycle is not None and not cycle.response_started)
        if cycle is not None and not cycle.response_complete:
            # The request's task sees a disconnect on its next receive and its answer goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        self._phase = None
        self.transport.close()

    def _answer_timeout(self, what: str, *, answer: bool) -> None:
        if answer:
            self.transport.write(timeout_answer(what))
        log.info("closed a connection from %s%s: %s", self._peer(), " with 408" if answer else "", what)

    def _note_turned_away(self) -> None:
        count = self.budget.turned_away(self.loop.time())
        if count is not None:
            log.warning("more than %d connections open (server.max_connections): turned away %d connection(s) "
                        "since the last such warning (at most one a minute)", self.limits.max_connections, count)

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "an unknown address"


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """The protocol class to hand to uvicorn.Config(http=…): one budget for the whole server."""

    class BoundProtocol(GuardedHttpProtocol):
        pass

    BoundProtocol.limits = limits
    BoundProtocol.budget = ConnectionBudget(limits.max_connections)
    return BoundProtocol
