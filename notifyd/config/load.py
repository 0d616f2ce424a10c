"""Finding and loading the config file: --config, $NOTIFYD_CONFIG, the XDG path, /etc; the
embedded defaults when there is none; syntax errors with their line."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from notifyd.config.model import Config
from notifyd.config.validate import parse_config
from notifyd.errors import ConfigError


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """The per-user config path: $XDG_CONFIG_HOME/notifyd/config.toml."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "notifyd" / "config.toml"


def find_config(explicit: str | Path | None, env: Mapping[str, str] | None = None) -> tuple[Path | None, bool]:
    """The config path to use and whether the user named it (then it must exist).

    Order: --config, $NOTIFYD_CONFIG, $XDG_CONFIG_HOME/notifyd/config.toml, /etc/notifyd/config.toml.
    """
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit), True
    if env.get("NOTIFYD_CONFIG"):
        return Path(env["NOTIFYD_CONFIG"]), True
    for candidate in (default_config_path(env), Path("/etc/notifyd/config.toml")):
        if candidate.is_file():
            return candidate, False
    return None, False


def load_config(explicit: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Find and load the config, or the embedded defaults when there is no file at all."""
    path, named = find_config(explicit, env)
    if path is None:
        return parse_config({}, path=None, env=env)
    if not path.is_file():
        if named and path.is_dir():
            raise ConfigError("a folder, not a config file", file=str(path))
        if named:
            raise ConfigError("no such file (create one with `notifyd config init`)", file=str(path))
        return parse_config({}, path=None, env=env)
    return read_config_file(path, env)


def read_config_file(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Parse and validate one TOML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=str(path)) from None
    return parse_config_text(text, path, env)


def parse_config_text(text: str, path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Parse TOML text; syntax errors keep tomllib's line and column."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _decode_error_line(str(exc))
        raise ConfigError(f"invalid TOML: {exc}", file=str(path) if path else "<config>", line=line) from None
    return parse_config(data, path=path, text=text, env=env)


def _decode_error_line(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
