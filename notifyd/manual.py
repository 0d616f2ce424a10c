"""Manual notifications: a message a person or a script writes itself — `notifyd send` and
POST /notify — rather than a sender's webhook about something that happened.

Both ways build their Event here (source type `manual`, kind `notification`) and check the
services they name here, so a message is filtered, rendered and delivered alike whichever way it
came. Pure: a body and the config in, an Event or a refusal out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from notifyd.config import Config
from notifyd.errors import BadPayload
from notifyd.event_kinds import GENERIC
from notifyd.fields import Fields, describe
from notifyd.model import Event
from notifyd.sources.generic import LEVELS

SOURCE_TYPE = "manual"
API_SOURCE = "api"              # the source of what POST /notify takes
CLI_SOURCE = "cli"              # and of `notifyd send`
NOTIFY_KEYS = ("title", "body", "level", "services")
SERVICES_MAX = 100


@dataclass(frozen=True)
class ManualMessage:
    """What someone asked to send: `services` None means every enabled service that takes it."""

    title: str
    body: str
    level: str = "info"
    services: tuple[str, ...] | None = None


def manual_event(message: ManualMessage, *, source: str, payload: str = "{}") -> Event:
    """The Event a manual message becomes; `payload` is the request as received (`{}` for the CLI)."""
    return Event(source=source, source_type=SOURCE_TYPE, kind=GENERIC, title=message.title, body=message.body,
                 media={"level": message.level}, payload=payload)


def service_problem(config: Config, names: Iterable[str]) -> str | None:
    """Why a message cannot go to exactly these services (a name not configured, a service switched
    off in the config), or None when it can. Asked for by name, a disabled service is refused rather
    than quietly skipped: the sender would otherwise hear "accepted" for a message nobody gets."""
    names = list(dict.fromkeys(names))
    unknown = [name for name in names if name not in config.services]
    if unknown:
        return (f"no service {', '.join(map(repr, unknown))} (configured: "
                f"{', '.join(config.services) or 'none'})")
    disabled = [name for name in names if not config.services[name].enabled]
    if len(disabled) == 1:
        return f"service {disabled[0]!r} is disabled; enable it with `notifyd services enable {disabled[0]}`"
    if disabled:
        return (f"services {', '.join(map(repr, disabled))} are disabled; enable them with "
                "`notifyd services enable NAME`")
    return None


def parse_notify(body: Mapping[str, Any], config: Config) -> ManualMessage:
    """A POST /notify body {"title", "body", "level"?, "services"?: [...]} as a ManualMessage, or
    BadPayload (422) naming the field. Every key is ours, so a typo ("titel") is refused."""
    fields = Fields(body)
    fields.only(NOTIFY_KEYS)
    title = fields.title("title") or ""
    text = fields.prose("body") or ""
    if not (title or text):
        raise BadPayload("field 'title' or 'body': expected at least one non-empty string")
    level = fields.choice("level", {name: name for name in LEVELS}) or "info"
    services = None
    if fields.given("services", "an array of service names") is not None:
        names = fields.items("services", _name, "an array of service names", SERVICES_MAX)
        if not names:
            raise fields.refuse("services", "at least one service name (leave it out for every enabled service)",
                                got="an empty array")
        problem = service_problem(config, names)
        if problem is not None:
            raise BadPayload(f"field 'services': {problem}")
        services = tuple(dict.fromkeys(names))
    return ManualMessage(title=title, body=text, level=level, services=services)


def _name(inner: Fields, i: int, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadPayload(f"field {inner.name(i)!r}: expected a service name, got {describe(value)}")
    return value
