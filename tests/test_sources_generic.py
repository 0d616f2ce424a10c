"""notifyd.sources.generic.parse_generic: bodies in their own words, and BadPayload naming the field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifyd.errors import BadPayload
from notifyd.model import Event
from notifyd.sources.generic import parse_generic


def parse(body: dict, source: str = "generic", source_type: str = "generic") -> Event:
    return parse_generic(body, source, source_type, json.dumps(body))


def test_full_body():
    body = {"kind": "backup", "title": "Nightly backup", "body": "3 GB in 4 min", "level": "success",
            "paths": ["/srv/backup", "/srv/more"], "host": "nas"}
    event = parse_generic(body, "backups", "generic", json.dumps(body))
    assert event == Event(source="backups", source_type="generic", kind="backup", title="Nightly backup",
                          body="3 GB in 4 min", paths=("/srv/backup", "/srv/more"),
                          media={"level": "success"}, payload=json.dumps(body))


def test_payload_is_the_raw_text_as_received():
    raw = '{"title":  "x",   "extra": 1}'
    assert parse_generic(json.loads(raw), "generic", "generic", raw).payload == raw


def test_defaults():
    event = parse({"title": "Hello"})
    assert event.kind == "notification"
    assert event.media == {"level": "info"}
    assert event.body == ""
    assert event.paths == ()


def test_body_alone_is_enough():
    event = parse({"body": "disk almost full"})
    assert (event.title, event.body) == ("", "disk almost full")


def test_message_is_taken_when_there_is_no_body():
    assert parse({"message": "from message"}).body == "from message"
    assert parse({"title": "t", "body": "from body", "message": "ignored"}).body == "from body"


def test_kind_is_normalized_to_lower_case_without_spaces():
    assert parse({"kind": "  Backup.Done ", "title": "x"}).kind == "backup.done"


@pytest.mark.parametrize("kind", ["backup", "run.completed", "a:b", "x-y_z", "9", "k" * 64])
def test_accepted_kinds(kind):
    assert parse({"kind": kind, "title": "x"}).kind == kind


@pytest.mark.parametrize("level", ["info", "success", "warning", "failure"])
def test_levels(level):
    assert parse({"title": "x", "level": level}).media["level"] == level


def test_title_and_body_are_stripped():
    event = parse({"title": "  t  ", "body": "\n b \n"})
    assert (event.title, event.body) == ("t", "b")


def test_null_fields_count_as_absent():
    event = parse({"title": "x", "body": None, "kind": None, "level": None, "paths": None})
    assert (event.body, event.kind, event.media["level"], event.paths) == ("", "notification", "info", ())


def test_long_text_is_cut_to_what_a_notification_carries():
    event = parse({"title": "t" * 900_000, "body": "b" * 10_000})
    assert len(event.title) == 256 and event.title.endswith("…")
    assert len(event.body) == 4000 and event.body.endswith("…")
    assert parse({"message": "m" * 5000}).body == "m" * 3999 + "…"


def test_paths_are_normalised_in_their_own_style_and_repeats_collapse():
    event = parse({"title": "x", "paths": ["/srv//backup/./daily/", "D:\\Media\\\\X", "\\\\nas\\share\\tv",
                                          "/srv/backup/daily"]})
    assert event.paths == ("/srv/backup/daily", "D:\\Media\\X", "\\\\nas\\share\\tv")


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/srv/../etc", "srv/backup", "D:\\Media\\..\\X",
                                  "\\\\nas", "C:relative", "/srv/a\nb", "/" + "x" * 5000])
def test_climbing_relative_or_absurd_paths_are_refused(path):
    with pytest.raises(BadPayload, match=r"^field 'paths\[0\]': expected an absolute path"):
        parse({"title": "x", "paths": [path]})


def test_too_many_paths_are_refused():
    with pytest.raises(BadPayload, match=r"^field 'paths': .* got an array of 101 items"):
        parse({"title": "x", "paths": [f"/srv/{i}" for i in range(101)]})


@pytest.mark.parametrize("body, field", [
    ({"kind": 5, "title": "x"}, "kind"),
    ({"kind": "", "title": "x"}, "kind"),
    ({"kind": "two words", "title": "x"}, "kind"),
    ({"kind": "k" * 65, "title": "x"}, "kind"),
    ({"kind": ["backup"], "title": "x"}, "kind"),
    ({"kind": "bäckup", "title": "x"}, "kind"),
    ({"title": 5}, "title"),
    ({"title": ["a"]}, "title"),
    ({"title": "x", "body": {"text": "y"}}, "body"),
    ({"message": 7}, "message"),
    ({}, "title"),
    ({"title": "   ", "body": ""}, "title"),
    ({"kind": "backup"}, "title"),
    ({"title": "x", "level": "debug"}, "level"),
    ({"title": "x", "level": "INFO"}, "level"),
    ({"title": "x", "level": 1}, "level"),
    ({"title": "x", "paths": "/srv"}, "paths"),
    ({"title": "x", "paths": ["/srv", 5]}, "paths[1]"),
    ({"title": "x", "paths": [""]}, "paths[0]"),
    ({"title": "x", "paths": {"a": "/srv"}}, "paths"),
])
def test_malformed_fields_raise_bad_payload_naming_the_field(body, field):
    with pytest.raises(BadPayload) as info:
        parse(body)
    assert f"'{field}'" in str(info.value)
    assert info.value.status == 422
    assert info.value.code == "invalid_payload"


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
field_names = st.sampled_from(["kind", "title", "body", "message", "level", "paths"]) | st.text(max_size=8)
likely_values = (json_values | st.sampled_from(["info", "success", "warning", "failure", "backup", "Backup", ""])
                 | st.lists(st.text(max_size=10), max_size=3))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(field_names, likely_values, max_size=7))
def test_any_json_object_gives_an_event_or_bad_payload(body):
    try:
        event = parse(body)
    except BadPayload as exc:
        assert str(exc).startswith("field ")
        return
    assert isinstance(event, Event)
    assert event.title or event.body
    assert event.media["level"] in ("info", "success", "warning", "failure")
    assert all(isinstance(p, str) and p for p in event.paths)
    assert event.kind == event.kind.strip().lower()
