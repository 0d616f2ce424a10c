"""Tracked runs end to end: registration, a ComfyDeploy lifecycle played into a running daemon,
one notification and one signed callback at receivers on 127.0.0.1, polling, and the guards."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from conftest import FIXTURES, DaemonFactory, Receiver, cli_json, run_cli, wait_for, write_config

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SOURCE_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
RUN_ID = "7f3c2a9e-5b1d-4c8e-9a2f-0d6e1b4c3a21"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"comfydeploy-run-{name}.json").read_text())


def runs_config(tmp_path: Path, chat: Receiver, private: bool = True, extra: str = "") -> Path:
    return write_config(tmp_path / "config.toml", services=f"""
[runs]
callback_secret = "{SECRET}"
allow_private_callbacks = {str(private).lower()}

[services.chat]
type = "apprise"
url = "json://127.0.0.1:{chat.port}/chat/{{chat_id}}"
events = ["never"]
{extra}""")


def test_a_lifecycle_gives_one_notification_and_one_signed_callback(tmp_path: Path, daemons: DaemonFactory) -> None:
    chat, callback = Receiver(), Receiver()
    try:
        daemon = daemons.start(runs_config(tmp_path, chat))
        registered = daemon.post("/runs", {"id": RUN_ID, "name": "Portrait batch", "notify": ["chat"],
                                           "context": {"chat_id": "42 7"},
                                           "callback_url": f"http://127.0.0.1:{callback.port}/done",
                                           "cost_rate": {"amount": 0.002, "unit": "second"}})
        assert registered.status_code == 201, registered.text
        assert registered.json() == {"id": RUN_ID, "status_url": f"/runs/{RUN_ID}", "status": "queued"}
        for status in ("queued", "running"):
            answer = daemon.post("/webhooks/comfydeploy", fixture(status))
            assert answer.status_code == 202 and answer.json()["jobs"] == [], answer.text
        assert daemon.get(f"/runs/{RUN_ID}").json()["status"] == "running"
        time.sleep(0.1)                                  # a run that lasts: its duration is not zero
        final = daemon.post("/webhooks/comfydeploy", fixture("success"))
        assert final.status_code == 202 and final.json()["kind"] == "run.completed"
        assert sorted(j["service"] for j in final.json()["jobs"]) == ["(callback)", "chat"]

        run = wait_for(lambda: (lambda r: r if r["delivery"]["status"] == "sent" else None)(
            daemon.get(f"/runs/{RUN_ID}").json()), message="the run's deliveries")
        assert run["status"] == "completed" and run["progress"] == 1
        took = (datetime.fromisoformat(run["finished_at"]) - datetime.fromisoformat(run["started_at"])).total_seconds()
        # the clock runs from the first `running` to the final status, as stored (not a stopwatch here)
        assert run["duration_s"] == pytest.approx(took, abs=0.01) and run["duration_s"] > 0
        assert run["cost_usd"] == pytest.approx(run["duration_s"] * 0.002, abs=1e-6)
        assert run["started_at"] and run["finished_at"] and run["delivery"]["attempts"] == 1    # each went at once
        assert run["outputs"][0]["data"]["images"][0]["filename"] == "ComfyUI_00001_.png"

        # late and repeated updates change nothing and notify no one
        assert daemon.post("/webhooks/comfydeploy", {**fixture("running"), "progress": 0.9}).json()["jobs"] == []
        assert daemon.post("/webhooks/comfydeploy", {**fixture("success"), "progress": 1.0}).json()["jobs"] == []
        time.sleep(0.5)
        assert daemon.get(f"/runs/{RUN_ID}").json()["status"] == "completed"

        assert [r.path for r in chat.requests] == ["/chat/42%207"]          # context filled in, URL-encoded
        assert chat.requests[0].body["title"] == "Portrait batch: completed"
        assert "https://storage.example.com/outputs/runs/7f3c2a9e/ComfyUI_00001_.png" in chat.requests[0].body["message"]
        assert len(callback.requests) == 1
        received = callback.requests[0]
        raw = json.dumps(received.body, separators=(",", ":"))
        body = Webhook(SECRET).verify(raw, received.headers)                # the test checks the signature
        assert body["run_id"] == RUN_ID and body["status"] == "completed" and "error" not in body
        assert body["duration_s"] == run["duration_s"] and body["cost_usd"] == run["cost_usd"]
        assert body["outputs"] == run["outputs"] and body["timestamp"] == run["finished_at"]
        shown = cli_json("runs", "show", RUN_ID, config=daemon.config, env=daemon.env)
        assert shown["status"] == "completed" and shown["delivery"]["status"] == "sent"
        assert [r["id"] for r in cli_json("runs", "list", config=daemon.config, env=daemon.env)] == [RUN_ID]
    finally:
        chat.close()
        callback.close()


def test_a_callback_receiver_that_is_down_at_first_is_retried(tmp_path: Path, daemons: DaemonFactory) -> None:
    chat, callback = Receiver(), Receiver()
    callback.script = [503, 503]
    try:
        daemon = daemons.start(runs_config(tmp_path, chat))
        assert daemon.post("/runs", {"id": "r-1", "callback_url": f"http://127.0.0.1:{callback.port}/cb",
                                     "name": "upload"}).status_code == 201
        daemon.post("/webhooks/comfydeploy", {**fixture("failed"), "run_id": "r-1"})
        run = wait_for(lambda: (lambda r: r if r["delivery"]["status"] == "sent" else None)(
            daemon.get("/runs/r-1").json()), message="the callback delivered")
        assert run["status"] == "failed" and run["delivery"]["attempts"] == 3
        assert run["delivery"]["service"] == "(callback)" and run["delivery"]["last_error"] is None
        assert len(callback.requests) == 3
        ids = {r.headers["webhook-id"] for r in callback.requests}
        assert len(ids) == 1                                                # the same id on every retry
        body = Webhook(SECRET).verify(json.dumps(callback.requests[-1].body, separators=(",", ":")),
                                      callback.requests[-1].headers)
        assert body["status"] == "failed"
        assert body["error"] == "the run failed (Error in node 12 (CheckpointLoaderSimple): model file not found)"
    finally:
        chat.close()
        callback.close()


def test_private_callback_urls_are_refused_with_a_reason(tmp_path: Path, daemons: DaemonFactory,
                                                         receiver: Receiver) -> None:
    daemon = daemons.start(runs_config(tmp_path, receiver, private=False))
    for url, reason in (("http://127.0.0.1:9/x", "loopback"), ("http://10.0.0.1/x", "private"),
                        ("http://169.254.169.254/latest/meta-data", "metadata"), ("ftp://example.com/x", "http")):
        answer = daemon.post("/runs", {"name": "x", "callback_url": url})
        assert answer.status_code == 422, (url, answer.text)
        detail = answer.json()["detail"]
        assert detail.startswith("field 'callback_url'") and reason in detail, detail
    assert cli_json("runs", "list", config=daemon.config, env=daemon.env) == []


def test_registration_errors(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    daemon = daemons.start(runs_config(tmp_path, receiver))
    assert daemon.post("/runs", {"notify": ["nosuch"]}).status_code == 422
    assert daemon.post("/runs", {"cost_rate": {"amount": -1}}).status_code == 422
    assert daemon.post("/runs", {"id": "dup"}).status_code == 201
    conflict = daemon.post("/runs", {"id": "dup"})
    assert conflict.status_code == 409 and conflict.json()["error"] == "conflict"
    assert daemon.get("/runs/nope").status_code == 404
    generated = daemon.post("/runs", {"name": "no id"}).json()["id"]
    assert daemon.get(f"/runs/{generated}").json()["name"] == "no id"


def test_an_unregistered_run_is_created_from_its_webhook_and_follows_filters(tmp_path: Path,
                                                                            daemons: DaemonFactory) -> None:
    chat, feed = Receiver(), Receiver()
    try:
        extra = f'\n[services.feed]\ntype = "apprise"\nurl = "{feed.json_url}"\nevents = ["run.completed", "run.failed"]\n'
        daemon = daemons.start(runs_config(tmp_path, chat, extra=extra))
        daemon.post("/webhooks/comfydeploy", fixture("running"))
        answer = daemon.post("/webhooks/comfydeploy", fixture("success"))
        assert [j["service"] for j in answer.json()["jobs"]] == ["feed"]
        wait_for(lambda: feed.bodies(), message="the feed notification")
        assert feed.bodies()[0]["title"] == "run 7f3c2a9e: completed" and chat.requests == []
        run = daemon.get(f"/runs/{RUN_ID}").json()
        assert run["registered"] is False and run["status"] == "completed"
    finally:
        chat.close()
        feed.close()


def test_a_missing_context_key_makes_that_job_dead_with_a_reason(tmp_path: Path, daemons: DaemonFactory,
                                                                 receiver: Receiver) -> None:
    daemon = daemons.start(runs_config(tmp_path, receiver))
    daemon.post("/runs", {"id": "r-2", "notify": ["chat"], "context": {"other": "x"}})
    answer = daemon.post("/webhooks/comfydeploy", {**fixture("success"), "run_id": "r-2"})
    job_id = answer.json()["jobs"][0]["id"]
    job = wait_for(lambda: (lambda j: j if j["state"] == "dead" else None)(
        cli_json("jobs", "show", str(job_id), config=daemon.config, env=daemon.env)), message="the dead job")
    assert "needs chat_id from the run's context, which has other" in job["last_error"] and job["attempts"] == 1
    assert daemon.get("/runs/r-2").json()["delivery"]["status"] == "failed"


REAL = FIXTURES / "comfydeploy"          # bodies shaped as ComfyDeploy's backend sends them
REAL_RUN = "c4d6e8f0-1a2b-4c3d-8e5f-6a7b8c9d0e1f"
COMFY_TOKEN = "comfy-url-token-7f3c2a9e"


def real(name: str) -> dict:
    return json.loads((REAL / f"{name}.json").read_text())


def settled(daemon) -> bool:
    """Nothing queued or running: every job the daemon was given has finished."""
    queue = daemon.get("/health").json()["queue"]
    return queue["queued"] == 0 and queue["running"] == 0


def test_real_comfydeploy_bodies_through_a_source_protected_by_a_url_token(tmp_path: Path,
                                                                          daemons: DaemonFactory) -> None:
    chat, callback = Receiver(), Receiver()
    callback.script = [503]                                   # the callback needs a second try
    try:
        extra = f'\n[sources.comfy]\ntype = "comfydeploy"\ntoken = "{COMFY_TOKEN}"\n'
        daemon = daemons.start(runs_config(tmp_path, chat, extra=extra))
        hook = f"/webhooks/comfy?token={COMFY_TOKEN}"         # the URL given to ComfyDeploy as its webhook

        def post(name: str) -> dict:
            answer = daemon.post(hook, real(name))
            assert answer.status_code == 202, answer.text
            return answer.json()

        # ComfyDeploy sends no header of ours: the token in the URL is what lets it in
        assert daemon.post("/webhooks/comfy", real("running")).status_code == 401
        assert daemon.post("/webhooks/comfy?token=wrong-token", real("running")).status_code == 401
        assert daemon.post("/webhooks/comfy", {**real("running"), "run_id": "r-bearer"},
                           headers={"Authorization": f"Bearer {COMFY_TOKEN}"}).status_code == 202
        assert COMFY_TOKEN not in daemon.log()

        assert daemon.post("/runs", {"id": "r-elsewhere"}).status_code == 201      # another run: untouched
        registered = daemon.post("/runs", {"id": REAL_RUN, "name": "Astronaut", "notify": ["chat"],
                                           "context": {"chat_id": "42"},
                                           "callback_url": f"http://127.0.0.1:{callback.port}/done"})
        assert registered.status_code == 201, registered.text

        first = post("queued-without-event-type")                 # no event_type: a status update
        assert first["kind"] == "run.queued" and first["jobs"] == []
        assert post("running")["kind"] == "run.running"
        run = daemon.get(f"/runs/{REAL_RUN}").json()
        assert (run["status"], run["progress"], run["live_status"]) == ("running", 0.42, "Executing KSampler")

        # run.output: the run's outputs grow, its status and progress do not move
        image, text = real("output-image")["outputs"][0], real("output-text")["outputs"][0]
        for name, outputs in (("output-image", [image]), ("output-text", [image, text])):
            answer = post(name)
            assert answer["kind"] == "run.output" and answer["jobs"] == []
            run = daemon.get(f"/runs/{REAL_RUN}").json()
            assert (run["status"], run["progress"], run["outputs"]) == ("running", 0.42, outputs)
        shown = daemon.get(f"/events/{answer['event_id']}").json()
        assert shown["kind"] == "run.output" and shown["title"] == "Astronaut: new output (running)"

        final = post("success")
        assert final["kind"] == "run.completed"
        assert sorted(j["service"] for j in final["jobs"]) == ["(callback)", "chat"]
        run = wait_for(lambda: (lambda r: r if r["delivery"]["status"] == "sent" else None)(
            daemon.get(f"/runs/{REAL_RUN}").json()), message="the run's deliveries")
        assert run["status"] == "completed" and run["progress"] == 1.0
        assert run["outputs"] == real("success")["outputs"]        # images, files, gifs and text, as sent

        # delivery reads per notification: the callback took 2 tries, the chat 1; not 3 in all
        tries = {j["service"]: j["attempts"] for j in run["jobs"]}
        assert tries == {"chat": 1, "(callback)": 2}
        assert run["delivery"]["attempts"] == 2 and run["delivery"]["service"] == "(callback)"
        assert run["delivery"]["last_error"] is None and run["delivery"]["delivered_at"] is not None

        # a byte-identical resend (ComfyDeploy's own retry) is a duplicate of the first: nothing new
        resent = daemon.post(hook, real("success"))
        assert resent.status_code == 200 and resent.json()["duplicate"] is True
        assert resent.json()["event_id"] == final["event_id"]
        # a repeated final status: recorded under a quiet kind, no job, nobody told again
        answer = daemon.post(hook, {**real("success"), "live_status": None})
        assert answer.status_code == 202, answer.text
        again = answer.json()
        assert again["kind"] == "run.ignored" and again["jobs"] == []
        repeat = daemon.get(f"/events/{again['event_id']}").json()
        assert repeat["jobs"] == [] and repeat["title"] == "Astronaut: completed (update ignored)"
        wait_for(lambda: settled(daemon), message="an empty queue")
        assert [r.path for r in chat.requests] == ["/chat/42"]
        message = chat.requests[0].body["message"]
        cdn = f"https://comfy-deploy-output.s3.us-east-2.amazonaws.com/outputs/runs/{REAL_RUN}"
        for shown_output in (f"{cdn}/ComfyUI_00001_.png", f"{cdn}/turntable_00001.mp4", f"{cdn}/preview_00001.gif",
                             "a portrait of an astronaut in soft morning light, 35mm"):
            assert shown_output in message, message
        assert chat.requests[0].body["title"] == "Astronaut: completed"
        assert len(callback.requests) == 2 and callback.requests[-1].body["outputs"] == run["outputs"]
        assert daemon.get("/runs/r-elsewhere").json()["status"] == "queued"
    finally:
        chat.close()
        callback.close()


def test_a_placeholder_service_gets_nothing_from_an_arr_download(tmp_path: Path, daemons: DaemonFactory) -> None:
    chat, sink = Receiver(), Receiver()
    try:
        config = write_config(tmp_path / "config.toml", services=f"""
