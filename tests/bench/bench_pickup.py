"""Benchmark: how soon a running ``notifyd serve`` picks up what it was not told of over HTTP.

The tests check that these things happen and why (tests/test_worker.py, tests/test_daemon.py);
how soon they happen is measured here, on one machine and in one run, each beside a reference:

1. Pickup (design §5 and §8: "a job added by the CLI or the listener is picked up within a
   second"). A job written into the store by another process, as ``notifyd send`` and ``jobs
   retry`` do, timed from its commit to its arrival at a loopback sink (``peers.py``: ``sink``):
   on SQLite the idle poller finds it (``POLL``), on PostgreSQL the daemon is woken by
   LISTEN/NOTIFY. Reference: a webhook POSTed to the daemon, whose listener wakes the workers,
   timed from just before the POST to its arrival. ``--events`` of each, one at a time, a random
   pause apart so that they do not fall into step with the poller.
2. Config follow (design §2: "a running daemon picks up a changed config file within seconds").
   The config file rewritten with a service switched off (then on again, ``--flips`` times),
   timed from the write to the first webhook answered with the new set of jobs (webhooks posted
   10 ms apart). Reference: the same edits on a daemon started with ``--no-watch``, told by SIGHUP
   right after each write.
3. Shutdown (design §11: "SIGTERM waits at most 10 s for running jobs"). SIGTERM to exit while
   a delivery hangs (the receiver accepts the connection and never answers). Reference: SIGTERM
   to exit of the same daemon setup with nothing running.

    python tests/bench/bench_pickup.py
    python tests/bench/bench_pickup.py --events 10 --flips 4 --no-postgresql     # a smoke run
    python tests/bench/bench_pickup.py --json bench-pickup.json

It prints the figures (median, p90, maximum) with the design's targets; ``--json PATH`` writes
them. The PostgreSQL server is $NOTIFYD_TEST_POSTGRES_URL when set, else one ``pgserver`` starts.
It is a script, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from bench_daemon import (
    STARTED,
    Proc,
    Row,
    free_port,
    percentile,
    print_markdown,
    sink_count,
    stored,
    uvicorn_app,
    wait_until,
    webhook_service,
    write_config,
)

PICKUP_TARGET_MS = 1000.0        # §5, §8: within a second
FOLLOW_TARGET_MS = 2000.0        # §2: within seconds (the end-to-end test once held it to two)
GRACE_S = 10.0                   # §11: SIGTERM waits at most this long for running jobs
GRACE_SLACK_S = 1.0              # what the rest of a shutdown may add to the grace


def serve(directory: Path, service: str, *, store_url: str | None = None, args: tuple[str, ...] = ()) -> Proc:
    """`notifyd serve` on a config of its own in directory, with `args` after it."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(directory, port, service, store_url)
    return Proc("notifyd", [sys.executable, "-m", "notifyd", "serve", "--config", str(config), *args], port,
                directory / "notifyd.log", "/health")


def figures(ms: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(ms, 50), 1), "p90_ms": round(percentile(ms, 90), 1),
            "max_ms": round(max(ms), 1), "events": len(ms)}


def described(f: dict[str, float]) -> str:
    return f"p50 {f['p50_ms']:.0f} ms, p90 {f['p90_ms']:.0f} ms, max {f['max_ms']:.0f} ms"


# -- 1. pickup ---------------------------------------------------------------------------------


def arrivals_by_seq(sink: Proc) -> dict[int, float]:
    return {seq: at for at, seq in httpx.get(sink.url + "/arrivals").json() if seq is not None}


def one_at_a_time(sink: Proc, seqs: range, send: Callable[[int], float], rng: random.Random) -> list[float]:
    """Milliseconds from each send's start to its arrival at the sink; `send(seq)` says when it started."""
    started: dict[int, float] = {}
    for seq in seqs:
        before = sink_count(sink)
        started[seq] = send(seq)
        deadline = time.monotonic() + 30
        while sink_count(sink) <= before:
            if time.monotonic() > deadline:
                raise SystemExit(f"event {seq} did not reach the sink within 30 s")
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 0.5))
    arrived = arrivals_by_seq(sink)
    return [(arrived[seq] - at) * 1000 for seq, at in started.items()]


def poster(client: httpx.Client) -> Callable[[int], float]:
    """Sends event `seq` as a webhook POSTed to the daemon; returns the time just before the POST."""
    def send(seq: int) -> float:
        at = time.monotonic()
        answer = client.post("/webhooks/generic", json={"kind": "bench", "title": "pickup", "body": f"seq {seq}"})
        if answer.status_code != 202:
            raise SystemExit(f"POST answered {answer.status_code}: {answer.text}")
        return at
    return send


