"""An httpx transport for the HTTP channels: HTTP/1.1 over the standard library's sockets, with a
small keep-alive pool that the worker threads share.

Why: most of a worker thread's CPU per HTTP delivery went to httpx's default transport (httpcore
and h11, in pure Python), and every worker thread shares one GIL. Writing the request as one buffer
and reading the answer with a buffered reader costs a fraction of that; `http.client` was tried
first and its header parsing (through the email package) cost as much as all the rest. The channels
keep speaking httpx: this only sits under the client, when no transport is injected and no proxy
from the environment applies (`client_args`).

What it keeps of httpx's own transport: the request exactly as httpx built it (its headers, in their
order, nothing added; header values h11 would refuse are refused); connect, read and write timeouts
from the request; TLS verified with httpx's default context, and the `sni_hostname` extension; the
answer framed as h11 frames it (no body for HEAD, 1xx, 204, 304; chunked; Content-Length; else up to
the close) and read whole; idle connections kept per (scheme, host, port, SNI) for 5 s at most,
20 in all, each checked before reuse (an idle socket with anything to read can only be at its end);
a write error tolerated to read the answer a server may have sent before closing; errors raised as
httpx's (ConnectError, ConnectTimeout, ReadTimeout, WriteTimeout, ReadError, RemoteProtocolError)
with httpcore's texts where it has them.

One difference, on purpose: a request on a reused connection that the server turns out to have
closed before a single byte of an answer (it closed the idle connection just as the request left,
between the check and the write) is sent once more, on a new connection; httpcore raises then. Any
byte of an answer, a fresh connection, or a timeout: never sent again.
"""

from __future__ import annotations

import os
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

KEEPALIVE_EXPIRY = 5.0        # s an idle connection is kept (httpx's default Limits)
MAX_IDLE = 20                 # idle connections kept in all (httpx's max_keepalive_connections)
DEFAULT_PORTS = {b"http": 80, b"https": 443}
STALE_ERRORS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
NO_RESPONSE = "Server disconnected without sending a response."
MAX_HEAD = 100 * 1024         # bytes of status line and headers accepted (httpcore's limit for h11)
MAX_CHUNK_LINE = 1024
MAX_BODY = 16 * 1024 * 1024   # bytes of an answer's body read at most: receivers answer a delivery in a few
READ_PIECE = 64 * 1024

# What h11 accepts in a header, so that a request httpx's own transport refuses is refused here too.
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+").fullmatch
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?").fullmatch
_CHUNKED = re.compile(rb"(?:^|,)\s*chunked\s*$", re.IGNORECASE).search
_STATUS_LINE = re.compile(rb"HTTP/([0-9]\.[0-9]) ([0-9]{3})(?: ([^\r\n]*))?\r?\n").fullmatch
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\r\n]*)?[ \t]*\r?\n").fullmatch
_DIGITS = re.compile(rb"[0-9]{1,20}").fullmatch


@dataclass(eq=False)
class _Connection:
    """One socket to one origin; `served` counts the answers read on it (0: never used yet)."""

    sock: socket.socket
    served: int = 0
    idle_since: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def looks_closed(self, now: float) -> bool:
        """Whether this idle connection must not be reused: kept too long, or the server closed it
        (an idle socket with anything to read is at its end: no answer is owed on it)."""
        if now - self.idle_since > KEEPALIVE_EXPIRY:
            return True
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):
            return True


class _Stale(Exception):
    """The reused connection was closed by the server before any byte of an answer came back."""


def tls_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi, or $SSL_CERT_FILE / $SSL_CERT_DIR as httpx reads
    them), HTTP/1.1 only as httpcore offers it; one per process and per those variables."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _TLS_LOCK:
        context = _TLS_CONTEXTS.get(key)
        if context is None:
            context = httpx.create_ssl_context(trust_env=True)
            context.set_alpn_protocols(["http/1.1"])
            _TLS_CONTEXTS[key] = context
        return context


_TLS_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()


