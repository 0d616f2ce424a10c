"""notifyd.sources.arr's Prowlarr: every event type Prowlarr sends (tests/fixtures/prowlarr) through a
running daemon to its kind, level and message, in the *arr defaults' words; a named source's token as
the webhook's Password; bodies of the wrong shape refused naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifyd.errors import BadPayload
from notifyd.event_kinds import ARR_KINDS
from notifyd.sources import SOURCE_TYPES, TokenForm
from notifyd.sources.arr import parse_prowlarr

from sender_world import World, fixture_names, load_fixture, replaced, sender_config, start_world

TOKEN = "prowlarr-token-0123456789"
SOURCES = f"""
[sources.indexers]
type = "prowlarr"
token = "{TOKEN}"
"""
DUNE = "Dune.Part.Two.2024.2160p.WEB-DL.DDP5.1.Atmos.DV.HDR.H.265-FLUX"
SEVERANCE = "Severance.S02.2160p.ATVP.WEB-DL.DDP5.1.Atmos.DV.HDR.H.265-FLUX"
INDEXERS_DOWN = "Indexers unavailable due to failures for more than 6 hours: NZBgeek"

# fixture → (kind, level, title, body) of the message a service without an `events` filter gets.
MESSAGES: dict[str, tuple[str, str, str, str]] = {
    "Grab": ("grab", "info", f"{DUNE} grabbed", "By Radarr from DrunkenSlug"),
    "Grab-manual": ("grab", "info", f"{SEVERANCE} grabbed", "100.0 GiB from NZBgeek → SABnzbd"),
    "Health": ("health", "warning", "Prowlarr health warning",
               f"{INDEXERS_DOWN}\nhttps://wiki.servarr.com/prowlarr/system#indexers-are-unavailable-due-to-failures"),
    "HealthRestored": ("health_restored", "success", "Prowlarr health restored", f"Resolved: {INDEXERS_DOWN}"),
    "ApplicationUpdate": ("app_update", "info", "Prowlarr updated to 1.32.2.4987", "Previous version: 1.31.2.4975"),
}
TESTS = ("Test",)


def fixture(name: str) -> dict[str, Any]:
    return load_fixture("prowlarr", name)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("prowlarr"), sender_config(SOURCES)) as world:
        yield world


def test_every_fixture_has_expectations() -> None:
    assert sorted([*MESSAGES, *TESTS]) == fixture_names("prowlarr")


def test_every_event_type_end_to_end(world: World) -> None:
    for name in fixture_names("prowlarr"):
        event = world.told("prowlarr", name, fixture(name), None if name in TESTS else MESSAGES[name])
        assert event is None or event["paths"] == [], name      # a release changes no library folder


def test_a_named_source_takes_its_token_as_the_webhook_password(world: World) -> None:
    body = fixture("Health") | {"message": "No download client is available"}
    assert world.daemon.post("/webhooks/indexers", body).status_code == 401
    assert world.daemon.post("/webhooks/indexers", body, auth=("prowlarr", "not-the-token")).status_code == 401
    answer = world.daemon.post("/webhooks/indexers", body, auth=("", TOKEN))     # Username may stay empty
    assert answer.status_code == 202, answer.text
    event = world.settled(answer.json()["event_id"])
    assert (event["source"], event["kind"]) == ("indexers", "health")
    assert TOKEN not in world.daemon.log()


BAD: list[tuple[str, str, Any, str]] = [
    ("Grab", "eventType", None, "eventType"),
    ("Grab", "eventType", "Grab it", "eventType"),
    ("Grab", "release", "Dune", "release"),
    ("Grab", "release.size", "24 GiB", "release.size"),
    ("Grab", "release.indexer", ["DrunkenSlug"], "release.indexer"),
    ("Grab", "release.categories", ["Movies", 2000], "release.categories[1]"),
    ("Grab", "trigger", "robot", "trigger"),
    ("Grab", "source", {"app": "Radarr"}, "source"),
    ("Grab", "applicationUrl", "prowlarr.lan", "applicationUrl"),
    ("Health", "level", "panic", "level"),
    ("ApplicationUpdate", "newVersion", 2, "newVersion"),
]


@pytest.mark.parametrize(("name", "key", "value", "field"), BAD, ids=[f"{b[1]}={b[2]!r}" for b in BAD])
def test_a_body_of_the_wrong_shape_is_422_naming_the_field(world: World, name: str, key: str, value: Any,
                                                          field: str) -> None:
    answer = world.daemon.post("/webhooks/prowlarr", replaced(fixture(name), key, value))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_payload"
    assert f"field {field!r}" in answer.json()["detail"], answer.text


def parse(body: dict[str, Any]) -> Any:
    return parse_prowlarr(body, "prowlarr", "prowlarr", json.dumps(body))


def test_the_source_is_registered_like_the_other_arr_apps() -> None:
    source = SOURCE_TYPES["prowlarr"]
    assert source.parse is parse_prowlarr and source.token_form is TokenForm.BASIC
    assert source.token_hint == SOURCE_TYPES["radarr"].token_hint
    assert source.settings.startswith("Settings → Notifications → + → Webhook") and "Password" in source.settings


def test_every_kind_is_an_arr_kind() -> None:
    kinds = {parse(fixture(name)).kind for name in fixture_names("prowlarr")}
    assert kinds - {"test"} <= set(ARR_KINDS)


def test_a_grab_says_what_app_and_trigger_and_no_media_type() -> None:
    api, manual = parse(fixture("Grab")), parse(fixture("Grab-manual"))
    assert {k: api.media.get(k) for k in ("trigger", "grabbed_by", "host", "indexer", "release_title", "size")} == {
        "trigger": "api", "grabbed_by": "Radarr", "host": "radarr", "indexer": "DrunkenSlug", "release_title": DUNE,
        "size": None}
    assert {k: manual.media.get(k) for k in ("trigger", "grabbed_by", "download_client", "download_client_type",
                                             "download_id", "categories", "size")} == {
        "trigger": "manual", "grabbed_by": None, "download_client": "SABnzbd", "download_client_type": "Sabnzbd",
        "download_id": "SABnzbd_nzo_p3x9k2lq", "categories": ["TV/UHD", "TV"], "size": 107374182400}
    assert "media_type" not in api.media and "media_type" not in manual.media
    # A client Prowlarr does not recognise is "Other": not worth naming.
    assert "grabbed_by" not in parse(fixture("Grab") | {"source": "Other"}).media


def test_the_test_and_an_unset_application_url() -> None:
    event = parse(fixture("Test"))
    assert (event.kind, event.title, event.media["level"]) == ("test", "Prowlarr test", "info")
    assert "app_url" not in event.media


def test_a_grab_without_a_release_is_still_told() -> None:
    body = {key: value for key, value in fixture("Grab").items() if key != "release"}
    event = parse(body)
    assert (event.kind, event.title) == ("grab", "Prowlarr")


VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12),
                   st.lists(st.one_of(st.integers(), st.text(max_size=4)), max_size=2),
                   st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=2))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(name=st.sampled_from(sorted(MESSAGES)), data=st.data())
def test_a_damaged_body_gives_an_event_or_bad_payload(name: str, data: st.DataObject) -> None:
    body = fixture(name)
    for holder in (body, body.get("release")):
        if isinstance(holder, dict) and data.draw(st.booleans()):
            holder[data.draw(st.sampled_from(sorted(holder)))] = data.draw(VALUES)
    try:
        event = parse(body)
    except BadPayload as exc:
        assert str(exc).startswith("field '")
        return
    assert event.title and event.media["level"] in ("info", "success", "warning", "failure")
    json.dumps(dict(event.media))
