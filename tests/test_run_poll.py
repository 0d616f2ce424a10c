"""notifyd.run_poll: a run whose final webhook never comes is looked up at its sender's status API
(a stand-in of ComfyDeploy's `GET /api/run/{run_id}` on 127.0.0.1, answering with the API's own
shape from tests/fixtures/comfydeploy/) and ends as its webhook would have ended it: one event, one
notification, one signed callback. Also: a refused key, the answer → event mapping, how a poll
pages and when the next one comes, and the config keys."""

from __future__ import annotations

import json
import signal
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from notifyd import run_poll
from notifyd.config import Config, parse_config_text
from notifyd.config.render import effective_toml
from notifyd.errors import BadPayload, ConfigError
from notifyd.model import RunStatus
from notifyd.run_poll import PollPlan, StatusApiError, ask_status_api, poll_plan, poll_stale_runs
from notifyd.run_state import new_run
from notifyd.sources.comfydeploy import parse_comfydeploy, parse_comfydeploy_run
from notifyd.store.sqlite import SqliteStore

from conftest import FIXTURES, Daemon, DaemonFactory, Receiver, cli_json, free_port, wait_for, write_config

REAL = FIXTURES / "comfydeploy"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "comfy-url-token-7f3c2a9e"
API_KEY = "cd-api-key-5d41402abc4b2a76"
WRONG_KEY = "cd-api-key-wrong-7e8f9a0b1c2d"
RUN = "c4d6e8f0-1a2b-4c3d-8e5f-6a7b8c9d0e1f"         # the fixtures' run
STUCK = "b3c5d7e9-0f1a-4b2c-8d3e-5f6a7b8c9d0e"       # still running upstream, for ever
REFUSED = "d5e7f9a1-2b3c-4d5e-9f6a-7b8c9d0e1f2a"     # a run of the source whose key is wrong


def real(name: str) -> dict[str, Any]:
    return json.loads((REAL / f"{name}.json").read_text())


def api_answer(name: str) -> dict[str, Any]:
    """The status API's answer about the fixtures' run (api/run-NAME.json)."""
    return json.loads((REAL / "api" / f"run-{name}.json").read_text())


def answer_for(run_id: str, name: str) -> dict[str, Any]:
    """The API's answer (api/run-NAME.json) as it would be for another run."""
    answer = api_answer(name)
    answer["id"] = run_id
    for output in answer["outputs"]:
        output["run_id"] = run_id
    return answer


class StatusApiStandIn:
    """ComfyDeploy's `GET /api/run/{run_id}` on 127.0.0.1: the Bearer key is checked as its auth
    middleware does (401 {"detail": …}); a run it was given an answer for gets that answer, any
    other 404 {"detail": "Run not found"}. Records each request's path and Authorization header."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.answers: dict[str, tuple[int, bytes, str]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                auth = self.headers.get("Authorization")
                with stand_in._lock:
                    stand_in.requests.append((self.path, auth))
                    found = stand_in.answers.get(self.path.removeprefix("/api/run/"))
                if not self.path.startswith("/api/run/"):
                    self._send(404, b'{"detail":"Not Found"}', "application/json")
                elif auth is None or not auth.startswith("Bearer "):
                    self._send(401, b'{"detail":"Invalid or missing token"}', "application/json")
                elif auth != f"Bearer {stand_in.key}":
                    self._send(401, b'{"detail":"Invalid or expired token"}', "application/json")
                elif found is None:
                    self._send(404, b'{"detail":"Run not found"}', "application/json")
                else:
                    self._send(*found)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, run_id: str, body: dict[str, Any] | bytes, status: int = 200,
               content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self._lock:
            self.answers[run_id] = (status, raw, content_type)

    def asked(self, run_id: str) -> int:
        with self._lock:
            return sum(1 for path, _ in self.requests if path == f"/api/run/{run_id}")

    def keys_sent(self, run_id: str) -> set[str | None]:
        with self._lock:
            return {auth for path, auth in self.requests if path == f"/api/run/{run_id}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def api() -> Iterator[StatusApiStandIn]:
    stand_in = StatusApiStandIn(API_KEY)
    yield stand_in
    stand_in.close()


def sources(api_url: str) -> str:
    return f"""
[sources.comfy]
type = "comfydeploy"
token = "{TOKEN}"
api_url = "{api_url}"
api_key = "{API_KEY}"

