"""notifyd.sources.overseerr: every notification Overseerr and Jellyseerr send (tests/fixtures/overseerr)
through a running daemon to its kind, level and message; a named source's token as the webhook's
Authorization Header; bodies of the wrong shape refused naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifyd.errors import BadPayload
from notifyd.event_kinds import KNOWN_KINDS, REQUEST_KINDS
from notifyd.sources import SOURCE_TYPES, TokenForm
from notifyd.sources.overseerr import KINDS, parse_overseerr

from sender_world import World, fixture_names, load_fixture, replaced, sender_config, start_world

TOKEN = "overseerr-token-0123456789"
SOURCES = f"""
[sources.requests]
type = "overseerr"
token = "{TOKEN}"
"""

# fixture → (kind, level, title, body) of the message a service without an `events` filter gets.
MESSAGES: dict[str, tuple[str, str, str, str]] = {
    "MEDIA_PENDING": ("request_pending", "info", "Dune: Part Two (2024) requested",
                      "alice asked for it; waiting for approval."),
    "MEDIA_APPROVED": ("request_approved", "success", "Severance (2022) approved", "alice asked for seasons 1, 2."),
    "MEDIA_AUTO_APPROVED": ("request_approved", "success", "Blade Runner 2049 (2017) approved",
                            "admin asked for it in 4K; approved automatically."),
    "MEDIA_DECLINED": ("request_declined", "info", "Cats (2019): request declined", "bob asked for it."),
    "MEDIA_AVAILABLE": ("request_available", "success", "Severance (2022) is available",
                        "alice asked for seasons 1, 2; ready to watch."),
    "MEDIA_AVAILABLE-jellyseerr": ("request_available", "success", "Arrival (2016) is available",
                                   "carol asked for it; ready to watch."),
    "MEDIA_FAILED": ("request_failed", "failure", "Dune: Part Two (2024): request failed",
                     "bob asked for it, but it could not be sent to Radarr or Sonarr; retry it from the request list."),
    "ISSUE_CREATED": ("issue_created", "warning", "Severance (2022): video issue reported",
                      "Reported by bob · S02E05\nEpisode 5 stops playing at 31:40."),
    "ISSUE_COMMENT": ("issue_comment", "info", "Severance (2022): new comment on the video issue",
                      "admin: Replaced the file with a new release, can you try again?"),
    "ISSUE_RESOLVED": ("issue_resolved", "success", "Arrival (2016): audio issue resolved",
                       "Reported by bob\nThe audio is out of sync after the first 20 minutes."),
    "ISSUE_REOPENED": ("issue_reopened", "warning", "Arrival (2016): issue reopened",
                       "Reported by bob\nThe audio is out of sync after the first 20 minutes."),
}
TESTS = ("TEST_NOTIFICATION",)


def fixture(name: str) -> dict[str, Any]:
    return load_fixture("overseerr", name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("overseerr"), sender_config(SOURCES)) as world:
        yield world


def test_every_fixture_has_expectations() -> None:
    assert sorted([*MESSAGES, *TESTS]) == fixture_names("overseerr")


def test_every_notification_end_to_end(world: World) -> None:
    for name in fixture_names("overseerr"):
        world.told("overseerr", name, fixture(name), None if name in TESTS else MESSAGES[name])


def test_a_named_source_takes_its_token_as_the_authorization_header(world: World) -> None:
    body = fixture("MEDIA_PENDING") | {"subject": "Heat (1995)"}
    assert world.daemon.post("/webhooks/requests", body).status_code == 401
    wrong = world.daemon.post("/webhooks/requests", body, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    answer = world.daemon.post("/webhooks/requests", body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["kind"] == "request_pending"
    event = world.settled(answer.json()["event_id"])
    assert (event["source"], event["title"]) == ("requests", "Heat (1995)")
    assert TOKEN not in world.daemon.log()


BAD: list[tuple[str, str, Any, str]] = [
    ("MEDIA_PENDING", "notification_type", None, "notification_type"),
    ("MEDIA_PENDING", "notification_type", 8, "notification_type"),
    ("MEDIA_PENDING", "notification_type", "media pending", "notification_type"),
    ("MEDIA_PENDING", "subject", ["Dune"], "subject"),
    ("MEDIA_PENDING", "image", "poster.jpg", "image"),
    ("MEDIA_PENDING", "media", "movie", "media"),
    ("MEDIA_PENDING", "media.media_type", "book", "media.media_type"),
    ("MEDIA_PENDING", "media.tmdbId", "tt0113277", "media.tmdbId"),
    ("MEDIA_PENDING", "media.tmdbId", "99999999999", "media.tmdbId"),
    ("MEDIA_PENDING", "request.request_id", -3, "request.request_id"),
    ("MEDIA_PENDING", "request.requestedBy_username", "a\nb", "request.requestedBy_username"),
    ("MEDIA_APPROVED", "extra", "1, 2", "extra"),
    ("MEDIA_APPROVED", "extra.0.value", "one, two", "extra[0].value"),
    ("ISSUE_CREATED", "extra.1.value", "5th", "extra[1].value"),
    ("ISSUE_COMMENT", "comment.comment_message", 42, "comment.comment_message"),
]


@pytest.mark.parametrize(("name", "key", "value", "field"), BAD, ids=[f"{b[1]}={b[2]!r}" for b in BAD])
def test_a_body_of_the_wrong_shape_is_422_naming_the_field(world: World, name: str, key: str, value: Any,
                                                          field: str) -> None:
    answer = world.daemon.post("/webhooks/overseerr", replaced(fixture(name), key, value))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_payload"
    assert f"field {field!r}" in answer.json()["detail"], answer.text


def parse(body: dict[str, Any]) -> Any:
    return parse_overseerr(body, "overseerr", "overseerr", json.dumps(body))


def test_the_source_is_registered_with_the_authorization_header() -> None:
    source = SOURCE_TYPES["overseerr"]
    assert source.parse is parse_overseerr and source.token_form is TokenForm.BEARER
    assert "Authorization Header" in source.settings and "Bearer" in source.token_hint


def test_every_kind_is_in_the_vocabulary() -> None:
    assert set(KINDS.values()) == set(REQUEST_KINDS) | {"test"}
    assert set(REQUEST_KINDS) <= KNOWN_KINDS


def test_facts_a_template_can_use() -> None:
    event = parse(fixture("ISSUE_CREATED"))
    assert {k: event.media[k] for k in ("media_type", "ids", "issue_id", "issue_type", "issue_status", "reporter",
                                        "season", "episode", "affected", "poster_url")} == {
        "media_type": "series", "ids": {"tmdb": 95396, "tvdb": 371980}, "issue_id": 7, "issue_type": "video",
        "issue_status": "open", "reporter": "bob", "season": 2, "episode": 5, "affected": "S02E05",
        "poster_url": "https://image.tmdb.org/t/p/w600_and_h900_bestv2/pPHpeI2X1qEd1CS1SeyrdhZ4qnT.jpg"}
    request = parse(fixture("MEDIA_AUTO_APPROVED")).media
    assert (request["is_4k"], request["auto_approved"], request["requester"], request["request_id"],
            request["media_status_4k"]) == (True, True, "admin", 44, "processing")
    # Nothing of the requester but the name: no e-mail address, no avatar.
    assert "admin@example.com" not in json.dumps(dict(request)) and "gravatar" not in json.dumps(dict(request))


def test_the_test_notification_is_recorded_as_test_with_the_apps_nulls() -> None:
    event = parse(fixture("TEST_NOTIFICATION"))
    assert (event.kind, event.title, event.media["level"]) == ("test", "Test Notification", "info")
    assert "media_type" not in event.media and "requester" not in event.media


def test_a_type_without_a_kind_keeps_its_name_and_says_the_apps_words() -> None:
    # MEDIA_AUTO_REQUESTED never reaches a webhook today; a type added later is told in the app's words.
    body = fixture("MEDIA_PENDING") | {"notification_type": "MEDIA_AUTO_REQUESTED",
                                       "event": "Movie Request Automatically Submitted"}
    event = parse(body)
    assert (event.kind, event.media["event_type"], event.body) == (
        "media_auto_requested", "MEDIA_AUTO_REQUESTED", "Movie Request Automatically Submitted")
    untitled = parse(body | {"subject": ""})
    assert (untitled.title, untitled.body) == ("Movie Request Automatically Submitted", "")     # said once


def test_an_edited_template_may_leave_ids_unquoted_and_parts_out() -> None:
    body = {"notification_type": "media_available", "subject": "Heat (1995)",
            "media": {"media_type": "movie", "tmdbId": 949}, "request": {"request_id": 3}}
    event = parse(body)
    assert (event.kind, event.title, event.media["ids"], event.media["request_id"]) == (
        "request_available", "Heat (1995)", {"tmdb": 949}, 3)
    assert parse({"notification_type": "MEDIA_FAILED"}).title == "Overseerr MEDIA_FAILED"


VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=6), st.text(max_size=6),
                                                                         max_size=2))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(MESSAGES)), data=st.data())
def test_a_damaged_body_gives_an_event_or_bad_payload(name: str, data: st.DataObject) -> None:
    body = fixture(name)
    for part in ("", "media", "request", "issue", "comment"):
        holder = body if not part else body.get(part)
        if isinstance(holder, dict) and holder and data.draw(st.booleans()):
            key = data.draw(st.sampled_from(sorted(holder)))
            holder[key] = data.draw(VALUES)
    try:
        event = parse(body)
    except BadPayload as exc:
        assert str(exc).startswith("field '")
        return
    assert event.title and event.media["level"] in ("info", "success", "warning", "failure")
    json.dumps(dict(event.media))
