"""End to end: `notifyd serve` as a real process, spoken to over HTTP, delivering to receivers on
127.0.0.1, inspected with the real CLI.

Nothing here is timed: a wait's deadline (HANG) only turns a hang into a failure. How soon the
daemon picks up a CLI's change or a config edit is measured by tests/bench/bench_pickup.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from conftest import DaemonFactory, Receiver, cli_json, run_cli, wait_for, write_config

HANG = 30.0
GRACE_LOG = "waiting up to 10s for 1 running job(s)"      # the shutdown's grace, design §11: at most 10 s


def job_state(config: Path, job_id: int, env: dict) -> dict:
    return cli_json("jobs", "show", str(job_id), config=config, env=env)


def wait_job(config: Path, job_id: int, env: dict, state: str, timeout: float = 15) -> dict:
    return wait_for(lambda: (lambda j: j if j["state"] == state else None)(job_state(config, job_id, env)),
                    timeout, interval=0.2, message=f"job {job_id} to be {state}")


def test_generic_webhook_is_delivered_through_apprise_json(tmp_path: Path, daemons: DaemonFactory,
                                                           receiver: Receiver, store_url: str | None) -> None:
    config = write_config(tmp_path / "config.toml", receiver.json_url, store_url=store_url)
    daemon = daemons.start(config)
    answer = daemon.post("/webhooks/generic", {"title": "Backup finished", "body": "12 GiB in 4m"})
    assert answer.status_code == 202
    data = answer.json()
    assert data["kind"] == "notification" and data["duplicate"] is False
    assert [j["service"] for j in data["jobs"]] == ["sink"]

    wait_for(lambda: receiver.bodies(), message="the delivery")
    body = receiver.bodies()[0]
    assert body["title"] == "Backup finished" and body["message"] == "12 GiB in 4m" and body["type"] == "info"

    job_id = data["jobs"][0]["id"]
    jobs = wait_for(lambda: [j for j in cli_json("jobs", "list", config=config, env=daemon.env)
                             if j["id"] == job_id and j["state"] == "succeeded"], message="job succeeded")
    assert jobs[0]["attempts"] == 1 and jobs[0]["event_id"] == data["event_id"]
    event = daemon.get(f"/events/{data['event_id']}").json()
    assert event["title"] == "Backup finished"
    assert event["jobs"] == [{"id": job_id, "service": "sink", "state": "succeeded", "attempts": 1,
                              "delivery": "sent", "last_error": None}]
    assert daemon.stop() == 0


def test_receiver_503_twice_then_success_on_attempt_3(tmp_path: Path, daemons: DaemonFactory,
                                                     receiver: Receiver, store_url: str | None) -> None:
    receiver.script = [503, 503]
    config = write_config(tmp_path / "config.toml", receiver.json_url, store_url=store_url)
    daemon = daemons.start(config)
    job_id = daemon.post("/webhooks/generic", {"title": "flaky"}).json()["jobs"][0]["id"]
    job = wait_job(config, job_id, daemon.env, "succeeded")
    assert job["attempts"] == 3
    log = job["attempt_log"]
    assert [a["n"] for a in log] == [1, 2, 3]
    assert [a["outcome"] for a in log] == ["retry", "retry", "succeeded"]
    assert "HTTP 503" in log[0]["error"] and "HTTP 503" in log[1]["error"]
    assert log[2]["error"] is None and log[2]["detail"]["status"] == "SUCCESS"
    assert len(receiver.bodies()) == 3
    assert "attempt 1/4 failed: HTTP 503" in daemon.log()


def test_always_500_goes_dead_then_retry_delivers(tmp_path: Path, daemons: DaemonFactory,
                                                  receiver: Receiver, store_url: str | None) -> None:
    receiver.default_status = 500
    config = write_config(tmp_path / "config.toml", receiver.json_url, max_attempts=3, store_url=store_url)
    daemon = daemons.start(config)
    answer = daemon.post("/webhooks/generic", {"title": "doomed"}).json()
    job_id = answer["jobs"][0]["id"]
    job = wait_job(config, job_id, daemon.env, "dead")
    assert job["attempts"] == 3 and [a["outcome"] for a in job["attempt_log"]] == ["retry", "retry", "failed"]
    assert "gave up after 3 attempts" in job["last_error"]
    assert daemon.get(f"/events/{answer['event_id']}").json()["jobs"][0]["delivery"] == "failed"

    receiver.default_status = 200
    result = run_cli("jobs", "retry", str(job_id), config=config, env=daemon.env)
    assert result.returncode == 0 and f"job {job_id}: queued" in result.stdout
    job = wait_job(config, job_id, daemon.env, "succeeded", timeout=HANG)    # the daemon notices the CLI's change
    assert job["attempts"] == 1 and len(job["attempt_log"]) == 4   # fresh budget, history kept
    assert len(receiver.bodies()) == 4


def test_kill_9_loses_nothing(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver, store_url: str | None) -> None:
    receiver.gate.clear()
    config = write_config(tmp_path / "config.toml", receiver.json_url, store_url=store_url)
    daemon = daemons.start(config)
    titles = [f"event {n}" for n in range(6)]
    for title in titles:
        assert daemon.post("/webhooks/generic", {"title": title}).status_code == 202
    wait_for(lambda: receiver.held == 1, HANG, message="a worker inside a delivery")   # one per service at a time
    daemon.kill()
    receiver.server.handle_error = lambda *args: None  # type: ignore[method-assign]  # the answer to the killed one breaks
    receiver.gate.set()

    restarted = daemons.start(config)
    wait_for(lambda: {b["title"] for b in receiver.bodies()} >= set(titles), 20, message="every event delivered")
    jobs = wait_for(lambda: (lambda js: js if all(j["state"] == "succeeded" for j in js) else None)(
        cli_json("jobs", "list", config=config, env=restarted.env)), message="every job succeeded")
    assert len(jobs) == 6
    outcomes = [a["outcome"] for j in jobs for a in job_state(config, j["id"], restarted.env)["attempt_log"]]
    if store_url is None:
        assert "interrupted" in outcomes, "the jobs running at the kill are recorded as interrupted"
        assert "queued again" in restarted.log()
    else:
        # Where nodes share the store, a restarting node cannot tell a dead predecessor from a live
        # peer: the jobs come back when their lease expires.
        assert "lost" in outcomes, "the jobs running at the kill are taken back when their lease expires"


def test_bad_requests_get_json_errors_and_enqueue_nothing(tmp_path: Path, daemons: DaemonFactory,
                                                          receiver: Receiver, store_url: str | None) -> None:
    config = write_config(tmp_path / "config.toml", receiver.json_url, store_url=store_url)
    text = config.read_text().replace('max_body = "64KB"', 'max_body = "64KB"\ntoken = "s3cret-token-value"')
    config.write_text(text)
    daemon = daemons.start(config)
    auth = {"Authorization": "Bearer s3cret-token-value"}
    url = daemon.url + "/webhooks/generic"
    cases = [
        (httpx.post(url, content=b"{not json", headers={**auth, "Content-Type": "application/json"}), 400),
        (httpx.post(url, content=b"", headers={**auth, "Content-Type": "application/json"}), 400),
        (httpx.post(url, content=b"[1, 2]", headers={**auth, "Content-Type": "application/json"}), 400),
        (httpx.post(url, content=b"\xff\xfe{}", headers={**auth, "Content-Type": "application/json"}), 400),
        (httpx.post(url, content=b"[" * 100 + b"]" * 100, headers={**auth, "Content-Type": "application/json"}), 400),
        (httpx.post(url, content=b"title=x", headers={**auth, "Content-Type": "application/x-www-form-urlencoded"}), 415),
        (httpx.post(url, json={"title": "x" * 70000}, headers=auth), 413),
        (httpx.post(url, json={"title": "no token"}), 401),
        (httpx.post(url, json={"title": "wrong"}, headers={"Authorization": "Bearer nope"}), 401),
        (httpx.post(daemon.url + "/webhooks/nosuch", json={"title": "x"}, headers=auth), 404),
        (httpx.post(url, json={"kind": "x"}, headers=auth), 422),
        (httpx.get(url, headers=auth), 405),
        (httpx.get(daemon.url + "/events/999", headers=auth), 404),
        (httpx.get(daemon.url + "/events/%C2%B2", headers=auth), 404),
        (httpx.get(daemon.url + "/events/99999999999999999999", headers=auth), 404),
        (httpx.post(url, content=b'{"title": "\\ud800"}', headers={**auth, "Content-Type": "application/json"}), 400),
        (httpx.post(url, content=b'{"title": "a\\u0000b"}', headers={**auth, "Content-Type": "application/json"}), 400),
        (httpx.post(daemon.url + "/webhooks/nosuch", json={"title": "x"}), 401),   # no names for strangers
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        body = response.json()
        assert set(body) == {"error", "detail"} and body["error"] and body["detail"].strip()
    assert cli_json("events", "list", config=config, env=daemon.env) == []
    assert cli_json("jobs", "list", config=config, env=daemon.env) == []
    health = daemon.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # every way of presenting the token works
    for extra in ({"headers": {"X-Notifyd-Token": "s3cret-token-value"}},
                  {"params": {"token": "s3cret-token-value"}},
                  {"auth": ("notifyd", "s3cret-token-value")},
                  {"headers": auth}):
        assert httpx.post(url, json={"title": f"ok {extra}"}, **extra).status_code == 202


def test_duplicates_and_test_events(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver, store_url: str | None) -> None:
    config = write_config(tmp_path / "config.toml", receiver.json_url, store_url=store_url)
    daemon = daemons.start(config)
    first = daemon.post("/webhooks/generic", {"title": "once"})
    again = daemon.post("/webhooks/generic", {"title": "once"})
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["duplicate"] is True and again.json()["event_id"] == first.json()["event_id"]
    assert again.json()["jobs"] == first.json()["jobs"]
    keyed = [daemon.post("/webhooks/generic", {"title": f"try {n}"}, headers={"Idempotency-Key": "k-1"})
             for n in range(2)]
    assert [r.status_code for r in keyed] == [202, 200]
    test = daemon.post("/webhooks/generic", {"kind": "test", "title": "ping"})
    assert test.status_code == 200 and test.json()["jobs"] == []
    wait_for(lambda: len(receiver.bodies()) == 2, message="two deliveries")
    time.sleep(0.5)
    assert sorted(b["title"] for b in receiver.bodies()) == ["once", "try 0"]


def test_defaults_with_no_config_and_an_empty_home(tmp_path: Path, daemons: DaemonFactory) -> None:
    daemon = daemons.start(config=None, port=8765)
    health = httpx.get("http://127.0.0.1:8765/health", timeout=5)
    assert health.status_code == 200
    assert health.json()["config"] == {"state": "ok", "error": None}
    assert (daemons.home / ".local/state/notifyd/notifyd.db").is_file()
    answer = httpx.post("http://127.0.0.1:8765/webhooks/generic", json={"title": "no services"}, timeout=5)
    assert answer.status_code == 202 and answer.json()["jobs"] == []
    second = daemons.start(config=None, port=8765, wait=False)
    assert second.proc.wait(15) == 1
    assert "another notifyd serve" in second.log() and str(daemon.proc.pid) in second.log()
    assert daemon.stop() == 0


def test_a_running_daemon_follows_a_disable_and_a_broken_config_keeps_the_last_good(
        tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    services = f"""
