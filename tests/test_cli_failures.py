"""Every way a CLI command can fail, run as a user runs it (a real process): exit 1 for an operation
that failed, 2 for a usage or config mistake; exactly one `error: …` line on stderr, nothing on
stdout, never a traceback, never a secret."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import write_config

SECRET = "pw-SECRET-in-url-9"


@dataclass
class Case:
    """One failing command line: `{dir}` in an argument is the test's folder, `{cfg}` a working config."""

    args: tuple[str, ...]
    code: int
    says: str                                        # a fragment the error line must hold
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[Path, Path], None] | None = None
    limit_file_size: bool = False                    # run with RLIMIT_FSIZE at 100 bytes: writes fail EFBIG


def _cancelled_job(folder: Path, cfg: Path) -> None:
    for args in (("send", "x"), ("jobs", "cancel", "1")):
        subprocess.run([sys.executable, "-m", "notifyd", *args, "--config", str(cfg)], check=True,
                       capture_output=True, env=_env(folder))


def _write(name: str, text: str) -> Callable[[Path, Path], None]:
    def prepare(folder: Path, cfg: Path) -> None:
        (folder / name).write_text(text)
    return prepare


CASES = {
    # a config that cannot be used: 2
    "missing config": Case(("jobs", "list", "--config", "{dir}/missing.toml"), 2, "missing.toml: no such file"),
    "config is a folder": Case(("config", "check", "--config", "{dir}"), 2, "a folder, not a config file"),
    "TOML syntax": Case(("jobs", "list", "--config", "{dir}/bad.toml"), 2, "bad.toml:2: invalid TOML",
                        prepare=_write("bad.toml", '[server]\nlisten = "127.0.0.1\n')),
    "a value of the wrong kind": Case(("config", "check", "--config", "{dir}/bad.toml"), 2,
                                      "bad.toml:2: worker.threads: expected a whole number from 1 to 64",
                                      prepare=_write("bad.toml", '[worker]\nthreads = "many"\n')),
    "config show of a broken file": Case(("config", "show", "--config", "{dir}/bad.toml"), 2, "unknown section",
                                         prepare=_write("bad.toml", "[nonsense]\n")),
    "check: public address, no token": Case(("config", "check", "--config", "{dir}/public.toml"), 2,
                                            "refusing to listen on 0.0.0.0:8765 without a token",
                                            prepare=_write("public.toml", '[server]\nlisten = "0.0.0.0:8765"\n')),
    "serve: public address, no token": Case(("serve", "--config", "{dir}/public.toml"), 2,
                                            "refusing to listen on 0.0.0.0:8765 without a token",
                                            prepare=_write("public.toml", '[server]\nlisten = "0.0.0.0:8765"\n')),
    "check: an Apprise URL no plugin takes": Case(
        ("config", "check", "--config", "{dir}/apprise.toml"), 2, "apprise.toml:3: services.x.url: no Apprise plugin",
        prepare=_write("apprise.toml", '[services.x]\ntype = "apprise"\nurl = "nosuchscheme://a/b"\n')),
    "check: a typo in events": Case(
        ("config", "check", "--config", "{dir}/kinds.toml"), 2, "unknown event kind 'downlaod' (did you mean download?)",
        prepare=_write("kinds.toml", '[services.x]\ntype = "apprise"\nurl = "json://h/x"\nevents = ["downlaod"]\n')),
    "edit without a config file": Case(("services", "disable", "sink"), 2, "create one with `notifyd config init`"),
    # writing a config file: 1
    "init into /proc": Case(("config", "init", "/proc/x.toml"), 1, "cannot write /proc/x.toml: "),
    "init into /sys": Case(("config", "init", "/sys/x.toml"), 1, "cannot write /sys/x.toml: Permission denied"),
    "init over a device": Case(("config", "init", "--force", "/dev/null"), 1, "cannot write /dev/null: not a regular file"),
    "init over a folder": Case(("config", "init", "--force", "{dir}"), 1, "Is a directory"),
    "init under a file": Case(("config", "init", "{cfg}/x.toml"), 1, "x.toml: {cfg} is not a folder"),
    "init over an existing file": Case(("config", "init", "{cfg}"), 1, "exists; pass --force to overwrite it"),
    "init, file too large": Case(("config", "init", "{dir}/big.toml"), 1, "cannot write {dir}/big.toml: File too large",
                                 limit_file_size=True),
    "edit, file too large": Case(("services", "disable", "sink", "--config", "{cfg}"), 1,
                                 "cannot write {cfg}: File too large", limit_file_size=True),
    # services: unknown names are 1, refused values 2, named by what was typed
    "enable unknown service": Case(("services", "enable", "nosuch", "--config", "{cfg}"), 1, "no service 'nosuch'"),
    "remove unknown service": Case(("services", "remove", "nosuch", "--config", "{cfg}"), 1, "no service 'nosuch'"),
    "set unknown service": Case(("services", "set", "nosuch", "priority=3", "--config", "{cfg}"), 1,
                                "no service 'nosuch'"),
    "test unknown service": Case(("services", "test", "nosuch", "--config", "{cfg}"), 1, "nosuch"),
    "set: out of range": Case(("services", "set", "sink", "priority=0", "--config", "{cfg}"), 2,
                              "services set: priority: expected a whole number from 1 to 10, got 0"),
    "set: not KEY=VALUE": Case(("services", "set", "sink", "priority", "--config", "{cfg}"), 2,
                               "services set: expected KEY=VALUE, got 'priority'"),
    "set: unknown key": Case(("services", "set", "sink", "colour=red", "--config", "{cfg}"), 2,
                             "services set: colour: unknown key"),
    "set: type": Case(("services", "set", "sink", "type=kodi", "--config", "{cfg}"), 2,
                      "services set: type: a service's type cannot change"),
    "set: a typo in events": Case(("services", "set", "sink", "events=download,helth", "--config", "{cfg}"), 2,
                                  "services set: events: unknown event kind 'helth' (did you mean health?)"),
    "set: an Apprise URL no plugin takes": Case(("services", "set", "sink", "url=nosuchscheme://a", "--config", "{cfg}"),
                                                2, "services set: url: no Apprise plugin accepts this URL"),
    "set: enabled=maybe": Case(("services", "set", "sink", "enabled=maybe", "--config", "{cfg}"), 2,
                               "services set: enabled: expected true or false"),
    "set: a bad path_map": Case(("services", "set", "sink", "path_map=/a", "--config", "{cfg}"), 2,
                                "services set: path_map: expected FROM=TO folder pairs"),
    "add: a typo in --events": Case(("services", "add", "x", "--type", "apprise", "--url", "json://h/x", "--events",
                                     "downlaod", "--config", "{cfg}"), 2,
                                    "services add: --events: unknown event kind 'downlaod' (did you mean download?)"),
    "add: an Apprise URL no plugin takes": Case(("services", "add", "x", "--type", "apprise", "--url",
                                                 "nosuchscheme://a/b", "--config", "{cfg}"), 2,
                                                "services add: --url: no Apprise plugin accepts this URL"),
    "add: not an http URL": Case(("services", "add", "x", "--type", "kodi", "--url", "kodi.lan", "--config", "{cfg}"),
                                 2, "services add: --url: expected an http(s) URL"),
    "add: a missing key": Case(("services", "add", "x", "--type", "jellyfin", "--url", "http://jf:8096",
                                "--config", "{cfg}"), 2, "services add: --api-key: missing"),
    "add: unknown type": Case(("services", "add", "x", "--type", "pigeon", "--url", "coo://x", "--config", "{cfg}"), 2,
                              "services add: --type: expected one of"),
    "add: priority out of range": Case(("services", "add", "x", "--type", "apprise", "--url", "json://h/x",
                                        "--priority", "11", "--config", "{cfg}"), 2,
                                       "services add: --priority: expected a whole number from 1 to 10, got 11"),
    "add: a bad --path-map": Case(("services", "add", "x", "--type", "kodi", "--url", "http://k:8080/jsonrpc",
                                   "--path-map", "nope", "--config", "{cfg}"), 2, "services add: --path-map"),
    "add: an existing name": Case(("services", "add", "sink", "--type", "apprise", "--url", "json://h/x",
                                   "--config", "{cfg}"), 2, "services add: sink: service 'sink' already exists"),
    "add: a bad name": Case(("services", "add", "a b", "--type", "apprise", "--url", "json://h/x", "--config", "{cfg}"),
                            2, "services add: a b: a service name takes"),
    "add: no --type": Case(("services", "add", "x", "--url", "json://h/x", "--config", "{cfg}"), 2,
                           "services add: Missing option '--type'"),
    # send
    "send an empty message": Case(("send", "", "--config", "{cfg}"), 2, "the message is empty"),
    "send blanks": Case(("send", "  \n ", "--config", "{cfg}"), 2, "the message is empty"),
    "send to an unknown service": Case(("send", "x", "--service", "nosuch", "--config", "{cfg}"), 1,
                                       "no service 'nosuch'"),
    "send with no service to take it": Case(("send", "x", "--config", "{dir}/none.toml"), 1,
                                            "recorded, but no enabled service takes it",
                                            prepare=_write("none.toml", "[worker]\nthreads = 1\n")),
    # ids that do not exist: 1, in the same words as `jobs show`
    "jobs show unknown id": Case(("jobs", "show", "99999", "--config", "{cfg}"), 1, "no job 99999"),
    "jobs retry unknown id": Case(("jobs", "retry", "99999", "--config", "{cfg}"), 1, "no job 99999"),
    "jobs retry unknown id, json": Case(("jobs", "retry", "99999", "--json", "--config", "{cfg}"), 1, "no job 99999"),
    "jobs cancel unknown id": Case(("jobs", "cancel", "99999", "--config", "{cfg}"), 1, "no job 99999"),
    "jobs cancel a cancelled job": Case(("jobs", "cancel", "1", "--config", "{cfg}"), 1,
                                        "job 1 is cancelled; only queued jobs can be cancelled", prepare=_cancelled_job),
    "events show unknown id": Case(("events", "show", "99999", "--config", "{cfg}"), 1, "no event 99999"),
    "runs show unknown id": Case(("runs", "show", "nosuch", "--config", "{cfg}"), 1, "no run 'nosuch'"),
    # usage: 2, one line naming the command and its --help
    "unknown command": Case(("nosuchcommand",), 2, "No such command 'nosuchcommand'"),
    "bad --limit": Case(("jobs", "list", "--limit", "0", "--config", "{cfg}"), 2,
                        "jobs list: Invalid value for '--limit'"),
    "non-numeric --limit": Case(("events", "list", "--limit", "many", "--config", "{cfg}"), 2, "'--limit'"),
    "bad --state": Case(("jobs", "list", "--state", "bogus", "--config", "{cfg}"), 2, "--state must be one of"),
    "non-numeric id": Case(("jobs", "show", "abc"), 2, "jobs show: Invalid value for 'job_id'"),
    "bad --older-than": Case(("jobs", "purge", "--older-than", "soon", "--config", "{cfg}"), 2, "--older-than"),
    "retry with nothing named": Case(("jobs", "retry", "--config", "{cfg}"), 2, "name job ids, or pass --dead"),
    "bad --log-level": Case(("serve", "--log-level", "loud"), 2, "serve: Invalid value for '--log-level'"),
    "bad --log-format": Case(("serve", "--log-format", "xml"), 2, "'--log-format'"),
    "bad --listen": Case(("serve", "--listen", "nowhere", "--config", "{cfg}"), 2, "--listen: expected \"HOST:PORT\""),
    "store copy to a non-PostgreSQL URL": Case(("store", "copy", "--to", "mysql://x", "--config", "{cfg}"), 2,
                                               "--to: expected a PostgreSQL URL"),
    # the store cannot be used: 1
    "store folder under a file": Case(("jobs", "list", "--config", "{dir}/store.toml"), 1, "cannot open",
                                      prepare=_write("store.toml", '[store]\npath = "{dir}/afile/x.db"\n')),
    "check: store folder under a file": Case(("config", "check", "--config", "{dir}/store.toml"), 1,
                                             "afile is not a folder",
                                             prepare=_write("store.toml", '[store]\npath = "{dir}/afile/x.db"\n')),
    "check: store in /proc": Case(("config", "check", "--config", "{dir}/proc.toml"), 1,
                                  "cannot write the store's folder /proc",
                                  prepare=_write("proc.toml", '[store]\npath = "/proc/notifyd/x.db"\n')),
    "PostgreSQL unreachable": Case(("jobs", "list"), 1, "the PostgreSQL server at postgresql://u:***@127.0.0.1:9/notifyd",
                                   env={"NOTIFYD_STORE_URL": f"postgresql://u:{SECRET}@127.0.0.1:9/notifyd"}),
    "check: PostgreSQL unreachable": Case(("config", "check"), 1, "cannot take the request",
                                          env={"NOTIFYD_STORE_URL": f"postgresql://u:{SECRET}@127.0.0.1:9/notifyd"}),
}