[sources.comfywrong]
type = "comfydeploy"
token = "{TOKEN}"
api_url = "{api_url}"
api_key = "{WRONG_KEY}"
"""


# -- end to end: a daemon, the stand-in, a chat and a callback receiver ---------------------------

@dataclass
class World:
    daemon: Daemon
    store: SqliteStore
    chat: Receiver
    callback: Receiver


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, api: StatusApiStandIn) -> Iterator[World]:
    """One daemon for the module: runs go stale after 2 s, so a poll comes every 2 s."""
    tmp = tmp_path_factory.mktemp("run-poll")
    chat, callback = Receiver(), Receiver()
    factory = DaemonFactory(tmp)
    config = write_config(tmp / "config.toml", services=f"""
[runs]
callback_secret = "{SECRET}"
allow_private_callbacks = true
stale_after = "2s"
{sources(api.url)}
[services.chat]
type = "apprise"
url = "json://127.0.0.1:{chat.port}/chat/{{chat_id}}"
events = ["never"]
""")
    daemon = factory.start(config)
    store = SqliteStore(tmp / "notifyd.db")
    try:
        yield World(daemon, store, chat, callback)
    finally:
        store.close()
        daemon.stop()
        factory.cleanup()
        chat.close()
        callback.close()


def run_of(daemon: Daemon, run_id: str) -> dict[str, Any]:
    return daemon.get(f"/runs/{run_id}").json()


def settled(daemon: Daemon) -> bool:
    queue = daemon.get("/health").json()["queue"]
    return queue["queued"] == 0 and queue["running"] == 0


def test_a_run_whose_final_webhook_never_comes_ends_from_the_status_api_once(world: World,
                                                                             api: StatusApiStandIn) -> None:
    daemon, hook = world.daemon, f"/webhooks/comfy?token={TOKEN}"
    api.answer(RUN, api_answer("running"))
    api.answer(STUCK, answer_for(STUCK, "running"))
    registered = daemon.post("/runs", {"id": RUN, "name": "Astronaut", "notify": ["chat"], "context": {"chat_id": "42"},
                                       "callback_url": f"http://127.0.0.1:{world.callback.port}/done"})
    assert registered.status_code == 201, registered.text
    for run_id in (RUN, STUCK):
        answer = daemon.post(hook, {**real("running"), "run_id": run_id})
        assert answer.status_code == 202 and answer.json()["kind"] == "run.running", answer.text

    # Stale, asked, still running upstream: left as it was. Once asked twice, the first answer was applied.
    wait_for(lambda: api.asked(RUN) >= 2, 30, message="two polls asking about the run")
    run = run_of(daemon, RUN)
    assert (run["status"], run["progress"], run["finished_at"]) == ("running", 0.42, None)
    assert world.chat.requests == [] and world.callback.requests == []
    assert api.keys_sent(RUN) == {f"Bearer {API_KEY}"}

    api.answer(RUN, api_answer("success"))            # the run ended upstream; its webhook is lost
    run = wait_for(lambda: (lambda r: r if r["delivery"]["status"] == "sent" else None)(run_of(daemon, RUN)),
                   30, message="the run ended from the status API, its deliveries sent")
    assert run["status"] == "completed" and run["progress"] == 1.0 and run["finished_at"] is not None
    assert run["outputs"] == api_answer("success")["outputs"]
    assert sorted(j["service"] for j in run["jobs"]) == ["(callback)", "chat"]

    [event] = world.store.list_events(source="comfy", kind="run.completed")
    assert event.event.media["via"] == "status_api" and event.event.title == "Astronaut: completed"
    assert json.loads(event.event.payload)["event_type"] == "run.updated"      # the webhook it stands for

    # A late real final webhook changes nothing: recorded as ignored, nobody told again.
    late = daemon.post(hook, real("success"))
    assert late.status_code == 202 and late.json()["kind"] == "run.ignored" and late.json()["jobs"] == []
    wait_for(lambda: settled(daemon), message="an empty queue")
    assert [r.path for r in world.chat.requests] == ["/chat/42"]
    assert world.chat.requests[0].body["title"] == "Astronaut: completed"
    assert len(world.callback.requests) == 1
    received = world.callback.requests[0]
    body = Webhook(SECRET).verify(json.dumps(received.body, separators=(",", ":")), received.headers)
    assert body["run_id"] == RUN and body["status"] == "completed" and body["outputs"] == run["outputs"]

    # Polls go on (the stuck run is asked again), but a run that has ended is never asked again.
    asked, stuck = api.asked(RUN), api.asked(STUCK)
    wait_for(lambda: api.asked(STUCK) >= stuck + 2, 30, message="two more polls")
    assert api.asked(RUN) == asked
    assert run_of(daemon, STUCK)["status"] == "running"


def test_a_refused_api_key_leaves_the_run_as_it_was_and_never_reaches_the_log(world: World,
                                                                               api: StatusApiStandIn) -> None:
    daemon = world.daemon
    api.answer(REFUSED, answer_for(REFUSED, "success"))     # what the right key would hear
    answer = daemon.post(f"/webhooks/comfywrong?token={TOKEN}", {**real("running"), "run_id": REFUSED})
    assert answer.status_code == 202, answer.text
    wait_for(lambda: api.asked(REFUSED) >= 2, 30, message="two polls refused")
    assert api.keys_sent(REFUSED) == {f"Bearer {WRONG_KEY}"}
    run = run_of(daemon, REFUSED)
    assert (run["status"], run["finished_at"], run["jobs"]) == ("running", None, [])
    assert world.store.list_events(source="comfywrong", kind="run.completed") == []
    log = wait_for(lambda: (lambda text: text if "comfywrong" in text and "HTTP 401" in text else None)(daemon.log()),
                   message="the refusal in the log")
    assert "[sources.comfywrong] api_key" in log and "Invalid or expired token" in log
    assert WRONG_KEY not in log and API_KEY not in log


def test_a_reload_that_sets_stale_after_starts_polling(tmp_path: Path, daemons: DaemonFactory,
                                                       api: StatusApiStandIn) -> None:
    config = write_config(tmp_path / "config.toml", services=sources(api.url))
    daemon = daemons.start(config, args=("--no-watch",))

    def polls() -> list[dict[str, Any]]:
        jobs = cli_json("jobs", "list", "--all", config=config, env=daemon.env)
        return [j for j in jobs if j["service"] == run_poll.SERVICE]

    assert polls() == []                                            # no stale_after: no polling
    config.write_text(config.read_text() + '\n[runs]\nstale_after = "1h"\n')
    daemon.proc.send_signal(signal.SIGHUP)
    [poll] = wait_for(polls, message="the poll scheduled by the reload")
    assert poll["state"] == "queued" and poll["kind"] == "maintenance" and poll["priority"] == run_poll.PRIORITY


# -- the answer → event mapping ---------------------------------------------------------------------

def test_an_ended_run_becomes_the_event_its_final_webhook_would_have_made() -> None:
    answer = api_answer("success")
    event = parse_comfydeploy_run(answer, "comfy", "comfydeploy")
    webhook = parse_comfydeploy(real("success"), "comfy", "comfydeploy", "{}")
    assert (event.kind, event.title, event.source, event.source_type) == (webhook.kind, webhook.title, "comfy",
                                                                         "comfydeploy")
    assert event.kind == "run.completed" and event.media["status"] == "completed" and event.media["final"] is True
    assert event.media["outputs"] == answer["outputs"] and event.media["via"] == "status_api"
    assert event.media["output_urls"] == webhook.media["output_urls"]          # the same files…
    assert event.media["output_texts"] == webhook.media["output_texts"]        # …and texts as the webhook's
    assert (event.media["progress"], event.media["live_status"]) == (1.0, "Executing ShowText")
    assert json.loads(event.payload) == {"event_type": "run.updated", "status": "success",
                                         "live_status": "Executing ShowText", "progress": 1.0, "run_id": RUN,
                                         "outputs": answer["outputs"]}
    assert "webhook" not in event.payload and "workflow_inputs" not in event.payload     # not the whole answer


def test_every_status_api_fixture_is_documented() -> None:
    names = sorted(p.name for p in (REAL / "api").glob("*.json"))
    readme = (REAL / "README.md").read_text()
    assert names == ["run-running.json", "run-success.json"]
    assert all(f"`api/{name}`" in readme for name in names)


@pytest.mark.parametrize(("status", "kind", "final", "error"), [
    ("running", "run.running", False, None),
    ("not-started", "run.queued", False, None),
    ("uploading", "run.uploading", False, None),
    ("failed", "run.failed", True, "the run failed (Executing KSampler)"),
    ("timeout", "run.failed", True, "the run timed out"),
    ("cancelled", "run.failed", True, "the run was cancelled"),
])
def test_each_status_of_the_answer(status: str, kind: str, final: bool, error: str | None) -> None:
    event = parse_comfydeploy_run({**api_answer("running"), "status": status}, "comfy", "comfydeploy")
    assert (event.kind, event.media["final"], event.media.get("error")) == (kind, final, error)


@pytest.mark.parametrize(("change", "field"), [
    ({"id": None}, "id"), ({"id": "not a run id!"}, "id"), ({"status": "exploded"}, "status"),
    ({"progress": 42}, "progress"), ({"outputs": "none"}, "outputs"),
])
def test_an_answer_of_the_wrong_shape_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(BadPayload) as info:
        parse_comfydeploy_run({**api_answer("running"), **change}, "comfy", "comfydeploy")
    assert f"field '{field}'" in str(info.value)


# -- asking: what each answer of the API means -------------------------------------------------------

def a_config(tmp_path: Path, api_url: str) -> Config:
    return parse_config_text(f'[runs]\nstale_after = "10m"\n{sources(api_url)}', tmp_path / "config.toml", env={})


def test_what_each_answer_means(tmp_path: Path, api: StatusApiStandIn) -> None:
    config = a_config(tmp_path, api.url)
    good, wrong = config.sources["comfy"], config.sources["comfywrong"]
    run_id = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b"
    with httpx.Client(timeout=5) as client:
        api.answer(run_id, answer_for(run_id.upper(), "success"))
        event = ask_status_api(client, good, run_id)
        assert event.media["run_id"] == run_id and event.kind == "run.completed"     # spelled as notifyd has it

        def refusal(source: Any = good, asked: str = run_id) -> StatusApiError:
            with pytest.raises(StatusApiError) as info:
                ask_status_api(client, source, asked)
            assert API_KEY not in str(info.value) and WRONG_KEY not in str(info.value)
            return info.value

        refused = refusal(wrong)
        assert refused.source_wide and "HTTP 401" in str(refused) and "[sources.comfywrong] api_key" in str(refused)
        unknown = refusal(asked="f0e1d2c3-b4a5-4968-8776-655443322110")
        assert not unknown.source_wide and "HTTP 404 ('Run not found')" in str(unknown)
        api.answer(run_id, answer_for("a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d", "success"))
        assert "another run" in str(refusal())
        api.answer(run_id, b"<html>maintenance</html>", content_type="text/html")
        assert "cannot read" in str(refusal())
        api.answer(run_id, {"detail": "Internal Server Error"}, status=503)
        down = refusal()
        assert down.source_wide and "HTTP 503" in str(down)
        unreachable = refusal(replace(good, api_url=f"http://127.0.0.1:{free_port()}/api"))
        assert unreachable.source_wide and "cannot be reached" in str(unreachable)


# -- polling a store: paging, applying once, when the next poll comes -------------------------------

NOW = 1_700_000_000.0


def stale_run(store: SqliteStore, run_id: str, updated_at: float, source: str = "comfy") -> None:
    """A running run of `source`, last updated at `updated_at`."""
    with store.transaction() as tx:
        run = tx.run_for_update(run_id, create=new_run(run_id, source, updated_at))
        assert run is not None
        tx.save_run(replace(run, status=RunStatus.RUNNING, started_at=updated_at, updated_at=updated_at))


def test_a_poll_pages_through_stale_runs_and_ends_each_once(tmp_path: Path, api: StatusApiStandIn,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_poll, "BATCH", 2)
    config = a_config(tmp_path, api.url)
    plan = poll_plan(config)
    assert plan == PollPlan(600.0, {"comfy": config.sources["comfy"], "comfywrong": config.sources["comfywrong"]})
    assert plan.every == 60.0
    ids = [f"{n}a0b1c2d-e4f5-4a6b-8c7d-9e0f1a2b3c4d" for n in range(1, 5)]
    store = SqliteStore(tmp_path / "notifyd.db", node_id="test")
    store.migrate()
    clock = lambda: NOW      # noqa: E731
    connected: list[httpx.Client] = []

    def connect() -> httpx.Client:
        connected.append(httpx.Client(timeout=5))
        return connected[-1]

    def nobody() -> httpx.Client:
        raise AssertionError("no run is stale: nobody is asked")

    try:
        assert poll_stale_runs(store, config, plan, nobody, clock).asked == 0
        for n, run_id in enumerate(ids[:3]):
            stale_run(store, run_id, NOW - 900 + n)
            api.answer(run_id, answer_for(run_id, "running"))
        stale_run(store, ids[3], NOW - 30)                            # not stale yet
        first = poll_stale_runs(store, config, plan, connect, clock)
        assert (first.asked, first.going, first.ended) == (2, 2, [])
        assert first.after == (NOW - 899, ids[1]) and first.next_in == 60.0
        api.answer(ids[2], answer_for(ids[2], "success"))
        second = poll_stale_runs(store, config, plan, connect, clock, after=first.after)
        assert (second.asked, second.ended, second.after) == (1, [ids[2]], None)   # the rest, then from the start
        assert [api.asked(i) for i in ids] == [1, 1, 1, 0]
        assert store.get_run(ids[2]).status == RunStatus.COMPLETED
        third = poll_stale_runs(store, config, plan, connect, clock)
        assert third.asked == 2 and api.asked(ids[2]) == 1           # an ended run is not asked again
        assert len(connected) == 3 and all(c.is_closed for c in connected)       # one client a poll, closed
        [ended] = store.list_events(kind="run.completed")
        assert ended.event.media["run_id"] == ids[2] and ended.event.media["via"] == "status_api"
    finally:
        store.close()


def test_a_run_a_webhook_moved_meanwhile_is_left_to_it(tmp_path: Path, api: StatusApiStandIn) -> None:
    config = a_config(tmp_path, api.url)
    store = SqliteStore(tmp_path / "notifyd.db", node_id="test")
    store.migrate()
    try:
        stale_run(store, RUN, NOW - 900)
        seen = store.get_run(RUN)
        stale_run(store, RUN, NOW - 1)                                  # a webhook came after the listing
        event = parse_comfydeploy_run(api_answer("success"), "comfy", "comfydeploy")
        assert run_poll._apply_end(store, config, seen, event, NOW) is False
        assert store.get_run(RUN).status == RunStatus.RUNNING and store.list_events() == []
        assert run_poll._apply_end(store, config, store.get_run(RUN), event, NOW) is True
        assert run_poll._apply_end(store, config, store.get_run(RUN), event, NOW) is False     # final now
        assert [e.event.kind for e in store.list_events()] == ["run.completed"]
    finally:
        store.close()


def test_a_bug_met_with_one_run_leaves_the_others_polled(tmp_path: Path, api: StatusApiStandIn,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config = a_config(tmp_path, api.url)
    plan = poll_plan(config)
    assert plan is not None
    broken, fine = "0b1c2d3e-f4a5-4b6c-8d7e-9f0a1b2c3d4e", "1c2d3e4f-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    apply_end = run_poll._apply_end

    def buggy(store: Any, config: Config, seen: Any, event: Any, now: float) -> bool:
        if seen.id == broken:
            raise RuntimeError("a bug")
        return apply_end(store, config, seen, event, now)

    monkeypatch.setattr(run_poll, "_apply_end", buggy)
    store = SqliteStore(tmp_path / "notifyd.db", node_id="test")
    store.migrate()
    try:
        for n, run_id in enumerate((broken, fine)):
            stale_run(store, run_id, NOW - 900 + n)
            api.answer(run_id, answer_for(run_id, "success"))
        report = poll_stale_runs(store, config, plan, lambda: httpx.Client(timeout=5), lambda: NOW)
        assert (report.asked, report.failed, report.ended) == (2, 1, [fine])
        assert store.get_run(broken).status == RunStatus.RUNNING          # asked again at the next poll
    finally:
        store.close()


def test_a_registered_run_no_webhook_ever_reached_is_asked_of_each_status_api_in_turn(
        tmp_path: Path, api: StatusApiStandIn) -> None:
    """ComfyDeploy sends intermediate statuses only when asked to: a run's one webhook may be its
    final one, and that may be the one lost. The run, still owned by its registration, is asked of
    each source with a status API; one that does not know it (404) passes it on."""
    other = StatusApiStandIn(API_KEY)                  # another account: knows nothing of the run
    config = parse_config_text(f"""[runs]\nstale_after = "10m"
