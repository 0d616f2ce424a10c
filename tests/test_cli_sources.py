"""`notifyd sources`: every source in the registry and the config, with a URL and credentials that
work as printed — taken with --reveal and posted to a running daemon in the form printed (the
URL as is, Basic auth with the printed password, the printed Authorization header) — and that,
masked, are only ***: never a token unless asked for."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from notifyd.errors import BadPayload
from notifyd.sources import SOURCE_TYPES, TokenForm

from conftest import FIXTURES, DaemonFactory, free_port, run_cli, write_config

SERVER_TOKEN = "srv tok/+&=?"            # needs URL-encoding in a query
RADARR_TOKEN = "radarr-own-token"
COMFY_TOKEN = "comfy-own-token"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SOURCES = f"""
[sources.radarr4k]
type = "radarr"
token = "{RADARR_TOKEN}"

[sources.comfy]
type = "comfydeploy"
token = "{COMFY_TOKEN}"

[sources.hooks]
type = "generic"
secret = "{SECRET}"
"""
NAMED = {"radarr4k": "radarr", "comfy": "comfydeploy", "hooks": "generic"}
SECRETS = (SERVER_TOKEN, RADARR_TOKEN, COMFY_TOKEN, SECRET, "srv%20tok")
# A sample body per source type, from its sender (tests/fixtures/*/README.md say where from).
SAMPLES = {"radarr": "arr/radarr/Download.json", "sonarr": "arr/sonarr/Download.json",
           "lidarr": "arr/lidarr/Download.json", "readarr": "arr/readarr/Download.json",
           "comfydeploy": "comfydeploy/running.json"}
GENERIC_BODY = {"title": "From notifyd sources", "body": "pasted as printed"}


def make_config(tmp_path: Path, *, listen: str = "127.0.0.1:8765", public_url: str | None = None,
                token: str | None = SERVER_TOKEN, sources: str = SOURCES) -> Path:
    config = write_config(tmp_path / "config.toml", services=sources)
    server = [f'listen = "{listen}"', "auth_failures = 1000"]
    if token is not None:
        server.append(f"token = {json.dumps(token)}")
    if public_url is not None:
        server.append(f'public_url = "{public_url}"')
    config.write_text(config.read_text().replace('max_body = "64KB"', "\n".join(['max_body = "64KB"', *server])))
    return config


def sources(config: Path, *args: str) -> tuple[list[dict[str, Any]], str]:
    result = run_cli("sources", "--json", *args, config=config)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_every_registered_type_and_every_named_source_is_listed_masked(tmp_path: Path) -> None:
    config = make_config(tmp_path, public_url="https://notify.example.org/hooks/")
    listed, stderr = sources(config)
    assert stderr == ""                                  # a public URL: no loopback warning
    by_name = {s["name"]: s for s in listed}
    assert [s["name"] for s in listed] == [*SOURCE_TYPES, *NAMED]
    for name, shown in by_name.items():
        source_type = NAMED.get(name, name)
        kind = SOURCE_TYPES[source_type]
        assert shown["type"] == source_type and shown["builtin"] is (name not in NAMED)
        assert shown["token_form"] == kind.token_form.value and shown["settings"] == kind.settings
        base = f"https://notify.example.org/hooks/webhooks/{name}"
        if kind.token_form is TokenForm.QUERY:
            assert shown["url"] == base + "?token=***"
        else:
            assert shown["url"] == base
        if kind.token_form is TokenForm.BASIC:
            assert (shown["username"], shown["password"]) == ("(any)", "***")
        if kind.token_form is TokenForm.BEARER:
            assert shown["authorization"] == "Bearer ***"
    assert by_name["radarr4k"]["token_from"] == "source" and by_name["hooks"]["token_from"] == "server"
    assert by_name["radarr"]["token_from"] == "server"
    assert [s["name"] for s in listed if s["signed"]] == ["hooks"]
    assert by_name["radarr"]["settings"].startswith("Settings → Connect")
    assert '"webhook"' in by_name["comfydeploy"]["settings"]
    text = run_cli("sources", config=config)
    assert text.returncode == 0
    for secret in SECRETS:
        assert secret not in text.stdout + text.stderr and secret not in json.dumps(listed)
    assert "Password: ***" in text.stdout and "--reveal" in text.stdout
    assert "Signed:" in text.stdout and "Where:" in text.stdout


def test_reveal_prints_the_tokens_url_encoded_in_a_query(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    listed, stderr = sources(config, "--reveal")
    by_name = {s["name"]: s for s in listed}
    assert by_name["generic"]["url"] == "http://127.0.0.1:8765/webhooks/generic?token=srv%20tok%2F%2B%26%3D%3F"
    assert by_name["comfy"]["url"] == f"http://127.0.0.1:8765/webhooks/comfy?token={COMFY_TOKEN}"
    assert by_name["radarr4k"]["password"] == RADARR_TOKEN and by_name["sonarr"]["password"] == SERVER_TOKEN
    # loopback and no public_url: one line on stderr says senders elsewhere cannot reach it
    assert stderr.count("\n") == 1 and "loopback" in stderr and "public_url" in stderr
    one, _ = sources(config, "radarr4k")
    assert [s["name"] for s in one] == ["radarr4k"]
    missing = run_cli("sources", "nosuch", config=config)
    assert missing.returncode == 1 and "no source 'nosuch'" in missing.stderr


def test_no_token_means_no_token_part_and_ipv6_is_bracketed(tmp_path: Path) -> None:
    config = make_config(tmp_path, listen="[::1]:9876", token=None, sources="")
    listed, stderr = sources(config, "--reveal")
    assert [s["url"] for s in listed] == [f"http://[::1]:9876/webhooks/{name}" for name in SOURCE_TYPES]
    assert all(s["token_from"] is None and s["password"] is None and s["authorization"] is None for s in listed)
    assert "loopback" in stderr
    text = run_cli("sources", config=config)
    assert "Password:" not in text.stdout and "--reveal" not in text.stdout


def sample(name: str, source_type: str) -> dict[str, Any] | None:
    """A body the source's parser takes: its sender's own sample, else a generic-shaped one when the
    parser accepts it (a type without samples yet), else None: only the URL's form is checked."""
    if source_type in SAMPLES:
        return json.loads((FIXTURES / SAMPLES[source_type]).read_text())
    try:
        SOURCE_TYPES[source_type].parse(GENERIC_BODY, name, source_type, json.dumps(GENERIC_BODY))
    except BadPayload:
        return None
    return GENERIC_BODY