# where notifications go
[services.sink]
type = "apprise"
url = "{receiver.json_url}"   # the main receiver

# a second one
[services.other]
type = "apprise"
url = "json://127.0.0.1:{receiver.port}/other"
"""
    config = write_config(tmp_path / "config.toml", services=services)
    daemon = daemons.start(config)
    assert {j["service"] for j in daemon.post("/webhooks/generic", {"title": "a"}).json()["jobs"]} == {"sink", "other"}
    before = config.read_text().splitlines()

    result = run_cli("services", "disable", "sink", config=config, env=daemon.env)
    assert result.returncode == 0, result.stderr
    after = config.read_text().splitlines()
    assert [line for line in before if line.lstrip().startswith("#")] == \
           [line for line in after if line.lstrip().startswith("#")]
    assert "the main receiver" in config.read_text()

    def only_other() -> bool:
        jobs = daemon.post("/webhooks/generic", {"title": f"b {time.monotonic()}"}).json()["jobs"]
        return {j["service"] for j in jobs} == {"other"}
    wait_for(only_other, HANG, interval=0.1, message="the daemon to stop creating sink jobs")
    # No SIGHUP was sent and the daemon was not restarted: the file watcher reloaded it.
    assert f"config reloaded from {config} (services changed: sink)" in daemon.log()

    config.write_text(config.read_text() + "\n[services.broken]\ntype = \"apprise\"\nurl = 5\n")
    health = wait_for(lambda: (lambda h: h if h["config"]["state"] == "error" else None)(
        daemon.get("/health").json()), HANG, message="the reload error in /health")
    assert "services.broken.url" in health["config"]["error"] and "config.toml" in health["config"]["error"]
    jobs = daemon.post("/webhooks/generic", {"title": "c"}).json()["jobs"]
    assert {j["service"] for j in jobs} == {"other"}          # still the last good config
    listed = run_cli("services", "list", config=config, env=daemon.env)
    assert listed.returncode == 2 and "services.broken.url" in listed.stderr


def test_no_secret_appears_in_logs_cli_or_http(tmp_path: Path, daemons: DaemonFactory,
                                               receiver: Receiver, store_url: str | None) -> None:
    token = "tok-SECRET-8f3a2b"
    password = "pw-SECRET-c0ffee"
    bot_token = "123456789:AAsecretBOTtoken77"
    services = f"""
