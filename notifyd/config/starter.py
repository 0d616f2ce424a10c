"""The file `notifyd config init` writes: the commented example, with the store's location written
out, so that the daemon and every later command open the same database whatever their environment."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from notifyd.config.model import default_state_path

PATH_LINE = '# path = "/var/lib/notifyd/notifyd.db"'


def starter_config(target: Path, env: Mapping[str, str] | None = None) -> str:
    """The example config for a file at `target`, its `[store] path` set to where the rule puts it."""
    import tomli_w

    text = resources.files("notifyd").joinpath("starter_config.toml").read_text("utf-8")
    line = tomli_w.dumps({"path": str(default_state_path(env, target))}).strip()
    if PATH_LINE not in text:
        raise RuntimeError("the starter config lost its [store] path line")   # a packaging fault, caught by tests
    return text.replace(PATH_LINE, line, 1)
