"""Tracked runs: a long job (an AI generation, an upload) registered by a client and moved along by
its status webhooks, inside the ingest transaction. Only a final status fans out; the state
machine itself is `run_state`, pure."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from notifyd.config import Config
from notifyd.errors import BadPayload, NotifydError
from notifyd.fanout import plan_jobs
from notifyd.fields import SAFE_INTEGER, Fields, describe
from notifyd.model import Event, Run
from notifyd.quiet_hours import defer_quiet, zone_of
from notifyd.run_state import REGISTERED, UNIT_SECONDS, StatusUpdate, advance, describe_event, new_run, registered_media
from notifyd.store import Tx


class RunConflict(NotifydError):
    """A run with that id was already registered."""


@dataclass(frozen=True)
class Registration:
    """What a client says about a run it starts (POST /runs)."""

    id: str
    name: str
    notify: tuple[str, ...]
    context: Mapping[str, str]
    callback_url: str | None
    cost_amount: float | None
    cost_unit: str | None


@dataclass(frozen=True)
class RunUpdate:
    """What a status webhook did: the event to store (enriched), and whether it fans out, to whom."""

    event: Event
    fan_out: bool
    run_id: str
    notify: tuple[str, ...] = ()
    callback_url: str | None = None


REGISTRATION_KEYS = ("id", "name", "notify", "context", "callback_url", "cost_rate")
NAME_MAX = 200
NOTIFY_MAX = 100
CONTEXT_MAX = 32                # entries; each fills a {placeholder} of a service URL
CONTEXT_VALUE_MAX = 1024
COST_MAX = 1_000_000.0          # per unit of time: a larger rate is a typo, not a price
_PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")      # what channels' {placeholders} can name


def parse_registration(body: Mapping[str, Any], config: Config,
                       check_callback: Callable[[str], None]) -> Registration:
    """Validate a POST /runs body through the field vocabulary; BadPayload names the field (422).

    Every key is ours, so an unknown one (a typo such as "notfy") is refused, not ignored."""
    fields = Fields(body)
    fields.only(REGISTRATION_KEYS)
    run_id = fields.run_id("id") or uuid.uuid4().hex
    name = fields.label("name", "a name", NAME_MAX) or ""
    notify = fields.items("notify", _service_name(config), "an array of service names", NOTIFY_MAX)
    context = _context(fields.obj("context"))
    callback = fields.url("callback_url", "a callback URL (http or https)")
    if callback is not None:
        if not config.runs.callback_secret:
            raise BadPayload("field 'callback_url': callbacks are signed, and this daemon has no "
                             "[runs] callback_secret yet")
        try:
            check_callback(callback)
        except NotifydError as exc:
            raise BadPayload(f"field 'callback_url': {exc}") from None
    amount = unit = None
    rate = fields.obj("cost_rate")
    if rate is not None:
        rate.only(("amount", "unit"))
        amount = rate.number("amount", 0, COST_MAX, required=True)
        unit = rate.choice("unit", {name: name for name in UNIT_SECONDS}) or "second"
    return Registration(id=run_id, name=name, notify=tuple(dict.fromkeys(notify)), context=context,
                        callback_url=callback, cost_amount=amount, cost_unit=unit)


def _service_name(config: Config) -> Callable[[Fields, int, Any], str]:
    def read(inner: Fields, i: int, value: Any) -> str:
        if not isinstance(value, str) or value not in config.services:
            names = ", ".join(config.services) or "none"
            raise BadPayload(f"field {inner.name(i)!r}: expected the name of a configured service "
                             f"({names}), got {describe(value)}")
        return value
    return read


def _context(context: Fields | None) -> dict[str, str]:
    """A run's context: up to CONTEXT_MAX placeholder names, each a one-line string or a number."""
    if context is None:
        return {}
    if len(context.data) > CONTEXT_MAX:
        raise BadPayload(f"field {context.prefix!r}: expected at most {CONTEXT_MAX} entries, "
                         f"got {len(context.data)}")
    values = {}
    for key, value in context.data.items():
        if not _PLACEHOLDER.fullmatch(key):
            raise BadPayload(f"field {context.name(key)!r}: expected a placeholder name such as chat_id "
                             "(a letter or '_', then letters, digits or '_'; at most 64)")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            context.number(key, -SAFE_INTEGER, SAFE_INTEGER)
            values[key] = str(value)
        else:
            context.label(key, "a string or a number", CONTEXT_VALUE_MAX, required=True)
            values[key] = value                 # as sent: it fills a URL exactly
    return values


def register_run(tx: Tx, reg: Registration, now: float, config: Config | None = None) -> dict[str, Any]:
    """Store a registration. A run its first webhook already created takes the registration's
    details (and, if it already finished, the notifications and callback it could not have had
    then); one registered before is a RunConflict."""
    # Created unregistered, then checked: of two registrations racing on one id, the second
    # finds the first's row (the primary key decides) already registered.
    run = tx.run_for_update(reg.id, create=new_run(reg.id, REGISTERED, now))
    assert run is not None
    if run.registered:
        raise RunConflict(f"run {reg.id!r} is already registered")
    registered = replace(run, name=reg.name, notify=reg.notify, context=dict(reg.context),
                         callback_url=reg.callback_url, cost_amount=reg.cost_amount, cost_unit=reg.cost_unit,
                         registered=True, updated_at=now)
    tx.save_run(registered)
    if run.final and run.final_event_id is not None and config is not None:
        _late_fan_out(tx, registered, config, now)
    return {"id": reg.id, "status_url": f"/runs/{reg.id}", "status": str(registered.status)}


def _late_fan_out(tx: Tx, run: Run, config: Config, now: float) -> None:
    """The final event came before the registration: give it the named services' jobs it lacks, and the callback."""
    assert run.final_event_id is not None
    event_id = run.final_event_id
    had = tx.event_services(event_id)
    missing = [name for name in run.notify if name not in had]
    event = tx.load_event(event_id).event
    media = registered_media(event.media, run)
    tx.update_event(event_id, title=f"{media['name']}: {run.status}", media=media)
    callback = (run.id, run.callback_url) if run.callback_url else None
    specs = plan_jobs(event, config.services.values(), only=missing, callback=callback) if missing or callback else []
    if specs:
        specs = defer_quiet(specs, config.services.values(), level=str(media.get("level", "info")), now=now,
                            zone=zone_of(config.server.timezone))
        tx.enqueue(event_id, specs, config.worker.max_attempts, now)


def apply_status(tx: Tx, event: Event, now: float) -> RunUpdate:
    """Move the run named by a status event along (inside the ingest transaction)."""
    update = StatusUpdate.from_event(event)
    run = tx.run_for_update(update.run_id, create=new_run(update.run_id, event.source, now))
    assert run is not None
    transition = advance(run, update, now)
    if transition.run != run:
        tx.save_run(transition.run)
    described = describe_event(event, transition)
    if not transition.fan_out:
        return RunUpdate(event=described, fan_out=False, run_id=run.id)
    return RunUpdate(event=described, fan_out=True, run_id=run.id, notify=transition.run.notify,
                     callback_url=transition.run.callback_url)


def link_final_event(tx: Tx, run_id: str, event_id: int) -> None:
    run = tx.run_for_update(run_id)
    if run is not None:
        tx.save_run(replace(run, final_event_id=event_id))


__all__ = ["Registration", "RunConflict", "RunUpdate", "apply_status",
           "link_final_event", "parse_registration", "register_run"]
