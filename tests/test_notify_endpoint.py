"""POST /notify over real HTTP to one `notifyd serve`: a script's own message, taken like a webhook
(202 once committed, durable, delivered through Apprise), restricted to the services it names,
protected by the token, refused with a 422 naming the field, deduplicated only by Idempotency-Key,
and never 202 when the store cannot be written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_store_failures import Unwritable, unwritable  # noqa: F401  (the fixture, shared)

from conftest import Daemon, DaemonFactory, Receiver, wait_for, write_config

TOKEN = "notify-test-token"
SERVICES = """
[services.chat]
type = "apprise"
url = "json://127.0.0.1:{chat}/chat"

[services.alerts]
type = "apprise"
url = "json://127.0.0.1:{alerts}/alerts"

[services.off]
type = "apprise"
url = "json://127.0.0.1:{chat}/off"
enabled = false
"""


@dataclass
class World:
    daemon: Daemon
    chat: Receiver
    alerts: Receiver
    client: httpx.Client                # carries the token

    def notify(self, body: Any, **kwargs: Any) -> httpx.Response:
        return self.client.post("/notify", json=body, **kwargs)


def config_with_token(tmp: Path, services: str) -> Path:
    config = write_config(tmp / "config.toml", services=services)
    config.write_text(config.read_text().replace('max_body = "64KB"', f'max_body = "64KB"\ntoken = "{TOKEN}"'))
    return config


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("notify")
    chat, alerts = Receiver(), Receiver()
    factory = DaemonFactory(tmp)
    daemon = factory.start(config_with_token(tmp, SERVICES.format(chat=chat.port, alerts=alerts.port)))
    client = httpx.Client(base_url=daemon.url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        yield World(daemon, chat, alerts, client)
    finally:
        client.close()
        daemon.stop()
        factory.cleanup()
        chat.close()
        alerts.close()


def delivered(receiver: Receiver, title: str) -> list[dict[str, Any]]:
    return [b for b in receiver.bodies() if isinstance(b, dict) and b.get("title") == title]


def test_a_message_is_answered_202_and_delivered_to_every_enabled_service(world: World) -> None:
    answer = world.notify({"title": "Backup finished", "body": "nightly: 12 GiB in 4m", "level": "warning"})
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["kind"] == "notification" and data["duplicate"] is False
    assert sorted(j["service"] for j in data["jobs"]) == ["alerts", "chat"]       # not the disabled one
    for receiver in (world.chat, world.alerts):
        bodies = wait_for(lambda r=receiver: delivered(r, "Backup finished"), message="the delivery")
        assert len(bodies) == 1
        assert bodies[0]["message"] == "nightly: 12 GiB in 4m" and bodies[0]["type"] == "warning"
    event = world.client.get(f"/events/{data['event_id']}").json()
    assert (event["source"], event["source_type"], event["kind"]) == ("api", "manual", "notification")
    assert event["title"] == "Backup finished" and event["body"] == "nightly: 12 GiB in 4m"
    assert "/off" not in {r.path for r in world.chat.requests}


def test_the_level_defaults_to_info_and_a_body_alone_is_enough(world: World) -> None:
    answer = world.notify({"body": "only a body"})
    assert answer.status_code == 202, answer.text
    wait_for(lambda: [b for b in world.alerts.bodies() if b.get("message") == "only a body"], message="delivery")
    body = next(b for b in world.alerts.bodies() if b.get("message") == "only a body")
    assert body["type"] == "info" and body["title"] == "api: notification"     # the default template's title


def test_services_restricts_the_message_to_those_named(world: World) -> None:
    answer = world.notify({"title": "Only alerts", "body": "x", "level": "failure", "services": ["alerts"]})
    assert answer.status_code == 202, answer.text
    assert [j["service"] for j in answer.json()["jobs"]] == ["alerts"]
    body = wait_for(lambda: delivered(world.alerts, "Only alerts"), message="the delivery")[0]
    assert body["type"] == "failure"
    event = wait_for(lambda: (lambda e: e if e["jobs"][0]["delivery"] == "sent" else None)(
        world.client.get(f"/events/{answer.json()['event_id']}").json()), message="the job sent")
    assert [j["service"] for j in event["jobs"]] == ["alerts"]
    assert delivered(world.chat, "Only alerts") == []


def test_the_token_is_required(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = httpx.post(world.daemon.url + "/notify", json={"title": "no"}, headers=headers, timeout=10)
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    answer = httpx.post(world.daemon.url + f"/notify?token={TOKEN}", json={"title": "by query"}, timeout=10)
    assert answer.status_code == 202


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"title": " ", "body": ""}, "title", "at least one non-empty string"),
    ({}, "title", "at least one non-empty string"),
    ({"title": 5}, "title", "a string"),
    ({"title": "x", "level": "debug"}, "level", "one of info, success, warning, failure"),
    ({"title": "x", "services": ["nosuch", "chat", "other"]}, "services", "no service 'nosuch', 'other'"),
    ({"title": "x", "services": ["off"]}, "services", "'off' is disabled"),
    ({"title": "x", "services": []}, "services", "at least one service name"),
    ({"title": "x", "services": "chat"}, "services", "an array of service names"),
    ({"title": "x", "services": ["chat", 7]}, "services[1]", "a service name"),
    ({"title": "x", "titel": "y"}, "titel", "not a field here"),
])
def test_bad_bodies_are_422_naming_the_field(world: World, body: dict[str, Any], field: str, says: str) -> None:
    answer = world.notify(body)
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["error"] == "invalid_payload" and error["detail"].startswith(f"field '{field}")
    assert says in error["detail"], error["detail"]


def test_bodies_that_are_not_json_objects_are_refused_as_webhooks_are(world: World) -> None:
    assert world.client.post("/notify", content=b"{nope", headers={"content-type": "application/json"}
                             ).status_code == 400
    assert world.client.post("/notify", content=b'["title"]', headers={"content-type": "application/json"}
                             ).status_code == 400
    assert world.client.post("/notify", content=b"title=x", headers={"content-type": "text/plain"}
                             ).status_code == 415
    too_big = world.notify({"title": "big", "body": "x" * 70_000})
    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
    assert world.client.get("/notify").status_code == 405


def test_only_an_idempotency_key_dedupes(world: World) -> None:
    message = {"title": "Disk almost full", "body": "91 %"}
    first, second = world.notify(message), world.notify(message)
    assert first.status_code == second.status_code == 202            # the same text twice is meant twice
    assert first.json()["event_id"] != second.json()["event_id"]
    keyed = world.notify({"title": "Once", "body": "keyed"}, headers={"Idempotency-Key": "notify-once-1"})
    repeat = world.notify({"title": "Once", "body": "keyed"}, headers={"Idempotency-Key": "notify-once-1"})
    assert keyed.status_code == 202 and repeat.status_code == 200
    assert repeat.json()["duplicate"] is True and repeat.json()["event_id"] == keyed.json()["event_id"]
    assert repeat.json()["jobs"] == keyed.json()["jobs"]
    over = world.notify({"title": "x"}, headers={"Idempotency-Key": "k" * 201})
    assert over.status_code == 400 and over.json()["error"] == "invalid_header"
    wait_for(lambda: delivered(world.chat, "Once"), message="the keyed message")
    assert len(delivered(world.chat, "Once")) == 1


def test_a_store_that_cannot_be_written_gets_503_never_202(tmp_path: Path, daemons: DaemonFactory,
                                                           receiver: Receiver,
                                                           unwritable: Unwritable) -> None:  # noqa: F811
    config = config_with_token(tmp_path, f'\n[services.sink]\ntype = "apprise"\nurl = "{receiver.json_url}"\n')
    daemon = daemons.start(config)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert daemon.post("/notify", {"title": "before"}, headers=headers).status_code == 202
    wait_for(lambda: delivered(receiver, "before"), message="the first delivery")
    files = (tmp_path / "notifyd.db", tmp_path / "notifyd.db-wal")
    unwritable(*files)
    try:
        refused = daemon.post("/notify", {"title": "while unwritable"}, headers=headers)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "store_unavailable"
    finally:
        unwritable(*files, on=False)
    after = wait_for(lambda: (lambda r: r if r.status_code == 202 else None)(
        daemon.post("/notify", {"title": "after"}, headers=headers)), 10, interval=0.2, message="a 202 again")
    assert after.json()["jobs"][0]["service"] == "sink"
    wait_for(lambda: delivered(receiver, "after"), message="the delivery after")
    assert delivered(receiver, "while unwritable") == []
    assert daemon.stop() == 0