[services.chat]
type = "apprise"
url = "json://127.0.0.1:{chat.port}/chat/{{chat_id}}"

[services.chatty]
type = "apprise"
url = "json://127.0.0.1:{chat.port}/chatty/{{chat_id}}"
events = ["download", "run.completed"]

[services.sink]
type = "apprise"
url = "{sink.json_url}"
""")
        daemon = daemons.start(config)
        answer = daemon.post("/webhooks/radarr", json.loads((FIXTURES / "radarr-download.json").read_text()))
        assert answer.status_code == 202 and answer.json()["kind"] == "download"
        assert [j["service"] for j in answer.json()["jobs"]] == ["sink"]
        event = daemon.get(f"/events/{answer.json()['event_id']}").json()
        assert event["skipped_services"] == [{"service": "chatty", "reason": "its URL needs {chat_id} from a tracked "
                                              "run's context; this event's context has none (it is not about a "
                                              "tracked run)"}]
        shown = run_cli("events", "show", str(event["id"]), config=config, env={**daemon.env, "COLUMNS": "1000"})
        assert "no job for chatty: its URL needs {chat_id}" in shown.stdout
        # an unregistered run has no context: its filter takes run.completed, its URL cannot be filled
        final = daemon.post("/webhooks/comfydeploy", real("success")).json()
        assert final["kind"] == "run.completed" and [j["service"] for j in final["jobs"]] == ["sink"]
        wait_for(lambda: len(sink.requests) == 2, message="the sink's two notifications")
        wait_for(lambda: settled(daemon), message="an empty queue")
        assert chat.requests == []
        listed = {s["name"]: s["events"] for s in cli_json("services", "list", config=config, env=daemon.env)}
        assert listed == {"chat": ["(runs that name it in notify)"], "chatty": ["download", "run.completed"],
                          "sink": ["(every known kind but test and playback)"]}
    finally:
        chat.close()
        sink.close()


def signed(secret: str, body: dict, msg_id: str = "msg_1", when: datetime | None = None) -> tuple[bytes, dict]:
    raw = json.dumps(body)
    when = when or datetime.now(UTC)
    return raw.encode(), {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
                          "webhook-signature": Webhook(secret).sign(msg_id, when, raw),
                          "content-type": "application/json"}


def test_a_source_with_a_secret_needs_a_valid_fresh_signature(tmp_path: Path, daemons: DaemonFactory,
                                                               receiver: Receiver) -> None:
    extra = f'\n[sources.signed]\ntype = "generic"\nsecret = "{SOURCE_SECRET}"\n'
    daemon = daemons.start(runs_config(tmp_path, receiver, extra=extra))
    url = daemon.url + "/webhooks/signed"
    body = {"kind": "backup", "title": "nightly"}
    assert httpx.post(url, json=body).status_code == 401
    raw, headers = signed("whsec_" + "A" * 32, body)
    assert httpx.post(url, content=raw, headers=headers).status_code == 401
    raw, headers = signed(SOURCE_SECRET, body, when=datetime.fromtimestamp(time.time() - 600, UTC))
    stale = httpx.post(url, content=raw, headers=headers)
    assert stale.status_code == 401 and "too old" in stale.json()["detail"]
    assert httpx.post(url, content=raw, headers={**headers, "webhook-signature": "garbage"}).status_code == 401
    raw, headers = signed(SOURCE_SECRET, body)
    accepted = httpx.post(url, content=raw, headers=headers)
    assert accepted.status_code == 202 and accepted.json()["kind"] == "backup"


def test_a_comfydeploy_source_with_a_secret_is_refused_at_start(tmp_path: Path, daemons: DaemonFactory,
                                                                receiver: Receiver) -> None:
    # ComfyDeploy never signs: such a source would refuse every real update, so the config is refused.
    extra = f'\n[sources.comfy]\ntype = "comfydeploy"\nsecret = "{SOURCE_SECRET}"\n'
    config = runs_config(tmp_path, receiver, extra=extra)
    checked = run_cli("config", "check", config=config)
    assert checked.returncode == 2
    assert "sources.comfy.secret: ComfyDeploy never signs its webhooks; protect this source with token" \
        in " ".join(checked.stderr.split())
    assert SOURCE_SECRET not in checked.stdout + checked.stderr


def test_a_webhook_service_is_signed_keeps_its_id_and_410_switches_it_off(tmp_path: Path, daemons: DaemonFactory,
                                                                          receiver: Receiver) -> None:
    hook = Receiver()
    hook.script = [503]
    try:
        extra = f'\n[services.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:{hook.port}/in"\nsecret = "{SECRET}"\n'
        config = runs_config(tmp_path, receiver, extra=extra)
        daemon = daemons.start(config)
        answer = daemon.post("/webhooks/generic", {"kind": "backup", "title": "nightly", "body": "12 GiB"})
        wait_for(lambda: len(hook.requests) == 2, message="a retry after the 503")
        first, second = hook.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        body = Webhook(SECRET).verify(json.dumps(second.body, separators=(",", ":")), second.headers)
        assert body["type"] == "backup" and body["title"] == "nightly" and body["event_id"] == answer.json()["event_id"]

        hook.default_status = 410
        gone = daemon.post("/webhooks/generic", {"kind": "backup", "title": "again"}).json()
        job = wait_for(lambda: (lambda j: j if j["state"] == "dead" else None)(
            cli_json("jobs", "show", str(gone["jobs"][0]["id"]), config=config, env=daemon.env)), message="dead on 410")
        assert "410 Gone" in job["last_error"] and job["attempts"] == 1
        assert daemon.post("/webhooks/generic", {"kind": "backup", "title": "after"}).json()["jobs"] == []
        assert "switched off" in daemon.log()
        # listed as disabled, with why and how to switch it back on: JSON, the table, the status page
        listed = {s["name"]: s for s in cli_json("services", "list", config=config, env=daemon.env)}
        assert listed["hook"]["enabled"] is False and listed["chat"]["enabled"] is True
        reason = listed["hook"]["disabled_reason"]
        assert reason.startswith("switched off by its receiver: HTTP 410 Gone from ") and \
            reason.endswith("`notifyd services enable hook` switches it back on"), reason
        assert listed["chat"]["disabled_reason"] is None
        table = run_cli("services", "list", config=config, env={**daemon.env, "COLUMNS": "1000"}).stdout
        assert "no: switched off by its receiver: HTTP 410 Gone" in table and "notifyd services enable hook" in table
        page = daemon.get("/ui/services").text
        assert "switched off by its receiver: HTTP 410 Gone" in page and "notifyd services enable hook" in page
        assert run_cli("services", "enable", "hook", config=config, env=daemon.env).returncode == 0
        listed = {s["name"]: s for s in cli_json("services", "list", config=config, env=daemon.env)}
        assert listed["hook"]["enabled"] is True and listed["hook"]["disabled_reason"] is None
        hook.default_status = 200
        assert [j["service"] for j in daemon.post("/webhooks/generic", {"kind": "backup", "title": "back"}).json()["jobs"]] \
            == ["hook"]
    finally:
        hook.close()


def test_nan_and_infinity_are_not_json(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    daemon = daemons.start(runs_config(tmp_path, receiver))
    for raw in (b'{"cost_rate": {"amount": Infinity}}', b'{"name": NaN}'):
        answer = httpx.post(daemon.url + "/runs", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 400 and "not a JSON number" in answer.json()["detail"], answer.text
    answer = httpx.post(daemon.url + "/webhooks/comfydeploy", headers={"content-type": "application/json"},
                        content=b'{"run_id": "r", "status": "success", "outputs": [{"data": {"seed": NaN}}]}')
    assert answer.status_code == 400


def test_a_callback_that_turned_private_is_dead_with_the_reason() -> None:
    from notifyd.channels.webhook import deliver_run_callback
    from notifyd.config import parse_config
    from notifyd.errors import PermanentError
    from notifyd.model import Delivery, Run, RunStatus

    run = Run(id="r", status=RunStatus.COMPLETED, created_at=0, updated_at=0, finished_at=1)
    config = parse_config({"runs": {"callback_secret": SECRET}}, path=None)
    delivery = Delivery(job_id=1, service="(callback)", kind="callback",
                        data={"run_id": "r", "url": "http://127.0.0.1:9/cb"},
                        load_event=lambda: pytest.fail("a run's callback needs no event"))
    with pytest.raises(PermanentError, match="127.0.0.1 is a loopback address"):
        deliver_run_callback(delivery, run, config, 2)
