"""notifyd.preflight: the checks `serve` makes before it binds, and `config check` makes the same ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from notifyd.config import StoreConfig, load_config
from notifyd.errors import ConfigError, StoreUnavailable
from notifyd.preflight import check_config, check_store

from conftest import free_port, write_config


def test_a_public_address_needs_a_token(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nlisten = "0.0.0.0:8765"\n')
    with pytest.raises(ConfigError) as info:
        check_config(load_config(path, env={}))
    assert info.value.key == "server.token"
    path.write_text('[server]\nlisten = "0.0.0.0:8765"\ntoken = "a-long-enough-token"\n')
    check_config(load_config(path, env={}))


def test_an_apprise_url_no_plugin_takes_is_named_by_file_line_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", "nosuchscheme://a/b")
    with pytest.raises(ConfigError) as info:
        check_config(load_config(path, env={}))
    line = path.read_text().splitlines().index('url = "nosuchscheme://a/b"') + 1
    assert str(info.value) == f"{path}:{line}: services.sink.url: no Apprise plugin accepts this URL"


def test_a_url_filled_per_run_is_accepted(tmp_path: Path) -> None:
    check_config(load_config(write_config(tmp_path / "c.toml", "tgram://123456789:ABCdefGHIjkl/{chat_id}"), env={}))


def test_a_sqlite_store_whose_folder_can_be_made_passes_and_nothing_is_left(tmp_path: Path) -> None:
    check_store(StoreConfig(path=tmp_path / "a" / "b" / "notifyd.db"))
    check_store(StoreConfig(path=tmp_path / "notifyd.db"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where, says", [
    ("afile/notifyd.db", "afile is not a folder"),
    ("afile/deeper/notifyd.db", "afile is not a folder"),
    (".", "is a folder; [store] path names the database file"),
])
def test_a_sqlite_store_that_cannot_be_made_is_refused(tmp_path: Path, where: str, says: str) -> None:
    (tmp_path / "afile").write_text("")
    with pytest.raises(StoreUnavailable) as info:
        check_store(StoreConfig(path=tmp_path / where))
    assert says in str(info.value)


def test_a_store_in_a_folder_nobody_may_write_is_refused() -> None:
    with pytest.raises(StoreUnavailable) as info:
        check_store(StoreConfig(path=Path("/proc/notifyd/notifyd.db")))
    assert str(info.value).startswith("cannot write the store's folder /proc: ")


def test_serve_and_config_check_refuse_a_config_alike(tmp_path: Path) -> None:
    """One function decides for both: the same config gets the same line from each, before serve binds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFYD_", "XDG_", "STATE_DIRECTORY"))}
    env["HOME"] = str(tmp_path)
    port = free_port()
    for text in (f'[server]\nlisten = "0.0.0.0:{port}"\n',
                 f'[server]\nlisten = "127.0.0.1:{port}"\n\n[services.x]\ntype = "apprise"\nurl = "nosuchscheme://a"\n',
                 f'[server]\nlisten = "127.0.0.1:{port}"\n\n[store]\npath = "/proc/notifyd/n.db"\n'):
        path = tmp_path / "c.toml"
        path.write_text(text)
        answers = [subprocess.run([sys.executable, "-m", "notifyd", *args, "--config", str(path)], capture_output=True,
                                  text=True, env=env, timeout=60) for args in (("config", "check"), ("serve",))]
        check, serve = answers
        assert check.returncode == serve.returncode != 0
        assert check.stderr.startswith("error: ") and check.stderr.count("\n") == 1
        assert serve.stderr.splitlines()[-1] == check.stderr.strip()      # serve's log may say more before it
