"""The README's examples, run as a reader pastes them, in order, in one fresh shell session.

Every ```sh block is split into commands. A command runs for real (bash, a fresh HOME, no config
but what earlier commands wrote) unless it needs what a test machine has not got, and then, when
it is a `notifyd` command, it is still parsed by the real CLI (command, options, argument types).
What is never run here, and why, is the table `NOT_HERE`. Two substitutions only: the daemon
listens on a free port instead of 8765 (another process may hold 8765), and every outbound request
goes to a proxy that refuses, so Discord or Telegram are never reached. An answer the README
shows — a `# → 201 {…}` line, or a ```json block right after a block — must be what came back
("…" in a documented string matches anything).
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main

from notifyd.cli import app

from conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# What a test machine cannot do: (pattern on the command, why). A matching `notifyd` command is parsed only.
NOT_HERE = [
    (r"^sudo\b", "needs root on a machine with systemd"),
    (r"^(systemctl|journalctl)\b", "needs systemd"),
    (r"^pip\b", "installs packages: the suite runs on the installed project"),
    (r"^pytest\b", "the suite itself"),
    (r"^createdb\b", "needs a PostgreSQL server of the reader's"),
    (r"^export NOTIFYD_STORE_URL=", "names the reader's PostgreSQL server"),
    (r"^notifyd store copy\b", "copies to the reader's PostgreSQL server"),
    (r"^notifyd services test\b", "reaches the reader's media server on their LAN"),
    (r"^notifyd serve --listen 0\.0\.0\.0", "listens on every address: needs a token and the reader's network"),
]


@dataclass
class Block:
    lang: str
    line: int
    text: str
    section: str
    answer: str | None = None           # a ```json block that follows: the last curl's answer


@dataclass
class Session:
    """One reader's shell: their HOME, their environment, the daemon they started."""

    home: Path
    port: int
    env: dict[str, str]
    daemons: list[subprocess.Popen] = field(default_factory=list)
    last_answer: str = ""               # what the last curl printed: the answer the README shows


def blocks() -> list[Block]:
    found: list[Block] = []
    section = ""
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            section = line.lstrip("# ").strip()
        fence = re.match(r"^```(\w*)\s*$", line)
        if fence:
            start = i
            i += 1
            body = []
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            block = Block(fence.group(1), start + 1, "\n".join(body), section)
            if block.lang == "json" and found and found[-1].lang == "sh" and found[-1].section == section:
                found[-1].answer = block.text
            found.append(block)
        i += 1
    return found


def commands(text: str) -> list[tuple[str, str | None]]:
    """The block's commands as pasted (continuations and multi-line quotes joined), each with the
    answer a `# → …` line under it documents."""
    out: list[tuple[str, str | None]] = []
    pending = ""
    for line in text.splitlines():
        documented = re.match(r"^\s*# → (.*)$", line)
        if documented and not pending and out:
            out[-1] = (out[-1][0], documented.group(1))
            continue
        pending = f"{pending}\n{line}" if pending else line
        if pending.rstrip().endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:                      # an open quote: the command goes on
            continue
        if shlex.split(pending, comments=True):
            out.append((pending, None))
        pending = ""
    assert not pending, f"an unfinished command in the README: {pending!r}"
    return out


def steps(command: str) -> list[str]:
    """`a && b` is two steps, each its own command line; a command without `&&` is kept as pasted."""
    tokens = shlex.split(command, comments=True)
    if "&&" not in tokens:
        return [command]
    parts: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            parts.append([])
        else:
            parts[-1].append(token)
    return [shlex.join(p) for p in parts if p]


def why_not_here(step: str) -> str | None:
    return next((why for pattern, why in NOT_HERE if re.search(pattern, step)), None)


