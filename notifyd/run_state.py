"""The tracked-run state machine, pure: a run and a status update in, the run's next state out.

A run only moves forward (queued < started < running < uploading < a final status) and never
out of a final status; it belongs to the source that first reported on it. The first running
(or uploading) sets its start, a final status its end; duration and cost follow from those.
An outputs-only update (ComfyDeploy's `run.output`) adds its outputs to a run that is not final
and moves nothing else.

An update the run ignores (a repeated or late final status, an older status, a late output, or
one from another source) is still recorded, as kind `run.ignored` with media["ignored"] saying
why: it notifies no one (fan-out treats every `run.*` kind but the two final ones as quiet), and
it can never read as a second completion.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from notifyd.model import FINAL_RUN_STATUSES, Event, Run, RunStatus
from notifyd.strict_json import json_safe
from notifyd.timefmt import iso

_RANK = {RunStatus.QUEUED: 0, RunStatus.STARTED: 1, RunStatus.RUNNING: 2, RunStatus.UPLOADING: 3}
UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
RUN_FINAL_KINDS = ("run.completed", "run.failed")
IGNORED_KIND = "run.ignored"         # an update that changed nothing: recorded, quiet
OUTPUTS_MAX = 1000                   # outputs a run keeps, however many `run.output` updates add
REGISTERED = "api"                   # the owner of a run a client registered (POST /runs) before any webhook
OWNERLESS = (None, REGISTERED)       # registered by a client, or not yet reported on


@dataclass(frozen=True)
class StatusUpdate:
    """What one status webhook says about a run."""

    run_id: str
    status: RunStatus
    source: str
    progress: float | None = None
    live_status: str | None = None
    outputs: tuple[Any, ...] = ()
    error: str | None = None
    outputs_only: bool = False          # new outputs of a running run; its status does not move

    @classmethod
    def from_event(cls, event: Event) -> StatusUpdate:
        media = event.media
        return cls(run_id=media["run_id"], status=RunStatus(media["status"]), source=event.source,
                   progress=media.get("progress"), live_status=media.get("live_status"),
                   outputs=tuple(media.get("outputs") or ()), error=media.get("error"),
                   outputs_only=bool(media.get("outputs_only")))


@dataclass(frozen=True)
class Transition:
    """The run after an update; `fan_out` when this update made it final; `ignored` says why not moved."""

    run: Run
    moved: bool
    fan_out: bool
    ignored: str | None = None


def new_run(run_id: str, source: str | None, now: float) -> Run:
    """A run first seen in a status webhook (or registered before any)."""
    return Run(id=run_id, status=RunStatus.QUEUED, created_at=now, updated_at=now, source=source)


def advance(run: Run, update: StatusUpdate, now: float) -> Transition:
    """Apply one status update to a run."""
    foreign = run.source not in OWNERLESS and run.source != update.source
    if foreign:
        return Transition(run, moved=False, fan_out=False,
                          ignored=f"the run is reported by source {run.source!r}, not {update.source!r}")
    if run.source in OWNERLESS:
        run = replace(run, source=update.source)
    current = run.status
    if current in FINAL_RUN_STATUSES:
        return Transition(run, moved=False, fan_out=False, ignored=f"the run is already {current}")
    if update.outputs_only:
        return Transition(replace(run, outputs=merge_outputs(run.outputs, update.outputs), updated_at=now),
                          moved=True, fan_out=False)
    final = update.status in FINAL_RUN_STATUSES
    if not final and _RANK[update.status] < _RANK[current]:
        return Transition(run, moved=False, fan_out=False, ignored=f"older than {current}")
    started = run.started_at
    if started is None and update.status in (RunStatus.RUNNING, RunStatus.UPLOADING):
        started = now
    progress = update.progress
    if progress is not None and run.progress is not None and not final:
        progress = max(progress, run.progress)
    moved = replace(run, status=update.status, progress=progress if progress is not None else run.progress,
                    live_status=update.live_status, outputs=update.outputs or run.outputs, error=update.error,
                    started_at=started, finished_at=now if final else None, updated_at=now)
    return Transition(moved, moved=True, fan_out=final)


def merge_outputs(kept: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
    """The run's outputs with `new` ones added: an output with the `id` of a kept one replaces it,
    one equal to a kept one is not added twice; at most OUTPUTS_MAX in all (the first ones)."""
    merged = list(kept)
    where = {_output_key(o): i for i, o in reversed(list(enumerate(merged)))}
    for output in new:
        key = _output_key(output)
        if key in where:
            merged[where[key]] = output
        elif len(merged) < OUTPUTS_MAX:
            where[key] = len(merged)
            merged.append(output)
    return tuple(merged)


def _output_key(output: Any) -> str:
    """What makes two outputs the same one: ComfyDeploy's output row `id`, else the whole output."""
    if isinstance(output, Mapping) and isinstance(output.get("id"), str):
        return "id:" + output["id"]
    try:
        return "json:" + json.dumps(output, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        return f"object:{id(output)}"


def timing(run: Run) -> dict[str, float | None]:
    """Duration from the first running to the end, and its cost at the registered rate; None for
    what is unknown, and for what a row stored by an older version cannot say (an infinite rate,
    a unit it no longer knows), so that a run can always be shown."""
    if run.finished_at is None or run.started_at is None:
        return {"duration_s": None, "cost_usd": None}      # never seen running: unknown, not zero
    duration = _finite(round(max(0.0, run.finished_at - run.started_at), 3))
    cost = None
    per_second = UNIT_SECONDS.get(run.cost_unit or "second")
    if run.cost_amount is not None and per_second and duration is not None:
        # from the shown duration, so cost = duration × rate exactly
        cost = _finite(round(duration * run.cost_amount / per_second, 6))
    return {"duration_s": duration, "cost_usd": cost}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def describe_event(event: Event, transition: Transition) -> Event:
    """The status event as stored: titled with the run's name and status, its media enriched
    with the run's name, context and timing. An update the run ignored is recorded under the
    quiet kind `run.ignored` (media["ignored"] says why), so that a repeated final status never
    looks like a second completion; every other update keeps its own kind."""
    run = transition.run
    name = run.name or f"run {run.id[:8]}"
    media: dict[str, Any] = dict(event.media, name=name, context=dict(run.context), registered=run.registered)
    media.update({k: v for k, v in timing(run).items() if v is not None})
    if transition.ignored:
        media["ignored"] = transition.ignored
    if not transition.moved:
        shown = f"{run.status} (update ignored)"
    elif media.get("outputs_only"):
        shown = f"new output ({run.status})"
    else:
        shown = event.media["status"]
    described = replace(event, title=f"{name}: {shown}", media=media)
    if not transition.moved:
        described = replace(described, kind=IGNORED_KIND)
    return described


def registered_media(media: Mapping[str, Any], run: Run) -> dict[str, Any]:
    """A final event's media once its run is registered late: the registration's name and context."""
    return {**media, "context": dict(run.context), "name": run.name or media.get("name")}


def callback_body(run: Run) -> dict[str, Any]:
    """What a run's callback_url receives (the same on every retry): strict JSON, whatever the row holds."""
    body: dict[str, Any] = {"run_id": run.id, "status": "completed" if run.status == RunStatus.COMPLETED else "failed",
                            "outputs": list(run.outputs)}
    if run.status != RunStatus.COMPLETED:
        body["error"] = run.error or {RunStatus.TIMEOUT: "the run timed out",
                                      RunStatus.CANCELLED: "the run was cancelled"}.get(run.status, "the run failed")
    body.update(timing(run))
    body["timestamp"] = iso(run.finished_at)
    return json_safe(body)
