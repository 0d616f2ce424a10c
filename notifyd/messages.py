"""What a notification says: title, body and level, from an event. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from notifyd.events import Event


@dataclass(frozen=True)
class Message:
    """A rendered notification; `level` is info, success, warning or failure."""

    title: str
    body: str
    level: str = "info"


def render_message(event: Event) -> Message:
    """The default text: the event's own title and body, or a line naming source and kind."""
    title = event.title or f"{event.source}: {event.kind}"
    body = event.body or event.title or f"{event.source} sent a {event.kind} event."
    level = str(event.media.get("level", "info"))
    return Message(title=title, body=body, level=level)
