"""notifyd.sources.jellyfin: the Jellyfin Webhook plugin's Generic destination (tests/fixtures/jellyfin),
posted as the plugin posts it (text/plain unless told otherwise), into one running daemon: each
body to its kind, level and message; playback only to services that name it; PlaybackProgress
recorded and quiet; types without a kind of the vocabulary only where they are named; a template's
text values read like the plugin's own; a bad body refused with a 4xx that stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from notifyd.errors import BadPayload, UnsupportedMedia
from notifyd.event_kinds import GENERIC, KNOWN_KINDS, MEDIA_SERVER_KINDS, PLAYBACK_KINDS, QUIET
from notifyd.fanout import is_quiet
from notifyd.sources import SOURCE_TYPES, TokenForm
from notifyd.sources.jellyfin import KINDS, parse_jellyfin, unwrap_jellyfin

from conftest import FIXTURES
from sender_world import World, services_config, start_world

JELLYFIN = FIXTURES / "jellyfin"
TEXT = "text/plain; charset=utf-8"      # the Generic destination's default
ARRIVAL = {"media_type": "movie", "year": 2016, "ids": {"imdb": "tt2543164", "tmdb": "329865"}}
SEVERANCE = {"media_type": "episode", "series": "Severance", "season": 2, "episode": 3,
             "episode_title": "Who Is Alive?", "ids": {"imdb": "tt29633812", "tmdb": "5473001", "tvdb": "10640386"}}

# fixture → (kind, title, media that must hold exactly these values)
EXPECTED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "item-added-movie.json": ("library_new", "Arrival (2016)", {"level": "success", "server": "media-box", **ARRIVAL}),
    "item-added-episode.json": ("library_new", "Severance S02E03 · Who Is Alive?", {"level": "success", **SEVERANCE}),
    "template-item-added-episode.txt": ("library_new", "Severance S02E04 · Woe's Hollow",
                                        {"level": "success", "year": 2022, "season": 2, "episode": 4,
                                         "ids": {"imdb": "tt29633814"}}),
    "playback-start-episode.json": ("playback_start", "Severance S02E03 · Who Is Alive?",
                                    {"user": "bob", "player": "Living Room TV", "client": "Jellyfin Android TV",
                                     "address": "192.168.1.57", **SEVERANCE}),
    "playback-stop-movie.json": ("playback_stop", "Arrival (2016)",
                                 {"played_to_completion": True, "position": "1:56:00", "player": "Firefox",
                                  "client": "Jellyfin Web", **ARRIVAL}),
    "playback-progress-movie.json": ("playbackprogress", "Arrival (2016)",
                                     {"event_type": "PlaybackProgress", "position": "42:10"}),
    "authentication-failure.json": ("authenticationfailure", "admin",
                                    {"level": "warning", "event_type": "AuthenticationFailure", "user": "admin",
                                     "address": "198.51.100.23", "player": "Chrome"}),
    "user-created.json": ("usercreated", "carol", {"level": "info", "event_type": "UserCreated"}),
    "plugin-updated.json": ("pluginupdated", "Trakt 26.0.0.0", {"level": "info"}),
    "task-completed-failed.json": ("taskcompleted", "Scan Media Library", {"level": "failure"}),
    "generic-10.8.json": (GENERIC, "Restart required", {"level": "warning", "user": "bob"}),
}


def text(name: str) -> str:
    return (JELLYFIN / name).read_text()


def parse(name: str, body: dict[str, Any] | None = None) -> Any:
    body = body if body is not None else json.loads(text(name))
    return parse_jellyfin(body, "jellyfin", "jellyfin", json.dumps(body))


# -- the bodies, parsed -----------------------------------------------------------------------------

def test_every_fixture_is_expected() -> None:
    assert set(EXPECTED) == {p.name for p in JELLYFIN.iterdir() if p.suffix in (".json", ".txt")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_body_becomes_its_kind_title_and_media(name: str) -> None:
    kind, title, media = EXPECTED[name]
    event = parse(name)
    assert (event.kind, event.title, event.paths) == (kind, title, ())
    assert {key: event.media.get(key) for key in media} == media
    assert event.media["app"] == "jellyfin"
    assert kind in KNOWN_KINDS or event.media["event_type"].lower() == kind


def test_the_kinds_are_the_vocabulary_s() -> None:
    assert set(KINDS.values()) - {GENERIC} <= set(MEDIA_SERVER_KINDS) | set(PLAYBACK_KINDS)


def test_playback_progress_is_recorded_but_quiet() -> None:
    event = parse("playback-progress-movie.json")
    assert event.media[QUIET] and is_quiet(event)
    assert not any(is_quiet(parse(name)) for name in EXPECTED if "progress" not in name)


def test_a_generic_notification_keeps_its_own_text() -> None:
    event = parse("generic-10.8.json")
    assert event.body == "Jellyfin needs to restart to finish installing plugin updates."
    assert parse("generic-10.8.json", json.loads(text("generic-10.8.json")) | {"Level": "Error"}).media["level"] == \
        "failure"


def test_the_source_type_reads_text_plain_and_takes_the_token_in_the_url() -> None:
    jellyfin = SOURCE_TYPES["jellyfin"]
    assert (jellyfin.parse, jellyfin.unwrap, jellyfin.token_form) == (parse_jellyfin, unwrap_jellyfin, TokenForm.QUERY)
    assert "Add Generic Destination" in jellyfin.settings and not jellyfin.signs


def test_text_plain_is_json_with_its_charset_kept_and_other_types_are_refused() -> None:
    raw = text("user-created.json").encode()
    assert unwrap_jellyfin(raw, TEXT).content_type == "application/json; charset=utf-8"
    assert unwrap_jellyfin(raw, "text/plain").content_type == "application/json"
    assert unwrap_jellyfin(raw, "text/plain; charset=utf-16").content_type == "application/json; charset=utf-16"
    assert unwrap_jellyfin(raw, "application/json").content_type == "application/json"
    assert unwrap_jellyfin(raw, None).document == raw
    with pytest.raises(UnsupportedMedia, match="text/plain"):
        unwrap_jellyfin(raw, "application/x-www-form-urlencoded")


def test_a_template_s_text_values_and_blanks_read_like_the_plugin_s_own() -> None:
    body = json.loads(text("item-added-episode.json"))
    as_text = {key: str(value) if isinstance(value, int) and not isinstance(value, bool) else value
               for key, value in body.items()}
    assert parse("x", as_text).media == parse("x", body).media
    stop = json.loads(text("playback-stop-movie.json"))
    for flag, finished in (("True", True), ("false", False), ("", False)):
        assert parse("x", stop | {"PlayedToCompletion": flag}).media.get("played_to_completion", False) is finished
    blank = parse("x", body | {"SeasonNumber": "", "Year": ""})
    assert "season" not in blank.media and "year" not in blank.media and blank.title == "Severance E03 · Who Is Alive?"


@pytest.mark.parametrize(("change", "field"), [
    ({"NotificationType": None}, "NotificationType"),
    ({"NotificationType": 3}, "NotificationType"),
    ({"SeasonNumber": "two"}, "SeasonNumber"),
    ({"SeasonNumber": -1}, "SeasonNumber"),
    ({"EpisodeNumber": "3.5"}, "EpisodeNumber"),
    ({"Year": "MMXXII"}, "Year"),
    ({"PlaybackPositionTicks": "soon"}, "PlaybackPositionTicks"),
    ({"PlayedToCompletion": "maybe"}, "PlayedToCompletion"),
    ({"Name": ["Who Is Alive?"]}, "Name"),
    ({"NotificationUsername": "x" * 300}, "NotificationUsername"),
], ids=lambda v: str(v)[:40])
def test_a_wrong_value_is_refused_naming_its_field(change: dict[str, Any], field: str) -> None:
    body = json.loads(text("playback-start-episode.json")) | {"NotificationType": "PlaybackStop"} | change
    with pytest.raises(BadPayload, match=f"^field '{field}'"):
        parse("x", body)


def test_a_position_may_come_as_the_plugin_s_clock_text() -> None:
    body = json.loads(text("playback-stop-movie.json")) | {"PlayedToCompletion": False}
    del body["PlaybackPositionTicks"]
    assert parse("x", body).media["position"] == "1:56:00"
    with pytest.raises(BadPayload, match="^field 'PlaybackPosition'"):
        parse("x", body | {"PlaybackPosition": "soon"})


# -- end to end: one daemon, the plugin's bodies over HTTP ------------------------------------------

SERVICES = """
[services.chat]
type = "apprise"
url = "json://127.0.0.1:{port}/chat"

