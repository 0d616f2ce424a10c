"""Fuzzing over real HTTP: realistic bodies of every source, POST /notify and POST /runs, mutated (values
replaced with arbitrary JSON, keys dropped, huge numbers and strings put in), sent to one running
`notifyd serve`. Never a 5xx; every event accepted reads back with GET /events/{id}, and every
run registered or moved with GET /runs/{id}, as valid JSON."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_input import GENERIC, RUN, World, fixture, start_world

RAW = "\x00raw:"                      # a string standing for raw JSON text (numbers Python cannot write)
BODIES = {
    "radarr": [fixture(n) for n in ("radarr-download", "radarr-grab", "radarr-upgrade", "radarr-health",
                                    "radarr-moviedelete", "radarr-rename", "radarr-test")],
    "sonarr": [fixture("sonarr-download"), fixture("sonarr-test")],
    "lidarr": [fixture("lidarr-download"), fixture("lidarr-test")],
    "readarr": [fixture("readarr-download"), fixture("readarr-health")],
    "comfydeploy": [fixture(f"comfydeploy-run-{n}") for n in ("queued", "running", "success", "failed")],
    "generic": [GENERIC, {"title": "Disk almost full", "level": "warning"}],
}
RUNS = [RUN, {"name": "upload", "notify": ["chat", "library"], "cost_rate": {"amount": 2, "unit": "minute"}},
        {"id": "fuzz-min"}]
NOTIFY = [{"title": "Backup finished", "body": "12 GiB in 4m", "level": "success"},
          {"body": "Disk almost full", "services": ["chat"]}]
EXAMPLES = 40                         # per target: eight targets, a few HTTP requests each

huge_numbers = st.sampled_from([10**30, -(10**30), 10**400, 2**63, 2**53 + 1, 1e308, -1e308, 1e-320, -0.0,
                                RAW + "1e999", RAW + "-1e999", RAW + "1E400"])
huge_strings = st.sampled_from(["x" * 70_000, "../" * 2000, "\n" * 5000, "é" * 30_000, "/" * 5000, "\\\\" * 3000])
tricky_strings = st.sampled_from(["", " ", "../../../etc/passwd", "/data/../..", "C:relative", "D:\\Media\\X",
                                  "\\\\nas\\share", "run.updated", "success", "Download", "second", "chat",
                                  "0001-01-01T00:00:00Z", "1997-13-45", "http://127.0.0.1:9/cb", "javascript:x"])
scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=20) | huge_numbers | tricky_strings)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
replacements = json_values | huge_numbers | huge_strings | st.builds(lambda n: [{}] * n, st.integers(0, 1500))


def spots(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every path to a value inside a JSON document."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key)
            yield from spots(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*path, i)
            yield from spots(inner, (*path, i))


@st.composite
def mutated(draw: st.DrawFn, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    body = copy.deepcopy(draw(st.sampled_from(bodies)))
    for _ in range(draw(st.integers(1, 4))):
        places = list(spots(body))
        action = draw(st.sampled_from(["replace", "drop", "insert"]))
        if action == "insert" or not places:
            parent: Any = body
            if places and draw(st.booleans()):
                parent = _at(body, draw(st.sampled_from(places)))
            if isinstance(parent, dict):
                key = draw(st.sampled_from(["year", "size", "path", "folderPath", "title", "progress", "url",
                                            "amount", "unit", "extra"]) | st.text(max_size=6))
                parent[key] = draw(replacements)
            continue
        where = draw(st.sampled_from(places))
        parent = _at(body, where[:-1])
        if action == "drop" and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = draw(replacements)
    return body


def _at(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def encode(body: dict[str, Any]) -> bytes:
    """JSON text, with each RAW marker turned into the raw number it stands for."""
    text = json.dumps(body, allow_nan=False)
    for marker in ("1e999", "-1e999", "1E400"):
        text = text.replace(json.dumps(RAW + marker), marker)
    return text.encode()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from start_world(tmp_path_factory.mktemp("fuzz-http"))


def check_answer(world: World, path: str, body: dict[str, Any]) -> None:
    answer = world.client.post(path, content=encode(body), headers={"content-type": "application/json"})
    assert answer.status_code < 500, (path, answer.status_code, answer.text[:500])
    shown = answer.json()
    if answer.status_code >= 400:
        assert shown["error"] and shown["detail"], shown
        return
    if path == "/runs":
        assert answer.status_code == 201, answer.text
        read = world.client.get(f"/runs/{shown['id']}")
        assert read.status_code == 200 and read.json()["id"] == shown["id"], read.text[:500]
        return
    assert answer.status_code in (200, 202), answer.text
    read = world.client.get(f"/events/{shown['event_id']}")
    assert read.status_code == 200, read.text[:500]
    event = read.json()
    assert len(event["title"]) <= 256 and len(event["body"]) <= 4000
    assert all(".." not in p.replace("\\", "/").split("/") for p in event["paths"]), event["paths"]
    if path.endswith("/comfydeploy") and isinstance(body.get("run_id"), str):
        run = world.client.get(f"/runs/{body['run_id']}")
        assert run.status_code == 200, run.text[:500]
        json.loads(run.text)


fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("source", sorted(BODIES))
def test_mutated_webhooks_never_get_a_5xx_and_what_is_taken_reads_back(world: World, source: str) -> None:
    @fuzz
    @given(mutated(BODIES[source]))
    def post(body: dict[str, Any]) -> None:
        check_answer(world, f"/webhooks/{source}", body)

    post()


def test_mutated_notify_messages_never_get_a_5xx_and_what_is_taken_reads_back(world: World) -> None:
    @fuzz
    @given(mutated(NOTIFY))
    def post(body: dict[str, Any]) -> None:
        check_answer(world, "/notify", body)

    post()


def test_mutated_run_registrations_never_get_a_5xx_and_what_is_taken_reads_back(world: World) -> None:
    @fuzz
    @given(mutated(RUNS), st.uuids())
    def post(body: dict[str, Any], fresh: Any) -> None:
        if body.get("id") in ("bad-input-run", "fuzz-min"):
            body["id"] = fresh.hex                        # a repeat of an id is a 409, tested elsewhere
        check_answer(world, "/runs", body)

    post()


def test_after_the_fuzzing_the_daemon_is_healthy_and_logged_no_internal_error(world: World) -> None:
    assert world.client.get("/health").json()["status"] == "ok"
    log = world.daemon.log()
    assert "Traceback" not in log and "unexpected error" not in log and "internal error" not in log


def test_the_raw_markers_become_the_numbers_they_stand_for() -> None:
    text = encode({"a": RAW + "1e999", "b": [RAW + "-1e999"], "c": "x"}).decode()
    assert text == '{"a": 1e999, "b": [-1e999], "c": "x"}'
