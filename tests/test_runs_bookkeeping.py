"""Run bookkeeping on a real store (each engine): forward-only status, timing and cost, registration races."""

from __future__ import annotations

import re

import pytest

from notifyd.config import parse_config
from notifyd.errors import BadPayload
from notifyd.ingest import record_event
from notifyd.runs import Registration, RunConflict, parse_registration, register_run
from notifyd.sources.comfydeploy import parse_comfydeploy
from notifyd.store import Store
from notifyd.views import run_view

CONFIG = parse_config({"runs": {"callback_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "services": {"chat": {"type": "apprise", "url": "json://127.0.0.1:9/{chat_id}",
                                             "events": ["never"]},
                                    "feed": {"type": "apprise", "url": "json://127.0.0.1:9/feed",
                                             "events": ["run.completed"]}}}, path=None)


def update(store: Store, status: str, at: float, run_id: str = "r1", **extra):
    body = {"event_type": "run.updated", "run_id": run_id, "status": status, **extra}
    event = parse_comfydeploy(body, "comfydeploy", "comfydeploy", "{}")
    with store.transaction() as tx:
        return record_event(tx, event, CONFIG, at)


def register(store: Store, at: float = 0.0, **fields):
    reg = parse_registration({"id": "r1", **fields}, CONFIG, lambda url: None)
    with store.transaction() as tx:
        return register_run(tx, reg, at, CONFIG)


def test_status_moves_forward_only_and_the_first_running_starts_the_clock(store: Store) -> None:
    register(store, name="Portrait", notify=["chat"], context={"chat_id": "1"}, cost_rate={"amount": 0.5, "unit": "minute"})
    assert update(store, "queued", 100).jobs == []
    assert update(store, "running", 110, progress=0.2).jobs == []
    assert update(store, "running", 115, progress=0.1).jobs == []          # progress never goes back
    assert update(store, "started", 116).jobs == []                         # nor the status
    assert update(store, "uploading", 150).jobs == []
    run = run_view(store, "r1")
    assert (run["status"], run["progress"]) == ("uploading", 0.2)
    final = update(store, "success", 230, progress=1)
    assert sorted(j.service for j in final.jobs) == ["chat", "feed"]     # named whatever its filter, plus filter
    run = run_view(store, "r1")
    assert run["status"] == "completed" and run["duration_s"] == 120.0 and run["cost_usd"] == 1.0
    assert run["delivery"]["status"] == "pending" and len(run["jobs"]) == 2
    # a repeated final, a late running: recorded, nothing moves, nobody is told again
    assert update(store, "success", 240, progress=1).jobs == []
    assert update(store, "failed", 250).jobs == []
    assert update(store, "running", 260).jobs == []
    run = run_view(store, "r1")
    assert run["status"] == "completed" and run["duration_s"] == 120.0
    kinds = [e.event.kind for e in store.list_events()]
    # the older "started", the repeated and the contrary final, the late running: ignored, and quiet
    assert kinds.count("run.completed") == 1 and kinds.count("run.ignored") == 4


def test_a_run_never_seen_running_has_no_duration_and_says_why_it_failed(store: Store) -> None:
    register(store, cost_rate={"amount": 2})
    final = update(store, "timeout", 50)
    assert [j.service for j in final.jobs] == []                     # no notify, no callback, no filter match
    run = run_view(store, "r1")
    assert run["status"] == "timeout" and run["duration_s"] is None and run["cost_usd"] is None
    assert run["error"] == "the run timed out" and run["delivery"]["status"] == "skipped"


def test_a_registration_after_the_first_webhook_takes_over_but_not_twice(store: Store) -> None:
    update(store, "queued", 10)
    assert run_view(store, "r1")["registered"] is False
    register(store, name="late", notify=["chat"], context={"chat_id": "9"})
    run = run_view(store, "r1")
    assert run["registered"] is True and run["name"] == "late" and run["notify"] == ["chat"]
    with pytest.raises(RunConflict):
        register(store)


@pytest.mark.parametrize("body, field", [
    ({"id": "has space"}, "id"), ({"notify": "chat"}, "notify"), ({"notify": ["nope"]}, "notify[0]"),
    ({"context": {"a": [1]}}, "context.a"), ({"cost_rate": {"amount": "1"}}, "cost_rate.amount"),
    ({"cost_rate": {"amount": 1, "unit": "fortnight"}}, "cost_rate.unit"), ({"callback_url": 5}, "callback_url"),
    ({"name": 7}, "name"), ({"name": "x" * 201}, "name"), ({"name": "two\nlines"}, "name"),
    ({"cost_rate": {"amount": 1, "unit": []}}, "cost_rate.unit"), ({"cost_rate": {"amount": 1, "unit": {}}}, "cost_rate.unit"),
    ({"cost_rate": {"amount": 1, "unit": None, "currency": "EUR"}}, "cost_rate.currency"),
    ({"cost_rate": {"unit": "second"}}, "cost_rate.amount"), ({"cost_rate": {"amount": 1e7}}, "cost_rate.amount"),
    ({"cost_rate": [1, "second"]}, "cost_rate"), ({"cost_rate": 0.5}, "cost_rate"),
    ({"context": ["chat_id", "1"]}, "context"), ({"context": {"chat_id": float("inf")}}, "context.chat_id"),
    ({"context": {"chat_id": 10**30}}, "context.chat_id"), ({"context": {"chat_id": True}}, "context.chat_id"),
    ({"context": {"chat_id": {"id": 1}}}, "context.chat_id"), ({"context": {"chat id": "1"}}, "context.chat id"),
    ({"context": {"chat_id": "x" * 1025}}, "context.chat_id"),
    ({"context": {f"k{i}": "v" for i in range(33)}}, "context"),
    ({"notify": [["chat"]]}, "notify[0]"), ({"notify": {"chat": True}}, "notify"),
    ({"callback_url": "ftp://example.com/x"}, "callback_url"), ({"callback_url": "https://" + "a" * 5000}, "callback_url"),
    ({"callback_url": ["https://example.com"]}, "callback_url"),
    ({"id": ""}, "id"), ({"id": "x" * 201}, "id"), ({"id": 12}, "id"),
    ({"notfy": ["chat"]}, "notfy"),
])
def test_registration_errors_name_the_field(body, field) -> None:
    with pytest.raises(BadPayload, match="^" + re.escape(f"field '{field}'")):
        parse_registration(body, CONFIG, lambda url: None)


