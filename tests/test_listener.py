"""The listener's edge: body decoding, header bounds, routes that never redirect, quiet disconnects,
log lines that carry no raw control characters, and the hot route (POST /webhooks/…) answering
exactly as the Starlette application behind it would."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifyd.config import parse_config
from notifyd.config_reload import ConfigState
from notifyd.errors import BadHeader, BadRequest, UnsupportedMedia
from notifyd.ingest import IngestWriter
from notifyd.listener import MAX_KEY, Listener, ListenerDeps, create_app, decode_body, dedupe_key
from notifyd.store.sqlite import SqliteStore

from conftest import FIXTURES, DaemonFactory, cli_json, wait_for, write_config


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


# -- the JSON decoder's fast path agrees with the json module ---------------------------------

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=24)


def _same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (1 is not 1.0; -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)      # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return repr(a) == repr(b)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_TEXT, _VALUES, max_size=6), st.booleans())
def test_a_body_decodes_to_exactly_what_the_json_module_reads(value: dict, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8")
    assert _same(decode_body(raw, "application/json"), json.loads(raw))


@pytest.mark.parametrize("raw", [b'{"n": 123456789012345678901234567890}', b'{"n": -9223372036854775809}',
                                 b'{"n": 18446744073709551616}', b'{"n": 9223372036854775807, "m": -0}',
                                 b'{"a": 1, "a": 2}', b'{"s": "' + b"[" * 100 + b'"}', b'{"x": 0.1, "y": 1e308}'])
def test_bodies_the_fast_decoder_would_read_otherwise_keep_the_json_modules_values(raw: bytes) -> None:
    assert _same(decode_body(raw, None), json.loads(raw))


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"v": NaN}', "NaN is not a JSON number"),
    (b'{"v": Infinity}', "Infinity is not a JSON number"),
    (b'\xef\xbb\xbf{"v": 1}', "Unexpected UTF-8 BOM"),
    (b'{"v": "\\ud800"}', "unpaired UTF-16 surrogate"),
    (b'{"v": "\\u0000"}', "NUL character"),
    (b'{"v": 1} x', "Extra data"),
    (b'{"v": "\xff"}', "not valid UTF-8"),
    (b'{"v": ' + b"[" * 70 + b"]" * 70 + b"}", "nested deeper than 64"),
    (b'[1, 2]', "expected a JSON object, got list"),
])
def test_what_is_refused_is_refused_with_the_reason_the_json_module_gives(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(reason)):
        decode_body(raw, "application/json")


# -- the hot route answers exactly as the Starlette application would --------------------------


@pytest.fixture
def listeners(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Listener]]:
    """Listeners on real stores, made from a config's server section; stopped at the end."""
    made: list[tuple[IngestWriter, SqliteStore]] = []

    def make(server: dict[str, Any]) -> Listener:
        store = SqliteStore(tmp_path / f"notifyd-{len(made)}.db")
        store.migrate()
        config = parse_config({"server": server}, path=None)
        writer = IngestWriter(store, lambda: config).start()
        made.append((writer, store))
        return create_app(ListenerDeps(config=lambda: config, writer=writer, store=store,
                                       config_state=ConfigState))

    yield make
    for writer, store in made:
        writer.stop()
        store.close()


def _answers(app: Any, requests: list[dict[str, Any]]) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    async def send_all() -> list[tuple[int, list[tuple[str, str]], bytes]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as client:
            found = []
            for request in requests:
                answer = await client.request(**request)
                found.append((answer.status_code, answer.headers.multi_items(), answer.content))
            return found
    return asyncio.run(send_all())


RADARR = (FIXTURES / "arr" / "radarr" / "Download.json").read_bytes()
JSON = {"content-type": "application/json"}
REQUESTS: list[dict[str, Any]] = [
    {"method": "POST", "url": "/webhooks/radarr", "content": RADARR, "headers": JSON},                # 202
    {"method": "POST", "url": "/webhooks/radarr", "content": RADARR, "headers": JSON},                # repeat: 200
    {"method": "POST", "url": "/webhooks/radarr", "content": RADARR.replace(b"Arrival", b"Arrivals"),
     "headers": {**JSON, "Authorization": "Basic " + base64.b64encode(b"radarr:tok-0123456789").decode()}},
    {"method": "POST", "url": "/webhooks/radarr", "content": b"{}", "headers": JSON},                 # 422
    {"method": "POST", "url": "/webhooks/radarr", "content": b"{", "headers": JSON},                  # 400
    {"method": "POST", "url": "/webhooks/radarr", "content": RADARR, "headers": {"content-type": "text/plain"}},
    {"method": "POST", "url": "/webhooks/radarr", "content": b"", "headers": JSON},
    {"method": "POST", "url": "/webhooks/radarr", "content": b"x" * 5000, "headers": JSON},          # 413
    {"method": "POST", "url": "/webhooks/nosuch", "content": RADARR, "headers": JSON},                # 404
    {"method": "POST", "url": "/webhooks/radarr/", "content": RADARR, "headers": JSON},               # no route
    {"method": "GET", "url": "/webhooks/radarr"},                                                     # 405
    {"method": "POST", "url": "/webhooks/radarr", "content": RADARR, "headers": {**JSON, "host": "evil.example"}},
    {"method": "POST", "url": "/webhooks/generic", "content": b'{"title": "t"}',
     "headers": {**JSON, "idempotency-key": "k" * 300}},                                              # bad header
    {"method": "POST", "url": "/webhooks/generic?token=wrong", "content": b'{"title": "t"}', "headers": JSON},
    {"method": "POST", "url": "/webhooks/radarr", "content": RADARR.replace(b'"year": 2016', b'"year": "x"'),
     "headers": JSON},
]


@pytest.mark.parametrize("token", [None, "tok-0123456789"])
def test_the_hot_route_answers_as_the_application_behind_it(
        listeners: Callable[[dict[str, Any]], Listener], token: str | None) -> None:
    # Two daemons alike, each on a new store: one answered by the hot route, one by Starlette's stack.
    server: dict[str, Any] = {"max_body": "4KiB"} | ({"token": token} if token else {})
    fast, full = listeners(server), listeners(server)
    answers = _answers(fast, REQUESTS)
    assert answers == _answers(full.app, REQUESTS)
    assert [status for status, _, _ in answers][:3] == ([202, 200, 202] if token is None else [401, 401, 202])
