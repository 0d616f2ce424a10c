"""notifyd.config.render (`notifyd config show`): every section and key, in a config file's own forms,
secrets masked, and a file that loads again into the same config but for its secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from notifyd.config import load_config, parse_config_text
from notifyd.config.render import effective_config, effective_toml, mask_url, mask_webhook_secret, plain

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRETS = ("srv-token-secret", "src-token-secret", "kodi-pw-secret", "jf-api-key-secret", "plex-token-secret",
           "db-pw-secret", "112233445566778899", "AbCdEfGhIjKlMnOpQrStUvWx", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
           "123456789:ABCdefGHIjklMNOpqr")

EVERY_KEY = f"""\
# a config with every key set to something other than its default
[server]
listen = "127.0.0.1:9999"
token = "srv-token-secret"
max_body = "64KB"
dedupe_window = "1h30m15s"
protect_metrics = true
node_id = "node-a"
header_timeout = "2s500ms"
body_timeout = "45s"
idle_timeout = "3s"
max_connections = 64
auth_failures = 7
ui = false

[store]
path = "/var/tmp/notifyd-render-test.db"
synchronous = "FULL"
keep_succeeded = "7d"
keep_dead = "14d"

[worker]
threads = 3
max_attempts = 5
backoff = ["1s", "1m30s"]
timeout = "20s"
lease = "45s"

[runs]
callback_secret = "{WHSEC}"
allow_private_callbacks = true

[sources.radarr4k]
type = "radarr"
token = "src-token-secret"

[sources.hooks]
type = "generic"
secret = "{WHSEC}"

[services.discord]
type = "apprise"
url = "discord://112233445566778899/AbCdEfGhIjKlMnOpQrStUvWx"
events = ["download", "upgrade", "health"]
priority = 4
enabled = false

[services.discord.templates.download]
title = "got {{{{ title }}}}"

[services.telegram]
type = "apprise"
url = "tgram://123456789:ABCdefGHIjklMNOpqr/{{chat_id}}"

[services.kodi]
type = "kodi"
url = "http://kodi.lan:8080/jsonrpc"
username = "kodi"
password = "kodi-pw-secret"
path_map = [{{ from = "/data/media", to = "/storage/media" }}, {{ from = "/x", to = "/y" }}]
scan_delay = "45s"
test_path = "/data/media/movies"

[services.jellyfin]
type = "jellyfin"
url = "http://jf.lan:8096"
api_key = "jf-api-key-secret"

[services.plex]
type = "plex"
url = "http://plex.lan:32400"
token = "plex-token-secret"

