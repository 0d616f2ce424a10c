"""A PostgreSQL server for the benchmarks, as tests/conftest.py's ``PostgresServer`` gets one.

``$NOTIFYD_TEST_POSTGRES_URL`` when it is set (an admin URL: the benchmarks create and drop
databases there); otherwise the ``pgserver`` package (a test extra shipping PostgreSQL's
binaries) starts one in a temporary folder, on a Unix socket, and stops it and removes the
folder on ``stop()``. Each measurement asks for a database of its own with ``new_database()``.

Not a benchmark itself: bench_queue.py and bench_daemon.py import it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class PostgresServer:
    """A running server; `new_database(prefix)` gives the URL of a fresh, empty database on it."""

    def __init__(self) -> None:
        self._server = None
        self._folder: str | None = None
        self._made: list[str] = []
        url = os.environ.get("NOTIFYD_TEST_POSTGRES_URL")
        if url:
            self.origin = "$NOTIFYD_TEST_POSTGRES_URL"
        else:
            import pgserver

            # Run as root, pgserver starts the server as its own user, which must reach the folder.
            self._folder = tempfile.mkdtemp(prefix="notifyd-bench-pg-")
            os.chmod(self._folder, 0o755)
            self._server = pgserver.get_server(Path(self._folder) / "pgdata", cleanup_mode="stop")
            url = self._server.get_uri()
            self.origin = "pgserver (Unix socket, temporary folder)"
        self.admin_url = url
        self._count = 0

    def version(self) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            shown = {name: conn.execute(f"SHOW {name}").fetchone()
                     for name in ("server_version", "fsync", "synchronous_commit")}
        value = {name: row[0] if row else "?" for name, row in shown.items()}
        return f"{value['server_version']} (fsync {value['fsync']}, synchronous_commit {value['synchronous_commit']})"

    def new_database(self, prefix: str = "notifyd_bench") -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        self._made.append(name)
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{name}"))

    def drop_databases(self) -> None:
        """Drop the databases this run made (on a server of its own they go with the folder anyway)."""
        import psycopg

        if not self._made:
            return
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self._made:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._made = []

    def stop(self) -> None:
        if self._server is None:
            try:
                self.drop_databases()
            except Exception:  # noqa: BLE001 - best effort on a server we do not own
                pass
        else:
            self._server.cleanup()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
