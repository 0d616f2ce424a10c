"""Shared fixtures: a JSON receiver on 127.0.0.1, a `notifyd serve` process, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
pytest_plugins = ["media_servers"]
ENGINES = ("sqlite", "postgresql")


class PostgresServer:
    """A real PostgreSQL server for the tests: $NOTIFYD_TEST_POSTGRES_URL when set, else one that
    the pgserver package (a test extra shipping PostgreSQL's binaries) starts in a temporary folder.
    Each test gets a database of its own."""

    def __init__(self) -> None:
        self._server = None
        self._folder: str | None = None
        url = os.environ.get("NOTIFYD_TEST_POSTGRES_URL")
        if not url:
            import tempfile

            import pgserver

            # Run as root, pgserver starts the server as its own user, which must reach the folder.
            self._folder = tempfile.mkdtemp(prefix="notifyd-pg-")
            os.chmod(self._folder, 0o755)
            self._server = pgserver.get_server(Path(self._folder) / "pgdata", cleanup_mode="stop")
            url = self._server.get_uri()
            import psycopg

            # A throwaway server: skip the disk flushes that make its checkpoints (and its
            # shutdown, after a hundred test databases) take seconds. Never for a real one.
            with psycopg.connect(url, autocommit=True) as conn:
                for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                    conn.execute(f"ALTER SYSTEM SET {setting} = off")
                conn.execute("SELECT pg_reload_conf()")
        self.admin_url = url
        self._count = 0

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        from urllib.parse import urlsplit, urlunsplit

        import psycopg

        self._count += 1
        name = f"notifyd_test_{os.getpid()}_{self._count}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
        if self._folder is not None:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs once per store engine."""
    return str(request.param)


@pytest.fixture
def store_url(engine: str, request: pytest.FixtureRequest) -> str | None:
    """For the postgresql run of a test, the URL of a fresh database; None for sqlite."""
    if engine != "postgresql":
        return None
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def store(engine: str, store_url: str | None, tmp_path: Path) -> Iterator[Any]:
    """A migrated store of each engine: a SQLite file, or a fresh PostgreSQL database."""
    if engine == "sqlite":
        from notifyd.store.sqlite import SqliteStore

        made: Any = SqliteStore(tmp_path / "notifyd.db", node_id="test-node")
    else:
        from notifyd.store.postgres import PostgresStore

        assert store_url is not None
        made = PostgresStore(store_url, node_id="test-node", pool_size=6)
    made.migrate()
    yield made
    made.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers from a script of statuses.

    `gate.clear()` holds every POST that arrives (before it is recorded or answered) until
    `gate.set()`; `held` says how many wait there, so a test can know a delivery is in flight
    without guessing how long it takes."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[int] = []          # statuses to answer first, in order
        self.default_status = 200
        self.delay = 0.0
        self.gate = threading.Event()
        self.gate.set()
        self.held = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else receiver.default_status
                    delay = receiver.delay
                if delay:
                    time.sleep(delay)
                if not receiver.gate.is_set():
                    with receiver._lock:
                        receiver.held += 1
                    receiver.gate.wait()
                    with receiver._lock:
                        receiver.held -= 1
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def json_url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests]

    def close(self) -> None:
        self.gate.set()                      # no request left waiting for a test that has ended
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@dataclass
class Daemon:
    proc: subprocess.Popen
    port: int
    config: Path | None
    log_path: Path
    env: dict[str, str]
    logs_seen: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        if body is not None:
            kwargs["json"] = body
        return httpx.post(self.url + path, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class DaemonFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.home = tmp_path / "home"
        self.home.mkdir(exist_ok=True)
        self.started: list[Daemon] = []

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOTIFYD_", "XDG_", "STATE_DIRECTORY"))}
        env.update(HOME=str(self.home), PYTHONUNBUFFERED="1", **extra)
        return env

    def start(self, config: Path | None = None, port: int | None = None, args: tuple[str, ...] = (),
              env: dict[str, str] | None = None, wait: bool = True) -> Daemon:
        port = port or free_port()
        log_path = self.tmp_path / f"daemon-{len(self.started)}.log"
        cmd = [sys.executable, "-m", "notifyd", "serve"]
        if config is not None:
            cmd += ["--config", str(config)]
        if port != 8765 or config is not None:
            cmd += ["--listen", f"127.0.0.1:{port}"]
        cmd += list(args)
        env = env or self.env()
        proc = subprocess.Popen(cmd, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)
        daemon = Daemon(proc, port, config, log_path, env)
        self.started.append(daemon)
        if wait:
            def healthy() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"notifyd serve exited {proc.returncode}:\n{daemon.log()}")
                try:
                    return httpx.get(daemon.url + "/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False
            wait_for(healthy, 15, message="the daemon's /health")
        return daemon

    def cleanup(self) -> None:
        for daemon in self.started:
            if daemon.proc.poll() is None:
                daemon.kill()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[DaemonFactory]:
    factory = DaemonFactory(tmp_path)
    yield factory
    factory.cleanup()


def write_config(path: Path, receiver_url: str | None = None, extra: str = "", db: Path | None = None,
                 backoff: str = '["100ms", "200ms"]', max_attempts: int = 4, services: str | None = None,
                 store_url: str | None = None) -> Path:
    """A test config; with `store_url`, on PostgreSQL instead of a SQLite file beside it."""
    db = db or path.parent / "notifyd.db"
    store = f'url = "{store_url}"' if store_url else f'path = "{db}"'
    text = f"""\
# test config
[server]
max_body = "64KB"

[store]
{store}

[worker]
threads = 2
max_attempts = {max_attempts}
backoff = {backoff}
timeout = "5s"
lease = "3s"
{extra}
"""
    if services is not None:
        text += services
    elif receiver_url:
        text += f"""
# the receiver the tests run
[services.sink]
type = "apprise"
url = "{receiver_url}"
"""
    path.write_text(text)
    return path


def run_cli(*args: str, config: Path | None = None, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "notifyd", *args]
    if config is not None:
        cmd += ["--config", str(config)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def cli_json(*args: str, config: Path | None = None, env: dict[str, str] | None = None) -> Any:
    result = run_cli(*args, "--json", config=config, env=env, check=True)
    return json.loads(result.stdout)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The crash campaign's knobs (tests/test_crash_campaign.py): how many kills, which seed, which engines."""
    group = parser.getgroup("notifyd")
    group.addoption("--crash-cycles", type=int, default=None,
                    help="kill -9 cycles of the crash campaign (default 10, or $NOTIFYD_CRASH_CYCLES)")
    group.addoption("--crash-seed", type=int, default=None,
                    help="random seed of the crash campaign's kill delays (or $NOTIFYD_CRASH_SEED)")
    group.addoption("--crash-postgresql", action="store_const", const=1, default=None,
                    help="run the crash campaign on PostgreSQL too (or $NOTIFYD_CRASH_POSTGRESQL=1)")
