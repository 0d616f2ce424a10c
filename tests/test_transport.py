"""The HTTP channels' pooled transport against real servers on 127.0.0.1: connections kept and reused,
servers that close them, answers cut short, refusals, timeouts, TLS, and proxies from the environment.

Each server here is a socket that a test scripts connection by connection, so what reached it (how
many connections, which requests, read or not) is counted on the server's side of the wire.
"""

from __future__ import annotations

import gzip
import json
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifyd.channels import transport
from notifyd.channels.http import HttpChannel
from notifyd.channels.transport import PooledTransport
from notifyd.channels.webhook import WebhookChannel
from notifyd.config.model import ServiceConfig
from notifyd.errors import PermanentError, TransientError

TLS = Path(__file__).parent / "fixtures" / "tls"
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@dataclass
class Seen:
    """A request as it arrived: its request line, headers (names lowercased) and body."""

    line: str
    headers: dict[str, str]
    body: bytes


def read_request(reader: Any) -> Seen | None:
    """The next request on a connection, or None when the client closed it."""
    line = reader.readline()
    if not line:
        return None
    headers = {}
    while (header := reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Seen(line.decode("latin-1").strip(), headers, reader.read(int(headers.get("content-length", 0))))


Handler = Callable[[socket.socket, Any, "Server", int], None]


class Server:
    """Accepts connections on 127.0.0.1 and runs `handle(conn, reader, server, index)` for each, in a
    thread of its own (index counts connections from 1); `seen` holds every request a handler read."""

    def __init__(self, handle: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handle, self.tls = handle, tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/hook", scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()                      # the client refused our certificate
                    continue
            with self.lock:
                self.connections += 1
                index = self.connections
                self.open.append(conn)
            threading.Thread(target=self._run, args=(conn, index), daemon=True).start()

    def _run(self, conn: socket.socket, index: int) -> None:
        reader = conn.makefile("rb")
        try:
            self.handle(conn, reader, self, index)
        except OSError:
            pass
        finally:
            reader.close()
            conn.close()

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for conn in self.open:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def answering(*answers: bytes) -> Handler:
    """Keeps the connection open, answering each request with the next of `answers` (the last one
    once they run out)."""

    def handle(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
        count = 0
        while (seen := read_request(reader)) is not None:
            server.record(seen)
            conn.sendall(answers[min(count, len(answers) - 1)])
            count += 1

    return handle


KEEP_ALIVE = answering(OK)


def wait_readable(conn: socket.socket) -> None:
    select.select([conn], [], [], 30)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy from the machine's environment, unless a test sets one."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(handle: Handler = KEEP_ALIVE, tls: ssl.SSLContext | None = None) -> Server:
        started.append(Server(handle, tls))
        return started[-1]

    yield start
    for server in started:
        server.close()


def webhook(url: str, timeout: float = 5.0) -> WebhookChannel:
    return WebhookChannel(ServiceConfig(name="hook", type="webhook", options={"url": url}), timeout)


def post(channel: WebhookChannel, n: int = 1) -> str:
    return channel.post(channel.url, json.dumps({"n": n}), f"msg_test_{n}")


# -- keep-alive --------------------------------------------------------------------------------------


def test_one_connection_carries_several_deliveries(serve: Callable[..., Server]) -> None:
    server = serve()
    channel = webhook(server.url())
    for n in range(3):
        assert json.loads(post(channel, n))["status"] == 200
    channel.close()
    assert server.connections == 1
    assert [json.loads(s.body)["n"] for s in server.seen] == [0, 1, 2]
    assert server.seen[0].line == "POST /hook HTTP/1.1"
    assert server.seen[0].headers["webhook-id"] == "msg_test_0"
    assert server.seen[0].headers["host"] == f"127.0.0.1:{server.port}"
    assert server.seen[0].headers["content-length"] == str(len(server.seen[0].body))


def test_worker_threads_share_one_channel(serve: Callable[..., Server]) -> None:
    server = serve()
    channel = webhook(server.url())
    failures: list[BaseException] = []

    def deliver(first: int) -> None:
        try:
            for n in range(first, first + 20):
                post(channel, n)
        except BaseException as exc:              # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=deliver, args=(i * 100,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()
    assert failures == []
    assert sorted(json.loads(s.body)["n"] for s in server.seen) == [i * 100 + n for i in range(4) for n in range(20)]
    assert 1 <= server.connections <= 4


def test_an_answer_that_closes_is_not_reused(serve: Callable[..., Server]) -> None:
    close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    http10 = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    for answer in (close, http10):
        server = serve(answering(answer))
        channel = webhook(server.url())
        post(channel, 1)
        post(channel, 2)
        channel.close()
        assert server.connections == 2
        assert len(server.seen) == 2


def test_an_expired_idle_connection_is_not_reused(serve: Callable[..., Server],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve()
    channel = webhook(server.url())
    post(channel, 1)
    monkeypatch.setattr(transport, "KEEPALIVE_EXPIRY", -1.0)
    post(channel, 2)
    channel.close()
    assert server.connections == 2


# -- servers that close ------------------------------------------------------------------------------


def test_a_server_that_closes_idle_connections_gets_each_delivery_once(serve: Callable[..., Server]) -> None:
    def answer_then_close(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
        seen = read_request(reader)
        assert seen is not None
        server.record(seen)
        conn.sendall(OK)                           # keep-alive by its headers, closed all the same

    server = serve(answer_then_close)
    channel = webhook(server.url())
    for n in range(3):
        assert json.loads(post(channel, n))["status"] == 200
    channel.close()
    assert [json.loads(s.body)["n"] for s in server.seen] == [0, 1, 2]
    assert server.connections == 3


def test_a_connection_the_server_half_closed_is_not_reused(serve: Callable[..., Server]) -> None:
    """A server that has ended its side still reads: a request sent there would be read and never
    answered, then sent again. The idle socket's end is seen before reuse, so it never is."""
    shut = threading.Event()

    def answer_then_shut(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
        if index > 1:
            return KEEP_ALIVE(conn, reader, server, index)
        seen = read_request(reader)
        assert seen is not None
        server.record(seen)
        conn.sendall(OK)
        conn.shutdown(socket.SHUT_WR)
        shut.set()
        while (seen := read_request(reader)) is not None:       # until the client closes its side
            server.record(seen)
        return None

    server = serve(answer_then_shut)
    channel = webhook(server.url())
    post(channel, 1)
    assert shut.wait(30)
    post(channel, 2)
    channel.close()
    assert [json.loads(s.body)["n"] for s in server.seen] == [1, 2]
    assert server.connections == 2


def test_a_connection_closed_as_the_request_leaves_is_retried_once(serve: Callable[..., Server]) -> None:
    """The race a check before reuse cannot close: the server ends the idle connection after the
    check, with the next request on its way (and never reads it)."""
    unread = []

    def close_when_next_arrives(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
        if index > 1:
            return KEEP_ALIVE(conn, reader, server, index)
        seen = read_request(reader)
        assert seen is not None
        server.record(seen)
        conn.sendall(OK)
        wait_readable(conn)
        unread.append(True)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
        return None

    server = serve(close_when_next_arrives)
    channel = webhook(server.url())
    post(channel, 1)
    assert json.loads(post(channel, 2))["status"] == 200
    channel.close()
    assert unread == [True]
    assert [json.loads(s.body)["n"] for s in server.seen] == [1, 2]
    assert server.connections == 2


@pytest.mark.parametrize("reused", [False, True], ids=["new connection", "reused connection"])
def test_an_answer_cut_short_is_a_transient_error_and_not_sent_again(serve: Callable[..., Server],
                                                                     reused: bool) -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"

    def cut_short(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
        for answer in ([OK, cut] if reused else [cut]):
            seen = read_request(reader)
            assert seen is not None
            server.record(seen)
            conn.sendall(answer)

    server = serve(cut_short)
    channel = webhook(server.url())
    if reused:
        post(channel, 0)
    with pytest.raises(TransientError) as caught:
        post(channel, 1)
    channel.close()
    assert str(caught.value) == f"cannot reach {server.url()}: RemoteProtocolError"
    assert [json.loads(s.body)["n"] for s in server.seen] == ([0, 1] if reused else [1])
    assert server.connections == 1


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n",
], ids=["length past any integer", "a terabyte announced", "a chunk past any integer", "a chunk longer than said"])
def test_an_answer_that_lies_about_its_length_is_refused_before_it_is_believed(serve: Callable[..., Server],
                                                                              answer: bytes) -> None:
    """A receiver's claimed length is never reserved in memory, nor overflows, nor shortens a body:
    each is the transient error of a broken answer (retried), never an internal error."""
    server = serve(answering(answer))
    channel = webhook(server.url())
    with pytest.raises(TransientError) as caught:
        post(channel)
    channel.close()
    assert str(caught.value) == f"cannot reach {server.url()}: RemoteProtocolError"


def test_an_answer_framed_by_the_close_is_read_up_to_the_limit(serve: Callable[..., Server],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "MAX_BODY", 1000)
    small = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 1000
    big = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 1001

    def once(answer: bytes) -> Handler:
        def handle(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
            if read_request(reader) is not None:
                conn.sendall(answer)
        return handle

    channel = HttpChannel(serve(once(small)).url(), 5.0)
    assert channel.request("POST", channel.url, content=b"{}").content == b"x" * 1000
    channel.close()
    server = serve(once(big))
    channel = HttpChannel(server.url(), 5.0)
    with pytest.raises(TransientError, match="the answer's body is over 1000 bytes"):
        channel.request("POST", server.url(), content=b"{}")
    channel.close()


def test_a_new_connection_closed_without_an_answer_is_not_sent_again(serve: Callable[..., Server]) -> None:
    def read_then_close(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
        seen = read_request(reader)
        assert seen is not None
        server.record(seen)

    server = serve(read_then_close)
    channel = HttpChannel(server.url(), 5.0)
    with pytest.raises(TransientError) as caught:
        channel.request("POST", server.url(), content=b"{}")
    channel.close()
    assert str(caught.value) == (f"cannot reach {server.url()}: Server disconnected without sending a response.")
    assert len(server.seen) == 1
    assert server.connections == 1


# -- refused, timed out ------------------------------------------------------------------------------


def test_a_refused_connection_is_a_transient_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                  # nothing listens here once it is closed
    url = f"http://127.0.0.1:{port}/hook"
    channel = HttpChannel(url, 5.0)
    with pytest.raises(TransientError) as caught:
        channel.request("GET", url)
    assert str(caught.value) == f"cannot reach {url}: connection refused"
    hook = webhook(url)
    with pytest.raises(TransientError) as caught:
        post(hook)
    assert str(caught.value) == f"cannot reach {url}: ConnectError"


def test_a_server_that_never_answers_times_out(serve: Callable[..., Server]) -> None:
    def silent(conn: socket.socket, reader: Any, server: Server, index: int) -> None:
        seen = read_request(reader)
        assert seen is not None
        server.record(seen)
        reader.read()                              # until the client gives up and closes

    server = serve(silent)
    channel = HttpChannel(server.url(), 0.2)
    with pytest.raises(TransientError) as caught:
        channel.request("GET", server.url())
    assert str(caught.value) == f"timed out talking to {server.url()}"
    hook = webhook(server.url(), timeout=0.2)
    with pytest.raises(TransientError) as caught:
        post(hook)
    assert str(caught.value) == f"timed out posting to {server.url()}"
    channel.close()
    hook.close()
    assert len(server.seen) == 2


# -- what travels ------------------------------------------------------------------------------------


def test_a_chunked_gzipped_answer_is_read_whole_and_the_connection_kept(serve: Callable[..., Server]) -> None:
    packed = gzip.compress(json.dumps({"MediaContainer": {"size": 1}}).encode())
    half = len(packed) // 2
    chunked = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               + b"%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nX-Trailer: t\r\n\r\n" % (half, packed[:half], len(packed) - half,
                                                                              packed[half:]))
    server = serve(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + chunked, OK))
    channel = HttpChannel(server.url("/library"), 5.0)
    assert channel.request("GET", server.url("/library")).json() == {"MediaContainer": {"size": 1}}
    assert channel.request("GET", server.url("/library")).json() == {}
    channel.close()
    assert server.connections == 1
    assert "gzip" in server.seen[0].headers["accept-encoding"]


def test_cookies_a_receiver_sets_are_sent_back(serve: Callable[..., Server]) -> None:
    set_cookie = b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 2\r\n\r\n{}"
    server = serve(answering(OK, set_cookie, OK))
    channel = webhook(server.url())
    for n in range(3):
        post(channel, n)
    channel.close()
    assert [s.headers.get("cookie") for s in server.seen] == [None, None, "session=abc"]


def test_a_redirect_is_not_followed(serve: Callable[..., Server]) -> None:
    server = serve(answering(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"))
    channel = HttpChannel(server.url("/old"), 5.0)
    with pytest.raises(PermanentError, match="redirects are not followed"):
        channel.request("GET", server.url("/old"))
    channel.close()
    assert [s.line for s in server.seen] == ["GET /old HTTP/1.1"]


def test_a_header_value_that_would_split_the_request_is_refused_unseen(serve: Callable[..., Server]) -> None:
    server = serve()
    channel = HttpChannel(server.url(), 5.0)
    with pytest.raises(TransientError) as caught:
        channel.request("GET", server.url(), headers={"X-Plex-Token": "s3cret\r\nX-Evil: 1"})
    channel.close()
    assert "s3cret" not in str(caught.value)
    assert "X-Plex-Token" in str(caught.value)
    assert server.seen == []


def test_an_injected_transport_is_used_as_it_is() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    channel = HttpChannel("http://media.invalid", 5.0, transport=httpx.MockTransport(answer))
    assert channel.request("GET", "http://media.invalid/System/Info").status_code == 204
    assert [str(r.url) for r in seen] == ["http://media.invalid/System/Info"]


# -- TLS ---------------------------------------------------------------------------------------------


@pytest.fixture
def tls_server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "localhost.pem", TLS / "localhost.key")
    return context


def test_a_self_signed_certificate_is_refused_by_default(serve: Callable[..., Server],
                                                        tls_server_context: ssl.SSLContext) -> None:
    server = serve(tls=tls_server_context)
    for host in ("127.0.0.1", "localhost"):
        url = server.url(scheme="https", host=host)
        channel = HttpChannel(url, 5.0)
        with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            channel.request("GET", url)
        assert str(caught.value).startswith(f"cannot reach {url}: [SSL: CERTIFICATE_VERIFY_FAILED]")
        channel.close()
    assert server.seen == []


def test_tls_checks_the_certificate_against_the_sni_name(serve: Callable[..., Server],
                                                         tls_server_context: ssl.SSLContext) -> None:
    """As a pinned callback connects: to the address, naming the host in SNI and checking it."""
    names: list[str | None] = []

    def note_sni(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
        names.append(name)

    tls_server_context.sni_callback = note_sni  # type: ignore[assignment]
    server = serve(tls=tls_server_context)
    trusting = ssl.create_default_context(cafile=str(TLS / "localhost.pem"))
    with httpx.Client(transport=PooledTransport(ssl_context=trusting)) as client:
        pinned = server.url(scheme="https")
        response = client.get(pinned, headers={"Host": f"localhost:{server.port}"},
                              extensions={"sni_hostname": "localhost"})
        assert response.status_code == 200
        assert response.http_version == "HTTP/1.1"
        with pytest.raises(httpx.ConnectError, match="IP address mismatch"):
            client.get(pinned)
    assert names[0] == "localhost"
    assert [s.headers["host"] for s in server.seen] == [f"localhost:{server.port}"]


# -- proxies from the environment --------------------------------------------------------------------


def test_a_proxy_from_the_environment_is_used_through_httpx(serve: Callable[..., Server],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = serve()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    channel = webhook("http://receiver.invalid/hook")
    assert json.loads(post(channel))["status"] == 200
    channel.close()
    assert [s.line for s in proxy.seen] == ["POST http://receiver.invalid/hook HTTP/1.1"]


def test_no_proxy_sends_straight_to_the_receiver(serve: Callable[..., Server],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proxy, receiver = serve(), serve()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    channel = webhook(receiver.url())
    post(channel, 1)
    post(channel, 2)
    channel.close()
    assert proxy.seen == []
    assert [s.line for s in receiver.seen] == ["POST /hook HTTP/1.1"] * 2
    assert receiver.connections == 1
