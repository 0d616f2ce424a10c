"""The listener's edge: body decoding, header bounds, routes that never redirect, quiet disconnects,
and log lines that carry no raw control characters."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from notifyd.errors import BadHeader, BadRequest, UnsupportedMedia
from notifyd.listener import MAX_KEY, decode_body, dedupe_key

from conftest import DaemonFactory, cli_json, wait_for, write_config


@pytest.mark.parametrize("raw", [b'{"v": 1e999}', b'{"v": -1e999}', b'{"a": [1, {"b": 2.5e400}]}',
                                 b'{"v": 1E+309}'])
def test_numbers_that_overflow_to_infinity_are_refused_at_decode(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="too large"):
        decode_body(raw, "application/json")


def test_large_finite_numbers_and_big_integers_still_decode() -> None:
    assert decode_body(b'{"v": 1.7e308, "n": 123456789012345678901234567890}', None) == {
        "v": 1.7e308, "n": 123456789012345678901234567890}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-16", "application/json;charset=latin-1",
                                          'application/json; charset="UTF-32"', "text/json; charset=utf-8"])
def test_other_charsets_and_media_types_are_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMedia):
        decode_body(b'{"title": "x"}', content_type)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json;charset=UTF8",
                                          'application/json; charset="utf-8"', "application/vnd.x+json"])
def test_utf8_is_accepted_however_it_is_spelled(content_type: str) -> None:
    assert decode_body(b'{"title": "x"}', content_type) == {"title": "x"}


def test_idempotency_keys_are_bounded() -> None:
    assert dedupe_key({"idempotency-key": "k" * MAX_KEY}, b"{}") == "k" * MAX_KEY
    assert dedupe_key({"webhook-id": "msg_1"}, b"{}") == "msg_1"
    assert dedupe_key({}, b"{}").startswith("sha256:")
    with pytest.raises(BadHeader, match="limit is 200"):
        dedupe_key({"idempotency-key": "k" * 60_000}, b"{}")


def test_the_edge_over_http(tmp_path: Path, daemons: DaemonFactory) -> None:
    config = write_config(tmp_path / "config.toml")
    daemon = daemons.start(config)
    url = daemon.url + "/webhooks/generic"
    cases = [
        (httpx.post(url, content=b'{"title": "x", "n": 1e999}', headers={"Content-Type": "application/json"}),
         400, "invalid_json"),
        (httpx.post(url, content=b'{"title": "x"}',
                    headers={"Content-Type": "application/json; charset=utf-16"}), 415, "unsupported_media_type"),
        (httpx.post(url, json={"title": "x"}, headers={"Idempotency-Key": "k" * 60_000}), 400, "invalid_header"),
        (httpx.post(url + "/", json={"title": "x"}), 404, "not_found"),
        (httpx.get(daemon.url + "/health/"), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]) == (status, code), response.text
        assert response.json()["detail"]
    assert cli_json("events", "list", config=config, env=daemon.env) == []
    assert httpx.post(url, json={"title": "fine"}).status_code == 202


def test_control_characters_in_a_path_are_escaped_in_the_log(tmp_path: Path, daemons: DaemonFactory) -> None:
    daemon = daemons.start(write_config(tmp_path / "config.toml"))
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(b"POST /webhooks/x%00y%0aINFO%20forged HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
                     b"Content-Type: application/json\r\n\r\n{}")
        assert b" 404 " in sock.recv(4096)
    wait_for(lambda: "x\\x00y\\nINFO forged" in daemon.log(), 10, message="the escaped log line")
    assert "\x00" not in daemon.log()
    assert not any(line.startswith("INFO forged") for line in daemon.log().splitlines())


def test_a_client_that_leaves_mid_body_is_not_an_error(tmp_path: Path, daemons: DaemonFactory) -> None:
    daemon = daemons.start(write_config(tmp_path / "config.toml"))
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
            sock.sendall(b"POST /webhooks/generic HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 5000\r\n\r\n" + json.dumps({"title": "cut"}).encode()[:-1])
    assert httpx.post(daemon.url + "/webhooks/generic", json={"title": "after"}).status_code == 202
    log = daemon.log()
    assert "ERROR" not in log and "Traceback" not in log, log
    assert [e["title"] for e in cli_json("events", "list", config=daemon.config, env=daemon.env)] == ["after"]