def _env(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFYD_", "XDG_", "STATE_DIRECTORY"))}
    env.update(HOME=str(folder / "home"), COLUMNS="80", **extra)
    return env


def _run(args: list[str], env: dict[str, str], limit_file_size: bool = False) -> subprocess.CompletedProcess:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))
    return subprocess.run([sys.executable, "-m", "notifyd", *args], capture_output=True, text=True, env=env,
                          timeout=60, preexec_fn=limit if limit_file_size else None)


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", list(CASES))
def test_a_failure_is_one_line_and_its_exit_code(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    (tmp_path / "home").mkdir()
    (tmp_path / "afile").write_text("")
    cfg = write_config(tmp_path / "config.toml", "json://127.0.0.1:9/hook")
    if case.prepare:
        case.prepare(tmp_path, cfg)
        for toml in tmp_path.glob("*.toml"):
            toml.write_text(toml.read_text().replace("{dir}", str(tmp_path)))
    before = cfg.read_text()
    subst = {"{dir}": str(tmp_path), "{cfg}": str(cfg)}

    def fill(text: str) -> str:
        for key, value in subst.items():
            text = text.replace(key, value)
        return text

    result = _run([fill(a) for a in case.args], _env(tmp_path, **case.env), case.limit_file_size)
    shown = result.stdout + result.stderr
    assert result.returncode == case.code, shown
    assert "Traceback" not in shown and SECRET not in shown
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert fill(case.says) in result.stderr
    if "--json" in case.args:
        assert result.stdout.lstrip().startswith("[")       # what was done, as JSON; the error on stderr
    else:
        assert result.stdout == ""
    assert cfg.read_text() == before                          # a failed command leaves the config alone
    assert not list(tmp_path.glob(".config.toml.*"))         # and no temporary file beside it


def _read_only_runner(folder: Path) -> list[str] | None:
    """A command prefix under which `folder` cannot be written: a read-only bind mount in a private
    mount namespace when running as root (permissions do not stop root), else nothing (chmod does)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$1" "$1"', "sh", str(folder)],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    return ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh", str(folder)]


def test_a_config_in_a_folder_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (tmp_path / "home").mkdir()
    cfg = write_config(folder / "config.toml", "json://127.0.0.1:9/hook", db=tmp_path / "notifyd.db")
    before = cfg.read_text()
    prefix = _read_only_runner(folder)
    if prefix is None:
        pytest.skip("needs unshare with mount namespaces to make a folder read-only for root")
    if not prefix:
        folder.chmod(0o555)
    try:
        for args in (("services", "disable", "sink"), ("services", "set", "sink", "priority=2"),
                     ("services", "remove", "sink"),
                     ("services", "add", "x", "--type", "apprise", "--url", "json://h/x"),
                     ("config", "init", "--force", str(cfg))):
            cmd = [*prefix, sys.executable, "-m", "notifyd", *args]
            if args[0] == "services":
                cmd += ["--config", str(cfg)]
            result = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=60)
            assert result.returncode == 1, (args, result.stderr)
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
            assert result.stderr.startswith(f"error: cannot write {cfg}: "), result.stderr
            assert ("Read-only file system" if prefix else "Permission denied") in result.stderr
    finally:
        folder.chmod(0o755)
    assert cfg.read_text() == before
