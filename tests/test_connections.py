"""Connection hygiene: header and body deadlines, header sizes, pipelining, unread answers, idle
keep-alive, and the connection budget, against a real `notifyd serve` spoken to over raw sockets (the
write deadline against the protocol served in-process, where an answer can outgrow the kernel's
buffers); the budget's arithmetic and the open-files limit with plain values."""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifyd.connections import (
    ConnectionBudget,
    ConnectionLimits,
    fit_open_files,
    guarded_protocol,
    missing_uvicorn_internals,
)

from conftest import Daemon, DaemonFactory, Receiver, wait_for, write_config

BOUND = 30.0           # turns a hang into a failure; every timeout below is 1-5 s, and none is timed


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


def assert_no_errors(daemon: Daemon) -> None:
    log = daemon.log()
    assert "Traceback" not in log and "ERROR" not in log and "WARNING" not in log, log


def assert_431(data: bytes, what: str) -> None:
    status, headers, body = parse_response(data)
    assert status == 431 and headers["connection"] == "close" and headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"] == "headers_too_large" and what in answer["detail"], answer


def rss_kib(daemon: Daemon) -> int:
    status = Path(f"/proc/{daemon.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def non_reader(daemon: Daemon) -> socket.socket:
    """A connection with a small receive buffer, for a client that will not read its answers."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(BOUND)
    sock.connect(("127.0.0.1", daemon.port))
    return sock


def reset(sock: socket.socket) -> None:
    """Close with a reset rather than a FIN, as a client that crashes does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


# The real daemon


def test_a_byte_dripping_client_is_closed(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver, header_timeout="1s")
    sock = connect(daemon)
    drip, received = webhook_request(), b""
    try:
        # One byte every 0.2 s, 28 s in all: a deadline per read would never end it, only one for
        # the whole head does.
        for byte in (drip[i:i + 1] for i in range(len(drip))):
            sock.sendall(byte)
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                received = until_closed(sock)
                break
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


# Header sizes


def test_headers_over_64_kib_or_a_url_over_8_kib_get_431_json(tmp_path: Path, daemons: DaemonFactory,
                                                               receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver)
    sock = connect(daemon)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert_431(until_closed(sock), "the request line and headers are over 64 KiB")
    sock.close()

    sock = connect(daemon)
    sock.sendall(b"GET /health?q=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert_431(until_closed(sock), "the URL is over 8 KiB")
    sock.close()

    # Just under both limits: served, and the connection stays open for more.
    sock = connect(daemon)
    many = b"".join(b"X-Part-%d: " % i + b"b" * 4000 + b"\r\n" for i in range(13))    # 59 KB in all
    sock.sendall(b"GET /health?q=" + b"a" * 7000 + b" HTTP/1.1\r\nHost: localhost\r\n" + many + b"\r\n")
    status, headers, _ = read_response(sock)
    assert status == 200 and headers.get("connection") != "close"
    sock.sendall(HEALTH)
    assert read_response(sock)[0] == 200
    sock.close()
    log = daemon.log()
    assert log.count("with 431") == 2 and "Traceback" not in log and "WARNING" not in log, log


def test_an_endless_header_is_cut_off_while_others_are_served(tmp_path: Path, daemons: DaemonFactory,
                                                              receiver: Receiver) -> None:
    # Once grown by concatenation without a limit: seconds of a stalled event loop, tens of MB.
    daemon = start(tmp_path, daemons, receiver, header_timeout="60s")
    before = rss_kib(daemon)
    attacker = connect(daemon)
    attacker.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: ")
    chunk, sent, served = b"a" * 4096, 0, 0
    deadline = time.monotonic() + BOUND
    try:
        while time.monotonic() < deadline:
            attacker.sendall(chunk)
            sent += len(chunk)
            if sent % (64 * 4096) == 0:             # now and then, another client is answered meanwhile
                assert daemon.get("/health").status_code == 200
                served += 1
            time.sleep(0.001)
        raise AssertionError(f"the server still reads the endless header after {sent} bytes")
    except (BrokenPipeError, ConnectionResetError):
        pass                                        # cut off, a while after its 431
    attacker.close()
    assert served >= 1 and sent > 64 * 1024
    assert rss_kib(daemon) - before < 64 * 1024, (before, rss_kib(daemon))
    assert daemon.get("/health").status_code == 200
    log = daemon.log()
    assert "with 431: the request line and headers are over 64 KiB" in log and "Traceback" not in log, log


# Pipelining


def test_pipelined_requests_up_to_the_limit_are_all_answered(tmp_path: Path, daemons: DaemonFactory,
                                                             receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver)
    sock = connect(daemon)
    last = HEALTH.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    sock.sendall(HEALTH * 16 + last)               # one answered at a time, 16 waiting their turn
    assert until_closed(sock).count(b"HTTP/1.1 200 OK\r\n") == 17
    sock.close()
    assert_no_errors(daemon)


def test_a_client_pipelining_without_reading_is_cut_off(tmp_path: Path, daemons: DaemonFactory,
                                                        receiver: Receiver) -> None:
    # Once queued without end: 57 -> 400 MB of RSS in seconds.
    daemon = start(tmp_path, daemons, receiver)
    before = rss_kib(daemon)
    sock = non_reader(daemon)
    sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + BOUND
    try:
        while time.monotonic() < deadline:
            try:
                sent += sock.send(HEALTH * 100)
            except BlockingIOError:
                time.sleep(0.01)
        raise AssertionError(f"still connected after {sent // len(HEALTH)} requests sent")
    except (BrokenPipeError, ConnectionResetError):
        pass
    sock.close()
    assert rss_kib(daemon) - before < 64 * 1024, (before, rss_kib(daemon))
    assert daemon.get("/health").status_code == 200
    assert "more than 16 requests were pipelined" in daemon.log()
    assert_quiet_log(daemon, most=1)


def test_a_client_leaving_mid_pipeline_costs_no_error(tmp_path: Path, daemons: DaemonFactory,
                                                      receiver: Receiver) -> None:
    # An earlier request still running when the client left once wrote to the closed connection:
    # "Exception in ASGI application" and a 500 in the log.
    daemon = start(tmp_path, daemons, receiver)
    for attempt in range(30):
        sock = non_reader(daemon)
        count = (10, 12, 40)[attempt % 3]           # within the pipeline limit, and past it
        tail = b"BOGUS\x01 / HTTP/1.1\r\n\r\n" if attempt % 5 == 4 else b""     # garbage behind them
        try:
            sock.sendall(HEALTH * count + tail)
        except ConnectionResetError:
            pass
        time.sleep((0, 0.005, 0.02)[attempt % 3])
        if attempt % 2:
            reset(sock)
        else:
            sock.close()
    assert daemon.get("/health").status_code == 200
    time.sleep(0.5)                                 # let the last connections' tasks finish
    log = daemon.log()
    assert "Traceback" not in log and "ERROR" not in log, log
    assert daemon.get("/health").status_code == 200


def test_an_upgrade_request_is_answered_as_plain_http_without_warnings(tmp_path: Path, daemons: DaemonFactory,
                                                                      receiver: Receiver) -> None:
    daemon = start(tmp_path, daemons, receiver)
    sock = connect(daemon)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                 + HEALTH)                          # what follows an upgrade request is not read
    data = until_closed(sock)
    assert data.count(b"HTTP/1.1 ") == 1
    status, headers, _ = parse_response(data)
    assert status == 200 and headers["connection"] == "close"
    sock.close()
    assert daemon.get("/health", headers={"Connection": "Upgrade", "Upgrade": "h2c"}).status_code == 200
    log = daemon.log()
    assert "WARNING" not in log and "pip install" not in log and "Unsupported upgrade" not in log, log


# Unread answers, with the protocol served in-process


def test_answers_left_unread_for_body_timeout_end_the_connection(caplog: pytest.LogCaptureFixture) -> None:
    """An answer far larger than the kernel's socket buffers, to a client that reads none of it: the
    transport stays paused for writing, and body_timeout later the connection is aborted."""
    import uvicorn
    from uvicorn.server import ServerState

    chunk, chunks = bytes(1 << 20), 64

    async def big_answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(chunk) * chunks).encode())]})
        for i in range(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": i < chunks - 1})

    limits = ConnectionLimits(body_timeout=0.5, idle_timeout=60.0)
    protocol = guarded_protocol(limits)
    config = uvicorn.Config(big_answer, http=protocol, ws="none", lifespan="off", log_config=None)
    state = ServerState()
    received: list[bytes] = []

    def client(port: int) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(HEALTH)
        time.sleep(limits.body_timeout + 1.0)       # reads nothing meanwhile
        received.append(until_closed(sock))
        sock.close()

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: protocol(config=config, server_state=state, app_state={}, _loop=loop), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader = threading.Thread(target=client, args=(port,))
        reader.start()
        await asyncio.to_thread(reader.join, BOUND)
        for _ in range(100):                        # the connection's tasks wind up
            if not state.tasks and not state.connections:
                break
            await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()

    caplog.set_level(logging.INFO, logger="notifyd.connections")
    try:
        import uvloop
        loop_factory = uvloop.new_event_loop        # as the daemon runs (uvicorn's loop="auto")
    except ImportError:
        loop_factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(scenario())
    assert received and len(received[0]) < len(chunk) * chunks // 4     # cut off, not served to the end
    assert "left its answers unread for 500ms" in caplog.text, caplog.text
    assert not state.connections and not state.tasks and protocol.budget.admitted == 0
    assert "Exception in ASGI application" not in caplog.text


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


def test_the_uvicorn_internals_relied_on_are_all_there() -> None:
    assert missing_uvicorn_internals() == []       # else importing notifyd.connections already failed

    class Renamed:
        def __init__(self) -> None:
            self.parser = None

    missing = missing_uvicorn_internals(Renamed, {(Renamed, "__init__"): ("parser", "pipeline")})
    assert "Renamed._unsupported_upgrade_warning()" in missing and "Renamed._start_asgi_task()" in missing
    assert "Renamed.pipeline" in missing and "Renamed.parser" not in missing


# The open-files limit


class FakeLimits:
    def __init__(self, soft: int, hard: int) -> None:
        self.soft, self.hard, self.set_to = soft, hard, None

    def get(self, which: int) -> tuple[int, int]:
        assert which == resource.RLIMIT_NOFILE
        return self.soft, self.hard

    def set(self, which: int, limits: tuple[int, int]) -> None:
        self.set_to = limits


def test_the_open_files_limit_is_raised_to_fit_max_connections(caplog: pytest.LogCaptureFixture) -> None:
    limits = ConnectionLimits(max_connections=500)
    assert limits.open_files == 1100
    enough = FakeLimits(2048, 4096)
    assert fit_open_files(limits, enough.get, enough.set) and enough.set_to is None
    low_soft = FakeLimits(1024, 4096)
    assert fit_open_files(limits, low_soft.get, low_soft.set) and low_soft.set_to == (1100, 4096)
    unlimited = FakeLimits(1024, resource.RLIM_INFINITY)
    assert fit_open_files(limits, unlimited.get, unlimited.set)
    assert unlimited.set_to == (1100, resource.RLIM_INFINITY)
    assert "WARNING" not in caplog.text


def test_an_open_files_limit_too_low_to_raise_is_one_warning_saying_what_to_set(
        caplog: pytest.LogCaptureFixture) -> None:
    low = FakeLimits(1024, 1024)
    assert not fit_open_files(ConnectionLimits(max_connections=500), low.get, low.set)
    assert low.set_to is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "LimitNOFILE=1100" in warnings[0].getMessage() and "server.max_connections" in warnings[0].getMessage()


def test_the_open_files_limit_is_fitted_for_real_in_a_process_of_its_own() -> None:
    script = textwrap.dedent("""
        import logging, resource, sys
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        from notifyd.connections import ConnectionLimits, fit_open_files
        soft, hard = (int(n) for n in sys.argv[1:3])
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        fitted = fit_open_files(ConnectionLimits(max_connections=500))
        print(fitted, *resource.getrlimit(resource.RLIMIT_NOFILE))
    """)

    def run(soft: int, hard: int) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", script, str(soft), str(hard)], capture_output=True, text=True,
                              timeout=60, check=True)

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4096:
        pytest.skip(f"the hard open-files limit here is {hard}")
    raised = run(256, 4096)
    assert raised.stdout.split() == ["True", "1100", "4096"] and "WARNING" not in raised.stderr
    stuck = run(256, 256)
    assert stuck.stdout.split() == ["False", "256", "256"]
    assert "LimitNOFILE=1100" in stuck.stderr and stuck.stderr.count("WARNING") == 1, stuck.stderr


def test_the_daemon_raises_its_open_files_limit_at_start(tmp_path: Path, daemons: DaemonFactory,
                                                         receiver: Receiver) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"the hard open-files limit here is {hard}")
    config = write_config(tmp_path / "config.toml", receiver.json_url)          # max_connections 500
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))    # inherited by the daemon; ours back at once
    try:
        daemon = daemons.start(config, wait=False)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    wait_for(lambda: daemon_answers(daemon), 15, message="the daemon's /health")
    line = next(line for line in Path(f"/proc/{daemon.proc.pid}/limits").read_text().splitlines()
                if line.startswith("Max open files"))
    assert int(line.split()[3]) >= 1100, line
    assert "WARNING" not in daemon.log()


def daemon_answers(daemon: Daemon) -> bool:
    assert daemon.proc.poll() is None, daemon.log()
    try:
        return daemon.get("/health").status_code == 200
    except httpx.HTTPError:
        return False
