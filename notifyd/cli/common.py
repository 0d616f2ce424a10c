"""Options every command shares, and opening the config and store for a command."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Iterator, Optional, TYPE_CHECKING

import typer

from notifyd.config import Config, load_config
from notifyd.store import Store

if TYPE_CHECKING:
    import sqlite_utils

ConfigOption = Annotated[Optional[str], typer.Option(
    "--config", "-c", help="Config file (default: $NOTIFYD_CONFIG, ~/.config/notifyd/config.toml, "
                           "/etc/notifyd/config.toml).", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON with stable keys, for scripts.")]
MAX_ID = 2**63 - 1      # SQLite's largest integer: a larger id cannot exist
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, max=100_000, help="How many rows at most.")]


@contextmanager
def open_store(config_path: str | None) -> Iterator[tuple[Config, sqlite_utils.Database]]:
    """The config and a connection to its (migrated) database, closed afterwards."""
    config = load_config(config_path)
    store = Store(config.store.path, config.store.synchronous)
    store.migrate()
    db = store.connect()
    try:
        yield config, db
    finally:
        db.close()
