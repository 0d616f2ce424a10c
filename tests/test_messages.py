"""notifyd.messages.render_message: the default notification text for an event."""

from __future__ import annotations

from notifyd.events import Event
from notifyd.messages import Message, render_message


def event(**fields) -> Event:
    fields.setdefault("source", "radarr")
    fields.setdefault("source_type", "radarr")
    fields.setdefault("kind", "download")
    fields.setdefault("title", "")
    return Event(**fields)


def test_title_and_body_as_given():
    message = render_message(event(title="The Matrix (1999)", body="Bluray-1080p", media={"level": "success"}))
    assert message == Message(title="The Matrix (1999)", body="Bluray-1080p", level="success")


def test_title_alone_is_also_the_body():
    assert render_message(event(title="The Matrix (1999)")) == \
        Message(title="The Matrix (1999)", body="The Matrix (1999)", level="info")


def test_body_alone_gets_a_title_naming_source_and_kind():
    assert render_message(event(source="backups", kind="backup", body="3 GB done")) == \
        Message(title="backups: backup", body="3 GB done", level="info")


def test_nothing_to_say_names_source_and_kind():
    assert render_message(event(source="sonarr", kind="health")) == \
        Message(title="sonarr: health", body="sonarr sent a health event.", level="info")


def test_level_defaults_to_info_and_comes_from_media():
    assert render_message(event(title="x")).level == "info"
    assert render_message(event(title="x", media={"level": "failure"})).level == "failure"
    assert render_message(event(title="x", media={"year": 1999})).level == "info"
