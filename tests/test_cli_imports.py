"""A command imports what it uses: `notifyd --help`, `jobs list` and `services list` run as real
processes and say, at exit, which modules they loaded (notifyd.cli.lazy, notifyd.cli.coercion).
Nothing here is timed; tests/bench/bench_cli.py measures the time."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer

from notifyd.cli import COMMANDS, app
from notifyd.cli.coercion import install

from conftest import cli_json, write_config

# Runs the CLI's own `main` and writes sys.modules as it stands at exit (after the command's output).
WRAPPER = """\
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["notifyd", *sys.argv[2:]]
from notifyd.cli import main
main()
"""
# What no command of these three needs: the daemon's servers, the channels' libraries, typer's
# pydantic coercion, rich's markdown, the email parser, sqlite-utils, templates.
NEVER = ("apprise", "httpx", "uvicorn", "starlette", "pydantic", "rich.markdown", "email.parser", "sqlite_utils",
         "jinja2", "notifyd.daemon", "notifyd.worker", "notifyd.listener", "notifyd.ingest")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A webhook service, and a store holding a queued job for it."""
    path = write_config(tmp_path_factory.mktemp("imports") / "config.toml",
                        services='[services.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n')
    assert cli_json("send", "hello", config=path)["jobs"]
    return path


def loaded(tmp_path: Path, *args: str) -> set[str]:
    """The modules `notifyd ARGS` had imported when it exited."""
    out = tmp_path / "modules.json"
    result = subprocess.run([sys.executable, "-c", WRAPPER, str(out), *args], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return set(json.loads(out.read_text()))


def imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of `names` (a package stands for its submodules too) are among `modules`."""
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_help_imports_no_command_and_no_config(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help")
    commands = tuple(entry.target.partition(":")[0] for entry in COMMANDS)
    assert imported(modules, NEVER + commands + ("notifyd.config", "notifyd.store", "notifyd.model", "rich",
                                                 "sqlite3", "logging")) == []


def test_jobs_list_imports_its_own_command_only(tmp_path: Path, config: Path) -> None:
    modules = loaded(tmp_path, "jobs", "list", "--config", str(config))
    others = tuple(entry.target.partition(":")[0] for entry in COMMANDS if entry.name != "jobs")
    assert "notifyd.cli.jobs" in modules and "notifyd.store.sqlite" in modules
    assert imported(modules, NEVER + others + ("notifyd.sources", "notifyd.channels.webhook", "zoneinfo")) == []


def test_services_list_imports_no_server_and_no_source(tmp_path: Path, config: Path) -> None:
    modules = loaded(tmp_path, "services", "list", "--config", str(config))
    others = tuple(entry.target.partition(":")[0] for entry in COMMANDS if entry.name != "services")
    # The test config's services are http(s) ones: their URLs are masked without the channels' module
    # (and its HTTP client); an Apprise service needs Apprise to show its privacy form.
    assert imported(modules, NEVER + others + ("notifyd.sources", "notifyd.channels.webhook",
                                               "notifyd.channels.http")) == []


def test_the_root_help_lists_what_the_commands_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """The table's help texts, listed before any command is imported, read as the commands' own."""
    monkeypatch.setenv("COLUMNS", "80")
    root = typer.main.get_command(app)

    def listing() -> str:
        with root.make_context("notifyd", ["jobs"]) as ctx:           # parsed, not run
            return root.get_help(ctx)

    lazy = listing()
    for entry in COMMANDS:
        command = root.commands[entry.name]                          # type: ignore[attr-defined]
        assert " ".join(entry.help.split()) == " ".join(inspect.cleandoc(command.help).split("\n\n")[0].split())
    assert lazy == listing() and "sources   Show what to paste into each sender" in lazy


# A command with a parameter of each type `coercion` converts itself, run once as typer converts
# values and once with `install`: the same values, and the same refusals, either way.
def _probe() -> Any:
    probe = typer.Typer(add_completion=False)

    @probe.command()
    def show(ids: Annotated[list[int] | None, typer.Argument(min=1, max=1000)] = None,
             limit: Annotated[int, typer.Option("--limit", min=1, max=100)] = 50,
             count: Annotated[int | None, typer.Option("--count")] = None,
             name: Annotated[str | None, typer.Option("--name")] = None,
             tag: Annotated[list[str] | None, typer.Option("--tag")] = None,
             flag: Annotated[bool, typer.Option("--flag/--no-flag")] = False) -> None:
        print(repr((ids, limit, count, name, tag, flag)))

    return typer.main.get_command(probe)


@pytest.mark.parametrize("args", [
    [], ["7", "8"], ["007"], ["0"], ["1001"], ["x"], ["+7"], [" 7"], ["1_0"], ["7.0"], ["٣"],
    ["--limit", "100"], ["--limit", "101"], ["--limit", "0"], ["--limit", "-1"], ["--limit", ""], ["--limit", "1e2"],
    ["--count", "-5"], ["--count", "99999999999999999999999"], ["--count", " 3 "],
    ["--name", ""], ["--name", "a b"], ["--tag", "x", "--tag", "y"], ["--flag"], ["--no-flag"], ["--help"],
])
def test_plain_values_convert_as_typer_converts_them(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    def run(command: Any) -> tuple[Any, ...]:
        try:
            command.main(list(args), prog_name="probe", standalone_mode=False)
            error: Exception | None = None
        except Exception as exc:        # a usage error, as typer raises it
            error = exc
        message = error.format_message() if hasattr(error, "format_message") else error
        return capsys.readouterr().out, type(error).__name__, str(message)

    plain = _probe()
    install(plain)
    assert any(getattr(p, "_runtime_param", None) is not None for p in plain.params)
    assert run(plain) == run(_probe())