def cli_parses(argv: list[str]) -> None:
    """Parse `notifyd ARGV` with the real CLI down to its command, without running it."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("notifyd", list(argv))
    while hasattr(command, "resolve_command"):
        rest = list(getattr(ctx, "_protected_args", [])) + list(ctx.args)
        name, command, args = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, args, parent=ctx)


def matches(documented: Any, got: Any) -> bool:
    if isinstance(documented, str) and "…" in documented:
        head, _, tail = documented.partition("…")
        return isinstance(got, str) and got.startswith(head) and got.endswith(tail)
    if isinstance(documented, dict):
        return isinstance(got, dict) and all(k in got and matches(v, got[k]) for k, v in documented.items())
    if isinstance(documented, list):
        return isinstance(got, list) and len(got) == len(documented) and all(map(matches, documented, got))
    return bool(documented == got)


def start_daemon(session: Session, args: list[str], where: str) -> subprocess.Popen:
    log = open(session.home / f"serve-{len(session.daemons)}.log", "wb")
    proc = subprocess.Popen(["notifyd", "serve", *args, "--listen", f"127.0.0.1:{session.port}"], env=session.env,
                            cwd=session.home, stdout=log, stderr=subprocess.STDOUT)
    session.daemons.append(proc)

    def up() -> bool:
        assert proc.poll() is None, f"{where}: notifyd serve exited:\n{Path(log.name).read_text()}"
        try:
            return httpx.get(f"http://127.0.0.1:{session.port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False
    wait_for(up, 20, message=f"{where}: the daemon's /health")
    return proc


def run_step(session: Session, step: str, where: str) -> None:
    tokens = shlex.split(step, comments=True)
    if tokens[:2] == ["notifyd", "serve"]:                  # in the foreground: up, then the reader's Ctrl-C
        proc = start_daemon(session, tokens[2:], where)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0, f"{where}: `{step}` did not stop cleanly on Ctrl-C"
        return
    result = subprocess.run(["bash", "-c", step], capture_output=True, text=True, env=session.env,
                            cwd=session.home, timeout=90)
    assert result.returncode == 0, f"{where}: `{step}` exited {result.returncode}:\n{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr, f"{where}: `{step}`:\n{result.stderr}"
    if tokens[0] == "curl":
        session.last_answer = result.stdout


def run_command(session: Session, command: str, where: str) -> None:
    command = command.replace("localhost:8765", f"127.0.0.1:{session.port}")
    background = re.match(r"^notifyd serve(.*)&\s*$", command.strip())
    if background:
        start_daemon(session, shlex.split(background.group(1)), where)
        return
    for step in steps(command):
        reason = why_not_here(step)
        if reason is None:
            run_step(session, step, where)
            continue
        argv = shlex.split(step, comments=True)
        if argv and argv[0] == "sudo":
            argv = argv[1:]
        if argv and argv[0] == "notifyd":
            try:
                cli_parses(argv[1:])
            except Exception as exc:                # click's usage errors: what the reader would see
                raise AssertionError(f"{where}: `{step}` does not parse: {exc}") from None


def check_answer(session: Session, documented: str, where: str) -> None:
    text = re.sub(r"^\d{3}\s+", "", documented.strip())          # "201 {…}": the status is the prose's
    expected = json.loads(text)
    got = json.loads(session.last_answer)
    assert matches(expected, got), f"{where}: the README shows {expected}, the daemon answered {got}"


@pytest.fixture
def session(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    env = {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8", "COLUMNS": "100",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    s = Session(home=home, port=free_port(), env=env)
    yield s
    for proc in s.daemons:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_every_sh_example_runs_as_pasted(session: Session) -> None:
    ran = 0
    for block in blocks():
        if block.lang != "sh":
            continue
        for command, documented in commands(block.text):
            where = f"README.md:{block.line} ({block.section})"
            run_command(session, command, where)
            ran += 1
            if documented:
                check_answer(session, documented, where)
        if block.answer:
            check_answer(session, block.answer, f"README.md:{block.line} ({block.section})")
    assert ran >= 15, "the README's examples were found and run"


def test_the_cli_synopsis_names_real_commands_and_options() -> None:
    synopsis = next(b for b in blocks() if b.section == "CLI" and b.lang == "")
    root: Any = typer.main.get_command(app)
    for line in synopsis.text.splitlines():
        words = line.split(None, 2)
        assert words[0] == "notifyd" and words[1] in root.commands, line
        group = root.commands[words[1]]
        commands_ = [group]
        if hasattr(group, "commands"):            # `notifyd jobs list … | show ID | retry ID…`
            heads = [alternative.split()[0] for alternative in words[2].split(" | ")]
            missing = [h for h in heads if h not in group.commands]
            assert not missing, f"{line}: no such command {missing}"
            commands_ = [group.commands[h] for h in heads]
        known = {opt for command in commands_ for param in command.params
                 for opt in [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]}
        options = set(re.findall(r"(--[a-z][a-z-]*)", line))
        assert options <= known, f"{line}: unknown options {sorted(options - known)}"
