"""notifyd.sources.plex: Plex Media Server's webhooks (tests/fixtures/plex), posted as Plex posts them,
a multipart/form-data form with a `payload` part and, for some events, a `thumb` poster, into one
running daemon: each to its kind, level and message; playback only to services that name it; the
poster kept as a thumbnail and shown as a summary; a bad form refused with a 4xx that stores nothing."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from notifyd.errors import BadPayload, BadRequest, UnsupportedMedia
from notifyd.event_kinds import KNOWN_KINDS, MEDIA_SERVER_KINDS, PLAYBACK_KINDS
from notifyd.sources import SOURCE_TYPES, TokenForm
from notifyd.sources.plex import KINDS, THUMB_MAX, parse_plex, thumbnail, unwrap_plex

from conftest import FIXTURES
from sender_world import World, fixture_names, load_fixture, services_config, start_world

PLEX = FIXTURES / "plex"
THUMB = (PLEX / "thumb.jpg").read_bytes()
# Plex attaches the item's poster to these events (its "Webhooks" article).
WITH_POSTER = ("library-new-movie", "library-new-episode", "library-on-deck-episode", "media-play-episode",
               "media-play-track", "media-rate-movie", "playback-started-episode")
ARRIVAL_IDS = {"imdb": "tt2543164", "tmdb": "329865", "tvdb": "155"}
SEVERANCE = {"media_type": "episode", "series": "Severance", "season": 2, "episode": 3,
             "episode_title": "Who Is Alive?", "library": "TV Shows"}

# fixture → (kind, title, media that must hold exactly these values)
EXPECTED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "library-new-movie": ("library_new", "Arrival (2016)",
                          {"level": "success", "media_type": "movie", "year": 2016, "library": "Movies",
                           "server": "Office", "user": "elan", "ids": ARRIVAL_IDS}),
    "library-new-episode": ("library_new", "Severance S02E03 · Who Is Alive?", {"level": "success", **SEVERANCE}),
    "library-on-deck-episode": ("library.on.deck", "Severance S02E04 · Woe's Hollow",
                                {"level": "info", "event_type": "library.on.deck", "episode": 4}),
    "media-play-episode": ("playback_start", "Severance S02E03 · Who Is Alive?",
                           {"player": "Living Room Shield", "address": "203.0.113.24", "local": True, **SEVERANCE}),
    "media-play-track": ("playback_start", "Stephen Stills · Love The One You're With",
                         {"media_type": "music", "artist": "Stephen Stills", "album": "Stephen Stills",
                          "player": "Plex Web (Safari)", "user": "elan"}),
    "playback-started-episode": ("playback_start", "Severance S02E03 · Who Is Alive?",
                                 {"user": "anna.p", "shared_user": True, "player": "iPhone", "local": False}),
    "media-pause-movie": ("playback_pause", "Arrival (2016)", {"position": "42:10", "level": "info"}),
    "media-resume-movie": ("playback_resume", "Arrival (2016)", {"position": "42:11"}),
    "media-stop-movie": ("playback_stop", "Arrival (2016)", {"position": "1:08:22"}),
    "media-scrobble-episode": ("watched", "Severance S02E03 · Who Is Alive?", SEVERANCE),
    "media-rate-movie": ("rated", "Arrival (2016)", {"rating": 8, "stars": 4}),
    "admin-database-backup": ("backup", "Office", {"level": "success", "server": "Office"}),
    "admin-database-corrupted": ("backup_failed", "Office", {"level": "failure"}),
    "device-new": ("device_new", "Chrome", {"level": "warning", "player": "Chrome", "address": "198.51.100.23",
                                           "local": False, "user": "elan"}),
}


def payload(name: str) -> dict[str, Any]:
    return load_fixture("plex", name)


def form(name: str, *, text: str | None = None, thumb: bytes | None = None) -> dict[str, Any]:
    """httpx arguments for a Plex form: the payload part, and the poster when Plex attaches one."""
    text = text if text is not None else (PLEX / f"{name}.json").read_text()
    if thumb is None and name in WITH_POSTER:
        thumb = THUMB
    if thumb is not None:
        return {"data": {"payload": text}, "files": {"thumb": ("image.jpg", thumb, "image/jpeg")}}
    return {"files": {"payload": (None, text)}}


def encoded(**kwargs: Any) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://plex.invalid/", **kwargs)
    return request.read(), request.headers["content-type"]


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


# -- the payloads, parsed ---------------------------------------------------------------------------

def test_every_fixture_is_expected_and_every_event_plex_documents_has_one() -> None:
    assert set(EXPECTED) == set(fixture_names("plex"))
    sent = {payload(name)["event"] for name in EXPECTED}
    assert set(KINDS) <= sent


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_payload_becomes_its_kind_title_and_media(name: str) -> None:
    kind, title, media = EXPECTED[name]
    body = payload(name)
    event = parse_plex(body, "plex", "plex", json.dumps(body))
    assert (event.kind, event.title, event.paths, event.body) == (kind, title, (), "")
    assert {key: event.media.get(key) for key in media} == media
    assert event.media["app"] == "plex" and event.media["level"] in ("info", "success", "warning", "failure")
    assert kind in KNOWN_KINDS or event.media["event_type"] == payload(name)["event"]


def test_the_kinds_are_the_vocabulary_s() -> None:
    assert set(KINDS.values()) <= set(MEDIA_SERVER_KINDS) | set(PLAYBACK_KINDS)
    assert set(MEDIA_SERVER_KINDS) <= set(KINDS.values())


def test_the_source_type_unwraps_plex_s_form_and_takes_the_token_in_the_url() -> None:
    plex = SOURCE_TYPES["plex"]
    assert (plex.parse, plex.unwrap, plex.token_form) == (parse_plex, unwrap_plex, TokenForm.QUERY)
    assert "Webhooks" in plex.settings and not plex.signs


@pytest.mark.parametrize(("change", "field"), [
    ({"event": None}, "event"),
    ({"event": "media play"}, "event"),
    ({"Metadata": None}, "Metadata"),
    ({"Metadata": [1]}, "Metadata"),
    ({"rating": "eight"}, "rating"),
    ({"rating": 11}, "rating"),
    ({"rating": True}, "rating"),
    ({"Account": {"title": "x" * 300}}, "Account.title"),
    ({"Player": {"title": "TV", "local": "yes"}}, "Player.local"),
], ids=lambda v: str(v)[:40])
def test_a_wrong_value_is_refused_naming_its_field(change: dict[str, Any], field: str) -> None:
    body = payload("media-rate-movie") | change
    with pytest.raises(BadPayload, match=f"^field '{field}'"):
        parse_plex(body, "plex", "plex", json.dumps(body))


def test_a_wrong_metadata_value_names_the_dotted_field() -> None:
    body = payload("media-play-episode")
    body["Metadata"]["parentIndex"] = "two"
    with pytest.raises(BadPayload, match=r"^field 'Metadata\.parentIndex': expected a season number"):
        parse_plex(body, "plex", "plex", json.dumps(body))


def test_a_rating_may_be_text_and_minus_one_takes_it_back() -> None:
    for rating, stars in (("7", 3.5), (10, 5), ("0", 0)):
        event = parse_plex(payload("media-rate-movie") | {"rating": rating}, "plex", "plex", "{}")
        assert event.media["stars"] == stars
    cleared = parse_plex(payload("media-rate-movie") | {"rating": -1}, "plex", "plex", "{}")
    assert "rating" not in cleared.media and "stars" not in cleared.media


# -- the form, taken apart --------------------------------------------------------------------------

def test_the_form_gives_the_payload_part_s_json_and_the_poster() -> None:
    text = (PLEX / "library-new-movie.json").read_text()
    raw, content_type = encoded(**form("library-new-movie"))
    unwrapped = unwrap_plex(raw, content_type)
    assert unwrapped.document == text.encode() and unwrapped.content_type == "application/json"
    assert unwrapped.media == {"thumbnail": {"content_type": "image/jpeg",
                                             "data": base64.b64encode(THUMB).decode()}}
    raw, content_type = encoded(**form("device-new"))
    assert unwrap_plex(raw, content_type).media == {}


def test_a_poster_is_kept_only_when_its_bytes_are_a_small_jpeg_or_png() -> None:
    png = tiny_png()
    assert thumbnail(png) == {"content_type": "image/png", "data": base64.b64encode(png).decode()}
    assert thumbnail(THUMB[:3] + b"\x00" * (THUMB_MAX - 3)) is not None
    assert thumbnail(THUMB[:3] + b"\x00" * (THUMB_MAX - 2)) is None               # one byte too many
    assert thumbnail(b"<!doctype html><title>Sign in</title>") is None            # declared image/jpeg, is not
    assert thumbnail(b"") is None
    raw, content_type = encoded(**form("library-new-movie", thumb=b"GIF89a\x01\x00\x01\x00"))
    assert unwrap_plex(raw, content_type).media == {}


def test_json_re_posted_by_a_proxy_is_its_own_document() -> None:
    text = (PLEX / "media-pause-movie.json").read_bytes()
    for content_type in ("application/json", "application/json; charset=utf-8", None):
        unwrapped = unwrap_plex(text, content_type)
        assert (unwrapped.document, unwrapped.content_type, unwrapped.media) == (text, content_type, {})


PART = b"--x\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n{}\r\n"


@pytest.mark.parametrize(("raw", "content_type", "error", "says"), [
    (b"payload=%7B%7D", "application/x-www-form-urlencoded", UnsupportedMedia, "multipart/form-data"),
    (b"{}", "text/plain", UnsupportedMedia, "multipart/form-data"),
    (b"--x\r\n\r\n{}\r\n--x--\r\n", "multipart/form-data", BadRequest, "names no boundary"),
    (b"--x\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{}\r\n--x--\r\n",
     "multipart/form-data; boundary=y", BadRequest, "never starts a part"),
    (b"--x\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{\"event\": \"media.pl",
     "multipart/form-data; boundary=x", BadRequest, "closing boundary is missing"),
    (b"--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\n{}\r\n--x--\r\n",
     "multipart/form-data; boundary=x", BadPayload, "field 'payload': expected one form part named payload"),
    (PART % b"payload" * 2 + b"--x--\r\n", "multipart/form-data; boundary=x", BadPayload, "got 2 of them"),
    (b"".join(PART % b"f%d" % i for i in range(40)) + b"--x--\r\n", "multipart/form-data; boundary=x", BadRequest,
     "more than 16 parts"),
    (b"".join(b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1) for i in range(3000)),
     "multipart/form-data; boundary=b0", BadRequest, "itself multipart"),
    (b"--x\r\nContent-Disposition: form-data; name=\"payload\"\r\ncontent-type: message/rfc822\r\n\r\n"
     b"Subject: hi\r\n\r\n{}\r\n--x--\r\n", "multipart/form-data; boundary=x", BadRequest, "itself multipart"),
    (b"--x\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{}\r\n--x\r\n"
     b"Content-Disposition: form-data; name=\"thumb\"\r\n\r\n" + b"\r" * 500_000 + b"\r\n--x--\r\n",
     "multipart/form-data; boundary=x", BadRequest, "more than 20000 lines"),
], ids=["urlencoded", "text", "no boundary", "wrong boundary", "cut off", "no payload part", "two payloads",
        "forty parts", "nested 3000 deep", "a message inside", "half a million lines"])
def test_a_body_that_is_no_plex_form_is_refused_saying_why(raw: bytes, content_type: str, error: type,
                                                          says: str) -> None:
    with pytest.raises(error, match=says):
        unwrap_plex(raw, content_type)


# -- end to end: one daemon, Plex's forms over HTTP -------------------------------------------------

SERVICES = """
[services.chat]
type = "apprise"
url = "json://127.0.0.1:{port}/chat"

