"""Tracked runs: a long job (an AI generation, an upload) registered by a client and moved along by
its status webhooks, inside the ingest transaction. Only a final status fans out; the state
machine itself is `run_state`, pure."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from notifyd.config import Config
from notifyd.errors import BadPayload, NotifydError
from notifyd.fanout import plan_jobs
from notifyd.model import Event, Run
from notifyd.run_state import UNIT_SECONDS, StatusUpdate, advance, describe_event, new_run, registered_media
from notifyd.store import Tx

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


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


def parse_registration(body: Mapping[str, Any], config: Config,
                       check_callback: Callable[[str], None]) -> Registration:
    """Validate a POST /runs body; BadPayload names the field (422)."""
    run_id = body.get("id")
    if run_id is None:
        run_id = uuid.uuid4().hex
    elif not isinstance(run_id, str) or not _ID.match(run_id):
        raise BadPayload("field 'id': expected up to 200 letters, digits, '_', '.', ':' or '-'")
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 200:
        raise BadPayload("field 'name': expected a string of at most 200 characters")
    notify = body.get("notify", [])
    if not isinstance(notify, list) or not all(isinstance(n, str) for n in notify):
        raise BadPayload("field 'notify': expected an array of service names")
    for service in notify:
        if service not in config.services:
            raise BadPayload(f"field 'notify': no service {service!r} (configured: "
                             f"{', '.join(config.services) or 'none'})")
    context = body.get("context", {})
    if not isinstance(context, dict) or not all(isinstance(k, str) and isinstance(v, (str, int, float))
                                                and not isinstance(v, bool) for k, v in context.items()):
        raise BadPayload("field 'context': expected an object of strings or numbers")
    callback = body.get("callback_url")
    if callback is not None:
        if not isinstance(callback, str):
            raise BadPayload("field 'callback_url': expected a URL string")
        if not config.runs.callback_secret:
            raise BadPayload("field 'callback_url': callbacks are signed, and this daemon has no "
                             "[runs] callback_secret yet")
        try:
            check_callback(callback)
        except NotifydError as exc:
            raise BadPayload(f"field 'callback_url': {exc}") from None
    amount = unit = None
    rate = body.get("cost_rate")
    if rate is not None:
        if not isinstance(rate, dict) or set(rate) - {"amount", "unit"} or "amount" not in rate:
            raise BadPayload("field 'cost_rate': expected {\"amount\": number, \"unit\": \"second\"}")
        amount, unit = rate["amount"], rate.get("unit", "second")
        if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not _finite(amount) or amount < 0:
            raise BadPayload("field 'cost_rate.amount': expected a finite number of 0 or more")
        if unit not in UNIT_SECONDS:
            raise BadPayload(f"field 'cost_rate.unit': expected one of {', '.join(UNIT_SECONDS)}")
    return Registration(id=run_id, name=name, notify=tuple(dict.fromkeys(notify)),
                        context={k: str(v) for k, v in context.items()}, callback_url=callback,
                        cost_amount=float(amount) if amount is not None else None, cost_unit=unit)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def register_run(tx: Tx, reg: Registration, now: float, config: Config | None = None) -> dict[str, Any]:
    """Store a registration. A run its first webhook already created takes the registration's
    details (and, if it already finished, the notifications and callback it could not have had
    then); one registered before is a RunConflict."""
    # Created unregistered, then checked: of two registrations racing on one id, the second
    # finds the first's row (the primary key decides) already registered.
    run = tx.run_for_update(reg.id, create=new_run(reg.id, "api", now))
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
