"""notifyd.sources.uptimekuma: what Uptime Kuma's webhook sends (tests/fixtures/uptimekuma) through a
running daemon to its kind, level and message; pending and maintenance recorded quietly; a named
source's token in the URL; bodies of the wrong shape refused naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifyd.errors import BadPayload
from notifyd.event_kinds import KNOWN_KINDS, MONITOR_KINDS, QUIET
from notifyd.sources import SOURCE_TYPES, TokenForm
from notifyd.sources.uptimekuma import parse_uptimekuma

from sender_world import World, fixture_names, load_fixture, replaced, sender_config, start_world

TOKEN = "uptimekuma-token-0123456789"
SOURCES = f"""
[sources.kuma]
type = "uptimekuma"
token = "{TOKEN}"
"""
URL = "https://jellyfin.example.net/health"

# fixture → (kind, level, title, body) of the message a service without an `events` filter gets.
MESSAGES: dict[str, tuple[str, str, str, str]] = {
    "down": ("monitor_down", "failure", "Media / Jellyfin is down", f"Request failed with status code 502\n{URL}"),
    "up": ("monitor_up", "success", "Media / Jellyfin is up", f"Down for 12m30s · 200 - OK · 182 ms\n{URL}"),
    "certificate-expiry": ("notification", "warning", "Uptime Kuma",
                           f"[Jellyfin][{URL}] server certificate jellyfin.example.net will expire in 6 days"),
}
TESTS = ("test",)


def fixture(name: str) -> dict[str, Any]:
    return load_fixture("uptimekuma", name)


def with_status(status: int) -> dict[str, Any]:
    body = fixture("down")
    body["heartbeat"]["status"] = status
    return body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("uptimekuma"), sender_config(SOURCES)) as world:
        yield world


def test_every_fixture_has_expectations() -> None:
    assert sorted([*MESSAGES, *TESTS]) == fixture_names("uptimekuma")


def test_every_body_end_to_end(world: World) -> None:
    for name in fixture_names("uptimekuma"):
        world.told("uptimekuma", name, fixture(name), None if name in TESTS else MESSAGES[name])


@pytest.mark.parametrize(("status", "kind"), [(2, "monitor_pending"), (3, "monitor_maintenance")])
def test_pending_and_maintenance_are_recorded_and_told_to_no_one(world: World, status: int, kind: str) -> None:
    answer = world.daemon.post("/webhooks/uptimekuma", with_status(status))
    assert answer.status_code == 202, answer.text
    assert (answer.json()["kind"], answer.json()["jobs"]) == (kind, [])
    assert world.daemon.get(f"/events/{answer.json()['event_id']}").json()["title"] == "Media / Jellyfin"


def test_a_named_source_takes_its_token_in_the_url(world: World) -> None:
    body = fixture("down")
    body["monitor"]["pathName"] = "Backups"
    assert world.daemon.post("/webhooks/kuma", body).status_code == 401
    assert world.daemon.post("/webhooks/kuma?token=not-the-token", body).status_code == 401
    answer = world.daemon.post(f"/webhooks/kuma?token={TOKEN}", body)
    assert answer.status_code == 202, answer.text
    event = world.settled(answer.json()["event_id"])
    assert (event["source"], event["kind"], event["title"]) == ("kuma", "monitor_down", "Backups")
    assert TOKEN not in world.daemon.log()


BAD: list[tuple[str, str, Any, str]] = [
    ("down", "heartbeat", "down", "heartbeat"),
    ("down", "heartbeat.status", 7, "heartbeat.status"),
    ("down", "heartbeat.status", "0", "heartbeat.status"),
    ("down", "heartbeat.status", None, "heartbeat.status"),
    ("down", "monitor", None, "monitor"),
    ("down", "heartbeat.ping", "fast", "heartbeat.ping"),
    ("down", "heartbeat.time", "yesterday", "heartbeat.time"),
    ("down", "heartbeat.time", "0001-01-01T00:00:00+01:00", "heartbeat.time"),     # before year 1 in UTC
    ("down", "heartbeat.time", "9999-12-31T23:59:59-01:00", "heartbeat.time"),     # after 9999 in UTC
    ("up", "heartbeat.lastDownTime", "2025-13-01 00:00:00", "heartbeat.lastDownTime"),
    ("down", "monitor.name", ["Jellyfin"], "monitor.name"),
    ("down", "monitor.port", 70000, "monitor.port"),
    ("down", "monitor.url", "https://a\nb", "monitor.url"),
    ("test", "msg", None, "msg"),
    ("test", "msg", "   ", "msg"),
]


@pytest.mark.parametrize(("name", "key", "value", "field"), BAD, ids=[f"{b[1]}={b[2]!r}" for b in BAD])
def test_a_body_of_the_wrong_shape_is_422_naming_the_field(world: World, name: str, key: str, value: Any,
                                                          field: str) -> None:
    answer = world.daemon.post("/webhooks/uptimekuma", replaced(fixture(name), key, value))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_payload"
    assert f"field {field!r}" in answer.json()["detail"], answer.text


def parse(body: dict[str, Any]) -> Any:
    return parse_uptimekuma(body, "uptimekuma", "uptimekuma", json.dumps(body))


def test_the_source_is_registered_with_the_token_in_the_url() -> None:
    source = SOURCE_TYPES["uptimekuma"]
    assert source.parse is parse_uptimekuma and source.token_form is TokenForm.QUERY
    assert "Preset - application/json" in source.settings


def test_every_kind_that_is_told_is_in_the_vocabulary() -> None:
    told = {parse(fixture(name)).kind for name in MESSAGES}
    assert told - {"notification"} == set(MONITOR_KINDS) and told <= KNOWN_KINDS
    for status in (2, 3):
        assert parse(with_status(status)).media[QUIET]


def test_facts_a_template_can_use() -> None:
    up = parse(fixture("up")).media
    assert {k: up[k] for k in ("monitor", "monitor_id", "monitor_type", "address", "status", "message", "ping_ms",
                               "time", "down_for_s", "downtime")} == {
        "monitor": "Jellyfin", "monitor_id": 3, "monitor_type": "http", "address": URL, "status": "up",
        "message": "200 - OK", "ping_ms": 182, "time": "2025-03-01T21:26:35.911Z", "down_for_s": 750,
        "downtime": "12m30s"}
    assert parse(fixture("test")).media["notification"] == "My Webhook Alert (1)"
    # The page a check fetched is never kept.
    assert "502 Bad Gateway</title>" not in json.dumps(dict(parse(fixture("down")).media))


@pytest.mark.parametrize(("monitor", "address"), [
    ({"type": "ping", "hostname": "nas.lan", "url": "https://"}, "nas.lan"),
    ({"type": "port", "hostname": "nas.lan", "port": 445, "url": "https://"}, "nas.lan:445"),
    ({"type": "push", "url": "https://"}, None),
    ({"type": "http", "url": "https://user:secret@jellyfin.lan/health"}, "https://jellyfin.lan/health"),
    ({"type": "mqtt", "hostname": "broker.lan", "url": "http://"}, "broker.lan"),
])
def test_the_address_is_what_the_monitor_checks_without_credentials(monitor: dict[str, Any],
                                                                    address: str | None) -> None:
    body = fixture("down")
    body["monitor"] = {"id": 9, "name": "Thing", **monitor}
    assert parse(body).media.get("address") == address


def test_a_heartbeat_without_a_message_and_a_monitor_without_a_name() -> None:
    body = fixture("down")
    body["heartbeat"]["msg"] = "N/A"                 # Uptime Kuma's word for no message
    body["monitor"] = {"id": 12}
    event = parse(body)
    assert (event.title, "message" in event.media) == ("monitor 12", False)
    # Up again at a time before it went down (a clock moved): no downtime is said.
    up = fixture("up")
    up["heartbeat"]["lastDownTime"] = "2025-03-02T00:00:00Z"
    assert "downtime" not in parse(up).media


VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=24),
                   st.sampled_from(["2025-03-01 21:14:05.482", "2025-03-01T21:14:05Z", "https://", "N/A"]),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=6), st.text(max_size=6),
                                                                         max_size=2))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(fixture_names("uptimekuma")), data=st.data())
def test_a_damaged_body_gives_an_event_or_bad_payload(name: str, data: st.DataObject) -> None:
    body = fixture(name)
    for holder in (body, body.get("heartbeat"), body.get("monitor")):
        if isinstance(holder, dict) and data.draw(st.booleans()):
            holder[data.draw(st.sampled_from(sorted(holder)))] = data.draw(VALUES)
    try:
        event = parse(body)
    except BadPayload as exc:
        assert str(exc).startswith("field '")
        return
    assert event.title and event.media["level"] in ("info", "success", "warning", "failure")
    json.dumps(dict(event.media))
