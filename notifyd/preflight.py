"""What `notifyd serve` checks before it binds its port, in one place, so that `notifyd config check`
makes exactly the same checks: a config that checks clean also starts.

- `check_config`: what a config must satisfy beyond its keys' own validation (which `load` does):
  a public listen address needs a token; every Apprise URL must be one a plugin accepts. Also run
  on every reload, so a reload can never open the daemon up or bring in a URL nothing can send to.
- `check_store`: the store can be reached: a SQLite file whose folder exists or can be created and
  can be written (the database, its -wal and -shm files live there: tried with a file or folder
  made and removed at once); a PostgreSQL server that answers.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from notifyd.config import Config, ServiceConfig, StoreConfig, is_loopback, locate_key
from notifyd.errors import ConfigError, StoreUnavailable


def check_config(config: Config) -> None:
    """Raise ConfigError (file, line, key) for the first rule `serve` would refuse to start on."""
    check_listen(config)
    for service in config.services.values():
        check_service_url(config, service)


def check_listen(config: Config) -> None:
    """A non-loopback address without a token would let anyone on the network post events."""
    server = config.server
    if not is_loopback(server.host) and not server.token:
        raise ConfigError(f"refusing to listen on {server.listen} without a token: anyone on the network "
                          "could post events. Set server.token, or listen on 127.0.0.1.",
                          file=str(config.path or "<defaults>"), key="server.token")


def check_service_url(config: Config, service: ServiceConfig) -> None:
    """An Apprise URL no plugin accepts could never deliver: refused when the config is read, not at
    the first event."""
    if service.type != "apprise":
        return
    from notifyd.channels import describe_target

    if describe_target(service).endswith("(invalid)"):
        key = f"services.{service.name}.url"
        raise ConfigError("no Apprise plugin accepts this URL", file=str(config.path or "<config>"), key=key,
                          line=locate_key(_text(config.path), key))


def check_store(store: StoreConfig) -> None:
    """Raise StoreUnavailable when the store cannot be used: the message names the place and why."""
    if store.url:
        _check_postgres(store)
    else:
        _check_sqlite_folder(store.path)


def _check_sqlite_folder(path: Path) -> None:
    if path.is_dir():
        raise StoreUnavailable(f"the store {path} is a folder; [store] path names the database file")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent                # the nearest folder that exists: serve creates the rest
    if not folder.is_dir():
        raise StoreUnavailable(f"cannot create the store's folder {path.parent}: {folder} is not a folder")
    try:
        # What serve will do there, tried and undone: a folder to create, or files beside the database.
        if folder == path.parent:
            tempfile.TemporaryFile(dir=folder, prefix=".notifyd-check-").close()
        else:
            os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".notifyd-check-"))
    except OSError as exc:
        raise StoreUnavailable(f"cannot write the store's folder {folder}: {exc.strerror or exc}") from None
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreUnavailable(f"cannot write the store {path}: Permission denied")


def _check_postgres(store: StoreConfig) -> None:
    """One connection and one read: the server answers and takes the credentials."""
    from notifyd.store import open_store

    opened = open_store(store, node_id="preflight", pool_size=1)
    try:
        opened.daemon_holder()
    finally:
        opened.close()


def _text(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