[services.hook]
type = "webhook"
url = "https://example.com/hook"
secret = "{WHSEC}"
timeout = "7s"
"""


@pytest.fixture
def every_key(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(EVERY_KEY)
    return path


def without_secrets(config):
    """The config with what `config show` masks taken out, to compare the rest."""
    services = {n: replace(s, options={k: v for k, v in s.options.items()
                                       if k not in ("password", "api_key", "token", "secret", "url")})
                for n, s in config.services.items()}
    sources = {n: replace(s, token=None, secret=None) for n, s in config.sources.items()}
    return replace(config, path=None, server=replace(config.server, token=None), services=services, sources=sources,
                   runs=replace(config.runs, callback_secret=None))


def test_the_shown_config_loads_back_to_the_same_config_but_its_secrets(every_key: Path) -> None:
    original = load_config(every_key, env={})
    text = effective_toml(original)
    for secret in SECRETS:
        assert secret not in text
    again = parse_config_text(text, every_key.parent / "shown.toml", env={})
    assert without_secrets(again) == without_secrets(original)
    assert effective_toml(again).splitlines()[1:] == text.splitlines()[1:]     # showing it again changes nothing


def test_every_section_and_the_forms_a_person_writes(every_key: Path) -> None:
    text = effective_toml(load_config(every_key, env={}))
    data = tomllib.loads(text)
    assert list(data) == ["server", "store", "worker", "runs", "sources", "services"]
    assert data["server"]["max_body"] == "64KB" and data["server"]["dedupe_window"] == "1h30m15s"
    assert data["server"]["header_timeout"] == "2s500ms" and data["worker"]["backoff"] == ["1s", "1m30s"]
    assert 'path_map = [{from = "/data/media", to = "/storage/media"}, {from = "/x", to = "/y"}]' in text
    assert data["services"]["kodi"]["scan_delay"] == "45s" and data["services"]["hook"]["timeout"] == "7s"
    assert data["services"]["discord"]["templates"] == {"download": {"title": "got {{ title }}"}}
    assert data["runs"]["allow_private_callbacks"] is True and data["sources"]["radarr4k"]["type"] == "radarr"


def test_secrets_are_masked_and_marked(every_key: Path) -> None:
    text = effective_toml(load_config(every_key, env={}))
    for line in ('token = "***" # masked', 'password = "***" # masked', 'api_key = "***" # masked',
                 'url = "discord://000000000000000000/XxXxXxXxXxXxXxXxXxXxXxXx" # masked',
                 'url = "tgram://000000000:XXXxxxXXXxxxXXXxxx/{chat_id}" # masked'):
        assert line in text
    assert 'url = "http://kodi.lan:8080/jsonrpc"\n' in text            # nothing secret in it: not marked
    assert mask_webhook_secret(WHSEC) == "whsec_XxXX0x0XXXxxXxxXXX0XXXXXx0XxXxXx"
    assert f'callback_secret = "{mask_webhook_secret(WHSEC)}" # masked' in text


def test_a_database_url_shows_without_its_password(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[store]\nurl = "postgresql://notifyd:db-pw-secret@db.lan:5432/notifyd"\n')
    text = effective_toml(load_config(path, env={}))
    assert 'url = "postgresql://notifyd:***@db.lan:5432/notifyd" # masked' in text and "db-pw-secret" not in text
    assert parse_config_text(text, path, env={}).store.url == "postgresql://notifyd:***@db.lan:5432/notifyd"


@pytest.mark.parametrize("url", [
    "discord://1234567890123/abcdefghijklmnopqrstuvwxyz",
    "tgram://123456789:ABCdefGHIjklMNOpqr/123456",
    "pover://ukey12345678abcdefghijklmnop@atoken12345678abcdefghijklm",
    "mailto://user:pass@gmail.com",
    "ntfy://mytopic",
    "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ",
    "gotify://host.lan/tokenabcdefgh",
    "json://user:pw-very-secret@127.0.0.1:9/hook/supersecretpathtoken",
])
def test_a_masked_apprise_url_is_still_one_a_plugin_accepts(url: str) -> None:
    import apprise

    masked = mask_url(url)
    assert masked != url
    assert apprise.Apprise.instantiate(url) is not None
    assert apprise.Apprise.instantiate(masked) is not None, masked


def test_json_is_the_same_data_without_markers(every_key: Path) -> None:
    config = load_config(every_key, env={})
    data = plain(effective_config(config))
    assert json.loads(json.dumps(data)) == tomllib.loads(effective_toml(config))


def test_show_then_check_round_trips_through_the_cli(every_key: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFYD_", "XDG_", "STATE_DIRECTORY"))}
    env["HOME"] = str(tmp_path)
    run = [sys.executable, "-m", "notifyd"]
    shown = subprocess.run([*run, "config", "show", "--config", str(every_key)], capture_output=True, text=True,
                           env=env, check=True).stdout
    copy = tmp_path / "x.toml"
    copy.write_text(shown.replace("/var/tmp/notifyd-render-test.db", str(tmp_path / "n.db")))
    checked = subprocess.run([*run, "config", "check", "--config", str(copy)], capture_output=True, text=True, env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{copy}: ok, 6 service(s)")
    as_json = json.loads(subprocess.run([*run, "config", "show", "--json", "--config", str(every_key)],
                                        capture_output=True, text=True, env=env, check=True).stdout)
    assert as_json["file"] == str(every_key) and as_json["config"] == tomllib.loads(shown)