def test_the_cost_rate_unit_that_crashed_the_lookup_names_the_field() -> None:
    with pytest.raises(BadPayload) as info:
        parse_registration({"cost_rate": {"amount": 1, "unit": []}}, CONFIG, lambda url: None)
    assert str(info.value) == "field 'cost_rate.unit': expected one of second, minute, hour, got an array"


def test_context_values_keep_their_text_and_numbers_become_text() -> None:
    reg = parse_registration({"context": {"chat_id": "42 7", "thread": -1001234567890, "ratio": 0.5}}, CONFIG,
                             lambda url: None)
    assert reg.context == {"chat_id": "42 7", "thread": "-1001234567890", "ratio": "0.5"}


def test_rows_an_older_version_stored_with_non_finite_numbers_still_show(store: Store) -> None:
    """A rate of Infinity, a progress of NaN, an infinity in the outputs, a unit since forgotten."""
    import json as json_mod
    from dataclasses import replace

    from notifyd.model import Run, RunStatus
    from notifyd.run_state import callback_body

    old = Run(id="old", status=RunStatus.COMPLETED, created_at=0, updated_at=0, started_at=1, finished_at=2,
              progress=float("nan"), cost_amount=float("inf"), cost_unit="fortnight",
              outputs=({"data": {"seed": float("inf"), "scores": [float("nan"), 1.5]}},))
    with store.transaction() as tx:
        tx.run_for_update("old", create=old)
        tx.save_run(replace(old, cost_unit="second"))
    view = run_view(store, "old")
    json_mod.dumps(view, allow_nan=False)
    assert view["progress"] is None and view["cost_usd"] is None and view["duration_s"] == 1.0
    assert view["outputs"] == [{"data": {"seed": None, "scores": [None, 1.5]}}]
    body = callback_body(old)
    json_mod.dumps(body, allow_nan=False)
    assert body["cost_usd"] is None and body["outputs"][0]["data"]["seed"] is None


def test_a_generated_id_and_defaults() -> None:
    reg = parse_registration({}, CONFIG, lambda url: None)
    assert isinstance(reg, Registration) and len(reg.id) == 32 and reg.notify == () and reg.cost_amount is None


def test_a_registration_after_the_final_webhook_still_notifies_and_calls_back(store: Store) -> None:
    update(store, "running", 10)
    final = update(store, "success", 20)
    assert [j.service for j in final.jobs] == ["feed"]                  # only the filter match, then
    answer = register(store, 30, name="late", notify=["chat", "feed"], context={"chat_id": "7"},
                      callback_url="https://example.com/cb")
    assert answer["status"] == "completed"
    services = sorted(j.service for j in store.jobs_of_events([final.event_id])[final.event_id]
                      if j.event_id == final.event_id)
    assert services == ["(callback)", "chat", "feed"]                  # feed keeps its one job
    run = run_view(store, "r1")
    assert run["name"] == "late" and run["delivery"]["status"] == "pending"
    media = store.get_event(final.event_id).event.media
    assert media["context"] == {"chat_id": "7"}                          # the chat URL can be filled


def test_another_source_cannot_move_a_run(store: Store) -> None:
    body = {"event_type": "run.updated", "run_id": "r9", "status": "running"}
    with store.transaction() as tx:
        record_event(tx, parse_comfydeploy(body, "signed", "comfydeploy", "{}"), CONFIG, 1)
        result = record_event(tx, parse_comfydeploy({**body, "status": "success"}, "comfydeploy", "comfydeploy", "{}"),
                              CONFIG, 2)
    assert result.jobs == [] and run_view(store, "r9")["status"] == "running"


def test_callbacks_need_a_signing_secret_and_rates_must_be_finite() -> None:
    bare = parse_config({}, path=None)
    with pytest.raises(BadPayload, match="callback_secret"):
        parse_registration({"callback_url": "https://example.com/cb"}, bare, lambda url: None)
    for amount in (float("inf"), float("nan"), 10**400):
        with pytest.raises(BadPayload, match="cost_rate.amount"):
            parse_registration({"cost_rate": {"amount": amount}}, CONFIG, lambda url: None)