[services.playing]
type = "apprise"
url = "json://127.0.0.1:{port}/playing"
events = ["playback_start"]

[services.everything]
type = "apprise"
url = "json://127.0.0.1:{port}/everything"
events = ["*"]

[services.pictures]
type = "apprise"
url = "json://127.0.0.1:{port}/pictures"
events = ["rated"]
attach = true
"""
# fixture → (level, title, body) of the message a service without an `events` filter gets.
MESSAGES = {
    "library-new-movie": ("success", "Arrival (2016) added to Office",
                          "New in Movies.\nTaking place after alien crafts land around the world, an expert linguist "
                          "is recruited by the military to determine whether they come in peace or are a threat."),
    "library-new-episode": ("success", "Severance S02E03 · Who Is Alive? added to Office",
                            "New in TV Shows.\nMark S. meets an unexpected friend. Helly R. reflects on her time "
                            "away. Dylan G. finds out more about Outie."),
    "admin-database-backup": ("success", "Office backed up its database",
                              "Plex finished its scheduled database backup."),
    "admin-database-corrupted": ("failure", "Office: database corrupted",
                                 "Plex found corruption in its database: repair it or restore a backup."),
    "device-new": ("warning", "New device on Office: Chrome", "Account elan · 198.51.100.23"),
}
# fixture → (title, body) of the messages only a service naming the kind (or "*") gets.
NAMED = {
    "media-play-episode": ("elan is watching Severance S02E03 · Who Is Alive?", "On Living Room Shield · Office"),
    "media-play-track": ("elan is listening to Stephen Stills · Love The One You're With",
                         "On Plex Web (Safari) · Office"),
    "playback-started-episode": ("anna.p is watching Severance S02E03 · Who Is Alive?", "On iPhone · Office"),
    "media-pause-movie": ("elan paused Arrival (2016)", "At 42:10 · On Plex Web (Safari) · Office"),
    "media-resume-movie": ("elan resumed Arrival (2016)", "At 42:11 · On Plex Web (Safari) · Office"),
    "media-stop-movie": ("elan stopped Arrival (2016)", "At 1:08:22 · On Plex Web (Safari) · Office"),
    "media-scrobble-episode": ("elan watched Severance S02E03 · Who Is Alive?", "On Living Room Shield · Office"),
    "media-rate-movie": ("elan rated Arrival (2016)", "4 of 5 stars · Office"),
    "library-on-deck-episode": ("Severance S02E04 · Woe's Hollow",
                                "Plex sent library.on.deck, an event notifyd has no words for yet."),
}


def post(world: World, **kwargs: Any) -> httpx.Response:
    """POST to /webhooks/plex with httpx's `data`, `files`, `content` or `headers`."""
    return world.daemon.post("/webhooks/plex", **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with start_world(tmp_path_factory.mktemp("plex"), services_config(SERVICES)) as world:
        yield world


def assert_reads_well(title: str, body: str, event_title: str) -> None:
    """No repeated title, no "None", no raw JSON or markup: a message a person wants to read."""
    assert title and body and title not in body
    assert "None" not in title + body and not set("{}<>") & set(title + body)
    assert (title + "\n" + body).count(event_title) == 1


def test_each_plex_form_becomes_its_message_and_playback_goes_only_where_it_is_named(world: World) -> None:
    for name in sorted(EXPECTED):
        before = {path: len(world.messages(path)) for path in ("/chat", "/playing", "/everything")}
        answer = post(world, **form(name))
        assert answer.status_code == 202, (name, answer.text)
        kind = EXPECTED[name][0]
        assert answer.json()["kind"] == kind
        event = world.settled(answer.json()["event_id"])
        services = {j["service"] for j in event["jobs"]} - {"pictures"}      # its own test, below
        got = {path: world.messages(path)[count:] for path, count in before.items()}
        if name in MESSAGES:
            level, title, body = MESSAGES[name]
            assert services == {"chat", "everything"}, name
            for path in ("/chat", "/everything"):
                [message] = got[path]
                assert (message["type"], message["title"], message["message"]) == (level, title, body), name
            assert_reads_well(title, body, event["title"])
        else:
            title, body = NAMED[name]
            expected = {"everything", "playing"} if kind == "playback_start" else {"everything"}
            assert services == expected and got["/chat"] == [], name
            for path in ("/everything", "/playing") if kind == "playback_start" else ("/everything",):
                [message] = got[path]
                assert (message["title"], message["message"]) == (title, body), name
            assert_reads_well(title, body, event["title"])
        assert all(j["delivery"] == "sent" for j in event["jobs"]), (name, event["jobs"])


def test_the_poster_is_kept_as_a_thumbnail_shown_as_a_summary_and_the_payload_is_the_json(world: World) -> None:
    text = (PLEX / "library-new-movie.json").read_text().replace("1716911950", "1716911951")   # not a repeat
    answer = post(world, **form("library-new-movie", text=text))
    assert answer.status_code == 202, answer.text
    event_id = answer.json()["event_id"]
    shown = world.daemon.get(f"/events/{event_id}")
    assert shown.json()["thumbnail"] == f"image/jpeg, {len(THUMB)} B"
    assert base64.b64encode(THUMB).decode()[:40] not in shown.text
    stored = world.store.get_event(event_id).event
    assert stored.payload == text
    assert stored.media["thumbnail"] == {"content_type": "image/jpeg", "data": base64.b64encode(THUMB).decode()}
    no_poster = post(world, **form("device-new"))
    assert world.daemon.get(f"/events/{no_poster.json()['event_id']}").json()["thumbnail"] is None


def test_the_poster_goes_with_the_message_of_a_service_that_attaches_pictures(world: World) -> None:
    text = (PLEX / "media-rate-movie.json").read_text().replace("1717003100", "1717003101")   # not a repeat
    before = len(world.messages("/pictures"))
    answer = post(world, **form("media-rate-movie", text=text))
    event = world.settled(answer.json()["event_id"])
    assert [j["delivery"] for j in event["jobs"] if j["service"] == "pictures"] == ["sent"]
    [message] = world.messages("/pictures")[before:]
    assert (message["title"], message["message"]) == ("elan rated Arrival (2016)", "4 of 5 stars · Office")
    [picture] = message["attachments"]
    assert base64.b64decode(picture["base64"]) == THUMB and picture["mimetype"] == "image/jpeg"


def test_the_same_payload_in_a_new_form_is_a_repeat(world: World) -> None:
    text = (PLEX / "media-stop-movie.json").read_text().replace("4102000", "4103000")
    first = post(world, **form("media-stop-movie", text=text))
    second = post(world, **form("media-stop-movie", text=text))
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["duplicate"] is True and second.json()["event_id"] == first.json()["event_id"]
    proxied = httpx.post(world.daemon.url + "/webhooks/plex", content=text.encode(),
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert proxied.status_code == 200 and proxied.json()["event_id"] == first.json()["event_id"]


@pytest.mark.parametrize(("kwargs", "status", "code", "says"), [
    ({"content": b"--x\r\n\r\n{}\r\n--x--\r\n", "headers": {"Content-Type": "multipart/form-data"}},
     400, "invalid_json", "names no boundary"),
    ({"content": b"--x\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n{\"event\": \"med",
      "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, 400, "invalid_json", "closing boundary"),
    ({"files": {"thumb": ("image.jpg", THUMB, "image/jpeg")}}, 422, "invalid_payload", "field 'payload'"),
    ({"files": {"payload": (None, "[1, 2]")}}, 400, "invalid_json", "expected a JSON object"),
    ({"files": {"payload": (None, "{\"event\": media.play}")}}, 400, "invalid_json", "not valid JSON"),
    ({"files": {"payload": (None, "{\"event\": \"x\"}", "application/json; charset=latin-1")}}, 415,
     "unsupported_media_type", "UTF-8"),
    ({"files": {"payload": (None, "{\"Account\": {}}")}}, 422, "invalid_payload", "field 'event'"),
    ({"data": {"payload": "{\"event\": \"media.play\"}"}}, 415, "unsupported_media_type", "multipart/form-data"),
], ids=["no boundary", "cut off", "no payload part", "payload an array", "payload not JSON", "payload latin-1",
        "payload without event", "url-encoded"])
def test_a_bad_form_gets_a_4xx_json_reason_and_stores_nothing(world: World, kwargs: dict[str, Any], status: int,
                                                             code: str, says: str) -> None:
    before = world.counts()
    answer = post(world, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code and says in answer.json()["detail"], answer.json()
    assert world.counts() == before
    assert world.daemon.get("/health").status_code == 200


def test_the_fixture_poster_is_a_real_jpeg() -> None:
    assert THUMB.startswith(b"\xff\xd8\xff") and THUMB.endswith(b"\xff\xd9") and len(THUMB) < THUMB_MAX
