"""Connection hygiene for the listener: how long a client may take to send its headers and its body,
how large those headers may be, how many requests it may pipeline, how long it may leave its answers
unread, and how many connections may be open at once (design §3, server.header_timeout,
body_timeout, idle_timeout, max_connections).

uvicorn enforces none of this by itself: a client dripping one byte a second, or one that connects
and never sends, holds its connection for ever; one streaming an endless header stalls the event loop
(httptools grows a header value by concatenation); one pipelining requests without reading its
answers has them queued without end. `guarded_protocol` returns uvicorn's httptools protocol with
these limits added:

- headers: a request line and headers must arrive within header_timeout of connecting (or, on a
  kept-alive connection, of the next request's first byte); else 408 JSON if part of a request came,
  or a silent close if nothing did. They may take 64 KiB, the URL 8 KiB of it; past that, 431 JSON;
- body: the whole body must arrive within body_timeout of its headers; else 408 JSON (or only a
  close once an answer has started) — time spent with reading paused by our own back-pressure
  does not count against the client;
- pipelining: nothing more is read while requests wait their turn; past 16 waiting, a close;
- garbage: what httptools cannot parse is answered 400 JSON (unless an answer is under way) and closed;
- answers: a client that leaves bytes of its answers unread for body_timeout is cut off;
- budget: past max_connections open connections a new one is answered 503 JSON with Retry-After
  once its headers are in (a slot freed meanwhile admits it after all); as many again may wait for
  that answer, and past those a connection is closed at once. `fit_open_files` makes sure the
  process may open the files all of them take.

Whenever a connection ends, every request on it (running or waiting its turn) is told the client is
gone, so no task writes to a closed connection. There are no websockets (ws="none"): an upgrade
request is served as plain HTTP and its connection closed after the answer.

The idle keep-alive timeout is uvicorn's own `timeout_keep_alive`, set from idle_timeout. The uvicorn
internals this relies on are checked at import; pyproject.toml pins the uvicorn series verified.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FunctionType
from typing import TYPE_CHECKING, Any, Literal

import httptools
import uvicorn
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from notifyd.config import ServerConfig
from notifyd.errors import HeadersTooLarge, Overloaded, RequestTimeout, WebhookError
from notifyd.listener import error_response
from notifyd.units import format_duration

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent
    from uvicorn._types import Scope as UvicornScope

log = logging.getLogger("notifyd.connections")
OVERLOAD_LOG_EVERY = 60.0
HEADERS_LIMIT = 64 * 1024       # request line and headers
URL_LIMIT = 8 * 1024
FEED_PIECE = 16 * 1024          # the parser is fed at most this much at once, so header bytes can be counted
PIPELINE_LIMIT = 16             # requests waiting behind the one being answered
LINGER = 2.0                    # how long a refused client may go on sending while its answer reaches it
PROCESS_FILES = 100             # open files besides the connections: the process, store connections, outbound
Admission = Literal["admitted", "waiting", "shed"]

# What of uvicorn's httptools protocol is overridden or read here: methods, then attributes by the
# method that sets them up. A uvicorn that renames one fails at import, not on some connection.
_PROTOCOL_METHODS = ("_unsupported_upgrade_warning", "_start_asgi_task", "_should_upgrade", "handle_websocket_upgrade",
                     "_unset_keepalive_if_required", "on_url", "on_message_begin", "on_headers_complete",
                     "on_message_complete", "on_response_complete", "pause_writing", "resume_writing")
_SET_UP_BY = {
    (HttpToolsProtocol, "__init__"): ("parser", "pipeline", "cycle", "loop", "client", "config", "app"),
    (HttpToolsProtocol, "connection_made"): ("transport", "flow"),
    (HttpToolsProtocol, "on_message_begin"): ("url",),
    (RequestResponseCycle, "__init__"): ("disconnected", "message_event", "response_started", "response_complete",
                                         "keep_alive", "flow"),
    (FlowControl, "__init__"): ("read_paused",),
}


def missing_uvicorn_internals(protocol: type = HttpToolsProtocol,
                              set_up_by: dict[tuple[type, str], tuple[str, ...]] | None = None) -> list[str]:
    """The uvicorn internals relied on here that are gone (as `Class.name`); empty when all are there."""
    missing = [f"{protocol.__name__}.{name}()" for name in _PROTOCOL_METHODS
               if not callable(getattr(protocol, name, None))]
    for (cls, method), names in (_SET_UP_BY if set_up_by is None else set_up_by).items():
        function = getattr(cls, method, None)
        assigned = function.__code__.co_names if isinstance(function, FunctionType) else ()
        missing += [f"{cls.__name__}.{name}" for name in names if name not in assigned]
    return missing


if _missing := missing_uvicorn_internals():
    raise ImportError(f"uvicorn {uvicorn.__version__} lacks what notifyd's listener builds on ({', '.join(_missing)}); "
                      "install the uvicorn series pyproject.toml names")


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

    @property
    def open_files(self) -> int:
        """Files the daemon may hold open: each admitted connection, as many waiting for their 503, the rest."""
        return 2 * self.max_connections + PROCESS_FILES


def fit_open_files(limits: ConnectionLimits,
                   getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit,
                   setrlimit: Callable[[int, tuple[int, int]], None] = resource.setrlimit) -> bool:
    """Make sure the process may open `limits.open_files` files: raise the soft RLIMIT_NOFILE (up to the
    hard one) when that is enough, else log one warning saying what to change. True if they fit."""
    need = limits.open_files
    soft, hard = getrlimit(resource.RLIMIT_NOFILE)
    if _covers(soft, need):
        return True
    if _covers(hard, need):
        try:
            setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        except (ValueError, OSError) as exc:
            log.debug("could not raise the open-files limit from %d to %d: %s", soft, need, exc)
        else:
            log.debug("raised the open-files limit from %d to %d for server.max_connections", soft, need)
            return True
    log.warning("server.max_connections = %d needs up to %d open files, but this process may open %d (hard limit "
                "%s): set LimitNOFILE=%d in the systemd unit (ulimit -n elsewhere), or lower server.max_connections; "
                "past the limit new connections are dropped unanswered", limits.max_connections, need, soft,
                "unlimited" if hard == resource.RLIM_INFINITY else hard, need)
    return False


def _covers(limit: int, need: int) -> bool:
    return limit == resource.RLIM_INFINITY or limit >= need


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


def closing_answer(error: WebhookError) -> bytes:
    """A whole error response, JSON body and `Connection: close`, to write straight to a transport."""
    response = error_response(error.status, error.code, error.detail)
    head = [STATUS_LINE[error.status]]
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


class PipelineFlow(FlowControl):
    """uvicorn's flow control, except that reading stays paused while requests wait their turn: uvicorn
    resumes after every answer, so a client pipelining without reading had its requests queued without end."""

    def __init__(self, transport: asyncio.Transport, pipeline: deque[Any]) -> None:
        super().__init__(transport)
        self._pipeline = pipeline

    def resume_reading(self) -> None:
        if not self._pipeline:
            super().resume_reading()


class _Refused(Exception):
    """Raised from a parser callback to stop reading a connection: why, and the answer due if any."""

    def __init__(self, reason: str, error: WebhookError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines, size and pipeline limits, a write
    deadline and a connection budget.

    One timer at a time for reading: the headers phase runs from connecting (or from the first byte of a
    later request) to the end of the headers, the body phase from there to the end of the body. Between
    requests uvicorn's keep-alive timer (idle_timeout) is the only one. A new connection arms a timer
    for its first request; later, one is only armed when a read ends mid-phase, so a request that
    arrives in one read on a kept-alive connection costs no timer at all. The write deadline has a timer
    of its own, armed only while the client leaves bytes unread."""

    limits: ConnectionLimits
    budget: ConnectionBudget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._admission: Admission | None = None
        self._phase: Literal["headers", "body"] | None = None
        self._deadline = 0.0
        self._partial = False                   # some bytes of the request in its headers phase came
        self._timer: asyncio.TimerHandle | None = None
        self._write_timer: asyncio.TimerHandle | None = None
        self._open = False                      # a request has begun and not yet ended
        self._head_bytes = 0                    # of the open request's line and headers, counted so far
        self._piece_len = 0                     # of the piece being fed to the parser
        self._piece_shared = False              # an earlier request had bytes in that piece
        self._running: RequestResponseCycle | None = None     # the request whose task was started last
        self._done_reading = False              # refused or upgraded: what else comes is dropped

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = PipelineFlow(transport, self.pipeline)
        # Paused (and the write deadline armed) as soon as any byte waits for the client to read it.
        transport.set_write_buffer_limits(high=0)
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
        self._stop_write_deadline()
        self._phase = None
        self._drop_requests()
        if self._admission is not None:
            self.budget.leave(self._admission)
            self._admission = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._done_reading:
            return
        self._unset_keepalive_if_required()
        rest = memoryview(data)
        while rest and not self.transport.is_closing() and not self._done_reading:
            if self._phase is None:             # the first byte of a next request (or stray bytes)
                self._begin("headers", self.limits.header_timeout)
            if self._phase == "headers":
                self._partial = True
            size = min(FEED_PIECE, HEADERS_LIMIT - self._head_bytes) if self._in_headers() else FEED_PIECE
            piece, rest = rest[:size], rest[size:]
            self._piece_len, self._piece_shared = len(piece), self._open
            if not self._feed(piece):
                return
            if self._in_headers():
                self._head_bytes += len(piece)
                if self._head_bytes >= HEADERS_LIMIT:
                    limit = f"{HEADERS_LIMIT // 1024} KiB"
                    self._refuse(_Refused(f"the request line and headers are over {limit}",
                                          HeadersTooLarge(f"the request line and headers are over {limit}")))
                    return
        if self._phase is not None and self._timer is None and not self.transport.is_closing():
            self._arm()

    def _feed(self, piece: memoryview) -> bool:
        """Hand a piece to the parser; False once nothing more of this connection is to be read."""
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():          # never with ws="none"
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if not isinstance(refused, _Refused):
                what = f"not a valid HTTP request ({exc})"
                refused = _Refused(what, WebhookError(what))
            self._refuse(refused)
            return False
        return True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is None:                 # a pipelined request in the same read as the last one
            self._begin("headers", self.limits.header_timeout)
        self._partial = True
        # Where in the piece it began is unknown: if an earlier request had bytes there, count this
        # one from the next piece on (so at most FEED_PIECE more can pass); else from the piece's start.
        self._head_bytes = -self._piece_len if self._piece_shared else 0
        self._open = self._piece_shared = True

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > URL_LIMIT:
            limit = f"{URL_LIMIT // 1024} KiB"
            raise _Refused(f"the URL is over {limit}", HeadersTooLarge(f"the URL is over {limit}"))

    def on_headers_complete(self) -> None:
        self._disarm()
        self._begin("body", self.limits.body_timeout)
        if self._admission == "waiting" and self.budget.promote():
            self._admission = "admitted"
            self.app = self.config.loaded_app
        elif self._admission == "waiting":
            self._note_turned_away()
        super().on_headers_complete()
        if len(self.pipeline) > PIPELINE_LIMIT:
            raise _Refused(f"more than {PIPELINE_LIMIT} requests were pipelined")

    def on_message_complete(self) -> None:
        self._disarm()
        self._phase = None
        self._open = False
        super().on_message_complete()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.limits.body_timeout, self._unread_too_long)

    def resume_writing(self) -> None:
        self._stop_write_deadline()
        super().resume_writing()

    def _unsupported_upgrade_warning(self) -> None:
        # There are no websockets here: the request is answered as plain HTTP. The parser skipped
        # whatever followed it (its body, say), so the connection ends with that answer.
        log.debug("answered an upgrade request from %s as plain HTTP; closing after it", self._peer())
        self._done_reading = True
        if self.cycle is not None:
            self.cycle.keep_alive = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, self._silenced_once_closed(cycle, app))

    def _silenced_once_closed(self, cycle: RequestResponseCycle, app: ASGI3Application) -> ASGI3Application:
        """`app`, except that what it sends once the connection is closing is dropped: the transport can be
        closed under a task (a reset) before connection_lost tells the request."""
        transport = self.transport

        async def run(scope: UvicornScope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
            async def send_unless_closed(message: ASGISendEvent) -> None:
                if transport.is_closing():
                    cycle.disconnected = True
                await send(message)

            await app(scope, receive, send_unless_closed)

        return run

    async def _turn_away(self, scope: Scope, receive: Receive, send: Send) -> None:
        await overloaded_answer(self.limits)(scope, receive, send)

    def _in_headers(self) -> bool:
        return self._open and self._phase == "headers"

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

    def _stop_write_deadline(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

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
        if self._phase == "headers" and not self._partial:
            log.debug("closed a connection from %s: no request within %s", self._peer(),
                      format_duration(self.limits.header_timeout))
        elif self._phase == "headers":
            what = f"the request line and headers did not arrive within {format_duration(self.limits.header_timeout)}"
            self._answer_timeout(what, answer=self._free_to_answer())
        else:
            what = f"the body did not arrive within {format_duration(self.limits.body_timeout)}"
            self._answer_timeout(what, answer=cycle is not None and not cycle.response_started)
        self._drop_requests()       # their tasks see a disconnect on their next receive; answers go nowhere
        self._phase = None
        self.transport.close()

    def _unread_too_long(self) -> None:
        self._write_timer = None
        log.info("closed a connection from %s: it left its answers unread for %s", self._peer(),
                 format_duration(self.limits.body_timeout))
        self._drop_requests()
        self._disarm()
        self._phase = None
        self.transport.abort()                  # close() would wait for the client to read

    def _refuse(self, refused: _Refused) -> None:
        """Read no more of this connection and close it, with the refusal's answer if one is due and
        no earlier answer is being written."""
        answer = refused.error if refused.error is not None and self._free_to_answer() else None
        self._drop_requests()
        self._disarm()
        self._phase = None
        self._done_reading = True
        log.info("closed a connection from %s%s: %s", self._peer(), f" with {answer.status}" if answer else "",
                 refused.reason)
        if answer is None:
            self.transport.close()
            return
        self.transport.write(closing_answer(answer))
        # Half-close and go on reading (and dropping) for a moment: a close with the client's bytes
        # unread would reset the connection, and the answer could be lost on its way.
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._timer = self.loop.call_later(LINGER, self.transport.close)

    def _free_to_answer(self) -> bool:
        """No earlier answer on this connection is unfinished (answers go out in order)."""
        return self.cycle is None or self.cycle.response_complete

    def _drop_requests(self) -> None:
        """Tell every unanswered request of this connection (running, waiting its turn, or being read)
        that the client is gone: its next receive says so and its sends are dropped."""
        cycles = [self._running, self.cycle, *(cycle for cycle, _ in self.pipeline)]
        self.pipeline.clear()
        for cycle in cycles:
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()

    def _answer_timeout(self, what: str, *, answer: bool) -> None:
        if answer:
            self.transport.write(closing_answer(RequestTimeout(what)))
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