def post_as_printed(shown: dict[str, Any], body: dict[str, Any], secret: str | None = None) -> httpx.Response:
    """POST the body the way the printed settings say: the URL as is, plus what is printed beside it."""
    raw = json.dumps(body)
    headers = {"content-type": "application/json"}
    if shown["password"] is not None:
        pair = f"{shown['username']}:{shown['password']}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
    if shown["authorization"] is not None:
        headers["authorization"] = shown["authorization"]
    if secret is not None:
        msg_id, now = f"msg_{uuid.uuid4().hex}", datetime.now(UTC)
        headers.update({"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                        "webhook-signature": Webhook(secret).sign(msg_id, now, raw)})
    return httpx.post(shown["url"], content=raw, headers=headers, timeout=10)


def test_what_is_printed_works_against_a_running_daemon_and_the_masked_form_does_not(
        tmp_path: Path, daemons: DaemonFactory) -> None:
    port = free_port()
    config = make_config(tmp_path, public_url=f"http://127.0.0.1:{port}")
    daemon = daemons.start(config, port=port)
    revealed, _ = sources(config, "--reveal")
    masked = {s["name"]: s for s in sources(config)[0]}
    posted = []
    for shown in revealed:
        assert shown["url"].startswith(f"http://127.0.0.1:{port}/webhooks/{shown['name']}")
        body = sample(shown["name"], shown["type"])
        if body is None:
            # No sample of this sender here: the credentials are still checked before the body's
            # shape, so they must get past the 401 (to a refusal of the shape, never a 5xx).
            answer = post_as_printed(shown, {"probe": "not this sender's shape"})
            assert answer.status_code != 401 and answer.status_code < 500, (shown["name"], answer.text)
        else:
            answer = post_as_printed(shown, body, SECRET if shown["signed"] else None)
            assert answer.status_code in (200, 202), (shown["name"], answer.status_code, answer.text)
            event = daemon.get(f"/events/{answer.json()['event_id']}", headers={"X-Notifyd-Token": SERVER_TOKEN})
            assert event.json()["source"] == shown["name"]
            posted.append(shown["name"])
        refused = post_as_printed(masked[shown["name"]], body or {"probe": "masked"})
        assert refused.status_code == 401, (shown["name"], refused.text)
    assert set(posted) >= {*SAMPLES, "generic", *NAMED}
    assert SERVER_TOKEN not in daemon.log()
    assert daemon.stop() == 0


@pytest.mark.parametrize("form", list(TokenForm))
def test_every_token_form_prints_its_own_credential_lines(tmp_path: Path, form: TokenForm) -> None:
    from notifyd.cli.sources_cmd import connection
    from notifyd.config import parse_config

    config = parse_config({"server": {"token": "t&k"}}, path=None)
    name = next((n for n, kind in SOURCE_TYPES.items() if kind.token_form is form), None)
    if name is None:
        pytest.skip(f"no registered source type sends its token as {form.value} yet")
    shown = connection(name, name, config, reveal=True)
    assert (shown.url.endswith("?token=t%26k"), shown.password, shown.authorization) == (
        form is TokenForm.QUERY, "t&k" if form is TokenForm.BASIC else None,
        "Bearer t&k" if form is TokenForm.BEARER else None)
