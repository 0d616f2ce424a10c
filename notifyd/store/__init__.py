"""Where notifyd keeps everything: one contract (`base`), two engines (`sqlite`, `postgres`).

`open_store` picks the engine from the config: `[store] url` (or $NOTIFYD_STORE_URL) is
PostgreSQL, anything else the SQLite file at `[store] path`. No SQL lives outside this package.
"""

from __future__ import annotations

import os
import socket

from notifyd.config import StoreConfig
from notifyd.errors import StoreUnavailable
from notifyd.store.base import Duplicate, QueueDepth, Stats, Store, StoreInfo, Tx

__all__ = ["Duplicate", "QueueDepth", "Stats", "Store", "StoreInfo", "Tx", "default_node_id", "open_store"]


def default_node_id() -> str:
    """hostname:pid, unless `[server] node_id` names this node."""
    return f"{socket.gethostname()}:{os.getpid()}"


def open_store(config: StoreConfig, *, node_id: str | None = None, pool_size: int = 8) -> Store:
    """The configured engine's store (not yet migrated; call `migrate()` before use)."""
    node = node_id or default_node_id()
    if config.url:
        try:
            import psycopg  # noqa: F401  (checked here so the message can say how to install it)

            from notifyd.store.postgres import PostgresStore
        except ImportError:
            raise StoreUnavailable("[store] url names a PostgreSQL database, and psycopg is not installed: "
                                   "pip install 'notifyd[postgres]'") from None
        return PostgresStore(config.url, node_id=node, pool_size=pool_size)
    from notifyd.store.sqlite import SqliteStore

    return SqliteStore(config.path, synchronous=config.synchronous, node_id=node)