def writer(store: Any, config: Any) -> Callable[[int], float]:
    """Writes event `seq` and its job into the store, as another process (the CLI) does; returns
    the time of the commit, from which any reader sees the job."""
    from notifyd.ingest import record_event
    from notifyd.model import Event

    def send(seq: int) -> float:
        with store.transaction() as tx:
            record_event(tx, Event(source="generic", source_type="generic", kind="bench", title="pickup",
                                   body=f"seq {seq}", payload="{}"), config, time.time())
        return time.monotonic()
    return send


def measure_pickup(root: Path, args: argparse.Namespace, pg: Any | None) -> list[Row]:
    from notifyd.config import read_config_file
    from notifyd.store import open_store

    rng = random.Random(args.seed)
    rows: list[Row] = []
    engines = ["sqlite"] + (["postgresql"] if pg is not None else [])
    for engine in engines:
        url = pg.new_database("notifyd_bench_pickup") if pg is not None and engine == "postgresql" else None
        for case in ("posted", "written"):
            directory = root / f"pickup-{engine}-{case}"
            sink = uvicorn_app("sink", root / f"sink-{directory.name}.log")
            daemon = serve(directory, webhook_service(sink), store_url=url)
            store = None
            client = httpx.Client(base_url=daemon.url, timeout=10)
            try:
                if case == "posted":
                    send = poster(client)
                else:
                    config = read_config_file(directory / "config.toml", env={})
                    store = open_store(config.store, node_id="bench-writer", pool_size=1)
                    send = writer(store, config)
                # Warm-up, not timed: the first delivery imports the channel's code and connects.
                one_at_a_time(sink, range(100_000, 100_003), send, rng)
                ms = one_at_a_time(sink, range(args.events), send, rng)
            finally:
                client.close()
                if store is not None:
                    store.close()
                daemon.stop()
                sink.stop()
            f = figures(ms)
            if case == "posted":
                how, target = "a webhook POSTed (the listener wakes a worker)", ""
            else:
                woken = "the idle poller finds it" if engine == "sqlite" else "LISTEN/NOTIFY wakes a worker"
                how = f"a job another process wrote ({woken})"
                target = f"max ≤ {PICKUP_TARGET_MS:g} ms: " + ("met" if f["max_ms"] <= PICKUP_TARGET_MS else "MISSED")
            rows.append(Row("pickup → delivered", f"{engine}: {how}, {len(ms)} events", described(f), "",
                            target, numbers=f, reference=rows[-1].case if case == "written" else None))
    return rows


# -- 2. config follow --------------------------------------------------------------------------


def two_services(sink: Proc) -> str:
    return (f'\n[services.sink]\ntype = "webhook"\nurl = "{sink.url}/hook"\nevents = ["*"]\nenabled = true\n'
            f'\n[services.other]\ntype = "webhook"\nurl = "{sink.url}/other"\nevents = ["*"]\n')


