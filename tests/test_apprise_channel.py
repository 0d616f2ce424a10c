"""The Apprise channel against a real receiver on 127.0.0.1, and — for services that cannot run
here (Discord, Pushover) — the exact request it would send."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from notifyd.channels.apprise_channel import AppriseChannel
from notifyd.config import ServiceConfig
from notifyd.errors import PermanentError, TransientError
from notifyd.model import Delivery, Event, StoredEvent

from conftest import Receiver


def stored(title: str = "Backup done", body: str = "12 GiB", level: str = "success") -> StoredEvent:
    return StoredEvent(1, 0.0, Event(source="generic", source_type="generic", kind="backup", title=title,
                                     body=body, media={"level": level}))


def delivery(event: StoredEvent) -> Delivery:
    """Job 1 of service "s", a notify, for this event."""
    return Delivery(job_id=1, service="s", kind="notify", data={}, load_event=lambda: event)


def channel(url: str, timeout: float = 5.0) -> AppriseChannel:
    return AppriseChannel(ServiceConfig(name="s", type="apprise", options={"url": url}), timeout)


def test_delivers_title_body_and_level_and_records_the_result(receiver: Receiver) -> None:
    detail = json.loads(channel(receiver.json_url).deliver(delivery(stored())))
    assert receiver.bodies() == [{"version": "1.0", "title": "Backup done", "message": "12 GiB",
                                  "attachments": [], "type": "success"}]
    assert receiver.requests[0].path == "/hook"
    assert detail["status"] == "SUCCESS" and detail["url"].startswith("json://127.0.0.1")
    assert detail["service"] == "JSON" and isinstance(detail["logs"], list)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_server_errors_and_throttling_are_transient(receiver: Receiver, status: int) -> None:
    receiver.default_status = status
    with pytest.raises(TransientError, match=f"HTTP {status}") as caught:
        channel(receiver.json_url).deliver(delivery(stored()))
    assert json.loads(caught.value.detail)["status"] == "FAILURE"


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_permanent(receiver: Receiver, status: int) -> None:
    receiver.default_status = status
    with pytest.raises(PermanentError, match=f"HTTP {status}.*credentials"):
        channel(receiver.json_url).deliver(delivery(stored()))


def test_a_receiver_that_is_down_is_transient(receiver: Receiver) -> None:
    port = receiver.port
    receiver.close()
    with pytest.raises(TransientError):
        channel(f"json://127.0.0.1:{port}/hook", timeout=2).deliver(delivery(stored()))


def test_only_one_try_per_attempt_even_if_the_url_asks_for_retries(receiver: Receiver) -> None:
    receiver.default_status = 503
    with pytest.raises(TransientError):
        channel(receiver.json_url + "?retry=3").deliver(delivery(stored()))
    assert len(receiver.requests) == 1          # our queue owns retries


def test_an_invalid_url_is_permanent() -> None:
    with pytest.raises(PermanentError, match="invalid Apprise URL"):
        channel("nosuchscheme://whatever").deliver(delivery(stored()))


def test_password_is_masked_in_target_and_detail(receiver: Receiver) -> None:
    ch = channel(f"json://user:hunter2-very-secret@127.0.0.1:{receiver.port}/hook")
    detail = ch.deliver(delivery(stored()))
    assert "hunter2-very-secret" not in ch.target and "hunter2-very-secret" not in detail
    assert ch.target == f"json://user:****@127.0.0.1:{receiver.port}/hook"


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.content = b""
        self.text = ""
        self.headers: dict[str, str] = {}


def capture_posts(monkeypatch: pytest.MonkeyPatch, status: int = 204) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    def fake_post(url: str, **kwargs: Any) -> FakeResponse:
        sent.append({"url": url, **kwargs})
        return FakeResponse(status)

    monkeypatch.setattr(requests, "post", fake_post)
    return sent


def test_discord_request_is_exactly_what_discord_expects(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = capture_posts(monkeypatch)
    ch = channel("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js")
    ch.deliver(delivery(stored(title="Arrival (2016)", body="imported")))
    assert len(sent) == 1
    assert sent[0]["url"] == "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"
    payload = json.loads(sent[0]["data"])
    assert payload["content"] == "Arrival (2016)\r\nimported" and payload["wait"] is True
    assert sent[0]["timeout"] == (5.0, 5.0)
    assert "JHMHI8qBe7bk2ZwO5U711o3dV_js" not in ch.target


def test_discord_401_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    capture_posts(monkeypatch, status=401)
    with pytest.raises(PermanentError, match="HTTP 401"):
        channel("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js").deliver(delivery(stored()))


def test_pushover_request(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = capture_posts(monkeypatch, status=200)
    user, token = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
    channel(f"pover://{user}@{token}").deliver(delivery(stored(title="Health", body="disk low", level="warning")))
    assert sent[0]["url"] == "https://api.pushover.net/1/messages.json"
    data = sent[0]["data"]
    assert data["user"] == user and data["token"] == token
    assert data["title"] == "Health" and data["message"] == "disk low"


def test_urls_with_placeholders_are_shown_masked() -> None:
    from notifyd.channels import describe_target

    for url, secret in (("pover://uQiRzpo4DXghDmr9QzzfQu27cmVRsG@azGDORePK8gMaC0QOYAMyEEuzJnyUi/{device}",
                         "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"),
                        ("tgram://123456789:AAsecretBOTtoken77/{chat_id}", "AAsecretBOTtoken77")):
        shown = describe_target(ServiceConfig(name="s", type="apprise", options={"url": url}))
        assert secret not in shown and "per run" in shown, shown


def record_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every time.sleep of a second or more (Apprise's throttle sleeps for its pace)."""
    import time

    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if seconds >= 1:
            slept.append(seconds)
        real_sleep(min(seconds, 0.01))

    monkeypatch.setattr(time, "sleep", sleep)
    return slept


def test_a_paced_service_hands_each_next_message_back_to_the_queue_for_its_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from notifyd.errors import Deferred

    sent = capture_posts(monkeypatch, status=200)
    slept = record_sleeps(monkeypatch)
    ch = channel("ntfy://ntfy.example.com/backups")       # ntfy keeps Apprise's pace: 5.5 s
    ch.deliver(delivery(stored()))
    turns = []
    for job_id in (2, 3):
        with pytest.raises(Deferred, match="one message every 5.5 s") as caught:
            ch.deliver(Delivery(job_id=job_id, service="s", kind="notify", data={}, load_event=stored))
        turns.append(caught.value.until - time.time())
    assert 4.5 < turns[0] <= 5.5 and 10 < turns[1] <= 11     # each its own turn, one pace apart
    ch.deliver(Delivery(job_id=4, service="s", kind="notify", data={"test": True}, load_event=stored))
    assert len(sent) == 2 and slept == []                    # `services test` went at once; no thread slept


def test_a_service_on_this_machine_is_not_paced(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    slept = record_sleeps(monkeypatch)
    ch = channel(f"ntfy://127.0.0.1:{receiver.port}/backups")
    for job_id in (1, 2, 3):
        ch.deliver(Delivery(job_id=job_id, service="s", kind="notify", data={}, load_event=stored))
    assert len(receiver.requests) == 3 and slept == []
