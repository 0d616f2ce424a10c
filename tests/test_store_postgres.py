"""The PostgreSQL engine's own promises, on a real server: several nodes on one database (claims
never shared, migrations once, maintenance on one node at a time, wake-ups across nodes), a
server that refuses connections answering StoreUnavailable and the pool recovering by itself,
and a URL whose password is never shown."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest

from notifyd.config import mask_database_url as mask_url
from notifyd.errors import StoreUnavailable
from notifyd.model import JobKind, JobSpec
from notifyd.outcomes import record_outcome, succeeded
from notifyd.store.postgres import SCHEMA_VERSION, PostgresStore

NOW = 1_700_000_000.0


@pytest.fixture
def url(postgres) -> str:
    return str(postgres.new_database())


@pytest.fixture
def nodes(url: str) -> Iterator[list[PostgresStore]]:
    made = [PostgresStore(url, node_id=f"node-{n}", pool_size=4) for n in range(2)]
    made[0].migrate()
    yield made
    for node in made:
        node.close()


def specs(count: int) -> list[JobSpec]:
    return [JobSpec(service=f"s{n % 5}", kind=JobKind.NOTIFY, priority=1 + n % 10) for n in range(count)]


def test_migrations_run_once_when_nodes_start_together(url: str) -> None:
    stores = [PostgresStore(url, node_id=f"n{i}", pool_size=2) for i in range(4)]
    versions: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def boot(store: PostgresStore) -> None:
        start.wait(30)
        try:
            versions.append(store.migrate())
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(versions) == [0] + [SCHEMA_VERSION] * 3      # one node migrated, the others found it done
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM notifyd_schema").fetchone() == (SCHEMA_VERSION,)
    for s in stores:
        s.close()


def test_two_nodes_never_claim_one_job(nodes: list[PostgresStore]) -> None:
    with nodes[0].transaction() as tx:
        ids = [e.id for e in tx.enqueue(None, specs(400), 3, 0)]
    claimed: dict[str, list[int]] = {"node-0": [], "node-1": []}
    lock = threading.Lock()

    def run(store: PostgresStore) -> None:
        mine = []
        while (claim := store.claim(NOW, 30.0)) is not None:
            mine.append(claim.job.id)
            record_outcome(store, claim, succeeded(""), NOW)
        with lock:
            claimed[store.node_id].extend(mine)

    threads = [threading.Thread(target=run, args=(nodes[n % 2],)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    every = claimed["node-0"] + claimed["node-1"]
    assert sorted(every) == sorted(ids)
    assert claimed["node-0"] and claimed["node-1"]              # both nodes did work
    nodes_seen = {a.node for i in ids[:50] for a in nodes[1].job_attempts(i)}
    assert nodes_seen <= {"node-0", "node-1"} and len(nodes_seen) >= 1


def test_maintenance_runs_on_one_node_at_a_time(nodes: list[PostgresStore]) -> None:
    with nodes[0].maintenance_lock() as first:
        with nodes[1].maintenance_lock() as second:
            assert first and not second
    with nodes[1].maintenance_lock() as second:
        assert second


def test_a_node_wakes_when_another_enqueues(nodes: list[PostgresStore]) -> None:
    woken = threading.Event()
    stop = nodes[0].subscribe(woken.set)
    try:
        assert woken.wait(30)                      # once on connecting: it may have missed some
        woken.clear()
        time.sleep(0.2)
        assert not woken.is_set()
        with nodes[1].transaction() as tx:
            tx.enqueue(None, specs(1), 3, NOW)
        assert woken.wait(30)                      # a bound on a hang: how soon is bench_pickup.py's
        woken.clear()
        nodes[1].retry([999], NOW)                 # nothing moved: nobody is woken
        time.sleep(0.3)
        assert not woken.is_set()
    finally:
        stop()


def test_a_refusing_server_is_unavailable_and_the_pool_recovers(url: str, postgres) -> None:
    store = PostgresStore(url, node_id="n", pool_size=2)
    store.migrate()
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(postgres.admin_url, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        try:
            for _ in range(3):                 # broken pooled connections first, then refused new ones
                with pytest.raises(StoreUnavailable, match="PostgreSQL server"):
                    with store.transaction() as tx:
                        tx.enqueue(None, specs(1), 3, NOW)
            with pytest.raises(StoreUnavailable):
                store.queue_depth(NOW)
        finally:
            admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    deadline = time.monotonic() + 30
    while True:
        try:
            with store.transaction() as tx:
                tx.enqueue(None, specs(1), 3, NOW)
            break
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert store.queue_depth(NOW).queued == 1       # only the write after recovery was stored
    store.close()


def test_the_password_is_never_shown() -> None:
    url = "postgresql://notifyd:s3cret-pw@db.example:5432/notifyd?sslmode=require"
    assert mask_url(url) == "postgresql://notifyd:***@db.example:5432/notifyd?sslmode=require"
    assert "s3cret" not in PostgresStore(url, node_id="n").location
    assert mask_url("postgresql://db.example/notifyd") == "postgresql://db.example/notifyd"
    assert "pw123" not in mask_url("postgresql://db.example/notifyd?password=pw123")


def test_a_digest_being_joined_is_not_claimed_until_the_join_commits(nodes: list[PostgresStore]) -> None:
    """Node A ingests an event into a queued digest while node B looks for work: B must not claim
    the digest (and read its events) between A's link and A's commit, or A's event is never told."""
    from notifyd.model import Event

    a, b = nodes
    now = time.time()
    digest = JobSpec(service="phone", kind=JobKind.NOTIFY, priority=5, unique_key="digest:phone")
    with a.transaction() as tx:
        first = tx.insert_event(Event("nas", "generic", "backup", "first"), now)
        [job] = tx.enqueue(first, [digest], 3, now)
    joined = threading.Event()
    release = threading.Event()

    def join() -> None:
        with a.transaction() as tx:
            second = tx.insert_event(Event("nas", "generic", "backup", "second"), now)
            [again] = tx.enqueue(second, [digest], 3, now)
            assert again.collapsed and again.id == job.id
            joined.set()
            release.wait(10)

    writer = threading.Thread(target=join)
    writer.start()
    assert joined.wait(10)
    assert b.claim(now + 1, 30) is None                 # the job is being joined: skipped, not claimed
    release.set()
    writer.join(10)
    claim = b.claim(now + 1, 30)
    assert claim is not None and claim.job.id == job.id
    assert [e.event.title for e in b.events_of_job(job.id)] == ["first", "second"]