class PooledTransport(httpx.BaseTransport):
    """HTTP/1.1 over sockets, keeping idle connections for reuse; safe to share between threads
    (each request holds its own connection; only the idle lists are shared, under a lock)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[tuple[bytes, str, int, str | None], list[_Connection]] = {}
        self._idle_count = 0
        self._lock = threading.Lock()
        self._closed = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.raw_scheme
        if scheme not in DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{url.scheme}://'.")
        host = url.raw_host.decode("ascii")
        if not host:
            raise httpx.UnsupportedProtocol("Request URL is missing a host.")
        sni = request.extensions.get("sni_hostname") if scheme == b"https" else None
        key = (scheme, host, url.port or DEFAULT_PORTS[scheme], sni)
        timeouts: Mapping[str, float | None] = request.extensions.get("timeout", {})
        message = _serialise(request)
        connection = self._reusable(key)
        if connection is not None:
            try:
                return self._exchange(key, connection, request, message, timeouts)
            except _Stale:
                pass                   # closed by the server as the request left: nothing was answered
        connection = self._connect(key, timeouts.get("connect"))
        try:
            return self._exchange(key, connection, request, message, timeouts)
        except _Stale:
            raise httpx.RemoteProtocolError(NO_RESPONSE, request=request) from None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
            self._idle_count = 0
        for connection in idle:
            connection.close()

    # -- the pool ----------------------------------------------------------------------------------

    def _reusable(self, key: tuple[bytes, str, int, str | None]) -> _Connection | None:
        """The most recently used idle connection to this origin that still looks open, or None;
        the ones found closed or expired on the way are closed."""
        dead: list[_Connection] = []
        found = None
        now = time.monotonic()
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                connection = idle.pop()
                self._idle_count -= 1
                if connection.looks_closed(now):
                    dead.append(connection)
                else:
                    found = connection
                    break
        for connection in dead:
            connection.close()
        return found

    def _release(self, key: tuple[bytes, str, int, str | None], connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and self._idle_count < MAX_IDLE:
                self._idle.setdefault(key, []).append(connection)
                self._idle_count += 1
                return
        connection.close()

    def _connect(self, key: tuple[bytes, str, int, str | None], timeout: float | None) -> _Connection:
        scheme, host, port, sni = key
        sock = None
        try:
            sock = socket.create_connection((host, port), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == b"https":
                context = self._ssl_context or tls_context()
                sock = context.wrap_socket(sock, server_hostname=sni or host)
        except TimeoutError as exc:
            if sock is not None:
                sock.close()
            raise httpx.ConnectTimeout(str(exc)) from exc
        except OSError as exc:              # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            if sock is not None:
                sock.close()
            raise httpx.ConnectError(str(exc)) from exc
        return _Connection(sock)

    # -- one request and its answer ----------------------------------------------------------------

    def _exchange(self, key: tuple[bytes, str, int, str | None], connection: _Connection, request: httpx.Request,
                  message: bytes, timeouts: Mapping[str, float | None]) -> httpx.Response:
        """Send `message` and read the whole answer; the connection goes back to the pool or is closed.

        Raises _Stale when a reused connection ends (or is reset) before a byte of the answer came."""
        sock = connection.sock
        reader = None
        try:
            sock.settimeout(timeouts.get("write"))
            try:
                sock.sendall(message)
            except TimeoutError as exc:
                raise httpx.WriteTimeout(str(exc), request=request) from exc
            except OSError:
                pass              # as httpcore: a server may answer (413, 431…) and close before reading all
            sock.settimeout(timeouts.get("read"))
            reader = sock.makefile("rb")
            try:
                first = reader.peek(1)
            except TimeoutError as exc:
                raise httpx.ReadTimeout(str(exc), request=request) from exc
            except STALE_ERRORS as exc:
                if connection.served:
                    raise _Stale() from None
                raise httpx.ReadError(str(exc), request=request) from exc
            except OSError as exc:          # TLS errors (ssl.SSLError), unreachable…: httpx's type, as httpcore
                raise httpx.ReadError(str(exc), request=request) from exc
            if not first:
                if connection.served:
                    raise _Stale()
                raise httpx.RemoteProtocolError(NO_RESPONSE, request=request)
            response = _read_response(reader, request)
        except BaseException:
            if reader is not None:
                reader.close()
            connection.close()
            raise
        reader.close()
        connection.served += 1
        if response.reusable:
            self._release(key, connection)
        else:
            connection.close()
        return response.as_httpx(request)


@dataclass
class _Answer:
    """A whole answer as read off the socket; `reusable` when the connection may carry another request."""

    status: int
    version: bytes
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    reusable: bool

    def as_httpx(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, stream=httpx.ByteStream(self.body),
                              request=request,
                              extensions={"http_version": self.version, "reason_phrase": self.reason})


def _read_response(reader: Any, request: httpx.Request) -> _Answer:
    """The final answer waiting in `reader` (1xx skipped), framed as h11 frames it: no body for HEAD,
    1xx, 204 and 304; chunked; Content-Length; else up to the close. Errors as httpx's."""
    try:
        return _read_answer(reader, request)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc), request=request) from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc), request=request) from exc


