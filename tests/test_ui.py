"""The status page over plain HTTP: the gate (login, session, CSRF, origin), actions that change
nothing when refused, no secret on any page, escaping, and `server.ui = false`. (A real browser
drives it in test_ui_browser.py.)"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import httpx
import pytest

from conftest import Daemon, DaemonFactory, Receiver, cli_json, wait_for, write_config

TOKEN = "ui-token-5ecret"
SECRET_PASSWORD = "hunter2-appr1se"
PAGES = ["/", "/ui/events", "/ui/jobs", "/ui/jobs?state=dead", "/ui/services", "/ui/runs"]


def ui_config(tmp_path: Path, receiver: Receiver, *, token: str | None = TOKEN, extra: str = "",
              store_url: str | None = None) -> Path:
    config = write_config(tmp_path / "config.toml", max_attempts=1, store_url=store_url, services=f"""
# the receiver the tests run
[services.sink]
type = "apprise"
url = "{receiver.json_url}"

# a service whose URL holds a password
[services.vault]
type = "apprise"
url = "json://admin:{SECRET_PASSWORD}@127.0.0.1:9/hook"
events = ["nothing-sends-this"]
""")
    server = "[server]\nmax_body = \"64KB\"\n" + (f'token = "{token}"\n' if token else "") + extra
    config.write_text(config.read_text().replace('[server]\nmax_body = "64KB"\n', server))
    return config


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def logged_in(daemon: Daemon) -> httpx.Client:
    client = httpx.Client(base_url=daemon.url, timeout=10)
    form = client.get("/ui/login")
    assert form.status_code == 200 and 'for="token"' in form.text
    answer = client.post("/ui/login", data={"csrf": csrf_of(form.text), "token": TOKEN, "next": "/ui/jobs"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/jobs"
    return client


def post_event(daemon: Daemon, title: str, token: str | None = TOKEN) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = daemon.post("/webhooks/generic", {"title": title}, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()


def dead_job(daemon: Daemon, receiver: Receiver) -> int:
    receiver.script = [500]
    job = post_event(daemon, "goes dead")["jobs"][0]["id"]
    wait_for(lambda: cli_json("jobs", "show", str(job), config=daemon.config, env=daemon.env)["state"] == "dead",
             15, message="the job to go dead")
    return job


def test_pages_need_a_login_and_show_no_secret(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver,
                                               store_url: str | None) -> None:
    daemon = daemons.start(ui_config(tmp_path, receiver, store_url=store_url))
    post_event(daemon, "Arrival (2016) <script>alert(1)</script>")
    for path in PAGES:
        answer = httpx.get(daemon.url + path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next=")
    live = httpx.get(daemon.url + "/ui/events", headers={"X-Notifyd-Live": "1"})
    assert live.status_code == 401
    client = logged_in(daemon)
    event_id = cli_json("events", "list", config=daemon.config, env=daemon.env)[0]["id"]
    for path in [*PAGES, f"/ui/events/{event_id}", "/ui/static/style.css", "/ui/static/live.js"]:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert TOKEN not in answer.text and SECRET_PASSWORD not in answer.text, path
    events = client.get("/ui/events")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in events.text and "<script>alert" not in events.text
    policy = events.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'") and "unsafe-inline" not in policy
    # The page's one inline stylesheet is allowed by its hash, so a browser applies it (and nothing else).
    style = re.search(r"<style>(.*?)</style>", events.text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    cookie = events.request.headers["cookie"]
    assert "notifyd_session=" in cookie
    set_cookie = httpx.Client(base_url=daemon.url).get("/ui/login").headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    services = client.get("/ui/services").text
    assert "vault" in services and "json://admin:" in services        # the target is shown, masked


def test_actions_without_session_or_csrf_change_nothing(tmp_path: Path, daemons: DaemonFactory,
                                                        receiver: Receiver, store_url: str | None) -> None:
    config = ui_config(tmp_path, receiver, store_url=store_url)
    daemon = daemons.start(config)
    job = dead_job(daemon, receiver)
    client = logged_in(daemon)
    csrf = csrf_of(client.get("/ui/jobs").text)
    before = config.read_text()
    actions = [f"/ui/jobs/{job}/retry", "/ui/jobs/retry-dead", "/ui/services/sink/disable",
               "/ui/services/sink/test", f"/ui/jobs/{job}/cancel"]
    for path in actions:
        stranger = httpx.post(daemon.url + path, data={"csrf": csrf})
        assert stranger.status_code == 401, (path, stranger.text)
        no_csrf = client.post(path, data={"next": "/"})
        assert no_csrf.status_code == 403, (path, no_csrf.text)
        wrong_csrf = client.post(path, data={"csrf": csrf[:-2] + "xx"})
        assert wrong_csrf.status_code == 403, path
        other_site = client.post(path, data={"csrf": csrf}, headers={"Origin": "https://evil.example"})
        assert other_site.status_code == 403, path
        as_json = client.post(path, json={"csrf": csrf})
        assert as_json.status_code == 403, path
    assert cli_json("jobs", "show", str(job), config=config, env=daemon.env)["state"] == "dead"
    assert config.read_text() == before
    assert len(receiver.requests) == 1                   # the one failed delivery; no test was sent
    # With the session and its token, the same retry works and the job is delivered.
    done = client.post(f"/ui/jobs/{job}/retry", data={"csrf": csrf, "next": "/ui/jobs?state=dead"})
    assert done.status_code == 303 and done.headers["location"].startswith("/ui/jobs?state=dead&msg=")
    wait_for(lambda: cli_json("jobs", "show", str(job), config=config, env=daemon.env)["state"] == "succeeded",
             15, message="the retried job to succeed")


def test_log_out_ends_the_session_and_its_cookie_is_refused(tmp_path: Path, daemons: DaemonFactory,
                                                          receiver: Receiver) -> None:
    config = ui_config(tmp_path, receiver)
    daemon = daemons.start(config)
    client = logged_in(daemon)
    csrf = csrf_of(client.get("/ui/services").text)
    old_cookie = client.cookies.get("notifyd_session")
    out = client.post("/ui/logout", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"].startswith("/ui/login")
    replay = httpx.post(daemon.url + "/ui/services/sink/disable", data={"csrf": csrf},
                        cookies={"notifyd_session": old_cookie})
    assert replay.status_code == 401
    assert httpx.get(daemon.url + "/ui/services", cookies={"notifyd_session": old_cookie}).status_code == 303
    assert "enabled = false" not in config.read_text()


def test_wrong_tokens_at_the_login_are_limited_like_the_api(tmp_path: Path, daemons: DaemonFactory,
                                                           receiver: Receiver) -> None:
    daemon = daemons.start(ui_config(tmp_path, receiver, extra="auth_failures = 3\n"))
    client = httpx.Client(base_url=daemon.url, timeout=10)
    csrf = csrf_of(client.get("/ui/login").text)
    statuses = [client.post("/ui/login", data={"csrf": csrf, "token": f"guess-{i}"}).status_code for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    assert client.post("/ui/login", data={"csrf": csrf, "token": TOKEN}).status_code == 429
    assert daemon.post("/webhooks/generic", {"title": "x"},
                       headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_login_never_sends_you_to_another_site(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver,
                                              target: str) -> None:
    daemon = daemons.start(ui_config(tmp_path, receiver))
    client = httpx.Client(base_url=daemon.url, timeout=10)
    csrf = csrf_of(client.get("/ui/login").text)
    answer = client.post("/ui/login", data={"csrf": csrf, "token": TOKEN, "next": target})
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_open_on_loopback_without_a_token_but_actions_still_need_csrf(tmp_path: Path, daemons: DaemonFactory,
                                                                     receiver: Receiver) -> None:
    config = ui_config(tmp_path, receiver, token=None)
    daemon = daemons.start(config)
    job = dead_job_open(daemon, receiver)
    client = httpx.Client(base_url=daemon.url, timeout=10)
    page = client.get("/ui/jobs?state=dead")
    assert page.status_code == 200 and f"job {job}" in page.text and "Log out" not in page.text
    assert httpx.post(daemon.url + f"/ui/jobs/{job}/retry", data={}).status_code == 401   # a page elsewhere
    assert client.post(f"/ui/jobs/{job}/retry", data={}).status_code == 403
    assert client.post(f"/ui/jobs/{job}/retry", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert cli_json("jobs", "show", str(job), config=config, env=daemon.env)["state"] in ("queued", "running",
                                                                                        "succeeded")


def dead_job_open(daemon: Daemon, receiver: Receiver) -> int:
    receiver.script = [500]
    job = post_event(daemon, "goes dead", token=None)["jobs"][0]["id"]
    wait_for(lambda: cli_json("jobs", "show", str(job), config=daemon.config, env=daemon.env)["state"] == "dead",
             15, message="the job to go dead")
    return job


def test_enable_and_disable_edit_the_file_keeping_its_comments(tmp_path: Path, daemons: DaemonFactory,
                                                              receiver: Receiver) -> None:
    config = ui_config(tmp_path, receiver)
    daemon = daemons.start(config)
    client = logged_in(daemon)
    csrf = csrf_of(client.get("/ui/services").text)
    answer = client.post("/ui/services/sink/disable", data={"csrf": csrf, "next": "/ui/services"})
    assert answer.status_code == 303 and "service sink disabled" in client.get(answer.headers["location"]).text
    text = config.read_text()
    assert "# the receiver the tests run" in text and "# a service whose URL holds a password" in text
    assert "enabled = false" in text
    page = client.get("/ui/services").text
    assert 'aria-label="Enable sink"' in page
    # the daemon applied it at once: a new event makes no job for sink
    assert post_event(daemon, "after disable")["jobs"] == []
    client.post("/ui/services/sink/enable", data={"csrf": csrf})
    assert "enabled = true" in config.read_text()
    missing = client.post("/ui/services/nosuch/disable", data={"csrf": csrf, "next": "/ui/services"})
    assert "not done: no service" in client.get(missing.headers["location"]).text


def test_ui_false_leaves_the_page_out(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    daemon = daemons.start(ui_config(tmp_path, receiver, extra="ui = false\n"))
    answer = httpx.get(daemon.url + "/")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert httpx.get(daemon.url + "/ui/login").status_code == 404


def test_a_daemon_without_a_token_answers_only_to_loopback_names(tmp_path: Path, daemons: DaemonFactory,
                                                                 receiver: Receiver) -> None:
    """DNS rebinding: a page on evil.example that resolves its name to 127.0.0.1 sends Host and
    Origin of its own; it must neither read the page (and its CSRF token) nor post."""
    config = ui_config(tmp_path, receiver, token=None)
    daemon = daemons.start(config)
    before = config.read_text()
    client = httpx.Client(base_url=daemon.url, timeout=10, headers={"Host": "evil.example:8765"})
    for path in ["/", "/ui/services", "/events/1"]:
        answer = client.get(path)
        assert answer.status_code == 403 and answer.json()["error"] == "host_not_allowed", path
    posted = client.post("/webhooks/generic", json={"title": "x"})
    assert posted.status_code == 403
    action = client.post("/ui/services/sink/disable", data={"csrf": "x"},
                         headers={"Origin": "http://evil.example:8765"})
    assert action.status_code == 403 and config.read_text() == before
    assert client.get("/health").status_code == 200                    # health checkers name hosts freely
    for host in ("localhost:1", "127.0.0.1", "[::1]:8765"):
        assert httpx.get(daemon.url + "/ui/services", headers={"Host": host}).status_code == 200, host
    assert cli_json("events", "list", config=config, env=daemon.env) == []


def test_the_result_line_cannot_be_written_by_a_link(tmp_path: Path, daemons: DaemonFactory,
                                                     receiver: Receiver) -> None:
    daemon = daemons.start(ui_config(tmp_path, receiver))
    client = logged_in(daemon)
    forged = client.get("/ui/login", params={"msg": "paste your token at https://evil.example"})
    assert "evil.example" not in forged.text
    assert "evil.example" not in client.get("/ui/jobs", params={"msg": "phish"}).text.replace("phish", "")
    assert "phish" not in client.get("/ui/jobs", params={"msg": "phish"}).text
    csrf = csrf_of(client.get("/ui/services").text)
    done = client.post("/ui/services/sink/disable", data={"csrf": csrf, "next": "/ui/services"})
    assert "service sink disabled" in client.get(done.headers["location"]).text


def test_a_logout_holds_after_a_flood_of_anonymous_logouts_and_a_restart(tmp_path: Path, daemons: DaemonFactory,
                                                                        receiver: Receiver) -> None:
    config = ui_config(tmp_path, receiver)
    daemon = daemons.start(config)
    client = logged_in(daemon)
    csrf = csrf_of(client.get("/ui/services").text)
    old_cookie = client.cookies.get("notifyd_session")
    assert client.post("/ui/logout", data={"csrf": csrf}).status_code == 303
    for _ in range(50):                                  # anonymous logouts record nothing
        stranger = httpx.Client(base_url=daemon.url, timeout=10)
        stranger.post("/ui/logout", data={"csrf": csrf_of(stranger.get("/ui/login").text)})
    daemon.stop()
    daemon = daemons.start(config, port=daemon.port)
    replay = httpx.get(daemon.url + "/ui/services", cookies={"notifyd_session": old_cookie})
    assert replay.status_code == 303
    # a login made before the restart still holds: the signing secret is in the store
    again = logged_in(daemon)
    cookie = again.cookies.get("notifyd_session")
    daemon.stop()
    daemon = daemons.start(config, port=daemon.port)
    assert httpx.get(daemon.url + "/ui/services", cookies={"notifyd_session": cookie}).status_code == 200


def test_the_cookie_does_not_reveal_the_token(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    """The signing key comes from a secret in the store, so a cookie from the login page cannot
    be checked against guesses of the token offline."""
    from itsdangerous import BadSignature, URLSafeTimedSerializer
    daemon = daemons.start(ui_config(tmp_path, receiver))
    cookie = httpx.get(daemon.url + "/ui/login").cookies["notifyd_session"]
    for key in (TOKEN, hashlib.sha256(b"notifyd status page session\x00" + TOKEN.encode()).digest()):
        with pytest.raises(BadSignature):
            URLSafeTimedSerializer(key, salt="notifyd-session").loads(cookie)


def test_odd_ids_and_filters_are_404s_or_ignored_never_5xx(tmp_path: Path, daemons: DaemonFactory,
                                                          receiver: Receiver, store_url: str | None) -> None:
    daemon = daemons.start(ui_config(tmp_path, receiver, store_url=store_url))
    client = logged_in(daemon)
    csrf = csrf_of(client.get("/ui/jobs").text)
    for path in ["/ui/events/%C2%B2", "/ui/events/%D9%A1", "/ui/events/99999999999999999999", "/ui/events/1"]:
        assert client.get(path).status_code == 404, path
    assert client.get("/ui/jobs", params={"service": "\x00", "state": "\x00"}).status_code == 200
    for path in ["/ui/jobs/%C2%B2/retry", "/ui/jobs/%C2%B2/cancel"]:
        answer = client.post(path, data={"csrf": csrf})
        assert answer.status_code == 303, path
