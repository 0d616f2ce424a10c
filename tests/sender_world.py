"""One running daemon for a sender's test module, and the sender's fixture bodies: what the end-to-end
tests of tests/test_sources_<sender>.py (and tests/test_attachments.py) share, so each module keeps
only its own bodies, config and checks.

A module starts its one daemon in a module-scoped fixture:

    with start_world(tmp_path_factory.mktemp("overseerr"), sender_config(SOURCES)) as world:
        yield world

and its tests read what the daemon's json:// services were sent (`world.messages()`), wait for an
event's deliveries (`world.settled(event_id)`) and look into the SQLite file (`world.store`)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from notifyd.store.sqlite import SqliteStore

from conftest import FIXTURES, Daemon, DaemonFactory, Received, Receiver, wait_for, write_config

# Writes a daemon's config at the path (its SQLite file beside it, notifyd.db) for a receiver on the port.
ConfigWriter = Callable[[Path, int], Path]


@dataclass
class World:
    """A running daemon, the receiver its json:// services post to, and its SQLite store (opened
    only when a test reads it)."""

    daemon: Daemon
    receiver: Receiver
    store: SqliteStore

    def received(self) -> list[Received]:
        """Every request the receiver was sent, in order."""
        with self.receiver._lock:
            return list(self.receiver.requests)

    def messages(self, path: str | None = None) -> list[dict[str, Any]]:
        """The JSON objects the receiver was sent (only those to `path` when given), in order."""
        bodies = [r.body for r in self.received() if path is None or r.path == path]
        assert all(isinstance(body, dict) for body in bodies), bodies       # Apprise's json:// posts objects
        return bodies

    def settled(self, event_id: int) -> dict[str, Any]:
        """The event as GET /events/<id> shows it, once none of its jobs' deliveries is pending."""
        def done() -> dict[str, Any] | None:
            event = self.daemon.get(f"/events/{event_id}").json()
            return event if all(job["delivery"] != "pending" for job in event["jobs"]) else None
        result: dict[str, Any] = wait_for(done, 20, message=f"event {event_id}'s jobs to finish")
        return result

    def told(self, source: str, name: str, body: dict[str, Any],
             expected: tuple[str, str, str, str] | None) -> dict[str, Any] | None:
        """Post one fixture to /webhooks/SOURCE and check what it became. `expected` None: a
        sender's test (200, kind test, no job), returning None. Else (kind, level, title, body): 202,
        that kind, its one job sent, and exactly one message with that level, title and body, with
        no "None" in it and no title said again; returns the event."""
        before = len(self.messages())
        answer = self.daemon.post(f"/webhooks/{source}", body)
        if expected is None:
            assert answer.status_code == 200, (name, answer.text)
            assert (answer.json()["kind"], answer.json()["jobs"]) == ("test", []), name
            return None
        assert answer.status_code == 202, (name, answer.text)
        kind, level, title, text = expected
        event = self.settled(answer.json()["event_id"])
        assert event["kind"] == kind and [j["delivery"] for j in event["jobs"]] == ["sent"], (name, event)
        [message] = self.messages()[before:]
        assert (message["type"], message["title"], message["message"]) == (level, title, text), name
        assert "None" not in title + text and title not in text, name
        return event

    def counts(self) -> dict[str, int]:
        """How many events and jobs the store holds."""
        counts = self.store.info().counts
        return {table: counts[table] for table in ("events", "jobs")}


@contextmanager
def start_world(tmp: Path, config: ConfigWriter) -> Iterator[World]:
    """A receiver on 127.0.0.1 and one `notifyd serve` on the config `config` writes at
    tmp/config.toml for the receiver's port; all stopped and closed when the block ends."""
    receiver = Receiver()
    factory = DaemonFactory(tmp)
    try:
        daemon = factory.start(config(tmp / "config.toml", receiver.port))
        store = SqliteStore(tmp / "notifyd.db")
        try:
            yield World(daemon, receiver, store)
        finally:
            store.close()
            daemon.stop()
    finally:
        factory.cleanup()
        receiver.close()


def sender_config(sources: str) -> ConfigWriter:
    """The config of a sender's module: quick retries, the `[sources.…]` tables in `sources`, and one
    service `chat` with no `events` filter, posting to the receiver's /chat."""
    def write(path: Path, port: int) -> Path:
        path.write_text(f"""
[store]
path = "{path.parent / 'notifyd.db'}"

[worker]
threads = 2
backoff = ["100ms"]
max_attempts = 2
timeout = "5s"
{sources}
[services.chat]
type = "apprise"
url = "json://127.0.0.1:{port}/chat"
""")
        return path
    return write


def services_config(services: str, **fields: str) -> ConfigWriter:
    """conftest's test config with the `[services.…]` tables in `services`, a template whose `{port}`
    is the receiver's port (and whose other names are `fields`)."""
    def write(path: Path, port: int) -> Path:
        return write_config(path, services=services.format(port=port, **fields))
    return write


def load_fixture(folder: str, name: str) -> dict[str, Any]:
    """tests/fixtures/<folder>/<name>.json, decoded (a fresh copy each time)."""
    body: dict[str, Any] = json.loads((FIXTURES / folder / f"{name}.json").read_text())
    return body


def fixture_names(folder: str) -> list[str]:
    """The names of tests/fixtures/<folder>'s JSON bodies, sorted."""
    return sorted(path.stem for path in (FIXTURES / folder).glob("*.json"))


def replaced(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with `value` at the dotted path (a number steps into a list)."""
    changed = copy.deepcopy(body)
    *path, last = dotted.split(".")
    place: Any = changed
    for step in path:
        place = place[int(step)] if isinstance(place, list) else place[step]
    if isinstance(place, list):
        place[int(last)] = value
    else:
        place[last] = value
    return changed