def _read_answer(reader: Any, request: httpx.Request) -> _Answer:
    room = [MAX_HEAD]
    while True:
        line = _head_line(reader, room, request)
        status_line = _STATUS_LINE(line)
        if status_line is None:
            raise httpx.RemoteProtocolError("illegal status line: " + repr(line[:100]), request=request)
        version, code, reason = status_line.groups()
        status = int(code)
        headers = _headers(reader, room, request)
        if not 100 <= status < 200 or status == 101:
            break
    version = b"HTTP/" + version
    fields: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        fields.setdefault(name.lower(), []).append(value)
    connection = b",".join(fields.get(b"connection", ())).lower()
    reusable = version == b"HTTP/1.1" and b"close" not in _tokens(connection) and status != 101
    if request.method == "HEAD" or status in (204, 304) or status < 200:
        body = b""
    elif b"transfer-encoding" in fields:
        codings = fields[b"transfer-encoding"]
        if len(codings) > 1 or codings[0].strip().lower() != b"chunked":
            raise httpx.RemoteProtocolError("Only Transfer-Encoding: chunked is supported", request=request)
        body = _chunked_body(reader, room, request)
    elif b"content-length" in fields:
        lengths = {part.strip() for value in fields[b"content-length"] for part in value.split(b",")}
        if len(lengths) != 1 or not _DIGITS(next(iter(lengths))):
            raise httpx.RemoteProtocolError("bad Content-Length", request=request)
        expected = int(lengths.pop())
        if expected > MAX_BODY:
            raise httpx.RemoteProtocolError(f"the answer's body ({expected} bytes) is over {MAX_BODY}", request=request)
        body = _read_exactly(reader, expected)
        if len(body) < expected:
            raise _incomplete(f"received {len(body)} bytes, expected {expected}", request)
    else:
        body = _read_exactly(reader, MAX_BODY + 1)        # framed by the close, as HTTP/1.0 does
        if len(body) > MAX_BODY:
            raise httpx.RemoteProtocolError(f"the answer's body is over {MAX_BODY} bytes", request=request)
        reusable = False
    return _Answer(status, version, reason or b"", headers, body, reusable)


def _head_line(reader: Any, room: list[int], request: httpx.Request) -> bytes:
    """One line of the status line or headers, within what is left of MAX_HEAD for them."""
    line = reader.readline(room[0] + 1)
    room[0] -= len(line)
    if room[0] < 0:
        raise httpx.RemoteProtocolError("the response's headers are too long", request=request)
    if not line.endswith(b"\n"):
        raise httpx.RemoteProtocolError(NO_RESPONSE, request=request)     # ended before the head did
    return line


def _headers(reader: Any, room: list[int], request: httpx.Request) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    while True:
        line = _head_line(reader, room, request)
        if line in (b"\r\n", b"\n"):
            return headers
        if line[:1] in (b" ", b"\t"):        # obs-fold: a continuation of the previous value
            if not headers:
                raise httpx.RemoteProtocolError("continuation line at start of headers", request=request)
            name, value = headers.pop()
            value = (value + b" " + line.strip(b" \t\r\n")).strip(b" \t")
        else:
            name, colon, value = line.partition(b":")
            value = value.strip(b" \t\r\n")
            if not colon or not _FIELD_NAME(name):
                raise httpx.RemoteProtocolError("illegal header line: " + repr(line[:100]), request=request)
        if not _FIELD_VALUE(value):
            raise httpx.RemoteProtocolError(f"illegal header value in {name.decode('ascii')}", request=request)
        headers.append((name, value))


