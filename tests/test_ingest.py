"""Ingest: the event and its jobs in one transaction; repeats; the batching writer thread."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from notifyd.config import parse_config
from notifyd.errors import BadPayload, StoreUnavailable
from notifyd.ingest import IngestWriter, record_event
from notifyd.model import Event, JobState
from notifyd.store import Store
from notifyd.store import sqlite as sqlite_mod
from notifyd.store.sqlite import SqliteStore

CONFIG = parse_config({
    "server": {"dedupe_window": "10m"},
    "worker": {"max_attempts": 5},
    "services": {
        "all": {"type": "apprise", "url": "json://127.0.0.1:9/a"},
        "health": {"type": "apprise", "url": "json://127.0.0.1:9/b", "events": ["health"], "priority": 2},
        "off": {"type": "apprise", "url": "json://127.0.0.1:9/c", "enabled": False},
    },
}, path=None)


def event(kind: str = "backup", title: str = "t") -> Event:
    return Event(source="generic", source_type="generic", kind=kind, title=title, payload='{"x": 1}')


def test_event_and_one_job_per_matching_enabled_service(store: Store) -> None:
    with store.transaction() as tx:
        result = record_event(tx, event("health"), CONFIG, 1000.0, "key-1")
    assert not result.duplicate and result.kind == "health"
    assert [j.service for j in result.jobs] == ["all", "health"]
    jobs = sorted(store.list_jobs(), key=lambda j: j.id)
    rows = [(j.service, j.priority, j.max_attempts, j.state, j.run_at, j.event_id) for j in jobs]
    assert rows == [("all", 5, 5, JobState.QUEUED, 1000.0, result.event_id),
                    ("health", 2, 5, JobState.QUEUED, 1000.0, result.event_id)]
    [stored] = store.list_events()
    assert (stored.id, stored.event.source, stored.event.kind, stored.event.title, stored.event.payload) == (
        result.event_id, "generic", "health", "t", '{"x": 1}')
    # The dedupe key is stored with the event: a repeat with it names this event.
    with store.transaction() as tx:
        repeat = record_event(tx, event("health"), CONFIG, 1001.0, "key-1")
    assert repeat.duplicate and repeat.event_id == result.event_id


def test_test_events_are_recorded_without_jobs(store: Store) -> None:
    with store.transaction() as tx:
        result = record_event(tx, event("test"), CONFIG, 1000.0)
    assert result.jobs == [] and store.info().counts["events"] == 1


def test_repeat_within_the_window_is_a_duplicate_outside_it_is_new(store: Store) -> None:
    with store.transaction() as tx:
        first = record_event(tx, event(), CONFIG, 1000.0, "k")
        again = record_event(tx, event(), CONFIG, 1000.0 + 599, "k")
        other_key = record_event(tx, event(), CONFIG, 1000.0 + 599, "k2")
        later = record_event(tx, event(), CONFIG, 1000.0 + 601, "k")
    assert again.duplicate and again.event_id == first.event_id and again.jobs == first.jobs
    assert not other_key.duplicate and not later.duplicate
    assert store.info().counts["events"] == 3


def test_writer_commits_a_burst_and_answers_each_caller(store: Store) -> None:
    commits: list[int] = []
    writer = IngestWriter(store, lambda: CONFIG, on_commit=commits.append, clock=lambda: 5000.0).start()
    futures = [writer.submit(event(title=f"e{n}"), f"key-{n}") for n in range(200)]
    futures.append(writer.submit(event(title="e0"), "key-0"))     # a repeat inside the burst
    results = [f.result(10) for f in futures]
    writer.stop()
    assert len({r.event_id for r in results[:200]}) == 200
    assert results[200].duplicate and results[200].event_id == results[0].event_id
    assert sum(commits) == 200                      # one job each; workers were told about every one
    assert len(commits) < 200                       # and the burst shared transactions
    assert store.info().counts["jobs"] == 200


def test_writer_fails_every_caller_when_the_store_is_locked_and_recovers(tmp_path: Path, monkeypatch) -> None:
    # SQLite only: another process holding the database file's write lock.
    monkeypatch.setattr(sqlite_mod, "BUSY_TIMEOUT_MS", 200)
    store = SqliteStore(tmp_path / "i.db")
    store.migrate()
    writer = IngestWriter(store, lambda: CONFIG).start()
    assert writer.probe().result(5) is None
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    futures = [writer.submit(event(title=f"lost {n}"), f"k{n}") for n in range(3)]
    for future in futures:
        with pytest.raises(StoreUnavailable, match="locked"):
            future.result(10)
    with pytest.raises(StoreUnavailable):
        writer.probe().result(10)
    holder.execute("ROLLBACK")
    assert writer.submit(event(title="after"), "k-after").result(10).event_id
    writer.stop()
    titles = [e.event.title for e in store.list_events()]
    assert titles == ["after"]                     # nothing half-stored from the failed batch
    store.close()


def test_writer_refuses_after_stop(store: Store) -> None:
    writer = IngestWriter(store, lambda: CONFIG).start()
    writer.stop()
    with pytest.raises(StoreUnavailable, match="shutting down"):
        writer.submit(event()).result(1)


def test_concurrent_submitters(store: Store) -> None:
    writer = IngestWriter(store, lambda: CONFIG).start()
    ids: list[int] = []
    lock = threading.Lock()

    def post(n: int) -> None:
        result = writer.submit(event(title=f"t{n}"), f"c{n}").result(10)
        with lock:
            ids.append(result.event_id)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.stop()
    assert len(set(ids)) == 50


def test_a_caller_that_gave_up_does_not_break_its_batch(store: Store) -> None:
    gate = threading.Event()
    writer = IngestWriter(store, lambda: CONFIG)
    original = writer._commit

    def slow_commit(batch):
        gate.wait(30)                                 # the writer is stuck, as on a slow disk
        original(batch)

    writer._commit = slow_commit
    writer.start()
    first = writer.submit(event(title="first"), "a")
    time.sleep(0.1)                                   # the writer holds "first" and waits
    probe = writer.probe()
    second = writer.submit(event(title="second"), "b")
    assert probe.cancel()                            # /health stopped waiting for its probe
    gate.set()
    assert first.result(30).event_id and second.result(30).event_id     # bounds on a hang, not timings
    writer.stop()
    assert [e.event.title for e in sorted(store.list_events(), key=lambda e: e.id)] == ["first", "second"]


def test_what_is_stored_can_be_delivered_text_cut_to_the_channel_limits(store: Store) -> None:
    """`notifyd send` and every source pass here: a title of 900 KiB is stored cut, with "…"."""
    with store.transaction() as tx:
        result = record_event(tx, replace(event(title="t" * 900 * 1024), body="b" * 10_000), CONFIG, 1000.0)
    stored = store.get_event(result.event_id).event
    assert len(stored.title) == 256 and stored.title.endswith("…")
    assert len(stored.body) == 4000 and stored.body.endswith("…")
    from notifyd.templates import render

    message = render(stored)                         # the notification renders within its limits
    assert message.title.startswith("ttt") and message.body.startswith("bbb")


@pytest.mark.parametrize("media", [{"size": float("inf")}, {"outputs": [{"seed": float("nan")}]}])
def test_media_that_is_not_strict_json_is_refused_and_nothing_is_stored(store: Store, media: dict) -> None:
    writer = IngestWriter(store, lambda: CONFIG).start()
    with pytest.raises(BadPayload, match="JSON cannot carry"):
        writer.submit(replace(event(), media=media), "k").result(10)
    assert writer.submit(event(title="after"), "k2").result(10).event_id   # the writer is fine
    writer.stop()
    assert [e.event.title for e in store.list_events()] == ["after"]
    assert store.info().counts["jobs"] == 1


def test_one_bad_event_in_a_batch_is_refused_alone(store: Store) -> None:
    # Submitted before the writer starts, so all of them are one batch: the batch meets the bad
    # event, is rolled back and written again, each event on its own; the others are stored once.
    writer = IngestWriter(store, lambda: CONFIG, clock=lambda: 7000.0)
    futures = [writer.submit(event(title=f"e{n}"), f"key-{n}") for n in range(5)]
    futures.insert(3, writer.submit(replace(event(title="bad"), media={"size": float("nan")}), "key-bad"))
    futures.append(writer.submit(event(title="e1 again"), "key-1"))    # a repeat inside the batch
    writer.start()
    with pytest.raises(BadPayload, match="JSON cannot carry"):
        futures[3].result(10)
    results = [f.result(10) for n, f in enumerate(futures) if n != 3]
    writer.stop()
    assert [r.duplicate for r in results] == [False] * 5 + [True] and results[5].event_id == results[1].event_id
    assert sorted(e.event.title for e in store.list_events()) == [f"e{n}" for n in range(5)]
    assert store.info().counts["jobs"] == 5
    assert len({r.event_id for r in results[:5]}) == 5 and all(
        store.get_event(r.event_id).event.title == f"e{n}" for n, r in enumerate(results[:5]))


async def _submit_in_loop(writer: IngestWriter, events: list[Event]) -> list[object]:
    import asyncio

    return list(await asyncio.gather(*(writer.submit_async(e, f"async-{n}") for n, e in enumerate(events)),
                                     return_exceptions=True))


def test_a_caller_on_an_event_loop_is_answered_on_it_after_the_commit(store: Store) -> None:
    import asyncio

    writer = IngestWriter(store, lambda: CONFIG).start()
    answers = asyncio.run(_submit_in_loop(writer, [event(title="a"), replace(event(), media={"x": float("inf")}),
                                                   event(title="b")]))
    writer.stop()
    assert isinstance(answers[1], BadPayload)
    assert [store.get_event(a.event_id).event.title for a in (answers[0], answers[2])] == ["a", "b"]  # type: ignore[union-attr]
    stopped = asyncio.run(_submit_in_loop(writer, [event(title="late")]))
    assert isinstance(stopped[0], StoreUnavailable)                 # after stop: refused, nothing stored
    assert store.info().counts["events"] == 2
