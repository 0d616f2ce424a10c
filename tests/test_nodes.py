"""More than one machine: two `notifyd serve` processes on different ports sharing one PostgreSQL
database. Webhooks posted to either are delivered once; a node killed with kill -9 mid-delivery
loses nothing (the other delivers its jobs once their lease ends); no job is ever delivered by
two nodes at the same time; the CLI sees everything from either node. And the way there:
`notifyd store copy` from a SQLite store."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from notifyd.store.postgres import PostgresStore

from conftest import DaemonFactory, cli_json, run_cli, wait_for, write_config


@dataclass
class Hit:
    message_id: str
    title: str


class HoldingReceiver:
    """A webhook receiver on 127.0.0.1 that holds each request `delay` seconds, records each
    delivery (by its webhook-id), and notes any that arrived while another of the same job was
    still being received."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.hits: list[Hit] = []
        self.in_flight: Counter[str] = Counter()       # deliveries being received, by webhook-id
        self.doubled: list[str] = []                   # webhook-ids that arrived while one was in flight
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                message_id = self.headers["webhook-id"]
                with receiver._lock:
                    if receiver.in_flight[message_id]:
                        receiver.doubled.append(message_id)
                    receiver.in_flight[message_id] += 1
                    delay = receiver.delay
                title: str | None = None
                try:
                    title = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))["title"]
                    time.sleep(delay)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                finally:
                    with receiver._lock:
                        receiver.in_flight[message_id] -= 1
                        if title is not None:
                            receiver.hits.append(Hit(message_id, title))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def titles(self) -> set[str]:
        with self._lock:
            return {h.title for h in self.hits}

    def overlapping(self) -> list[str]:
        """The jobs (webhook-ids) of which two deliveries were in progress at the same time."""
        with self._lock:
            return list(self.doubled)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def holding() -> Iterator[HoldingReceiver]:
    receiver = HoldingReceiver()
    yield receiver
    receiver.close()


def node_config(path: Path, node: str, url: str, receiver: HoldingReceiver) -> Path:
    services = f"""
[services.hook]
type = "webhook"
url = "{receiver.url}"
"""
    config = write_config(path, services=services, store_url=url, max_attempts=5)
    text = config.read_text().replace("[server]\n", f'[server]\nnode_id = "{node}"\n')
    config.write_text(text.replace("threads = 2", "threads = 3"))      # two of one service at once, per node
    return config