[services.sink]
type = "apprise"
url = "json://user:{password}@127.0.0.1:{receiver.port}/hook"

[services.telegram]
type = "apprise"
url = "tgram://{bot_token}/12345"
events = ["never-sent"]
"""
    db_password = "pg-SECRET-77d1e"
    if store_url:                            # the server trusts local sockets, so any password connects
        store_url = store_url.replace("postgresql://postgres:@", f"postgresql://postgres:{db_password}@")
        assert db_password in store_url
    config = write_config(tmp_path / "config.toml", services=services, max_attempts=2, store_url=store_url)
    config.write_text(config.read_text().replace('max_body = "64KB"', f'max_body = "64KB"\ntoken = "{token}"'))
    receiver.script = [401]                  # the first delivery is refused: error paths get logged too
    daemon = daemons.start(config, args=("--log-format", "json"))
    auth = {"Authorization": f"Bearer {token}"}
    answers = [daemon.post("/webhooks/generic", {"title": f"m{n}"}, headers=auth) for n in range(2)]
    answers.append(daemon.post("/webhooks/generic", {"title": "bad"}, headers={"Authorization": "Bearer wrong"}))
    answers.append(daemon.post("/webhooks/generic", {"title": "bad"}, params={"token": token[:-1]}))
    job_ids = [j["id"] for a in answers[:2] for j in a.json()["jobs"]]
    for job_id in job_ids:
        wait_for(lambda job_id=job_id: job_state(config, job_id, daemon.env)["state"] in ("succeeded", "dead"),
                 message="jobs finished")
    outputs = [a.text for a in answers]
    outputs += [daemon.get(f"/events/{answers[0].json()['event_id']}", headers=auth).text, daemon.get("/health").text]
    for args in (("services", "list"), ("services", "list", "--json"), ("config", "show"), ("jobs", "list", "--json"),
                 ("stats", "--json"), ("events", "list", "--json"), ("config", "check"), ("store", "info"),
                 *[("jobs", "show", str(j), "--json") for j in job_ids]):
        result = run_cli(*args, config=config, env=daemon.env)
        assert result.returncode == 0, (args, result.stderr)
        outputs += [result.stdout, result.stderr]
    assert daemon.stop() == 0
    outputs.append(daemon.log())
    assert any("tgram://1...7/12345" in o for o in outputs)     # listed, masked the way Apprise masks it
    for text in outputs:
        for secret in (token, password, bot_token, "AAsecretBOTtoken77", db_password):
            assert secret not in text, f"{secret!r} leaked into: {text[:300]}"
    log_lines = [json.loads(line) for line in daemon.log().splitlines() if line.startswith("{")]
    assert any("failed: HTTP 401" in line["message"] for line in log_lines)


def test_a_locked_store_answers_503_and_recovers_without_restart(tmp_path: Path, daemons: DaemonFactory,
                                                                 receiver: Receiver) -> None:
    import sqlite3

    config = write_config(tmp_path / "config.toml", receiver.json_url)
    daemon = daemons.start(config)
    holder = sqlite3.connect(tmp_path / "notifyd.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")                       # another writer holds the database
    refused = daemon.post("/webhooks/generic", {"title": "while locked"})
    assert refused.status_code == 503
    assert refused.json()["error"] == "store_unavailable" and "locked" in refused.json()["detail"]
    health = daemon.get("/health")
    assert health.status_code == 503 and health.json()["store"]["writable"] is False
    holder.execute("ROLLBACK")
    holder.close()
    accepted = daemon.post("/webhooks/generic", {"title": "after"})
    assert accepted.status_code == 202
    assert daemon.get("/health").status_code == 200
    wait_for(lambda: receiver.bodies(), message="the delivery")
    events = cli_json("events", "list", config=config, env=daemon.env)
    assert [e["title"] for e in events] == ["after"]      # the refused one was never half-stored
    assert daemon.stop() == 0


def test_sigterm_lets_a_running_job_finish_and_exits_0(tmp_path: Path, daemons: DaemonFactory,
                                                      receiver: Receiver, store_url: str | None) -> None:
    import signal

    receiver.gate.clear()
    config = write_config(tmp_path / "config.toml", receiver.json_url, store_url=store_url)
    daemon = daemons.start(config)
    job_id = daemon.post("/webhooks/generic", {"title": "in flight"}).json()["jobs"][0]["id"]
    wait_for(lambda: receiver.held == 1, HANG, message="the delivery in flight")
    daemon.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: GRACE_LOG in daemon.log(), HANG, message="the shutdown's wait for the running job")
    assert daemon.proc.poll() is None
    receiver.gate.set()                             # only now can the delivery end: inside the grace
    assert daemon.proc.wait(HANG) == 0
    assert job_state(config, job_id, daemon.env)["state"] == "succeeded"
    assert len(receiver.bodies()) == 1
    assert "given back unfinished" not in daemon.log() and "unfinished job(s) given back" not in daemon.log()


def test_sigterm_gives_back_a_job_that_outlasts_the_grace(tmp_path: Path, daemons: DaemonFactory,
                                                         receiver: Receiver) -> None:
    receiver.gate.clear()                           # the delivery never ends while the daemon lives
    receiver.server.handle_error = lambda *args: None  # type: ignore[method-assign]  # its answer, too late, breaks
    config = write_config(tmp_path / "config.toml", receiver.json_url)
    config.write_text(config.read_text().replace('timeout = "5s"', 'timeout = "30s"'))    # longer than the grace
    daemon = daemons.start(config)
    job_id = daemon.post("/webhooks/generic", {"title": "slow"}).json()["jobs"][0]["id"]
    wait_for(lambda: receiver.held == 1, HANG, message="the delivery in flight")
    assert daemon.stop(timeout=HANG + 10) == 0     # it gives up on the delivery by itself
    log = daemon.log()
    assert GRACE_LOG in log                         # the grace it waited
    assert f"job {job_id} sink given back unfinished at shutdown" in log
    assert "stopped (1 unfinished job(s) given back)" in log
    job = job_state(config, job_id, daemon.env)
    assert job["state"] == "queued" and job["attempts"] == 0 and job["attempt_log"] == []
    assert receiver.bodies() == []                  # still held when the daemon left


def test_sighup_reloads_and_keeps_the_last_good_config(tmp_path: Path, daemons: DaemonFactory,
                                                       receiver: Receiver) -> None:
    import signal

    config = write_config(tmp_path / "config.toml", receiver.json_url)
    daemon = daemons.start(config, args=("--no-watch",))        # only SIGHUP reloads here
    config.write_text(config.read_text().replace('type = "apprise"', 'type = "apprise"\nenabled = false'))
    time.sleep(1.5)                                             # room for a watcher, were there one
    assert [j["service"] for j in daemon.post("/webhooks/generic", {"title": "a"}).json()["jobs"]] == ["sink"]
    assert "config reloaded" not in daemon.log()
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.post("/webhooks/generic", {"title": f"b{time.monotonic()}"}).json()["jobs"] == [],
             HANG, interval=0.1, message="the reload after SIGHUP")
    config.write_text(config.read_text() + "\n[worker.oops]\n")
    daemon.proc.send_signal(signal.SIGHUP)
    health = wait_for(lambda: (lambda h: h if h["config"]["state"] == "error" else None)(daemon.get("/health").json()),
                      HANG, message="the refused reload in /health")
    assert "worker.oops" in health["config"]["error"] and daemon.get("/health").status_code == 200
    assert daemon.post("/webhooks/generic", {"title": "c"}).json()["jobs"] == []    # still the last good config
    assert daemon.stop() == 0


def test_a_config_edit_from_the_cli_is_applied_by_the_running_daemon_at_once(tmp_path: Path, daemons: DaemonFactory,
                                                                             receiver: Receiver) -> None:
    """`services disable` tells the daemon holding the store (SIGHUP): with no watcher running,
    only that can make the next webhook see the edit."""
    config = write_config(tmp_path / "config.toml", receiver.json_url)
    daemon = daemons.start(config, args=("--no-watch",))
    assert [j["service"] for j in daemon.post("/webhooks/generic", {"title": "a"}).json()["jobs"]] == ["sink"]
    run_cli("services", "disable", "sink", config=config, env=daemon.env, check=True)
    wait_for(lambda: daemon.post("/webhooks/generic", {"title": f"b{time.monotonic()}"}).json()["jobs"] == [],
             HANG, interval=0.05, message="the edit applied")
    assert "config reloaded" in daemon.log()
    assert daemon.stop() == 0


def test_serve_refuses_a_public_address_without_a_token_and_a_broken_config(tmp_path: Path,
                                                                            daemons: DaemonFactory) -> None:
    from conftest import free_port

    config = write_config(tmp_path / "config.toml", "json://127.0.0.1:9/x")
    result = run_cli("serve", "--listen", f"0.0.0.0:{free_port()}", config=config, env=daemons.env())
    assert result.returncode == 2 and "refusing to listen on 0.0.0.0" in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text('[worker]\nthreads = 0\n')
    result = run_cli("serve", config=broken, env=daemons.env())
    assert result.returncode == 2 and f"{broken}:2: worker.threads: expected a whole number" in result.stderr


def test_a_busy_port_is_a_clear_error_and_strands_no_job(tmp_path: Path, daemons: DaemonFactory,
                                                         receiver: Receiver) -> None:
    first = daemons.start(write_config(tmp_path / "one.toml", receiver.json_url, db=tmp_path / "one.db"))
    other = write_config(tmp_path / "two.toml", receiver.json_url, db=tmp_path / "two.db")
    run_cli("send", "queued before the failed start", config=other, env=daemons.env(), check=True)
    second = daemons.start(other, port=first.port, wait=False)
    assert second.proc.wait(15) == 1
    assert f"cannot listen on 127.0.0.1:{first.port}" in second.log() and "Traceback" not in second.log()
    job = cli_json("jobs", "list", config=other, env=daemons.env())[0]
    assert job["state"] == "queued" and job["attempts"] == 0      # nothing was claimed before the bind