[services.playing]
type = "apprise"
url = "json://127.0.0.1:{port}/playing"
events = ["playback_start", "playback_stop"]

[services.security]
type = "apprise"
url = "json://127.0.0.1:{port}/security"
events = ["authenticationfailure", "playbackprogress"]
"""
# fixture → (service, level, title, body) of each message it makes.
MESSAGES: dict[str, list[tuple[str, str, str, str]]] = {
    "item-added-movie.json": [("chat", "success", "Arrival (2016) added to media-box",
                               "New in the library.\nTaking place after alien crafts land around the world, an "
                               "expert linguist is recruited by the military to determine whether they come in "
                               "peace or are a threat.")],
    "item-added-episode.json": [("chat", "success", "Severance S02E03 · Who Is Alive? added to media-box",
                                 "New in the library.\nMark S. meets an unexpected friend. Helly R. reflects on her "
                                 "time away. Dylan G. finds out more about Outie.")],
    "template-item-added-episode.txt": [("chat", "success", "Severance S02E04 · Woe's Hollow added to media-box",
                                         "New in the library.\nThe Lumon team goes on an outdoor retreat.")],
    "playback-start-episode.json": [("playing", "info", "bob is watching Severance S02E03 · Who Is Alive?",
                                     "On Living Room TV (Jellyfin Android TV) · media-box")],
    "playback-stop-movie.json": [("playing", "info", "bob finished Arrival (2016)",
                                  "On Firefox (Jellyfin Web) · media-box")],
    "playback-progress-movie.json": [],
    "authentication-failure.json": [("security", "warning", "admin",
                                     "Jellyfin sent AuthenticationFailure, an event notifyd has no words for yet.")],
    "user-created.json": [],
    "plugin-updated.json": [],
    "task-completed-failed.json": [],
    "generic-10.8.json": [("chat", "warning", "Restart required",
                           "Jellyfin needs to restart to finish installing plugin updates.")],
}


def post(world: World, content: bytes, content_type: str | None = TEXT) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return world.daemon.post("/webhooks/jellyfin", content=content, headers=headers)


def told(world: World) -> list[tuple[str, str, str, str]]:
    """(service, level, title, body) of every message the receiver was sent."""
    return [(r.path.strip("/"), r.body["type"], r.body["title"], r.body["message"]) for r in world.received()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("jellyfin"), services_config(SERVICES)) as world:
        yield world


def test_each_body_becomes_its_messages_where_they_are_named(world: World) -> None:
    for name in sorted(MESSAGES):
        before = len(told(world))
        # As the plugin posts by default, and as it posts with a Content-Type header added.
        content_type = "application/json" if name.startswith("item-added") else TEXT
        answer = post(world, text(name).encode(), content_type)
        assert answer.status_code == 202, (name, answer.text)
        assert answer.json()["kind"] == EXPECTED[name][0]
        event = world.settled(answer.json()["event_id"])
        assert sorted(j["service"] for j in event["jobs"]) == sorted(m[0] for m in MESSAGES[name]), name
        assert sorted(told(world)[before:]) == sorted(MESSAGES[name]), name
        for _, _, title, body in MESSAGES[name]:
            assert title not in body and "None" not in title + body and not set("{}<>") & set(title + body)
        assert world.store.get_event(answer.json()["event_id"]).event.payload == text(name)


@pytest.mark.parametrize(("content", "content_type", "status", "code", "says"), [
    (b"<p>Arrival</p>", "text/html", 415, "unsupported_media_type", "text/plain"),
    (b"NotificationType=ItemAdded", "application/x-www-form-urlencoded", 415, "unsupported_media_type",
     "text/plain"),
    (b"ItemAdded: Arrival", TEXT, 400, "invalid_json", "not valid JSON"),
    (b"", TEXT, 400, "invalid_json", "empty"),
    (b'{"NotificationType": "ItemAdded"}', "text/plain; charset=utf-16", 415, "unsupported_media_type", "UTF-8"),
    (b'{"Name": "Arrival"}', TEXT, 422, "invalid_payload", "field 'NotificationType'"),
    (b'{"NotificationType": "ItemAdded", "ItemType": "Episode", "SeasonNumber": "two"}', TEXT, 422,
     "invalid_payload", "field 'SeasonNumber'"),
], ids=["html", "url-encoded", "not JSON", "empty", "utf-16", "no type", "season as a word"])
def test_a_bad_body_gets_a_4xx_json_reason_and_stores_nothing(world: World, content: bytes, content_type: str,
                                                             status: int, code: str, says: str) -> None:
    before = world.counts()
    answer = post(world, content, content_type)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code and says in answer.json()["detail"], answer.json()
    assert world.counts() == before
    assert world.daemon.get("/health").status_code == 200
