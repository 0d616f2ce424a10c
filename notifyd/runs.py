"""Tracked runs: a long job (an AI generation, an upload) registered by a client and moved along by
its status webhooks. Only a final status fans out; a finished run never moves backwards."""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping

from notifyd.config import Config
from notifyd.errors import BadPayload, NotFound, NotifydError
from notifyd.events import Event
from notifyd.history import DELIVERY
from notifyd.timefmt import iso

if TYPE_CHECKING:
    import sqlite_utils

FINAL = ("completed", "failed", "timeout", "cancelled")
STATUSES = ("queued", "started", "running", "uploading", *FINAL)
_RANK = {"queued": 0, "started": 1, "running": 2, "uploading": 3}
UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
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
    notify: tuple[str, ...] = ()
    callback_url: str | None = None
    run_id: str | None = None


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


def register_run(db: sqlite_utils.Database, reg: Registration, now: float,
                 config: Config | None = None) -> dict[str, Any]:
    """Store a registration inside the caller's transaction. A run its first webhook already created
    takes the registration's details (and, if it already finished, the notifications and callback
    it could not have had then); one registered before is a RunConflict."""
    row = db.conn.execute("SELECT registered FROM runs WHERE id = ?", (reg.id,)).fetchone()
    values = (reg.name, json.dumps(list(reg.notify)), json.dumps(dict(reg.context)), reg.callback_url,
              reg.cost_amount, reg.cost_unit)
    if row is None:
        db.conn.execute(
            "INSERT INTO runs (id, name, notify, context, callback_url, cost_amount, cost_unit, status, registered, "
            "source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 1, 'api', ?, ?)",
            (reg.id, *values, now, now))
    elif row[0]:
        raise RunConflict(f"run {reg.id!r} is already registered")
    else:
        db.conn.execute("UPDATE runs SET name = ?, notify = ?, context = ?, callback_url = ?, cost_amount = ?, "
                        "cost_unit = ?, registered = 1, updated_at = ? WHERE id = ?", (*values, now, reg.id))
        run = _row(db, reg.id)
        if run["status"] in FINAL and run["final_event_id"] is not None and config is not None:
            _late_fan_out(db, run, reg, config, now)
    return {"id": reg.id, "status_url": f"/runs/{reg.id}", "status": _row(db, reg.id)["status"]}


def _late_fan_out(db: sqlite_utils.Database, run: Mapping[str, Any], reg: Registration, config: Config,
                  now: float) -> None:
    """The final event came before the registration: give it the named services' jobs it lacks, and the callback."""
    from notifyd.fanout import plan_jobs
    from notifyd.history import load_event
    from notifyd.queue import enqueue

    event_id = run["final_event_id"]
    had = {r[0] for r in db.conn.execute("SELECT service FROM jobs WHERE event_id = ?", (event_id,))}
    missing = [name for name in reg.notify if name not in had]
    event = load_event(db, event_id).event
    context = {**event.media, "context": dict(reg.context), "name": reg.name or event.media.get("name")}
    db.conn.execute("UPDATE events SET media = ?, title = ? WHERE id = ?",
                    (json.dumps(context), f"{reg.name or event.media.get('name')}: {run['status']}", event_id))
    callback = (reg.id, reg.callback_url) if reg.callback_url else None
    specs = plan_jobs(event, config.services.values(), only=missing, callback=callback) if missing or callback else []
    if specs:
        enqueue(db, event_id, specs, config.worker.max_attempts, now)


def apply_status(db: sqlite_utils.Database, event: Event, now: float) -> RunUpdate:
    """Move the run named by a status event along (inside the ingest transaction)."""
    media = dict(event.media)
    run_id, status = media["run_id"], media["status"]
    row = db.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        db.conn.execute("INSERT INTO runs (id, status, source, created_at, updated_at) VALUES (?, 'queued', ?, ?, ?)",
                        (run_id, event.source, now, now))
    run = _row(db, run_id)
    current = run["status"]
    # A run belongs to the source that first reported on it: another source (perhaps one without
    # the signing secret) cannot move it.
    foreign = run["source"] not in (None, "api", event.source)
    if run["source"] in (None, "api") and not foreign:
        db.conn.execute("UPDATE runs SET source = ? WHERE id = ?", (event.source, run_id))
    moves = not foreign and current not in FINAL and (
        status in FINAL or _RANK.get(status, 0) >= _RANK.get(current, 0))
    if moves:
        started = run["started_at"]
        if started is None and status in ("running", "uploading"):
            started = now                          # the first running sets the start
        progress = media.get("progress")
        if progress is not None and run["progress"] is not None and status not in FINAL:
            progress = max(progress, run["progress"])
        db.conn.execute(
            "UPDATE runs SET status = ?, progress = coalesce(?, progress), live_status = ?, outputs = ?, error = ?, "
            "started_at = ?, finished_at = ?, updated_at = ? WHERE id = ?",
            (status, progress, media.get("live_status"), json.dumps(media.get("outputs") or json.loads(run["outputs"])),
             media.get("error"), started, now if status in FINAL else None, now, run_id))
        run = _row(db, run_id)
    final_now = moves and status in FINAL
    name = run["name"] or f"run {run_id[:8]}"
    shown = status if moves else current
    enriched = dict(media, name=name, context=json.loads(run["context"]), registered=bool(run["registered"]))
    enriched.update({k: v for k, v in _timing(run).items() if v is not None})
    if foreign:
        enriched["ignored"] = f"the run is reported by source {run['source']!r}, not {event.source!r}"
    elif not moves:
        enriched["ignored"] = f"the run is already {current}" if current in FINAL else f"older than {current}"
    event = replace(event, title=f"{name}: {shown}", media=enriched)
    if not final_now:
        return RunUpdate(event=replace(event, kind=_quiet_kind(event.kind)), fan_out=False, run_id=run_id)
    return RunUpdate(event=event, fan_out=True, notify=tuple(json.loads(run["notify"])),
                     callback_url=run["callback_url"], run_id=run_id)


