"""Options every command shares, and opening the config and store for a command."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from notifyd.config import Config
    from notifyd.store import Store

ConfigOption = Annotated[str | None, typer.Option(
    "--config", "-c", help="Config file (default: $NOTIFYD_CONFIG, ~/.config/notifyd/config.toml, "
                           "/etc/notifyd/config.toml).", show_default=False)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON with stable keys on stdout, for scripts "
                                          "(each error is still one `error: …` line on stderr).")]
MAX_ID = 2**63 - 1      # the largest id either engine can hold
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, max=100_000, help="How many rows at most.")]


@contextmanager
def open_store(config_path: str | None) -> Iterator[tuple[Config, Store]]:
    """The config and its (migrated) store, closed afterwards."""
    import logging

    from notifyd.config import load_config
    from notifyd.store import open_store as open_configured

    # The pool logs each failed connection attempt; a command says once what went wrong instead.
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    config = load_config(config_path)
    store = open_configured(config.store, node_id=config.server.node_id, pool_size=2)
    try:
        store.migrate()
        yield config, store
    finally:
        store.close()
        store.hand_back_files()     # run by root on the unit's store: the daemon must still open it


def warn_if_unserved(store: Store, what: str) -> None:
    """Say plainly, on stderr, that what was just queued waits: no daemon serves this store."""
    if store.daemon_holder() is None:
        from notifyd.cli.output import warn

        warn(f"no `notifyd serve` is running on {store.location}: {what} waits until one starts "
             "(`notifyd serve`, or `systemctl start notifyd`)")
