"""The CLI in-process: exit codes, --json shapes, config init/check/show, services edits, send."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from notifyd.cli import app

from conftest import run_cli, write_config

JOB_KEYS = {"id", "event_id", "service", "kind", "priority", "state", "attempts", "max_attempts", "run_at",
            "created_at", "finished_at", "last_error"}
EVENT_KEYS = {"id", "source", "source_type", "kind", "title", "paths", "received_at", "jobs"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "XDG_CONFIG_HOME": "", "XDG_STATE_HOME": "", "NOTIFYD_CONFIG": "",
            "STATE_DIRECTORY": "", "COLUMNS": "200"}


@pytest.fixture
def cli(env: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env=env, catch_exceptions=False)
    return invoke


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.toml", "json://127.0.0.1:9/hook")


def test_send_queues_a_job_and_jobs_list_shows_it(cli, config: Path) -> None:
    sent = cli("send", "hello there", "--title", "Hi", "--json", "--config", str(config))
    assert sent.exit_code == 0, sent.output
    data = json.loads(sent.stdout)
    assert data["kind"] == "notification" and [j["service"] for j in data["jobs"]] == ["sink"]
    jobs = json.loads(cli("jobs", "list", "--json", "--config", str(config)).stdout)
    assert len(jobs) == 1 and set(jobs[0]) >= JOB_KEYS
    assert jobs[0]["state"] == "queued" and jobs[0]["attempts"] == 0 and jobs[0]["max_attempts"] == 4
    assert jobs[0]["created_at"].endswith("Z")
    shown = json.loads(cli("jobs", "show", str(jobs[0]["id"]), "--json", "--config", str(config)).stdout)
    assert shown["attempt_log"] == [] and set(shown) >= JOB_KEYS | {"attempt_log"}
    event = json.loads(cli("events", "show", str(data["event_id"]), "--json", "--config", str(config)).stdout)
    assert set(event) >= EVENT_KEYS and event["source"] == "cli" and event["title"] == "Hi"
    assert event["jobs"][0]["delivery"] == "pending"
    table = cli("jobs", "list", "--config", str(config))
    assert table.exit_code == 0 and "sink" in table.output and "queued" in table.output


def test_send_to_an_unknown_or_disabled_service_fails_with_1(cli, config: Path) -> None:
    result = cli("send", "x", "--service", "nosuch", "--config", str(config))
    assert result.exit_code == 1 and "no service 'nosuch'" in result.output
    assert cli("services", "disable", "sink", "--config", str(config)).exit_code == 0
    result = cli("send", "x", "--service", "sink", "--config", str(config))
    assert result.exit_code == 1 and "disabled" in result.output


def test_cancel_and_retry(cli, config: Path) -> None:
    job_id = json.loads(cli("send", "x", "--json", "--config", str(config)).stdout)["jobs"][0]["id"]
    assert cli("jobs", "cancel", str(job_id), "--config", str(config)).exit_code == 0
    again = cli("jobs", "cancel", str(job_id), "--config", str(config))
    assert again.exit_code == 1 and "only queued jobs" in again.output
    assert json.loads(cli("jobs", "list", "--state", "cancelled", "--json", "--config", str(config)).stdout)[0]["id"] == job_id
    assert cli("jobs", "retry", str(job_id), "--config", str(config)).exit_code == 0
    assert cli("jobs", "retry", "--config", str(config)).exit_code == 2
    none_dead = cli("jobs", "retry", "--dead", "--config", str(config))    # nothing to do is not a failure
    assert none_dead.exit_code == 0 and "no dead jobs to retry" in none_dead.stdout


def test_unknown_ids_exit_1_and_bad_usage_exits_2(cli, config: Path) -> None:
    assert cli("jobs", "show", "999", "--config", str(config)).exit_code == 1
    assert cli("events", "show", "999", "--config", str(config)).exit_code == 1
    assert cli("jobs", "list", "--state", "bogus", "--config", str(config)).exit_code == 2
    assert cli("jobs", "purge", "--older-than", "soon", "--config", str(config)).exit_code == 2
    assert cli("jobs", "show", "not-a-number").exit_code == 2


def test_a_broken_config_exits_2_naming_file_line_and_key(cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nlisten = "127.0.0.1:8765"\n\n[worker]\nthreads = "many"\n')
    result = cli("config", "check", "--config", str(path))
    assert result.exit_code == 2
    assert f"{path}:5: worker.threads: expected a whole number from 1 to 64" in " ".join(result.output.split())
    result = cli("jobs", "list", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2 and "no such file" in result.output


def test_config_init_writes_a_valid_starter_and_never_overwrites(cli, env: dict[str, str]) -> None:
    result = cli("config", "init")
    target = Path(env["HOME"]) / ".config" / "notifyd" / "config.toml"
    assert result.exit_code == 0 and target.is_file()
    assert cli("config", "check").exit_code == 0          # found at the default place
    target.write_text(target.read_text() + "\n# mine\n")
    assert cli("config", "init").exit_code == 1
    assert "# mine" in target.read_text()
    assert cli("config", "init", "--force").exit_code == 0
    assert "# mine" not in target.read_text()


def test_config_show_masks_secrets(cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", "json://user:pw-very-secret@127.0.0.1:9/hook",
                        extra='\n[sources.nas]\ntype = "generic"\ntoken = "nas-token-secret"\n')
    path.write_text(path.read_text().replace('max_body = "64KB"', 'max_body = "64KB"\ntoken = "srv-token-secret"'))
    result = cli("config", "show", "--config", str(path))
    assert result.exit_code == 0
    for secret in ("pw-very-secret", "nas-token-secret", "srv-token-secret"):
        assert secret not in result.output
    assert 'token = "***" # masked' in result.output
    assert 'url = "json://user:xx-xxxx-xxxxxx@127.0.0.1:9/hook" # masked' in result.output


def test_services_add_list_enable_disable(cli, config: Path) -> None:
    result = cli("services", "add", "alerts", "--type", "apprise", "--url", "json://127.0.0.1:9/alerts",
                 "--events", "health,backup", "--priority", "2", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "# the receiver the tests run" in config.read_text()
    listed = {s["name"]: s for s in json.loads(cli("services", "list", "--json", "--config", str(config)).stdout)}
    assert listed["alerts"] == {"name": "alerts", "type": "apprise", "enabled": True, "events": ["health", "backup"],
                                "priority": 2, "target": "json://127.0.0.1:9/alerts", "disabled_reason": None}
    assert cli("services", "disable", "alerts", "--config", str(config)).exit_code == 0
    listed = {s["name"]: s for s in json.loads(cli("services", "list", "--json", "--config", str(config)).stdout)}
    assert listed["alerts"]["enabled"] is False
    assert listed["alerts"]["disabled_reason"] == ("enabled = false in the config; `notifyd services enable alerts` "
                                                   "switches it on")
    assert cli("services", "enable", "nosuch", "--config", str(config)).exit_code == 1
    dup = cli("services", "add", "alerts", "--type", "apprise", "--url", "json://x/y", "--config", str(config))
    assert dup.exit_code == 2 and "already exists" in dup.output
    bad = cli("services", "add", "x", "--type", "carrier-pigeon", "--url", "coo://", "--config", str(config))
    assert bad.exit_code == 2 and "services add: --type: expected one of" in bad.output
    assert "carrier-pigeon" not in config.read_text()         # a refused edit leaves the file alone
    unknown = cli("services", "add", "y", "--type", "apprise", "--url", "nosuchscheme://a/b", "--config", str(config))
    assert unknown.exit_code == 2 and "services add: --url: no Apprise plugin accepts this URL" in unknown.output
    assert "nosuchscheme" not in config.read_text()


def test_services_edit_needs_a_config_file(cli) -> None:
    result = cli("services", "disable", "sink")
    assert result.exit_code == 2 and "config init" in result.output


def test_events_list_filters_and_stats(cli, config: Path) -> None:
    for n in range(3):
        cli("send", f"m{n}", "--config", str(config))
    events = json.loads(cli("events", "list", "--source", "cli", "--limit", "2", "--json", "--config", str(config)).stdout)
    assert [e["body"] for e in events] == ["m2", "m1"]
    assert json.loads(cli("events", "list", "--kind", "other", "--json", "--config", str(config)).stdout) == []
    stats = json.loads(cli("stats", "--json", "--config", str(config)).stdout)
    assert stats["jobs"] == {"queued": 3} and stats["queue"]["queued"] == 3
    assert stats["services"] == {"sink": {"queued": 3}} and stats["last_hour"]["events"] == 3
    screen = cli("stats", "--config", str(config))
    assert screen.exit_code == 0 and "queued 3" in screen.output


def test_purge_reports_what_it_deleted(cli, config: Path) -> None:
    result = cli("jobs", "purge", "--older-than", "0s", "--config", str(config))
    assert result.exit_code == 0 and "purged 0 finished job(s)" in result.output


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.output.startswith("notifyd ")


def test_purge_without_a_limit_applies_the_configs_retention(cli, config: Path) -> None:
    import time as clock

    from notifyd.backoff import RetryPolicy
    from notifyd.errors import PermanentError
    from notifyd.outcomes import failed, succeeded
    from notifyd.store.sqlite import SqliteStore

    ids = [json.loads(cli("send", f"m{n}", "--json", "--config", str(config)).stdout)["jobs"][0]["id"] for n in range(3)]
    store = SqliteStore(config.parent / "notifyd.db")          # the store the config names
    day = 86400

    def finish_back_then(job_id: int, days_ago: float, state: str) -> None:
        """Claim and finish the job as if it had run `days_ago` days ago."""
        then = clock.time() - days_ago * day
        claim = store.claim_job(job_id, then, 30)
        assert claim is not None
        outcome = succeeded("") if state == "succeeded" else failed(claim.job, PermanentError("x"), RetryPolicy(), then)
        assert store.finish(claim, outcome, then) and store.get_job(job_id).state == state

    finish_back_then(ids[0], 40, "succeeded")
    finish_back_then(ids[1], 40, "dead")
    finish_back_then(ids[2], 100, "dead")
    result = cli("jobs", "purge", "--config", str(config))
    assert result.exit_code == 0 and "purged 2 finished job(s) past retention" in result.output
    left = [j.id for j in store.list_jobs(include_maintenance=True)]
    store.close()
    assert left == [ids[1]]                  # dead for 40 days is kept: keep_dead is 90 days


def test_ids_beyond_sqlites_range_are_usage_errors(cli, config: Path) -> None:
    huge = "99999999999999999999"
    for args in (("jobs", "show", huge), ("jobs", "cancel", huge), ("jobs", "retry", huge), ("events", "show", huge),
                 ("jobs", "list", "--limit", huge)):
        result = cli(*args, "--config", str(config))
        assert result.exit_code == 2, (args, result.output)


def test_editing_a_file_with_a_toml_syntax_error_names_file_and_line(cli, tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[services.a]\ntype = "apprise"\nurl = "json://x/y\n')
    result = cli("services", "disable", "a", "--config", str(path))
    assert result.exit_code == 2 and f"{path}:3" in result.output and "invalid TOML" in result.output
    path.write_text("services = 5\n")
    result = cli("services", "disable", "a", "--config", str(path))
    assert result.exit_code == 2 and "services" in result.output


def test_a_token_in_a_url_path_is_masked_in_listings(cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", "json://127.0.0.1:9/hook/supersecretpathtoken")
    for args, shown in ((("services", "list", "--json"), "json://127.0.0.1:9/hook/***"),
                        (("config", "show"), "json://127.0.0.1:9/hook/xxxxxxxxxxxxxxxxxxxx")):
        result = cli(*args, "--config", str(path))
        assert result.exit_code == 0 and "supersecretpathtoken" not in result.output
        assert shown in result.output


def test_config_check_names_the_line_of_an_unusable_apprise_url(cli, tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", "nosuchscheme://a/b")
    result = cli("config", "check", "--config", str(path))
    line = path.read_text().splitlines().index('url = "nosuchscheme://a/b"') + 1
    assert result.exit_code == 2 and f"{path}:{line}: services.sink.url: no Apprise plugin" in result.output


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFYD_", "XDG_"))}
    env.update(HOME=str(tmp_path), NOTIFYD_STORE_URL="postgresql://u:pw-SECRET-9@127.0.0.1:9/notifyd")
    result = run_cli("jobs", "list", env=env)
    assert result.returncode == 1
    assert "pw-SECRET-9" not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "the PostgreSQL server at postgresql://u:***@127.0.0.1:9/notifyd cannot take the request" in result.stderr


def test_services_set_and_remove_keep_the_files_comments(cli, config: Path) -> None:
    text = config.read_text().replace('url = "json://127.0.0.1:9/hook"', 'url = "json://127.0.0.1:9/hook"   # mine')
    config.write_text(text + '\n# the second receiver\n[services.other]\ntype = "apprise"\nurl = "json://h/o"\n')
    result = cli("services", "set", "sink", "url=json://127.0.0.1:9/moved", "priority=3", "--config", str(config))
    assert result.exit_code == 0, result.output
    after = config.read_text()
    assert 'url = "json://127.0.0.1:9/moved"   # mine\npriority = 3\n' in after
    assert "# test config" in after and "# the receiver the tests run" in after
    assert cli("services", "remove", "sink", "--config", str(config)).exit_code == 0
    after = config.read_text()
    assert "[services.sink]" not in after and "moved" not in after
    assert "# test config" in after and "# the second receiver\n[services.other]" in after
    listed = json.loads(cli("services", "list", "--json", "--config", str(config)).stdout)
    assert [s["name"] for s in listed] == ["other"]
