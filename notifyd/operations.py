"""What an operator does to services, shared by the CLI and the status page so both do exactly the
same: switching a service on or off edits the config file in place (keeping its comments); switching
it on also clears a receiver's 410 Gone switch-off in the store."""

from __future__ import annotations

from pathlib import Path

from notifyd.config_edit import set_service_enabled
from notifyd.errors import NotFound
from notifyd.store import Store


def enable_service(config_file: Path | None, store: Store, name: str) -> bool:
    """Enable `name` in the config file; True if a receiver's switch-off was cleared too."""
    _switch(_editable(config_file), name, True)
    return store.enable_service(name)


def disable_service(config_file: Path | None, name: str) -> None:
    """Disable `name` in the config file: no new jobs for it, and its queued jobs end as skipped."""
    _switch(_editable(config_file), name, False)


def _switch(path: Path, name: str, enabled: bool) -> None:
    # A file it cannot write (a root-owned /etc/notifyd) raises ConfigNotWritable, a ConfigError.
    set_service_enabled(path, name, enabled)


def _editable(config_file: Path | None) -> Path:
    if config_file is None:
        raise NotFound("no config file to edit: notifyd runs on its built-in defaults; create one with "
                       "`notifyd config init`")
    return config_file
