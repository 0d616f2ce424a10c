"""notifyd.cli.output and what every command prints: tables that fit 80 columns one row a line, one
line for an empty list, --json on every command that prints, shell completion."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from notifyd.cli import app
from notifyd.cli.output import ago, fit_widths

from conftest import write_config

LONG_SERVICE = "living-room-kodi-and-the-upstairs-bedroom-television-too"
LONG_ERROR = "HTTP 502 from the receiver:\n" + "upstream connect error or disconnect/reset before headers " * 3


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {"HOME": str(home), "XDG_CONFIG_HOME": "", "XDG_STATE_HOME": "", "NOTIFYD_CONFIG": "",
            "STATE_DIRECTORY": "", "COLUMNS": "80"}


@pytest.fixture
def cli(env: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == code, (args, result.output)
        return result
    return invoke


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path / "config.toml", services=f"""
[services.{LONG_SERVICE}]
type = "apprise"
url = "json://127.0.0.1:9/hook/with/a/rather/long/path/in/it/that/goes/on/and/on"

[services.sink]
type = "apprise"
url = "json://127.0.0.1:9/hook"
""")


@pytest.fixture
def busy(cli, config: Path) -> Path:
    """A store with events with long titles, jobs for a long-named service, a dead job with a long
    error and a run that never started."""
    from notifyd.backoff import RetryPolicy
    from notifyd.errors import PermanentError
    from notifyd.model import Run, RunStatus
    from notifyd.outcomes import failed
    from notifyd.store.sqlite import SqliteStore

    for n in range(3):
        cli("send", f"body {n} " * 20, "--title", f"The title of message {n}, longer than any terminal is wide " * 2,
            "--config", str(config))
    store = SqliteStore(config.parent / "notifyd.db")
    try:
        now = time.time()
        claim = store.claim_job(1, now, 30)
        assert claim is not None
        assert store.finish(claim, failed(claim.job, PermanentError(LONG_ERROR), RetryPolicy(), now), now)
        with store.transaction() as tx:
            tx.run_for_update("r1", create=Run(id="r1", status=RunStatus.QUEUED, created_at=now, updated_at=now,
                                               name="A portrait batch with a name that goes on " * 2))
    finally:
        store.close()
    return config


TABLES = [("jobs", "list"), ("jobs", "list", "--all"), ("events", "list"), ("services", "list"), ("runs", "list"),
          ("stats",), ("store", "info"), ("jobs", "show", "1"), ("events", "show", "1"), ("runs", "show", "r1")]


@pytest.mark.parametrize("args", TABLES, ids=" ".join)
def test_tables_fit_80_columns_one_row_a_line(cli, busy: Path, args: tuple[str, ...]) -> None:
    out = cli(*args, "--config", str(busy)).stdout
    lines = out.splitlines()
    if args == ("runs", "show", "r1"):                  # a run that has not ended has no jobs yet: one line
        assert lines[-1] == "no jobs yet (a run notifies once it ends)"
        return
    # A show's first lines are sentences (a title is as long as it is); its table follows.
    header = {"jobs show": "n ", "events show": "id ", "store info": "table "}.get(" ".join(args[:2]))
    table = lines[next(i for i, line in enumerate(lines) if line.startswith(header)):] if header else lines
    assert len(table) > 1
    for line in table:
        assert len(line) <= 80, line
    assert "None" not in out
    if args[:2] == ("jobs", "list"):
        assert len(lines) == 1 + 6                      # 3 events × 2 services: one line each, plus the header
        assert any("…" in line for line in lines)       # the long service name is cut, not folded


def test_a_wide_terminal_shows_everything(cli, busy: Path, env: dict[str, str]) -> None:
    env["COLUMNS"] = "400"
    out = cli("jobs", "list", "--config", str(busy)).stdout
    assert LONG_SERVICE in out and " ".join(LONG_ERROR.split()) in out       # its line break a space


def test_runs_show_says_dash_for_what_is_not_known(cli, busy: Path) -> None:
    out = cli("runs", "show", "r1", "--config", str(busy)).stdout
    assert "duration - · cost -" in out and "None" not in out


@pytest.mark.parametrize("args, says", [
    (("jobs", "list"), "no jobs match"),
    (("jobs", "list", "--state", "dead"), "no jobs match"),
    (("events", "list"), "no events match"),
    (("runs", "list"), "no runs"),
    (("stats",), "no jobs yet"),
])
def test_an_empty_list_is_one_line(cli, config: Path, args: tuple[str, ...], says: str) -> None:
    out = cli(*args, "--config", str(config)).stdout
    assert says in out
    if args[0] != "stats":
        assert out == says + "\n"


def test_fit_widths_cuts_the_widest_first_and_short_columns_last() -> None:
    assert fit_widths([3, 10, 40, 60], 200) == [3, 10, 40, 60]
    widths = fit_widths([3, 10, 40, 60], 70)
    assert widths[:2] == [3, 10] and sum(widths) <= 70 and abs(widths[2] - widths[3]) <= 1
    tight = fit_widths([3, 10, 40, 60], 20)
    assert sum(tight) <= 20 and tight[0] == 3                # everything shrinks only when it must
    assert fit_widths([], 10) == []


def test_ago_is_short_and_says_which_way() -> None:
    now = 1_700_000_000.0
    assert ago("2023-11-14T22:13:15.000Z", now) == "5s ago"
    assert ago("2023-11-14T21:13:20.000Z", now) == "1h ago"
    assert ago("2023-11-12T22:13:20.000Z", now) == "2d ago"
    assert ago("2023-11-14T22:15:20.000Z", now) == "in 2m"
    assert ago(None, now) is None


def test_every_command_that_prints_takes_json(cli, config: Path, tmp_path: Path) -> None:
    c = ("--config", str(config))

    def as_json(*args: str, code: int = 0) -> Any:
        return json.loads(cli(*args, "--json", code=code).stdout)

    sent = as_json("send", "hello", *c)
    assert set(sent) == {"event_id", "kind", "jobs", "duplicate"} and sent["duplicate"] is False
    job_id = sent["jobs"][0]["id"]
    assert as_json("jobs", "cancel", str(job_id), *c) == [{"id": job_id, "ok": True, "state": "cancelled", "error": None}]
    assert as_json("jobs", "retry", str(job_id), "99999", *c, code=1) == [
        {"id": job_id, "ok": True, "state": "queued", "error": None},
        {"id": 99999, "ok": False, "state": None, "error": "no job 99999"}]
    assert as_json("jobs", "retry", "--dead", *c) == []
    assert set(as_json("jobs", "purge", "--older-than", "30d", *c)) == {"purged", "rule"}
    assert as_json("jobs", "list", *c)[0]["id"] > 0 and as_json("jobs", "show", str(job_id), *c)["attempt_log"] == []
    assert as_json("events", "list", *c)[0]["kind"] == "notification"
    assert as_json("events", "show", str(sent["event_id"]), *c)["id"] == sent["event_id"]
    assert as_json("runs", "list", *c) == []
    assert set(as_json("stats", *c)) >= {"jobs", "services", "queue", "last_hour", "dead_recent"}
    assert set(as_json("store", "info", *c)) == {"engine", "location", "schema_version", "counts"}
    assert as_json("services", "disable", "sink", *c) == {"name": "sink", "enabled": False}
    assert as_json("services", "enable", "sink", *c) == {"name": "sink", "enabled": True, "gone_cleared": False}
    added = as_json("services", "add", "alerts", "--type", "apprise", "--url", "json://127.0.0.1:9/a", *c)
    assert added == {"name": "alerts", "type": "apprise", "enabled": True, "events": ["(every known kind but test and playback)"],
                     "priority": 5, "target": "json://127.0.0.1:9/a", "disabled_reason": None}
    assert added in as_json("services", "list", *c)                 # the same shape as the list's
    changed = as_json("services", "set", "alerts", "priority=2", "events=health,download", *c)
    assert changed["priority"] == 2 and changed["events"] == ["health", "download"]
    assert as_json("services", "remove", "alerts", *c) == {"name": "alerts", "removed": True}
    assert {s["name"] for s in as_json("services", "list", *c)} == {LONG_SERVICE, "sink"}
    checked = as_json("config", "check", *c)
    assert checked == {"file": str(config), "ok": True, "services": 2,
                       "store": {"engine": "sqlite", "location": str(config.parent / "notifyd.db")}}
    shown = as_json("config", "show", *c)
    assert shown["file"] == str(config) and list(shown["config"]) == ["server", "store", "worker", "runs", "sources",
                                                                      "services"]
    written = as_json("config", "init", str(tmp_path / "new.toml"))
    assert written["file"] == str(tmp_path / "new.toml") and written["mode"] == "0600"


def test_config_init_writes_a_file_only_its_owner_reads(cli, tmp_path: Path) -> None:
    target = tmp_path / "c" / "config.toml"
    cli("config", "init", str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    cli("config", "init", str(target), code=1)
    target.chmod(0o644)
    cli("config", "init", "--force", str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def _complete(words: str, env_extra: dict[str, str] | None = None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFYD_", "XDG_", "_NOTIFYD"))}
    env.update(_NOTIFYD_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(len(words.split(" ")) - 1),
               **(env_extra or {}))
    result = subprocess.run([sys.executable, "-m", "notifyd"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return result.stdout.split()


def test_bash_completes_commands_options_and_service_names(config: Path) -> None:
    assert _complete("notifyd serv") == ["serve", "services"]
    assert _complete("notifyd services re") == ["remove"]
    assert _complete("notifyd serve --log-level ") == ["debug", "info", "warning", "error"]
    assert _complete("notifyd services set ", {"NOTIFYD_CONFIG": str(config)}) == [LONG_SERVICE, "sink"]


def test_the_completion_script_is_printed_for_the_shell_it_runs_in() -> None:
    # typer finds the shell among the command's parents; `; true` keeps bash from exec'ing it away
    command = f"{shlex.quote(sys.executable)} -m notifyd --show-completion; true"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.stderr == "", result.stderr
    assert "_notifyd_completion" in result.stdout and "_NOTIFYD_COMPLETE=complete_bash" in result.stdout


def _edge_app():
    import typer

    from notifyd.cli.output import NotifydGroup

    edge = typer.Typer(cls=NotifydGroup, add_completion=False)

    @edge.command()
    def bug() -> None:
        raise RuntimeError("boom\nsecond line")

    @edge.command()
    def denied() -> None:
        raise PermissionError(13, "Permission denied", "/etc/x")

    return edge


@pytest.mark.parametrize("command, says", [
    ("bug", "error: unexpected RuntimeError: boom second line (a bug in notifyd; NOTIFYD_DEBUG=1 shows the traceback)"),
    ("denied", "error: /etc/x: Permission denied"),
])
def test_whatever_escapes_a_command_is_one_line_and_exit_1(command: str, says: str) -> None:
    result = CliRunner().invoke(_edge_app(), [command], env={"NOTIFYD_DEBUG": ""})
    assert result.exit_code == 1 and result.stdout == "" and result.stderr == says + "\n"


def test_notifyd_debug_shows_the_traceback_of_a_bug() -> None:
    result = CliRunner().invoke(_edge_app(), ["bug"], env={"NOTIFYD_DEBUG": "1"})
    assert isinstance(result.exception, RuntimeError)