def measure_follow(root: Path, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for case, flags in (("SIGHUP after each write (--no-watch)", ("--no-watch",)), ("file watcher", ())):
        directory = root / f"follow-{'hup' if flags else 'watch'}"
        sink = uvicorn_app("sink", root / f"sink-{directory.name}.log")
        daemon = serve(directory, two_services(sink), args=flags)
        config = directory / "config.toml"
        ms: list[float] = []
        try:
            with httpx.Client(base_url=daemon.url, timeout=10) as client:
                n = 0

                def services() -> set[str]:
                    nonlocal n
                    n += 1
                    answer = client.post("/webhooks/generic", json={"kind": "bench", "title": f"follow {n}"})
                    return {j["service"] for j in answer.json()["jobs"]}

                for flip in range(args.flips):
                    enabled = flip % 2 == 1                 # off, on, off, …
                    text = config.read_text()
                    config.write_text(text.replace(f"enabled = {str(not enabled).lower()}",
                                                   f"enabled = {str(enabled).lower()}"))
                    written = time.monotonic()
                    if flags:
                        daemon.popen.send_signal(signal.SIGHUP)
                    expected = {"sink", "other"} if enabled else {"other"}
                    deadline = written + 30
                    while True:
                        at = time.monotonic()
                        if services() == expected:
                            break
                        if at > deadline:
                            raise SystemExit(f"{case}: the daemon did not follow the edit within 30 s")
                        time.sleep(0.01)
                    ms.append((at - written) * 1000)
                    time.sleep(0.3)                         # the watcher's debounce is over before the next edit
        finally:
            daemon.stop()
            sink.stop()
        f = figures(ms)
        target = "" if flags else (f"max ≤ {FOLLOW_TARGET_MS:g} ms: "
                                   + ("met" if f["max_ms"] <= FOLLOW_TARGET_MS else "MISSED"))
        rows.append(Row("config edit → in force", f"{case}, {len(ms)} edits", described(f), "", target,
                        numbers=f, reference=rows[-1].case if rows else None))
    return rows


# -- 3. shutdown -------------------------------------------------------------------------------


def sigterm_to_exit(daemon: Proc) -> float:
    at = time.monotonic()
    daemon.popen.send_signal(signal.SIGTERM)
    try:
        code = daemon.popen.wait(60)
    except subprocess.TimeoutExpired:
        daemon.popen.kill()
        raise SystemExit("notifyd serve was still running 60 s after SIGTERM") from None
    if code != 0:
        raise SystemExit(f"notifyd serve exited {code} after SIGTERM")
    return time.monotonic() - at


def measure_shutdown(root: Path) -> list[Row]:
    silent = socket.socket()              # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    service = (f'\n[services.hang]\ntype = "webhook"\nurl = "http://127.0.0.1:{silent.getsockname()[1]}/hook"\n'
               'events = ["*"]\n')
    try:
        idle = serve(root / "shutdown-idle", service)
        idle_s = sigterm_to_exit(idle)
        directory = root / "shutdown-busy"
        busy = serve(directory, service)
        answer = httpx.post(busy.url + "/webhooks/generic", json={"kind": "bench", "title": "hangs"}, timeout=10)
        if answer.status_code != 202:
            raise SystemExit(f"POST answered {answer.status_code}: {answer.text}")
        wait_until(lambda: stored(directory, "SELECT count(*) FROM jobs WHERE service = 'hang' "
                                             "AND state = 'running'") == 1, 30,
                   "the delivery to start")
        busy_s = sigterm_to_exit(busy)
        given_back = stored(directory, "SELECT count(*) FROM jobs WHERE service = 'hang' AND state = 'queued' "
                                       "AND attempts = 0")
    finally:
        silent.close()
    limit = GRACE_S + GRACE_SLACK_S
    return [
        Row("SIGTERM → exit", "nothing running", f"{idle_s:.2f} s", "", "", numbers={"seconds": round(idle_s, 2)}),
        Row("SIGTERM → exit", f"a delivery that never ends (jobs given back: {given_back})",
            f"{busy_s:.2f} s ({busy_s - idle_s:+.2f} s)", "", f"extra ≤ {GRACE_S:g} s grace + {GRACE_SLACK_S:g} s: "
            + ("met" if busy_s - idle_s <= limit and given_back == 1 else "MISSED"),
            numbers={"seconds": round(busy_s, 2), "extra_seconds": round(busy_s - idle_s, 2)},
            reference="nothing running"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--events", type=int, default=30, help="timed pickups per case")
    parser.add_argument("--flips", type=int, default=10, help="timed config edits per case")
    parser.add_argument("--seed", type=int, default=20_240_917, help="seed of the pauses between events")
    parser.add_argument("--no-postgresql", action="store_true", help="leave out the PostgreSQL pickup")
    parser.add_argument("--no-shutdown", action="store_true", help="leave out the shutdown figures (about 12 s)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write every figure to PATH as JSON")
    args = parser.parse_args(argv)
    # A TERM (timeout, Ctrl-C from a supervisor) unwinds like an exception, so the finally blocks
    # stop the daemons, the sinks and the PostgreSQL server this run started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"notifyd pickup benchmark: python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}", flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    pg = None
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-") as tmp:
        root = Path(tmp)
        try:
            if not args.no_postgresql:
                from pg_server import PostgresServer

                pg = PostgresServer()
                notes.append(f"PostgreSQL {pg.version()} from {pg.origin}")
            rows += measure_pickup(root, args, pg)
            rows += measure_follow(root, args)
            if not args.no_shutdown:
                rows += measure_shutdown(root)
        finally:
            for proc in STARTED:
                proc.stop()
            if pg is not None:
                pg.stop()
    print()
    print_markdown(rows)
    print()
    for note in notes:
        print(note)
    wall = time.perf_counter() - started
    print(f"total wall time: {wall:.0f} s")
    if args.json:
        document = {"benchmark": "bench_pickup",
                    "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                                "cpus": os.cpu_count(), "machine": platform.machine(), "system": platform.system()},
                    "options": {k: v for k, v in vars(args).items() if k != "json"},
                    "wall_seconds": round(wall), "figures": [r.as_json() for r in rows], "notes": notes}
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