[sources.first]
type = "comfydeploy"
api_url = "{other.url}"
api_key = "{API_KEY}"
[sources.second]
type = "comfydeploy"
api_url = "{api.url}"
api_key = "{API_KEY}"
""", tmp_path / "config.toml", env={})
    plan = poll_plan(config)
    assert plan is not None and plan.owners == ["first", "second", "api"]
    store = SqliteStore(tmp_path / "notifyd.db", node_id="test")
    store.migrate()
    try:
        run_id = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
        stale_run(store, run_id, NOW - 900, source="api")
        api.answer(run_id, answer_for(run_id, "success"))
        report = poll_stale_runs(store, config, plan, lambda: httpx.Client(timeout=5), lambda: NOW)
        assert (report.asked, report.failed, report.ended) == (1, 0, [run_id])
        ended = store.get_run(run_id)
        assert (ended.status, ended.source) == (RunStatus.COMPLETED, "second")
        assert [path for path, _ in other.requests] == [f"/api/run/{run_id}"]     # asked first, did not know it
        nobody = "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f"                           # known to neither
        stale_run(store, nobody, NOW - 900, source="api")
        report = poll_stale_runs(store, config, plan, lambda: httpx.Client(timeout=5), lambda: NOW)
        assert (report.asked, report.failed, report.ended) == (1, 1, [])
        assert store.get_run(nobody).status == RunStatus.RUNNING
    finally:
        store.close()
        other.close()


def test_the_next_poll_comes_when_the_oldest_run_turns_stale(tmp_path: Path, api: StatusApiStandIn) -> None:
    config = a_config(tmp_path, api.url)
    plan = poll_plan(config)
    assert plan is not None
    store = SqliteStore(tmp_path / "notifyd.db", node_id="test")
    store.migrate()
    try:
        assert run_poll._next_poll(store, plan, NOW, more=False) == 600.0            # nothing waits
        stale_run(store, "r-young", NOW - 200)
        assert run_poll._next_poll(store, plan, NOW, more=False) == 400.0            # when it turns stale
        stale_run(store, "r-almost", NOW - 590)
        assert run_poll._next_poll(store, plan, NOW, more=False) == 60.0             # never sooner than `every`
        assert run_poll._next_poll(store, plan, NOW, more=True) == 60.0
        stale_run(store, "r-other", NOW - 5000, source="radarr")                      # nobody to ask about it
        assert [r.id for r in store.stale_runs(NOW, plan.owners, 10)] == ["r-almost", "r-young"]
    finally:
        store.close()


# -- config -----------------------------------------------------------------------------------------

def test_polling_is_on_only_with_stale_after_and_a_status_api(tmp_path: Path, api: StatusApiStandIn) -> None:
    config = a_config(tmp_path, api.url)
    assert config.runs.stale_after == 600.0 and config.sources["comfy"].api_url == api.url
    assert API_KEY in config.secrets() and WRONG_KEY in config.secrets()
    assert poll_plan(replace(config, runs=replace(config.runs, stale_after=None))) is None
    plain = parse_config_text(f'[runs]\nstale_after = "10m"\n[sources.c]\ntype = "comfydeploy"\ntoken = "{TOKEN}"\n',
                              tmp_path / "c.toml", env={})
    assert poll_plan(plain) is None


@pytest.mark.parametrize(("text", "key", "reason"), [
    ('[sources.r]\ntype = "radarr"\napi_url = "https://x.example"\napi_key = "k-123456"\n', "sources.r.api_url",
     "Radarr has no status API"),
    ('[sources.c]\ntype = "comfydeploy"\napi_url = "https://api.comfydeploy.com/api"\n', "sources.c.api_key",
     "needs both"),
    ('[sources.c]\ntype = "comfydeploy"\napi_key = "k-123456"\n', "sources.c.api_url",
     '"https://api.comfydeploy.com/api"'),
    ('[sources.c]\ntype = "comfydeploy"\napi_url = "api.comfydeploy.com"\napi_key = "k-123456"\n',
     "sources.c.api_url", "http(s) URL"),
    ('[runs]\nstale_after = "500ms"\n', "runs.stale_after", "at least 1s"),
    ('[runs]\nstale_after = "soon"\n', "runs.stale_after", ""),
])
def test_config_errors_name_the_key(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, tmp_path / "config.toml", env={})
    assert info.value.key == key and reason in info.value.reason, str(info.value)


def test_config_show_masks_the_api_key_and_loads_back(tmp_path: Path) -> None:
    config = a_config(tmp_path, "https://api.comfydeploy.com/api")
    text = effective_toml(config)
    assert API_KEY not in text and WRONG_KEY not in text
    data = tomllib.loads(text)
    assert data["runs"]["stale_after"] == "10m"
    assert data["sources"]["comfy"]["api_url"] == "https://api.comfydeploy.com/api"
    assert data["sources"]["comfy"]["api_key"] == "***"
    again = parse_config_text(text, tmp_path / "shown.toml", env={})
    assert again.runs.stale_after == 600.0 and again.sources["comfy"].api_url == config.sources["comfy"].api_url
