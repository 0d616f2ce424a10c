"""Connection hygiene: header and body deadlines, idle keep-alive, and the connection budget, against a
real `notifyd serve` spoken to over raw sockets; the budget's arithmetic with plain values."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

from notifyd.connections import ConnectionBudget, ConnectionLimits

from conftest import Daemon, DaemonFactory, Receiver, wait_for, write_config

BOUND = 10.0           # generous: every timeout below is 1-3 s


def start(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver, **server: str | int) -> Daemon:
    config = write_config(tmp_path / "config.toml", receiver.json_url)
    lines = "".join(f"\n{key} = {json.dumps(value)}" for key, value in server.items())
    config.write_text(config.read_text().replace('max_body = "64KB"', 'max_body = "64KB"' + lines))
    return daemons.start(config)


def connect(daemon: Daemon) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=BOUND)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def until_closed(sock: socket.socket, bound: float = BOUND) -> bytes:
    """Everything the server sends until it closes; fails if it is still open after `bound` s."""
    data, deadline = b"", time.monotonic() + bound
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except TimeoutError:
            raise AssertionError(f"the connection is still open after {bound}s (got {data!r})") from None
        if not chunk:
            return data
        data += chunk


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response (status, lower-case headers, body) read by Content-Length; the only one sent."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return parse_head(head, body, sock)


def parse_head(head: bytes, body: bytes, sock: socket.socket | None = None) -> tuple[int, dict[str, str], bytes]:
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    length = int(headers.get("content-length", "0"))
    while sock is not None and len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of the body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, body = data.split(b"\r\n\r\n", 1)
    return parse_head(head, body)


def webhook_request(body: bytes = b'{"title": "hello"}', *, length: int | None = None) -> bytes:
    return (b"POST /webhooks/generic HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body) if length is None else length).encode() + b"\r\n\r\n" + body)


HEALTH = b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"


def assert_timeout_answer(data: bytes, what: str) -> None:
    status, headers, body = parse_response(data)
    assert status == 408 and headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"] == "request_timeout" and what in answer["detail"], answer


def assert_quiet_log(daemon: Daemon, most: int) -> None:
    log = daemon.log()
    assert "Traceback" not in log and "ERROR" not in log, log
    assert sum("closed a connection" in line for line in log.splitlines()) <= most, log


# The real daemon


def test_a_byte_dripping_client_is_closed(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, header_timeout="1s")
    sock = connect(daemon)
    drip, received = webhook_request(), b""
    deadline = time.monotonic() + BOUND
    try:
        for byte in (drip[i:i + 1] for i in range(len(drip))):      # one byte every 0.2 s: 28 s in all
            sock.sendall(byte)
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                received = until_closed(sock)
                break
            assert time.monotonic() < deadline, "the dripping client is still connected"
        else:
            raise AssertionError("the whole request dripped in without the server closing")
    except (BrokenPipeError, ConnectionResetError):
        pass                                        # closed while we were still writing: also fine
    if received:
        assert_timeout_answer(received, "headers did not arrive within 1s")
    sock.close()
    assert_quiet_log(daemon, most=1)


def test_partial_headers_then_silence_get_408_json(tmp_path: Path, daemons: DaemonFactory,
                                                   receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, header_timeout="1s")
    sock = connect(daemon)
    sock.sendall(b"POST /webhooks/generic HTTP/1.1\r\nHost: localhost\r\n")
    assert_timeout_answer(until_closed(sock), "the request line and headers did not arrive within 1s")
    sock.close()
    assert "closed a connection from 127.0.0.1" in daemon.log()


def test_a_connection_that_never_sends_is_closed_without_an_answer(tmp_path: Path, daemons: DaemonFactory,
                                                                   receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, header_timeout="1s")
    sock = connect(daemon)
    assert until_closed(sock) == b""
    sock.close()
    assert_quiet_log(daemon, most=0)                # nothing at INFO: nothing happened


def test_a_slow_body_gets_408_json(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, body_timeout="1s")
    sock = connect(daemon)
    sock.sendall(webhook_request(b'{"title": ', length=40))       # 10 of 40 bytes, then nothing
    assert_timeout_answer(until_closed(sock), "the body did not arrive within 1s")
    sock.close()
    assert daemon.get("/health").json()["queue"]["queued"] == 0     # nothing half-received was stored
    assert_quiet_log(daemon, most=1)


def test_requests_arriving_in_pieces_within_the_deadlines_are_served(tmp_path: Path, daemons: DaemonFactory,
                                                                    receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, header_timeout="10s", body_timeout="10s")
    sock = connect(daemon)
    request = webhook_request(b'{"title": "in pieces"}')
    for piece in (request[:10], request[10:40], request[40:-8], request[-8:]):
        sock.sendall(piece)
        time.sleep(0.1)
    status, _, body = read_response(sock)
    assert status == 202 and json.loads(body)["duplicate"] is False
    # The kept-alive connection serves more, pipelined; the last asks to close, so read to the end.
    sock.sendall(HEALTH + HEALTH.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    assert until_closed(sock).count(b"HTTP/1.1 200 OK\r\n") == 2
    sock.close()


def test_an_idle_keep_alive_connection_is_closed(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, idle_timeout="1s")
    sock = connect(daemon)
    sock.sendall(HEALTH)
    status, headers, _ = read_response(sock)
    assert status == 200 and headers.get("connection") != "close"       # kept alive, for a while
    assert until_closed(sock) == b""                # then, idle, it is closed without a word
    sock.close()
    assert_quiet_log(daemon, most=0)


def test_past_max_connections_new_ones_get_503_until_idle_ones_time_out(tmp_path: Path, daemons: DaemonFactory,
                                                                        receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, max_connections=8, header_timeout="5s")
    idle = [connect(daemon) for _ in range(8)]
    extra = connect(daemon)
    extra.sendall(webhook_request())
    data = until_closed(extra)
    status, headers, body = parse_response(data)
    assert status == 503 and int(headers["retry-after"]) >= 1 and headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"] == "overloaded" and "server.max_connections" in answer["detail"]
    extra.close()

    for sock in idle:                               # they never sent a byte: closed at header_timeout
        assert until_closed(sock) == b""
        sock.close()
    wait_for(lambda: daemon.post("/webhooks/generic", {"title": "after"}).status_code == 202, BOUND,
             message="service to resume once the idle connections are gone")
    log = daemon.log()
    assert "more than 8 connections open (server.max_connections)" in log and "Traceback" not in log


def test_a_webhook_is_served_while_slow_clients_hold_connections(tmp_path: Path, daemons: DaemonFactory,
                                                                 receiver: Receiver) -> None:
    # Deadlines far beyond the test, so every slow client is surely still attached while it runs.
    daemon = start(tmp_path, daemons, receiver, max_connections=64, header_timeout="60s", body_timeout="60s")
    silent = [connect(daemon) for _ in range(20)]
    partial_headers = [connect(daemon) for _ in range(10)]
    for sock in partial_headers:
        sock.sendall(b"POST /webhooks/generic HTTP/1.1\r\nHost: localhost\r\nContent-")
    slow_bodies = [connect(daemon) for _ in range(10)]
    for sock in slow_bodies:
        sock.sendall(webhook_request(b'{"ti', length=40))

    answer = daemon.post("/webhooks/generic", {"title": "meanwhile"})    # httpx's own 10 s bound
    assert answer.status_code == 202
    assert daemon.get("/health").status_code == 200
    wait_for(lambda: [b for b in receiver.bodies() if b["title"] == "meanwhile"], BOUND, message="the delivery")
    slow = silent + partial_headers + slow_bodies
    assert select.select(slow, [], [], 0)[0] == []  # all still attached, none answered yet
    for sock in slow:
        sock.close()
    assert_quiet_log(daemon, most=0)                # a client that leaves costs no log line


# The budget, with plain values


def test_the_budget_admits_then_lets_as_many_wait_then_sheds() -> None:
    budget = ConnectionBudget(2)
    assert [budget.arrive() for _ in range(5)] == ["admitted", "admitted", "waiting", "waiting", "shed"]
    assert not budget.promote()                     # still full: that one is told 503
    budget.leave("waiting")
    budget.leave("admitted")
    assert budget.promote()                         # a slot freed before its headers were in
    assert (budget.admitted, budget.waiting) == (2, 0)
    budget.leave("shed")                            # a shed connection held nothing
    assert (budget.admitted, budget.waiting) == (2, 0)


def test_turned_away_connections_are_logged_at_most_once_a_minute() -> None:
    budget = ConnectionBudget(1)
    assert budget.turned_away(now=100.0) == 1
    assert budget.turned_away(now=110.0) is None and budget.turned_away(now=150.0) is None
    assert budget.turned_away(now=161.0) == 3


def test_limits_come_from_the_server_config_and_retry_after_is_whole_seconds() -> None:
    from notifyd.config import ServerConfig

    limits = ConnectionLimits.from_server(ServerConfig(header_timeout=2.0, idle_timeout=0.5, max_connections=9))
    assert limits == ConnectionLimits(header_timeout=2.0, body_timeout=30.0, idle_timeout=0.5, max_connections=9)
    assert limits.retry_after == 1 and ConnectionLimits(idle_timeout=5.0).retry_after == 5
