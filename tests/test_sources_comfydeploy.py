"""notifyd.sources.comfydeploy: ComfyDeploy `run.updated` and `run.output` bodies → Event, and BadPayload
naming the field. tests/fixtures/comfydeploy/ holds bodies shaped as ComfyDeploy's backend sends them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifyd.errors import BadPayload
from notifyd.model import Event
from notifyd.sources import SOURCE_TYPES
from notifyd.sources.comfydeploy import parse_comfydeploy

FIXTURES = Path(__file__).parent / "fixtures"
RUN = "7f3c2a9e-5b1d-4c8e-9a2f-0d6e1b4c3a21"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def parse(body: dict, source: str = "comfydeploy") -> Event:
    return parse_comfydeploy(body, source, "comfydeploy", json.dumps(body))


def test_registered_as_a_source_type():
    assert SOURCE_TYPES["comfydeploy"].parse is parse_comfydeploy and SOURCE_TYPES["comfydeploy"].tracks_runs


# fixture → (kind, title, media), media compared whole
EXPECTED = {
    "comfydeploy-run-queued.json": (
        "run.queued", "run 7f3c2a9e queued",
        {"run_id": RUN, "status": "queued", "final": False, "progress": 0.0, "outputs": [],
         "output_urls": [], "output_texts": [], "level": "info"}),
    "comfydeploy-run-running.json": (
        "run.running", "run 7f3c2a9e running",
        {"run_id": RUN, "status": "running", "final": False, "progress": 0.45,
         "live_status": "Executing KSampler (9/20)", "outputs": [], "output_urls": [], "output_texts": [],
         "level": "info"}),
    "comfydeploy-run-success.json": (
        "run.completed", "run 7f3c2a9e completed",
        {"run_id": RUN, "status": "completed", "final": True, "progress": 1.0,
         "outputs": [{"node_id": "9", "output_id": "final_result",
                      "data": {"images": [{"url": "https://storage.example.com/outputs/runs/7f3c2a9e/ComfyUI_00001_.png",
                                           "filename": "ComfyUI_00001_.png", "type": "output"}]}}],
         "output_urls": ["https://storage.example.com/outputs/runs/7f3c2a9e/ComfyUI_00001_.png"],
         "output_texts": [], "level": "success"}),
    "comfydeploy-run-failed.json": (
        "run.failed", "run 0b8e1d4f failed",
        {"run_id": "0b8e1d4f-2c6a-4e9b-8f1d-3a5c7e9b2d40", "status": "failed", "final": True,
         "progress": 0.3, "live_status": "Error in node 12 (CheckpointLoaderSimple): model file not found",
         "outputs": [], "error": "the run failed (Error in node 12 (CheckpointLoaderSimple): model file not found)",
         "output_urls": [], "output_texts": [], "level": "failure"}),
}


def test_every_fixture_is_covered():
    assert sorted(p.name for p in FIXTURES.glob("comfydeploy-run-*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    kind, title, media = EXPECTED[name]
    raw = (FIXTURES / name).read_text()
    event = parse_comfydeploy(json.loads(raw), "comfy", "comfydeploy", raw)
    assert event.kind == kind
    assert event.title == title
    assert dict(event.media) == media
    assert event.body == ""
    assert event.paths == ()
    assert (event.source, event.source_type, event.payload) == ("comfy", "comfydeploy", raw)
    json.dumps(event.media)


# Bodies shaped as ComfyDeploy's backend sends them (tests/fixtures/comfydeploy/README.md)
REAL = FIXTURES / "comfydeploy"
REAL_RUN = "c4d6e8f0-1a2b-4c3d-8e5f-6a7b8c9d0e1f"
CDN = f"https://comfy-deploy-output.s3.us-east-2.amazonaws.com/outputs/runs/{REAL_RUN}"
PROMPT = "a portrait of an astronaut in soft morning light, 35mm"

# fixture → (kind, title, media without "outputs", which is checked to be kept as sent)
REAL_EXPECTED = {
    "queued-without-event-type.json": (
        "run.queued", "run c4d6e8f0 queued",
        {"run_id": REAL_RUN, "status": "queued", "final": False, "progress": 0.0, "output_urls": [],
         "output_texts": [], "level": "info"}),
    "running.json": (
        "run.running", "run c4d6e8f0 running",
        {"run_id": REAL_RUN, "status": "running", "final": False, "progress": 0.42,
         "live_status": "Executing KSampler", "output_urls": [], "output_texts": [], "level": "info"}),
    "output-image.json": (
        "run.output", "run c4d6e8f0 output",
        {"run_id": REAL_RUN, "status": "running", "final": False, "outputs_only": True, "progress": 0.83,
         "live_status": "Executing SaveImage", "output_urls": [f"{CDN}/ComfyUI_00001_.png"], "output_texts": [],
         "level": "info"}),
    "output-text.json": (
        "run.output", "run c4d6e8f0 output",
        {"run_id": REAL_RUN, "status": "running", "final": False, "outputs_only": True, "progress": 0.91,
         "live_status": "Executing ShowText", "output_urls": [], "output_texts": [PROMPT], "level": "info"}),
    "success.json": (
        "run.completed", "run c4d6e8f0 completed",
        {"run_id": REAL_RUN, "status": "completed", "final": True, "progress": 1.0,
         "live_status": "Executing ShowText",
         "output_urls": [f"{CDN}/ComfyUI_00001_.png", f"{CDN}/turntable_00001.mp4", f"{CDN}/preview_00001.gif"],
         "output_texts": [PROMPT], "level": "success"}),
    "failed.json": (
        "run.failed", "run 2e4a6c8e failed",
        {"run_id": "2e4a6c8e-0b1d-4f3a-9c5e-7b9d1f3a5c70", "status": "failed", "final": True, "progress": 0.15,
         "live_status": "Executing CheckpointLoaderSimple",
         "error": "the run failed (Executing CheckpointLoaderSimple)", "output_urls": [], "output_texts": [],
         "level": "failure"}),
}


def test_every_real_shaped_fixture_is_covered_and_documented():
    names = sorted(p.name for p in REAL.glob("*.json"))
    assert names == sorted(REAL_EXPECTED)
    readme = (REAL / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in names)


@pytest.mark.parametrize("name", sorted(REAL_EXPECTED))
def test_real_shaped_fixture(name):
    kind, title, media = REAL_EXPECTED[name]
    raw = (REAL / name).read_text()
    body = json.loads(raw)
    event = parse_comfydeploy(body, "comfy", "comfydeploy", raw)
    assert (event.kind, event.title) == (kind, title)
    got = dict(event.media)
    assert got.pop("outputs") == body["outputs"]          # ids, node_meta and timestamps kept as sent
    assert got == media
    json.dumps(event.media, allow_nan=False)


def test_a_run_output_never_reads_as_a_final_status():
    body = json.loads((REAL / "output-image.json").read_text())
    for status in ("success", "failed", "timeout", "cancelled"):
        event = parse({**body, "status": status})
        assert event.kind == "run.output" and event.media["final"] is False and "error" not in event.media
        assert event.media["outputs_only"] is True and event.media["level"] == "info"


def test_text_outputs_are_kept_for_notifications():
    outputs = [{"data": {"text": ["  first  ", "", 7, "first"]}}, {"data": {"text": "second"}},
               {"data": {"text": ["t" * 5000]}}, {"data": {"text": ["fourth"]}}, {"data": ["text"]}]
    event = parse({"run_id": "r1", "status": "success", "outputs": outputs})
    assert event.media["output_texts"] == ["first", "second", "t" * 999 + "…"]     # three at most, each cut
    assert event.media["outputs"] == outputs


# ComfyDeploy status → (run status, kind, final, level, error)
STATUS_TABLE = [
    ("not-started", "queued", "run.queued", False, "info", None),
    ("queued", "queued", "run.queued", False, "info", None),
    ("started", "started", "run.started", False, "info", None),
    ("running", "running", "run.running", False, "info", None),
    ("uploading", "uploading", "run.uploading", False, "info", None),
    ("success", "completed", "run.completed", True, "success", None),
    ("failed", "failed", "run.failed", True, "failure", "the run failed"),
    ("timeout", "timeout", "run.failed", True, "failure", "the run timed out"),
    ("cancelled", "cancelled", "run.failed", True, "warning", "the run was cancelled"),
    ("canceled", "cancelled", "run.failed", True, "warning", "the run was cancelled"),
]


@pytest.mark.parametrize("given_status,status,kind,final,level,error", STATUS_TABLE)
def test_status_mapping(given_status, status, kind, final, level, error):
    event = parse({"run_id": "abcdef0123456789", "status": given_status})
    assert event.kind == kind
    assert event.title == f"run abcdef01 {status}"
    assert event.media["status"] == status
    assert event.media["final"] is final
    assert event.media["level"] == level
    assert event.media.get("error") == error
    assert event.media["outputs"] == [] and event.media["output_urls"] == []
    assert "progress" not in event.media and "live_status" not in event.media


def test_failed_error_says_where_the_run_was_when_there_is_a_live_status():
    event = parse({"run_id": "r1", "status": "failed", "live_status": "  Executing KSampler  "})
    assert event.media["error"] == "the run failed (Executing KSampler)"
    assert event.media["live_status"] == "Executing KSampler"
    # timeout and cancelled say which, whatever the live status
    event = parse({"run_id": "r1", "status": "timeout", "live_status": "Executing KSampler"})
    assert event.media["error"] == "the run timed out"
    assert event.media["live_status"] == "Executing KSampler"


def test_short_run_id_and_event_type_absent_or_null():
    assert parse({"run_id": "r1", "status": "queued"}).title == "run r1 queued"
    assert parse({"run_id": "r1", "status": "queued", "event_type": None}).kind == "run.queued"
    assert parse({"run_id": "x" * 200, "status": "running"}).media["run_id"] == "x" * 200


@pytest.mark.parametrize("given,expected", [(0, 0.0), (1, 1.0), (0.5, 0.5), (1.005, 1.0), (-0.004, 0.0)])
def test_progress_is_a_float_clamped_to_0_1(given, expected):
    progress = parse({"run_id": "r1", "status": "running", "progress": given}).media["progress"]
    assert progress == expected and isinstance(progress, float)


def test_output_urls_depth_first_in_order_without_duplicates():
    outputs = [
        {"node_id": "9", "url": "https://not-in-data.example/x.png",
         "data": {"images": [{"url": "https://a.example/1.png", "filename": "1.png"},
                             {"url": "https://a.example/2.png", "meta": {"url": "https://a.example/2-thumb.png"}}],
                  "gifs": [{"url": "https://a.example/1.png"}, {"url": ""}, {"url": 7}],
                  "text": ["a url: https://ignored.example"]}},
        {"node_id": "12", "data": {"files": [{"url": "https://a.example/3.mp4"}]}},
        {"node_id": "13"},
        {"node_id": "14", "data": "not an object"},
    ]
    event = parse({"run_id": "r1", "status": "success", "outputs": outputs})
    assert event.media["output_urls"] == ["https://a.example/1.png", "https://a.example/2.png",
                                          "https://a.example/2-thumb.png", "https://a.example/3.mp4"]
    assert event.media["outputs"] == outputs


def test_output_urls_listed_are_the_first_ten_of_a_sane_length():
    outputs = [{"data": {"images": [{"url": f"https://a.example/{i}.png"} for i in range(15)]}},
               {"data": {"url": "https://a.example/" + "x" * 5000}}]
    event = parse({"run_id": "r1", "status": "success", "outputs": outputs})
    assert event.media["output_urls"] == [f"https://a.example/{i}.png" for i in range(10)]
    assert event.media["outputs"] == outputs                       # the callback gets them all
    long_first = parse({"run_id": "r1", "status": "success", "outputs": outputs[::-1]})
    assert long_first.media["output_urls"][0] == "https://a.example/0.png"


def test_long_live_status_is_cut():
    event = parse({"run_id": "r1", "status": "failed", "live_status": "e" * 10_000})
    assert len(event.media["live_status"]) == 4000 and event.media["live_status"].endswith("…")
    assert event.media["error"] == f"the run failed ({event.media['live_status']})"


def test_deeply_nested_outputs_do_not_overflow():
    data: dict = {"url": "https://deep.example/0"}
    for _ in range(5000):
        data = {"inner": [data]}
    body = {"run_id": "r1", "status": "success", "outputs": [{"data": data}]}
    event = parse_comfydeploy(body, "comfydeploy", "comfydeploy", "{}")  # too deep for json.dumps
    assert event.media["output_urls"] == ["https://deep.example/0"]


@pytest.mark.parametrize("body,field", [
    ({"status": "queued"}, "run_id"),
    ({"run_id": 123, "status": "queued"}, "run_id"),
    ({"run_id": "", "status": "queued"}, "run_id"),
    ({"run_id": "   ", "status": "queued"}, "run_id"),
    ({"run_id": "has space", "status": "queued"}, "run_id"),
    ({"run_id": "r1\n", "status": "queued"}, "run_id"),
    ({"run_id": ["r1"], "status": "queued"}, "run_id"),
    ({"run_id": "r1", "status": ["success"]}, "status"),
    ({"run_id": "r1", "status": {}}, "status"),
    ({"run_id": "r1", "status": "running", "progress": float("inf")}, "progress"),
    ({"run_id": "r1", "status": "running", "progress": 10**400}, "progress"),
    ({"run_id": "r1", "status": "running", "live_status": ["x"]}, "live_status"),
    ({"run_id": "r1", "status": "success", "outputs": [{"data": {"seed": float("-inf")}}]}, "outputs[0].data.seed"),
    ({"run_id": "r1", "status": "success", "outputs": [{}] * 1001}, "outputs"),
    ({"run_id": "x" * 201, "status": "queued"}, "run_id"),
    ({"run_id": None, "status": "queued"}, "run_id"),
    ({"run_id": "r1"}, "status"),
    ({"run_id": "r1", "status": "exploded"}, "status"),
    ({"run_id": "r1", "status": 3}, "status"),
    ({"run_id": "r1", "status": "running", "progress": "x"}, "progress"),
    ({"run_id": "r1", "status": "running", "progress": True}, "progress"),
    ({"run_id": "r1", "status": "running", "progress": 45}, "progress"),
    ({"run_id": "r1", "status": "running", "progress": -0.5}, "progress"),
    ({"run_id": "r1", "status": "running", "progress": float("nan")}, "progress"),
    ({"run_id": "r1", "status": "running", "live_status": 5}, "live_status"),
    ({"run_id": "r1", "status": "success", "outputs": "x"}, "outputs"),
    ({"run_id": "r1", "status": "success", "outputs": {"url": "https://a"}}, "outputs"),
    ({"run_id": "r1", "status": "success", "outputs": [1]}, "outputs[0]"),
    ({"run_id": "r1", "status": "success", "outputs": [{}, "x"]}, "outputs[1]"),
    ({"run_id": "r1", "status": "queued", "event_type": "other"}, "event_type"),
    ({"run_id": "r1", "status": "queued", "event_type": 1}, "event_type"),
])
def test_malformed_fields_raise_bad_payload_naming_the_field(body, field):
    with pytest.raises(BadPayload) as info:
        parse(body)
    assert str(info.value).startswith(f"field '{field}': ")
    assert info.value.status == 422
    assert info.value.code == "invalid_payload"


def test_bad_payload_messages():
    def message(body: dict) -> str:
        with pytest.raises(BadPayload) as info:
            parse(body)
        return str(info.value)

    assert message({"run_id": "r1", "status": "queued", "event_type": "other"}) == (
        "field 'event_type': expected \"run.updated\" or \"run.output\" (the events ComfyDeploy sends), got 'other'")
    assert message({"run_id": "r1", "status": "exploded"}) == (
        "field 'status': expected one of not-started, queued, started, running, uploading, success, "
        "failed, timeout, cancelled, got 'exploded'")
    assert message({"status": "queued"}) == (
        "field 'run_id': expected a run id of 1 to 200 letters, digits, '_', '.', ':' or '-', "
        "got nothing (the field is missing)")
    assert message({"run_id": 123, "status": "queued"}).endswith("got 123")
    assert message({"run_id": "r1", "status": "running", "progress": "x"}) == (
        "field 'progress': expected a number from 0 to 1, got 'x'")
    assert message({"run_id": "r1", "status": "success", "outputs": "x"}) == (
        "field 'outputs': expected an array of at most 1000 objects, got 'x'")
    assert message({"run_id": "r1", "status": "success", "outputs": [1]}) == (
        "field 'outputs[0]': expected an object, got 1")
    assert message({"run_id": "r1", "status": "success", "outputs": [{"data": {"seed": [1, float("inf")]}}]}) == (
        "field 'outputs[0].data.seed[1]': expected a finite number, got infinity")
    assert message({"run_id": "r1", "status": "running", "progress": 1e30}) == (
        "field 'progress': expected a number from 0 to 1, got 1e+30")


json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
field_names = (st.sampled_from(["event_type", "run_id", "status", "progress", "live_status", "outputs"])
               | st.text(max_size=8))
urls = st.sampled_from(["https://a.example/1.png", "https://a.example/2.png", "", " "]) | st.text(max_size=8)
any_data = st.recursive(json_scalars | urls, lambda inner: st.lists(inner, max_size=3)
                        | st.dictionaries(st.sampled_from(["url", "images"]) | st.text(max_size=4), inner, max_size=3),
                        max_leaves=10)
files = st.fixed_dictionaries({"url": urls | any_data}, optional={"filename": st.text(max_size=6), "meta": any_data})
output_data = st.dictionaries(st.sampled_from(["images", "files", "gifs", "text"]), st.lists(files, max_size=3),
                              max_size=3) | any_data  # ComfyDeploy's shape: {"images": [{"url", "filename"}]}
outputs = st.lists(st.fixed_dictionaries({"data": output_data}, optional={"node_id": st.text(max_size=3),
                                                                           "url": urls})
                   | st.dictionaries(st.text(max_size=4), any_data, max_size=3), max_size=3)
likely_values = (json_values | outputs
                 | st.sampled_from(sorted(["run.updated", "run.output", "Run.Updated", "", " "]
                                          + [row[0] for row in STATUS_TABLE]))
                 | st.floats(min_value=-0.02, max_value=1.02))


def check(body: dict) -> None:
    try:
        event = parse(body)
    except BadPayload as exc:
        assert str(exc).startswith("field '")
        return
    assert isinstance(event, Event)
    media = event.media
    json.dumps(media, allow_nan=False)
    assert event.kind in ("run.queued", "run.started", "run.running", "run.uploading", "run.completed",
                          "run.failed", "run.output")
    assert media["status"] in ("queued", "started", "running", "uploading", "completed", "failed",
                               "timeout", "cancelled")
    if event.kind == "run.output":
        assert event.title == f"run {media['run_id'][:8]} output" and media["outputs_only"] is True
    else:
        assert event.title == f"run {media['run_id'][:8]} {media['status']}" and "outputs_only" not in media
    assert media["final"] is (event.kind in ("run.completed", "run.failed"))
    assert ("error" in media) is (event.kind == "run.failed")
    assert all(isinstance(t, str) and t and len(t) <= 1000 for t in media["output_texts"])
    assert len(media["output_texts"]) <= 3
    assert media["level"] in ("info", "success", "warning", "failure")
    assert "progress" not in media or 0.0 <= media["progress"] <= 1.0
    assert all(isinstance(u, str) and u for u in media["output_urls"])
    assert len(set(media["output_urls"])) == len(media["output_urls"])
    assert event.body == "" and event.paths == ()


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(field_names, likely_values, max_size=7))
def test_any_json_object_gives_an_event_or_bad_payload(body):
    check(body)


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=40), st.sampled_from([row[0] for row in STATUS_TABLE]),
       st.dictionaries(field_names, likely_values, max_size=4))
def test_valid_run_with_arbitrary_extras_gives_an_event_or_bad_payload(run_id, status, extra):
    check(extra | {"run_id": run_id, "status": status})


def reference_urls(value, found):
    """The plain recursive reading of "every string under a key named url", to check the parser against."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "url" and isinstance(inner, str):
                if inner.strip() and inner not in found:
                    found.append(inner)
            else:
                reference_urls(inner, found)
    elif isinstance(value, list):
        for inner in value:
            reference_urls(inner, found)
    return found


@settings(max_examples=300, deadline=None)
@given(outputs)
def test_output_urls_match_a_recursive_reading(given_outputs):
    event = parse({"run_id": "r1", "status": "success", "outputs": given_outputs})
    expected: list = []
    for output in given_outputs:
        reference_urls(output.get("data"), expected)
    assert event.media["output_urls"] == expected[:10]          # the ones a notification lists
    assert event.media["outputs"] == given_outputs