def states(config: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    return list(cli_json("jobs", "list", "--limit", "500", config=config, env=env))


def test_webhooks_posted_to_either_node_are_each_delivered_once(tmp_path: Path, daemons: DaemonFactory,
                                                                postgres: Any, holding: HoldingReceiver) -> None:
    url = postgres.new_database()
    holding.delay = 0.05
    a = daemons.start(node_config(tmp_path / "a.toml", "node-a", url, holding))
    b = daemons.start(node_config(tmp_path / "b.toml", "node-b", url, holding))
    assert a.get("/health").json()["node"] == "node-a" and b.get("/health").json()["node"] == "node-b"
    titles = [f"event {n}" for n in range(40)]
    for n, title in enumerate(titles):
        answer = (a if n % 2 else b).post("/webhooks/generic", {"title": title})
        assert answer.status_code == 202, answer.text
    wait_for(lambda: holding.titles() >= set(titles), 30, message="every event delivered")
    jobs = wait_for(lambda: (lambda js: js if len(js) == 40 and all(j["state"] == "succeeded" for j in js)
                             else None)(states(a.config, a.env)), 20, message="every job succeeded")
    assert len(holding.hits) == 40                             # once each: no crash, no second delivery
    assert {j["id"] for j in states(b.config, b.env)} == {j["id"] for j in jobs}   # the CLI sees it all from b too
    some = cli_json("jobs", "show", str(jobs[0]["id"]), config=b.config, env=b.env)["attempt_log"]
    assert some[0]["node"] in ("node-a", "node-b")
    watcher = PostgresStore(url, node_id="test-watcher", pool_size=1)
    try:
        nodes = {attempt.node for j in jobs for attempt in watcher.job_attempts(j["id"])}
    finally:
        watcher.close()
    assert nodes == {"node-a", "node-b"}                       # both nodes delivered
    assert a.stop() == 0 and b.stop() == 0


def test_a_node_killed_mid_delivery_loses_nothing(tmp_path: Path, daemons: DaemonFactory, postgres: Any,
                                                  holding: HoldingReceiver) -> None:
    url = postgres.new_database()
    holding.delay = 1.0
    a = daemons.start(node_config(tmp_path / "a.toml", "node-a", url, holding))
    b = daemons.start(node_config(tmp_path / "b.toml", "node-b", url, holding))
    titles = [f"event {n}" for n in range(16)]
    for n, title in enumerate(titles):
        assert (a if n % 2 else b).post("/webhooks/generic", {"title": title}).status_code == 202
    watcher = PostgresStore(url, node_id="test-watcher", pool_size=1)   # looks in, as fast as a query

    def a_is_delivering() -> bool:
        return any(attempt.node == "node-a" and attempt.outcome is None
                   for job in watcher.list_jobs(state="running") for attempt in watcher.job_attempts(job.id))

    try:
        wait_for(a_is_delivering, 15, interval=0.05, message="node-a inside a delivery")
    finally:
        watcher.close()
    a.kill()                                                   # kill -9: no goodbye, its leases stay
    holding.delay = 0.2
    wait_for(lambda: holding.titles() >= set(titles), 40, message="every event delivered by node-b")
    jobs = wait_for(lambda: (lambda js: js if len(js) == 16 and all(j["state"] == "succeeded" for j in js)
                             else None)(states(b.config, b.env)), 30, message="every job succeeded")
    watcher = PostgresStore(url, node_id="test-watcher", pool_size=1)
    try:
        logs = [watcher.job_attempts(j["id"]) for j in jobs]
    finally:
        watcher.close()
    lost = [log for log in logs if any(a.outcome == "lost" and a.node == "node-a" for a in log)]
    assert lost, "the jobs node-a held when it died were taken back after their lease"
    assert all(log[-1].node == "node-b" and log[-1].outcome == "succeeded" for log in lost)
    shown = cli_json("jobs", "show", str(lost[0][0].job_id), config=b.config, env=b.env)["attempt_log"]
    assert [a["node"] for a in shown][-1] == "node-b" and "node-a" in [a["node"] for a in shown]
    assert holding.overlapping() == []                        # never two deliveries of one job at once
    # the CLI on either node's config sees the same history
    assert {j["id"] for j in states(a.config, a.env)} == {j["id"] for j in jobs}
    assert b.stop() == 0


def test_store_copy_moves_a_sqlite_history_to_postgresql(tmp_path: Path, daemons: DaemonFactory, postgres: Any,
                                                         holding: HoldingReceiver) -> None:
    services = f'\n[services.hook]\ntype = "webhook"\nurl = "{holding.url}"\n'
    config = write_config(tmp_path / "config.toml", services=services)
    daemon = daemons.start(config)
    posted = [daemon.post("/webhooks/generic", {"title": f"before the move {n}"}).json() for n in range(5)]
    wait_for(lambda: len(holding.hits) == 5, message="deliveries on SQLite")
    url = postgres.new_database()
    refused = run_cli("store", "copy", "--to", url, config=config, env=daemon.env)
    assert refused.returncode == 1 and "stop it first" in refused.stderr
    assert daemon.stop() == 0
    before = {name: cli_json(*args, config=config, env=daemon.env) for name, args in
              (("jobs", ("jobs", "list")), ("events", ("events", "list")))}

    copied = run_cli("store", "copy", "--to", url, config=config, env=daemon.env)
    assert copied.returncode == 0, copied.stderr
    assert "events: 5 row(s)" in copied.stdout
    assert "jobs: 6 row(s)" in copied.stdout                  # five deliveries and the retention job
    assert "replace [store] path with url" in copied.stdout
    again = run_cli("store", "copy", "--to", url, config=config, env=daemon.env)
    assert again.returncode == 1 and "empty database" in again.stderr

    moved = tmp_path / "moved.toml"
    moved.write_text(config.read_text().replace(f'path = "{tmp_path / "notifyd.db"}"', f'url = "{url}"'))
    info = cli_json("store", "info", config=moved, env=daemon.env)
    assert info["engine"] == "postgresql" and info["counts"]["events"] == 5
    assert {name: cli_json(*args, config=moved, env=daemon.env) for name, args in
            (("jobs", ("jobs", "list")), ("events", ("events", "list")))} == before
    node = daemons.start(moved)
    repeat = node.post("/webhooks/generic", {"title": "before the move 0"})   # the same body, within the window
    assert repeat.status_code == 200 and repeat.json()["duplicate"] is True
    assert repeat.json()["event_id"] == posted[0]["event_id"]
    after = node.post("/webhooks/generic", {"title": "after the move"}).json()
    assert after["event_id"] > max(p["event_id"] for p in posted)      # ids continue after the copied ones
    wait_for(lambda: "after the move" in holding.titles(), message="a delivery on PostgreSQL")
    assert node.stop() == 0


def test_a_database_that_refuses_gets_503_and_the_node_recovers_alone(tmp_path: Path, daemons: DaemonFactory,
                                                                      postgres: Any,
                                                                      holding: HoldingReceiver) -> None:
    import psycopg

    url = postgres.new_database()
    node = daemons.start(node_config(tmp_path / "a.toml", "node-a", url, holding))
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            refused = [node.post("/webhooks/generic", {"title": f"while down {n}"}) for n in range(3)]
            assert [r.status_code for r in refused] == [503, 503, 503]
            assert all(r.json()["error"] == "store_unavailable" for r in refused)
            health = node.get("/health")
            assert health.status_code == 503 and health.json()["store"]["writable"] is False
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    accepted = wait_for(lambda: (lambda r: r if r.status_code == 202 else None)(
        node.post("/webhooks/generic", {"title": "after"})), 30, interval=0.5, message="a 202 once the database is back")
    assert accepted.json()["jobs"]
    wait_for(lambda: "after" in holding.titles(), 15, message="the delivery after recovery")
    assert not any(t.startswith("while down") for t in holding.titles())
    assert node.get("/health").status_code == 200
    events = cli_json("events", "list", config=node.config, env=node.env)
    assert {e["title"] for e in events} <= {"after"}              # nothing refused was half-stored
    assert node.stop() == 0