def link_final_event(db: sqlite_utils.Database, run_id: str, event_id: int) -> None:
    db.conn.execute("UPDATE runs SET final_event_id = ? WHERE id = ?", (event_id, run_id))


def _quiet_kind(kind: str) -> str:
    # A repeated or late final update is recorded, but must not look like a second completion.
    return "run.update" if kind in ("run.completed", "run.failed") else kind


def _row(db: sqlite_utils.Database, run_id: str) -> dict[str, Any]:
    rows = list(db.query("SELECT * FROM runs WHERE id = ?", [run_id]))
    if not rows:
        raise NotFound(f"no run {run_id!r}")
    return rows[0]


def _timing(run: Mapping[str, Any]) -> dict[str, Any]:
    """Duration from the first running to the end, and its cost at the registered rate."""
    if run["finished_at"] is None or run["started_at"] is None:
        return {"duration_s": None, "cost_usd": None}      # never seen running: unknown, not zero
    duration = round(max(0.0, run["finished_at"] - run["started_at"]), 3)
    cost = None
    if run["cost_amount"] is not None:         # from the shown duration, so cost = duration × rate exactly
        cost = round(duration * run["cost_amount"] / UNIT_SECONDS[run["cost_unit"] or "second"], 6)
    return {"duration_s": duration, "cost_usd": cost}


def callback_body(run: Mapping[str, Any]) -> dict[str, Any]:
    """What a run's callback_url receives (the same on every retry)."""
    status = run["status"]
    body: dict[str, Any] = {"run_id": run["id"], "status": "completed" if status == "completed" else "failed",
                            "outputs": json.loads(run["outputs"])}
    if status != "completed":
        body["error"] = run["error"] or {"timeout": "the run timed out", "cancelled": "the run was cancelled"}.get(
            status, "the run failed")
    body.update(_timing(run))
    body["timestamp"] = iso(run["finished_at"])
    return body


def load_run(db: sqlite_utils.Database, run_id: str) -> dict[str, Any]:
    return _row(db, run_id)


def run_view(db: sqlite_utils.Database, run_id: str) -> dict[str, Any]:
    """The run JSON shape of design §11, with its delivery derived from the final event's jobs."""
    return _view(db, _row(db, run_id))


def list_runs(db: sqlite_utils.Database, limit: int = 50) -> list[dict[str, Any]]:
    return [_view(db, row) for row in db.query("SELECT * FROM runs ORDER BY created_at DESC LIMIT ?", [limit])]


def _view(db: sqlite_utils.Database, run: Mapping[str, Any]) -> dict[str, Any]:
    jobs = []
    if run["final_event_id"] is not None:
        jobs = list(db.query("SELECT id, service, state, attempts, last_error, finished_at FROM jobs "
                             "WHERE event_id = ? ORDER BY id", [run["final_event_id"]]))
    timing = _timing(run)
    return {
        "id": run["id"], "name": run["name"], "status": run["status"], "progress": run["progress"],
        "live_status": run["live_status"], "created_at": iso(run["created_at"]),
        "started_at": iso(run["started_at"]), "finished_at": iso(run["finished_at"]),
        "duration_s": timing["duration_s"], "cost_usd": timing["cost_usd"], "outputs": json.loads(run["outputs"]),
        "error": run["error"], "notify": json.loads(run["notify"]), "callback_url": run["callback_url"],
        "registered": bool(run["registered"]), "delivery": _delivery(run, jobs),
        "jobs": [{"id": j["id"], "service": j["service"], "state": j["state"], "attempts": j["attempts"],
                  "delivery": DELIVERY[j["state"]], "last_error": j["last_error"]} for j in jobs],
    }


def _delivery(run: Mapping[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """pending until every job of the final event is done; then sent, failed or skipped."""
    states = [DELIVERY[j["state"]] for j in jobs]
    if run["status"] not in FINAL or "pending" in states:
        status = "pending"
    elif not states or all(s == "skipped" for s in states):
        status = "skipped"
    elif "failed" in states:
        status = "failed"
    else:
        status = "sent"
    sent = [j["finished_at"] for j in jobs if j["state"] == "succeeded" and j["finished_at"]]
    errors = [j["last_error"] for j in jobs if j["last_error"]]
    return {"status": status, "delivered_at": iso(max(sent)) if sent and status == "sent" else None,
            "attempts": sum(j["attempts"] for j in jobs), "last_error": errors[-1] if errors else None}