def _read_exactly(reader: Any, size: int) -> bytes:
    """Up to `size` bytes, fewer only at the end of the stream; read in pieces, so that a length a
    receiver claims is never reserved in memory before its bytes come."""
    parts, left = [], size
    while left > 0:
        piece = reader.read(min(left, READ_PIECE))
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def _chunked_body(reader: Any, room: list[int], request: httpx.Request) -> bytes:
    parts, total = [], 0
    while True:
        line = reader.readline(MAX_CHUNK_LINE + 1)
        if not line.endswith(b"\n"):
            if len(line) > MAX_CHUNK_LINE:
                raise httpx.RemoteProtocolError("illegal chunk header", request=request)
            raise _incomplete("incomplete chunked read", request)
        size = _CHUNK_SIZE(line)
        if size is None:
            raise httpx.RemoteProtocolError("illegal chunk header: " + repr(line[:100]), request=request)
        length = int(size.group(1), 16)
        if length == 0:
            break
        total += length
        if total > MAX_BODY:
            raise httpx.RemoteProtocolError(f"the answer's body is over {MAX_BODY} bytes", request=request)
        data = _read_exactly(reader, length)
        if len(data) < length:
            raise _incomplete("incomplete chunked read", request)
        footer = reader.readline(3)
        if footer not in (b"\r\n", b"\n"):
            if not footer.endswith(b"\n") and len(footer) < 2:
                raise _incomplete("incomplete chunked read", request)
            raise httpx.RemoteProtocolError("malformed chunk footer", request=request)
        parts.append(data)
    try:                                     # trailers, if any, up to the blank line; not kept (as httpcore)
        _headers(reader, room, request)
    except httpx.RemoteProtocolError as exc:
        if str(exc) == NO_RESPONSE:
            raise _incomplete("incomplete chunked read", request) from None
        raise
    return b"".join(parts)


def _incomplete(what: str, request: httpx.Request) -> httpx.RemoteProtocolError:
    return httpx.RemoteProtocolError(f"peer closed connection without sending complete message body ({what})",
                                     request=request)


def _tokens(value: bytes) -> set[bytes]:
    return {token.strip() for token in value.split(b",")}


def _serialise(request: httpx.Request) -> bytes:
    """The request line, httpx's headers as they are, and the body (framed in one chunk when httpx
    chose chunked transfer), as one buffer to send in one call."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    chunked = False
    for name, value in request.headers.raw:
        if not _FIELD_NAME(name):
            raise httpx.LocalProtocolError(f"Illegal header name {name!r}", request=request)
        if not _FIELD_VALUE(value):         # the value is not shown: it may be a credential
            raise httpx.LocalProtocolError(f"Illegal header value in {name.decode('ascii')}", request=request)
        if name.lower() == b"transfer-encoding" and _CHUNKED(value):
            chunked = True
        lines.append(name + b": " + value)
    lines.append(b"\r\n")
    body = request.read()
    if chunked:
        body = (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)) if body else b"0\r\n\r\n"
    return b"\r\n".join(lines) + body


def client_args(transport: httpx.BaseTransport | None) -> dict[str, Any]:
    """The `httpx.Client` arguments that choose the transport: the one given, as it is; else a
    PooledTransport, with httpx's own transport mounted for every proxy the environment names
    (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY read exactly as httpx reads them)."""
    if transport is not None:
        return {"transport": transport}
    try:
        from httpx._utils import get_environment_proxies
    except ImportError:                      # a newer httpx moved it: its own transport, as before
        return {}
    mounts: dict[str, httpx.BaseTransport | None] = {
        pattern: None if proxy is None else httpx.HTTPTransport(proxy=proxy)
        for pattern, proxy in get_environment_proxies().items()}
    return {"transport": PooledTransport(), "mounts": mounts}
