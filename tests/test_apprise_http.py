"""Apprise's plugins send over the service's kept-alive session while a delivery runs, keep no
cookies between messages, still take proxies and the CA bundle from the environment, and any
other use of requests in the process is left as it was."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from notifyd.channels.apprise_channel import AppriseChannel
from notifyd.channels.apprise_http import ServiceSession
from notifyd.config import ServiceConfig
from notifyd.model import Delivery, Event, StoredEvent


class KeepAliveReceiver:
    """HTTP/1.1 on 127.0.0.1 (connections kept open): each POST's request line, client port and
    Cookie header recorded; every answer sets a cookie."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.seen.append({"line": self.requestline, "port": self.client_address[1],
                                      "cookie": self.headers.get("cookie")})
                self.send_response(200)
                self.send_header("Set-Cookie", "session=tracked; Path=/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keepalive() -> Iterator[KeepAliveReceiver]:
    receiver = KeepAliveReceiver()
    yield receiver
    receiver.close()


def delivery(seq: int) -> Delivery:
    event = StoredEvent(seq, 0.0, Event(source="generic", source_type="generic", kind="backup", title="t",
                                        body=f"seq {seq}"))
    return Delivery(job_id=seq, service="s", kind="notify", data={}, load_event=lambda: event)


def channel(url: str) -> AppriseChannel:
    return AppriseChannel(ServiceConfig(name="s", type="apprise", options={"url": url}), 5.0)


def test_messages_to_one_service_share_a_connection_and_no_cookie(keepalive: KeepAliveReceiver) -> None:
    ch = channel(f"json://127.0.0.1:{keepalive.port}/hook")
    for seq in range(3):
        ch.deliver(delivery(seq))
    assert len(keepalive.seen) == 3
    assert len({s["port"] for s in keepalive.seen}) == 1          # one TCP connection for all three
    assert [s["cookie"] for s in keepalive.seen] == [None, None, None]   # the Set-Cookie was not kept
    ch.close()
    ch2 = channel(f"json://127.0.0.1:{keepalive.port}/hook")
    ch2.deliver(delivery(4))
    assert keepalive.seen[-1]["port"] != keepalive.seen[0]["port"]   # another service, its own connection


def test_requests_outside_a_delivery_are_requests_own(keepalive: KeepAliveReceiver) -> None:
    ch = channel(f"json://127.0.0.1:{keepalive.port}/hook")
    ch.deliver(delivery(1))                     # the wrapper is installed by now
    for _ in range(2):
        requests.post(f"http://127.0.0.1:{keepalive.port}/plain", data=b"x", timeout=5)
    plain = [s for s in keepalive.seen if "/plain" in s["line"]]
    assert len(plain) == 2 and plain[0]["port"] != plain[1]["port"]   # a fresh session each, as ever


def test_a_proxy_from_the_environment_is_still_taken(keepalive: KeepAliveReceiver,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{keepalive.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    channel("json://receiver.invalid/hook").deliver(delivery(1))
    assert keepalive.seen[0]["line"] == "POST http://receiver.invalid/hook HTTP/1.1"


def test_the_ca_bundle_of_the_environment_is_what_verifies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/notifyd-test/ca.pem")
    session = ServiceSession().session
    settings = session.merge_environment_settings("https://example.com/", {}, None, True, None)
    assert settings["verify"] == "/etc/notifyd-test/ca.pem"
    assert session.merge_environment_settings("https://example.com/", {}, None, False, None)["verify"] is False
    plain = requests.Session().merge_environment_settings("https://example.com/", {}, None, True, None)
    assert settings == plain                    # what requests' own session makes of the same environment
