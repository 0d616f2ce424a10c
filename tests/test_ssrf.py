"""The callback URL guard: address categories, URL rules, pinning, and one real connection."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifyd.errors import NotifydError
from notifyd.ssrf import (
    CallbackRefused,
    check_callback_url,
    default_resolve,
    is_forbidden,
    pick_address,
    pinned_request_args,
)


def resolver(table: dict[str, list[str]]):
    """A resolve function answering from `table`; unknown names fail like DNS does."""
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


PUBLIC = resolver({"example.com": ["93.184.216.34"], "v6.example": ["2606:4700:4700::1111"],
                   "dual.example": ["2606:4700:4700::1111", "93.184.216.34"],
                   "split.example": ["93.184.216.34", "10.0.0.7"],
                   "lan.example": ["192.168.1.20"], "nothing.example": []})


@pytest.mark.parametrize(("ip", "reason"), [
    ("127.0.0.1", "loopback"),
    ("127.5.5.5", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.3.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("fd12::1", "unique local"),
    ("fc00::1", "unique local"),
    ("fec0::1", "site-local"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("2002:a00:1::1", "private"),                 # 6to4 carrying 10.0.0.1
    ("2002:7f00:1::1", "loopback"),               # 6to4 carrying 127.0.0.1
    ("64:ff9b::a00:1", "private"),                # NAT64 carrying 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "cloud metadata"),     # NAT64 carrying 169.254.169.254
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("192.0.2.1", "documentation/benchmark"),
    ("198.51.100.7", "documentation/benchmark"),
    ("203.0.113.9", "documentation/benchmark"),
    ("198.18.0.1", "documentation/benchmark"),
    ("2001:db8::1", "documentation/benchmark"),
    ("3fff::1", "documentation/benchmark"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.8", "reserved"),
    ("100::1", "reserved"),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),    # Teredo, client 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "reserved"),   # Teredo, client 8.8.8.8
    ("4000::1", "reserved"),
    ("8.8.8.8", None),
    ("1.1.1.1", None),
    ("93.184.216.34", None),
    ("172.32.0.1", None),
    ("100.128.0.1", None),
    ("2606:4700:4700::1111", None),
    ("::ffff:8.8.8.8", None),
    ("2002:808:808::1", None),                    # 6to4 carrying 8.8.8.8
    ("64:ff9b::808:808", None),                   # NAT64 carrying 8.8.8.8
])
def test_is_forbidden(ip: str, reason: str | None) -> None:
    assert is_forbidden(ip) == reason


@given(st.ip_addresses())
def test_is_forbidden_never_raises_for_an_address(ip) -> None:
    reason = is_forbidden(str(ip))
    assert reason is None or (isinstance(reason, str) and reason)


@given(st.ip_addresses(v=4))
def test_ipv4_mapped_addresses_are_judged_as_their_ipv4_address(ip) -> None:
    assert is_forbidden(f"::ffff:{ip}") == is_forbidden(str(ip))


def test_is_forbidden_rejects_what_is_not_an_address() -> None:
    with pytest.raises(ValueError):
        is_forbidden("example.com")


def test_callback_refused_is_a_notifyd_error() -> None:
    exc = CallbackRefused("cannot resolve x.example")
    assert isinstance(exc, NotifydError)
    assert str(exc) == "callback URL refused: cannot resolve x.example"
    assert exc.reason == "cannot resolve x.example"


@pytest.mark.parametrize("url", [
    "http://example.com/cb",
    "https://example.com/cb?job=1",
    "https://example.com:8443/cb",
    "HTTPS://EXAMPLE.COM/cb",
    "http://v6.example/cb",
    "http://dual.example/cb",
    "http://93.184.216.34/cb",
    "http://[2606:4700:4700::1111]:8080/cb",
    "http://example.com/cb#frag@ment",
])
def test_public_urls_pass(url: str) -> None:
    check_callback_url(url, allow_private=False, resolve=PUBLIC)


@pytest.mark.parametrize(("url", "words"), [
    ("ftp://example.com/file", ["example.com", "'ftp'", "http and https"]),
    ("file:///etc/passwd", ["'file'"]),
    ("gopher://example.com/", ["'gopher'"]),
    ("example.com/cb", ["no scheme"]),
    ("//example.com/cb", ["no scheme"]),
    ("http:///cb", ["no host"]),
    ("http://user:pw@example.com/cb", ["example.com", "user name or password"]),
    ("http://user@example.com/cb", ["user name or password"]),
    ("http://@example.com/cb", ["user name or password"]),
    ("http://example.com\\@10.0.0.1/cb", ["user name or password"]),
    ("http://example.com:0/cb", ["example.com", "port 0"]),
    ("http://example.com:65536/cb", ["port 65536"]),
    ("http://example.com:99999/cb", ["port 99999"]),
    ("http://example.com:abc/cb", ["not a valid URL"]),
    ("http://example.com/\ncb", ["not a valid URL"]),
    ("http://unknown.example/cb", ["cannot resolve unknown.example"]),
    ("http://nothing.example/cb", ["cannot resolve nothing.example"]),
    ("http://10.0.0.1/cb", ["10.0.0.1 is a private address", "allow_private_callbacks = true"]),
    ("http://127.0.0.1:9000/cb", ["127.0.0.1 is a loopback address"]),
    ("http://[::1]/cb", ["::1 is a loopback address"]),
    ("http://169.254.169.254/latest/meta-data/", ["169.254.169.254 is a cloud metadata address"]),
    ("http://100.64.0.1/cb", ["100.64.0.1 is a carrier-grade NAT address"]),
    ("http://[fd12::1]/cb", ["fd12::1 is a unique local address"]),
    ("http://[::ffff:10.0.0.1]/cb", ["a private address"]),
    ("http://lan.example/cb", ["lan.example resolves to 192.168.1.20, a private address"]),
    ("http://split.example/cb", ["split.example resolves to 10.0.0.7, a private address"]),
    ("http://0.0.0.0:8080/cb", ["0.0.0.0 is an unspecified address"]),
    ("http://224.0.0.1/cb", ["224.0.0.1 is a multicast address"]),
])
def test_refused_urls_say_which_host_and_why(url: str, words: list[str]) -> None:
    with pytest.raises(CallbackRefused) as info:
        check_callback_url(url, allow_private=False, resolve=PUBLIC)
    message = str(info.value)
    assert message.startswith("callback URL refused: ")
    for word in words:
        assert word in message


def test_refusal_never_repeats_the_password() -> None:
    with pytest.raises(CallbackRefused) as info:
        check_callback_url("https://alice:s3cret@example.com/cb", allow_private=False, resolve=PUBLIC)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/cb",
    "http://10.0.0.1/cb",
    "http://[::1]/cb",
    "http://lan.example/cb",
    "http://split.example/cb",
])
def test_allow_private_lets_private_addresses_through(url: str) -> None:
    check_callback_url(url, allow_private=True, resolve=PUBLIC)


@pytest.mark.parametrize(("url", "words"), [
    ("http://0.0.0.0/cb", "unspecified"),
    ("http://[::]/cb", "unspecified"),
    ("http://224.0.0.1/cb", "multicast"),
    ("http://[ff02::1]/cb", "multicast"),
])
def test_allow_private_still_refuses_unspecified_and_multicast(url: str, words: str) -> None:
    with pytest.raises(CallbackRefused) as info:
        check_callback_url(url, allow_private=True, resolve=PUBLIC)
    assert words in str(info.value)
    assert "allow_private_callbacks" not in str(info.value)


def test_check_resolves_the_host_with_the_default_port() -> None:
    resolve = resolver({"example.com": ["93.184.216.34"]})
    check_callback_url("https://example.com/cb", allow_private=False, resolve=resolve)
    check_callback_url("http://example.com/cb", allow_private=False, resolve=resolve)
    check_callback_url("http://example.com:8080/cb", allow_private=False, resolve=resolve)
    assert resolve.calls == [("example.com", 443), ("example.com", 80), ("example.com", 8080)]


def test_pick_address_prefers_ipv4_and_refuses_any_bad_address() -> None:
    assert pick_address("dual.example", 80, False, PUBLIC) == "93.184.216.34"
    assert pick_address("v6.example", 80, False, PUBLIC) == "2606:4700:4700::1111"
    with pytest.raises(CallbackRefused, match="split.example resolves to 10.0.0.7"):
        pick_address("split.example", 80, False, PUBLIC)
    assert pick_address("split.example", 80, True, PUBLIC) == "93.184.216.34"
    with pytest.raises(CallbackRefused, match="cannot resolve nothing.example"):
        pick_address("nothing.example", 80, True, PUBLIC)


def test_pick_address_refuses_a_resolver_answer_that_is_not_an_address() -> None:
    with pytest.raises(CallbackRefused, match="not an IP address"):
        pick_address("odd.example", 80, True, resolver({"odd.example": ["odd"]}))


def test_default_resolve_returns_ip_literals_without_dns() -> None:
    assert default_resolve("10.0.0.1", 80) == ["10.0.0.1"]
    assert default_resolve("::1", 80) == ["::1"]
    assert default_resolve("[2606:4700:4700::1111]", 443) == ["2606:4700:4700::1111"]


def test_default_resolve_localhost_is_loopback() -> None:
    addresses = default_resolve("localhost", 80)
    assert addresses and all(is_forbidden(a) == "loopback" for a in addresses)
    assert len(addresses) == len(set(addresses))
    with pytest.raises(CallbackRefused, match="localhost resolves to .*loopback"):
        check_callback_url("http://localhost:8080/cb", allow_private=False)


@pytest.mark.parametrize(("url", "expected"), [
    ("http://example.com/cb?job=7",
     ("http://93.184.216.34/cb?job=7", {"Host": "example.com"}, {})),
    ("http://example.com:8080/cb",
     ("http://93.184.216.34:8080/cb", {"Host": "example.com:8080"}, {})),
    ("https://example.com/cb",
     ("https://93.184.216.34/cb", {"Host": "example.com"}, {"sni_hostname": "example.com"})),
    ("https://example.com:8443/a/b",
     ("https://93.184.216.34:8443/a/b", {"Host": "example.com:8443"}, {"sni_hostname": "example.com"})),
    ("http://v6.example:8080/cb",
     ("http://[2606:4700:4700::1111]:8080/cb", {"Host": "v6.example:8080"}, {})),
    ("https://v6.example/cb",
     ("https://[2606:4700:4700::1111]/cb", {"Host": "v6.example"}, {"sni_hostname": "v6.example"})),
    ("https://[2606:4700:4700::1111]:8443/cb",
     ("https://[2606:4700:4700::1111]:8443/cb", {"Host": "[2606:4700:4700::1111]:8443"},
      {"sni_hostname": "2606:4700:4700::1111"})),
    ("http://93.184.216.34/cb",
     ("http://93.184.216.34/cb", {"Host": "93.184.216.34"}, {})),
])
def test_pinned_request_args(url: str, expected: tuple) -> None:
    assert pinned_request_args(url, allow_private=False, resolve=PUBLIC) == expected


def test_pinned_request_args_apply_the_same_rules() -> None:
    for url in ("ftp://example.com/", "http://u:p@example.com/", "http://split.example/",
                "http://example.com:0/"):
        with pytest.raises(CallbackRefused):
            pinned_request_args(url, allow_private=False, resolve=PUBLIC)


def test_pinned_request_args_resolve_once() -> None:
    resolve = resolver({"example.com": ["93.184.216.34"]})
    pinned_request_args("https://example.com/cb", allow_private=False, resolve=resolve)
    assert resolve.calls == [("example.com", 443)]


def test_pinned_request_reaches_the_checked_address_with_the_original_host() -> None:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.headers.get("Host"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url, headers, extensions = pinned_request_args(f"http://localhost:{port}/cb", allow_private=True)
        assert url == f"http://127.0.0.1:{port}/cb"
        with httpx.Client(trust_env=False, timeout=5) as client:
            response = client.post(url, headers=headers, extensions=extensions, json={"ok": True})
        assert response.status_code == 204
        assert seen == [f"localhost:{port}"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://[fd00:ec2::254]/"])
def test_cloud_metadata_is_refused_even_when_private_callbacks_are_allowed(url: str) -> None:
    with pytest.raises(CallbackRefused, match="cloud metadata"):
        check_callback_url(url, allow_private=True)
