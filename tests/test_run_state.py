"""The tracked-run state machine, pure: no database, a run and an update in, the next run out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifyd.model import Event, Run, RunStatus
from notifyd.run_state import (
    OUTPUTS_MAX,
    StatusUpdate,
    advance,
    callback_body,
    describe_event,
    merge_outputs,
    new_run,
    registered_media,
    timing,
)

T0 = 1_700_000_000.0


def update(status: str, source: str = "comfy", **fields: object) -> StatusUpdate:
    return StatusUpdate(run_id="r1", status=RunStatus(status), source=source, **fields)  # type: ignore[arg-type]


def run(**fields: object) -> Run:
    return replace(new_run("r1", None, T0), **fields)  # type: ignore[arg-type]


def test_a_run_moves_forward_and_the_first_running_sets_its_start() -> None:
    r = run()
    for status, when in (("queued", T0), ("started", T0 + 1), ("running", T0 + 2), ("running", T0 + 5),
                         ("uploading", T0 + 8)):
        step = advance(r, update(status), when)
        assert step.moved and not step.fan_out and step.ignored is None
        r = step.run
    assert r.status == RunStatus.UPLOADING and r.started_at == T0 + 2 and r.finished_at is None
    assert r.source == "comfy"                           # the first reporter owns the run


def test_a_final_status_ends_the_run_and_fans_out_once() -> None:
    r = advance(run(), update("running"), T0).run
    done = advance(r, update("completed", outputs=({"url": "u"},)), T0 + 12.5)
    assert done.moved and done.fan_out and done.run.final
    assert done.run.finished_at == T0 + 12.5 and done.run.outputs == ({"url": "u"},)
    again = advance(done.run, update("completed"), T0 + 13)
    assert not again.moved and not again.fan_out and again.ignored == "the run is already completed"
    late = advance(done.run, update("running"), T0 + 14)
    assert not late.fan_out and late.run == done.run


def test_an_older_status_is_ignored_and_progress_never_goes_back() -> None:
    r = advance(run(), update("running", progress=0.6), T0).run
    older = advance(r, update("started"), T0 + 1)
    assert not older.moved and older.ignored == "older than running" and older.run == r
    lower = advance(r, update("running", progress=0.4), T0 + 2)
    assert lower.run.progress == 0.6
    kept = advance(r, update("running"), T0 + 3)          # an update without progress keeps it
    assert kept.run.progress == 0.6


def test_another_source_cannot_move_a_run() -> None:
    r = advance(run(), update("running", source="comfy"), T0).run
    foreign = advance(r, update("completed", source="impostor"), T0 + 1)
    assert not foreign.moved and not foreign.fan_out and foreign.run == r
    assert foreign.ignored == "the run is reported by source 'comfy', not 'impostor'"
    registered = run(source="api")                        # registered by a client: the first webhook owns it
    assert advance(registered, update("queued", source="comfy"), T0).run.source == "comfy"


def test_timing_and_cost_follow_the_registered_rate() -> None:
    r = run(cost_amount=0.6, cost_unit="minute", started_at=T0, finished_at=T0 + 90.0004)
    assert timing(r) == {"duration_s": 90.0, "cost_usd": 0.9}
    assert timing(run(finished_at=T0 + 5)) == {"duration_s": None, "cost_usd": None}   # never seen running
    assert timing(run(started_at=T0, finished_at=T0 + 3))["cost_usd"] is None            # no rate


@pytest.mark.parametrize("status, error, said", [
    ("completed", None, None), ("failed", "OOM on node 3", "OOM on node 3"),
    ("timeout", None, "the run timed out"), ("cancelled", None, "the run was cancelled"),
])
def test_the_callback_says_completed_or_failed_and_why(status: str, error: str | None, said: str | None) -> None:
    r = run(status=RunStatus(status), error=error, started_at=T0, finished_at=T0 + 2, outputs=({"a": 1},))
    body = callback_body(r)
    assert body["status"] == ("completed" if status == "completed" else "failed")
    assert body.get("error") == said and body["outputs"] == [{"a": 1}] and body["duration_s"] == 2.0
    assert body["timestamp"].endswith("Z") or body["timestamp"].endswith("+00:00")


def test_the_stored_event_names_the_run_and_quiets_a_repeated_final() -> None:
    event = Event(source="comfy", source_type="comfydeploy", kind="run.completed", title="",
                  media={"run_id": "r1", "status": "completed"})
    r = run(name="Portrait batch", context={"chat_id": "42"}, registered=True)
    first = advance(advance(r, update("running"), T0).run, update("completed"), T0 + 4)
    shown = describe_event(event, first)
    assert shown.kind == "run.completed" and shown.title == "Portrait batch: completed"
    assert shown.media["context"] == {"chat_id": "42"} and shown.media["duration_s"] == 4.0
    repeat = describe_event(event, advance(first.run, update("completed"), T0 + 5))
    assert repeat.kind == "run.ignored" and repeat.media["ignored"] == "the run is already completed"
    assert repeat.title == "Portrait batch: completed (update ignored)"
    running = replace(event, kind="run.running", media={"run_id": "r1", "status": "running"})
    unnamed = describe_event(running, advance(run(), update("running"), T0))
    assert unnamed.title == "run r1: running" and unnamed.kind == "run.running"
    late = describe_event(running, advance(first.run, update("running"), T0 + 6))
    assert late.kind == "run.ignored" and late.media["ignored"] == "the run is already completed"
    foreign = describe_event(event, advance(first.run, update("completed", source="impostor"), T0 + 7))
    assert foreign.kind == "run.ignored" and "reported by source 'comfy'" in foreign.media["ignored"]


IMAGE = {"id": "o1", "data": {"images": [{"url": "https://cdn.example/1.png"}]}, "node_meta": {"node_id": "9"}}
TEXT = {"id": "o2", "data": {"text": ["a caption"]}, "node_meta": {"node_id": "14"}}


def test_an_outputs_only_update_adds_outputs_and_moves_nothing_else() -> None:
    r = advance(run(), update("running", progress=0.5, live_status="Executing KSampler"), T0).run
    step = advance(r, update("completed", outputs=(IMAGE,), outputs_only=True, progress=1.0, live_status="x"), T0 + 1)
    assert step.moved and not step.fan_out and step.ignored is None
    assert step.run.status == RunStatus.RUNNING and step.run.finished_at is None
    assert (step.run.progress, step.run.live_status) == (0.5, "Executing KSampler")
    assert step.run.outputs == (IMAGE,) and step.run.updated_at == T0 + 1
    step = advance(step.run, update("running", outputs=(TEXT,), outputs_only=True), T0 + 2)
    assert step.run.outputs == (IMAGE, TEXT)
    event = Event(source="comfy", source_type="comfydeploy", kind="run.output", title="",
                  media={"run_id": "r1", "status": "running", "outputs_only": True})
    shown = describe_event(event, step)
    assert shown.kind == "run.output" and shown.title == "run r1: new output (running)"
    # the final status brings every output, and replaces the list
    done = advance(step.run, update("completed", outputs=(IMAGE, TEXT)), T0 + 3)
    assert done.fan_out and done.run.outputs == (IMAGE, TEXT)
    late = advance(done.run, update("running", outputs=({"id": "o3"},), outputs_only=True), T0 + 4)
    assert not late.moved and late.run.outputs == (IMAGE, TEXT) and late.ignored == "the run is already completed"


def test_merging_outputs_replaces_by_id_and_never_adds_one_twice() -> None:
    newer = {**IMAGE, "data": {"images": [{"url": "https://cdn.example/1-signed.png"}]}}
    assert merge_outputs((IMAGE, TEXT), (newer,)) == (newer, TEXT)
    plain = {"data": {"text": ["no id"]}}
    assert merge_outputs((plain,), (dict(plain), TEXT)) == (plain, TEXT)
    many = tuple({"id": f"o{i}"} for i in range(OUTPUTS_MAX))
    assert merge_outputs(many, ({"id": "extra"},)) == many                       # capped
    assert merge_outputs(many, ({"id": "o5", "v": 2},))[5] == {"id": "o5", "v": 2}   # a known one still replaces


def test_a_late_registration_names_the_final_event() -> None:
    media = registered_media({"name": "run r1", "status": "completed"}, run(name="Batch 7", context={"k": "v"}))
    assert media == {"name": "Batch 7", "status": "completed", "context": {"k": "v"}}
