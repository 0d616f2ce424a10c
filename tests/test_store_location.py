"""One store for the daemon and the CLI: one rule for the default location, `config init` writing it
out, a warning when what a command queued has no daemon to run it, and files handed back to the
store's owner after a command run by root."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from notifyd.config import SYSTEM_CONFIG, SYSTEM_STATE, StoreConfig, default_state_path, read_config_file
from notifyd.config.model import outside_state_directory
from notifyd.config.starter import starter_config

from conftest import DaemonFactory, run_cli, wait_for

GENERIC = {"title": "Backup finished", "body": "nightly: 12 GiB in 4m"}


def test_a_config_in_etc_notifyd_means_var_lib_notifyd_whoever_reads_it() -> None:
    # the daemon under systemd (StateDirectory set) and `sudo notifyd jobs list` (root's HOME) agree
    assert default_state_path({"STATE_DIRECTORY": "/var/lib/notifyd"}, SYSTEM_CONFIG) == SYSTEM_STATE
    assert default_state_path({"HOME": "/root"}, SYSTEM_CONFIG) == SYSTEM_STATE
    assert default_state_path({"HOME": "/root", "XDG_STATE_HOME": "/root/.state"}, SYSTEM_CONFIG) == SYSTEM_STATE


def test_elsewhere_state_directory_then_xdg_state_home() -> None:
    user_config = Path("/home/u/.config/notifyd/config.toml")
    assert default_state_path({"STATE_DIRECTORY": "/home/u/.local/state/notifyd"}, user_config) == \
        Path("/home/u/.local/state/notifyd/notifyd.db")
    assert default_state_path({"HOME": "/home/u"}, user_config) == Path("/home/u/.local/state/notifyd/notifyd.db")
    assert default_state_path({"HOME": "/home/u"}, None) == Path("/home/u/.local/state/notifyd/notifyd.db")


def test_the_starter_config_writes_the_store_path_out(tmp_path: Path) -> None:
    system = tomllib.loads(starter_config(SYSTEM_CONFIG, {"HOME": "/root"}))
    assert system["store"]["path"] == str(SYSTEM_STATE)
    user = tomllib.loads(starter_config(tmp_path / "config.toml", {"HOME": "/home/u"}))
    assert user["store"]["path"] == "/home/u/.local/state/notifyd/notifyd.db"


def test_a_store_outside_the_state_directory_is_named() -> None:
    inside = StoreConfig(path=Path("/var/lib/notifyd/notifyd.db"))
    outside = StoreConfig(path=Path("/srv/notifyd.db"))
    assert outside_state_directory(inside, {"STATE_DIRECTORY": "/var/lib/notifyd"}) is None
    assert outside_state_directory(outside, {}) is None                 # not under systemd: nothing to say
    said = outside_state_directory(outside, {"STATE_DIRECTORY": "/var/lib/notifyd"})
    assert said is not None and "/srv/notifyd.db" in said and "/var/lib/notifyd" in said


def _env(factory: DaemonFactory, home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    env = factory.env(**extra)
    env["HOME"] = str(home)
    return env


def test_the_daemon_under_systemd_and_the_cli_of_another_user_share_one_store(
        daemons: DaemonFactory, tmp_path: Path) -> None:
    config = tmp_path / "etc" / "config.toml"
    admin = _env(daemons, tmp_path / "admin")
    made = run_cli("config", "init", str(config), env=admin, check=True)
    store = Path(tomllib.loads(config.read_text())["store"]["path"])
    assert str(store) in made.stdout and store == tmp_path / "admin" / ".local" / "state" / "notifyd" / "notifyd.db"
    run_cli("services", "add", "sink", "--type", "apprise", "--url", "json://127.0.0.1:9/hook", config=config,
            env=admin, check=True)

    # the daemon runs as systemd runs it: its own HOME, a STATE_DIRECTORY of its own
    service_env = _env(daemons, tmp_path / "service", STATE_DIRECTORY=str(tmp_path / "state"))
    daemon = daemons.start(config, env=service_env)
    accepted = daemon.post("/webhooks/generic", GENERIC)
    assert accepted.status_code == 202, accepted.text

    # root's CLI, with yet another HOME and no STATE_DIRECTORY, reads the very same events
    root = _env(daemons, tmp_path / "root")
    listed = json.loads(run_cli("events", "list", "--json", config=config, env=root, check=True).stdout)
    assert [e["id"] for e in listed] == [accepted.json()["event_id"]]
    assert store.exists() and not (tmp_path / "state" / "notifyd.db").exists()
    assert not (tmp_path / "root" / ".local" / "state" / "notifyd" / "notifyd.db").exists()

    # what the CLI queues while the daemon serves: no warning
    sent = run_cli("send", "hello", config=config, env=root, check=True)
    assert "warning" not in sent.stderr, sent.stderr
    daemon.stop()

    # and with no daemon: it is queued, and the CLI says plainly that it waits
    waiting = run_cli("send", "hello again", config=config, env=root, check=True)
    assert "queued" in waiting.stdout
    warning = waiting.stderr.strip().splitlines()
    assert len(warning) == 1 and "no `notifyd serve` is running" in warning[0] and str(store) in warning[0]


def test_jobs_retry_says_when_no_daemon_will_run_the_job(daemons: DaemonFactory, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "n.db"}"\n\n[worker]\nmax_attempts = 1\nbackoff = ["100ms"]\n'
                      '\n[services.down]\ntype = "apprise"\nurl = "json://127.0.0.1:9/hook"\n')
    env = _env(daemons, tmp_path / "home")
    daemon = daemons.start(config, env=env)
    event = daemon.post("/webhooks/generic", GENERIC).json()
    job_id = event["jobs"][0]["id"]

    def dead() -> bool:
        return daemon.get(f"/events/{event['event_id']}").json()["jobs"][0]["state"] == "dead"
    wait_for(dead, message="the job to the closed port to die")
    daemon.stop()
    retried = run_cli("jobs", "retry", str(job_id), config=config, env=env, check=True)
    assert "queued" in retried.stdout and "no `notifyd serve` is running" in retried.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to hand files over")
def test_a_command_run_by_root_leaves_the_store_to_its_owner(daemons: DaemonFactory, tmp_path: Path) -> None:
    state = tmp_path / "state"                          # like /var/lib/private/notifyd of a DynamicUser
    state.mkdir()
    os.chown(state, 65534, 65534)
    config = tmp_path / "config.toml"
    config.write_text(f'[store]\npath = "{state / "notifyd.db"}"\n\n'
                      '[services.sink]\ntype = "apprise"\nurl = "json://127.0.0.1:9/hook"\n')
    env = _env(daemons, tmp_path / "root")
    run_cli("send", "made by root", config=config, env=env, check=True)
    files = sorted(state.iterdir())
    assert files, "the send created the database"
    assert {f.name: f.stat().st_uid for f in files} == {f.name: 65534 for f in files}
    assert read_config_file(config).store.path == state / "notifyd.db"


def test_send_knows_whether_a_daemon_serves_the_store_on_either_engine(
        daemons: DaemonFactory, tmp_path: Path, store_url: str | None) -> None:
    from conftest import write_config

    config = write_config(tmp_path / "config.toml", "json://127.0.0.1:9/hook", store_url=store_url)
    env = _env(daemons, tmp_path / "home")
    unserved = run_cli("send", "first", config=config, env=env, check=True)    # (also migrates the store)
    assert "no `notifyd serve` is running" in unserved.stderr
    daemon = daemons.start(config, env=env)
    served = run_cli("send", "second", config=config, env=env, check=True)
    assert served.stderr.strip() == "", served.stderr
    daemon.stop()
    again = run_cli("send", "third", config=config, env=env, check=True)
    assert "no `notifyd serve` is running" in again.stderr
