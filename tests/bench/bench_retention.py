"""Benchmark: how long an ingest write waits while retention purges a large history (SQLite).

SQLite has one writer at a time, so a purge of many finished jobs must let the ingest writer in
between its batches. In one run, on one machine:

- reference: ingest transactions (one event recorded each, as the listener's writer does) on a
  store holding ``--rows`` finished jobs with their attempts, nothing else writing;
- under purge: the same ingest loop while ``purge_by_retention`` deletes those rows.

It prints the median, p99 and maximum wait per ingest transaction for both, and the design figure
(a purge never holds ingest for more than 100 ms). ``--json PATH`` writes the figures.

    python tests/bench/bench_retention.py                 # --rows 100000 --repeat 3
    python tests/bench/bench_retention.py --rows 20000 --repeat 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from notifyd.config import parse_config
from notifyd.ingest import record_event
from notifyd.model import Event
from notifyd.retention import purge_by_retention
from notifyd.store.sqlite import SqliteStore

NOW = 2_000_000_000.0
TARGET_MAX_WAIT_MS = 100.0


def filled_store(path: Path, rows: int) -> SqliteStore:
    """A store with `rows` succeeded jobs (one attempt each) that finished long ago."""
    store = SqliteStore(path)
    store.migrate()
    conn = store.connect()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO events (id, source, source_type, kind, received_at) VALUES (1, 'g', 'generic', 'x', 0)")
    conn.executemany(
        "INSERT INTO jobs (event_id, service, kind, priority, state, attempts, max_attempts, run_at, created_at, "
        "finished_at) VALUES (1, 's', 'notify', 5, 'succeeded', 1, 8, 0, 0, 1000)", [()] * rows)
    conn.execute("INSERT INTO attempts (job_id, started_at, finished_at, outcome) "
                 "SELECT id, 0, 1, 'succeeded' FROM jobs")
    conn.execute("COMMIT")
    conn.close()
    return store


def ingest_waits(store: SqliteStore, keep_going: threading.Event | None, count: int) -> list[float]:
    """Seconds per ingest transaction: `count` of them, or as long as `keep_going` is set."""
    config = parse_config({}, path=None)
    waits: list[float] = []
    while (keep_going.is_set() if keep_going is not None else len(waits) < count):
        started = time.perf_counter()
        with store.transaction() as tx:
            record_event(tx, Event(source="generic", source_type="generic", kind="x", title="t"), config, NOW)
        waits.append(time.perf_counter() - started)
    return waits


def one_round(root: Path, rows: int, n: int) -> dict[str, list[float]]:
    alone = filled_store(root / f"alone-{n}.db", rows)
    reference = ingest_waits(alone, None, 2000)
    alone.close()
    store = filled_store(root / f"purge-{n}.db", rows)
    running = threading.Event()
    running.set()
    purged: list[int] = []

    def purge() -> None:
        purged.append(purge_by_retention(store, 1, 1, now=NOW))
        running.clear()
    purger = threading.Thread(target=purge)
    purger.start()
    under_purge = ingest_waits(store, running, 0)
    purger.join()
    store.close()
    assert purged == [rows], purged
    return {"reference": reference, "under_purge": under_purge}


def summary(waits: list[float]) -> dict[str, float]:
    ms = sorted(w * 1000 for w in waits)
    return {"transactions": len(ms), "median_ms": statistics.median(ms),
            "p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))], "max_ms": ms[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rounds = []
    with tempfile.TemporaryDirectory() as folder:
        for n in range(args.repeat):
            rounds.append(one_round(Path(folder), args.rows, n))
    figures = {side: summary([w for r in rounds for w in r[side]]) for side in ("reference", "under_purge")}
    worst = figures["under_purge"]["max_ms"]
    print(f"ingest transactions while a purge of {args.rows:,} finished jobs runs (SQLite), {args.repeat} round(s)")
    print(f"{'':14} {'transactions':>12} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    for side, f in figures.items():
        print(f"{side:14} {f['transactions']:>12,} {f['median_ms']:>10.2f} {f['p99_ms']:>8.2f} {f['max_ms']:>8.2f}")
    verdict = "met" if worst <= TARGET_MAX_WAIT_MS else "MISSED"
    print(f"longest ingest wait under purge: {worst:.1f} ms (target <= {TARGET_MAX_WAIT_MS:.0f} ms): {verdict}")
    if args.json:
        ref = figures["reference"]
        rows = [{"figure": "ingest wait while retention purges", "name": f"{args.rows:,} finished jobs purged, "
                 "longest wait", "measured": f"{worst:.1f} ms (median {figures['under_purge']['median_ms']:.2f}, "
                 f"p99 {figures['under_purge']['p99_ms']:.2f})", "reference": f"ingest alone: longest "
                 f"{ref['max_ms']:.1f} ms, p99 {ref['p99_ms']:.2f}", "ratio": None,
                 "target": f"≤ {TARGET_MAX_WAIT_MS:.0f} ms", "verdict": verdict, **figures["under_purge"]}]
        args.json.write_text(json.dumps({"benchmark": "bench_retention", "rows": args.rows, "sides": figures,
                                         "target_max_ms": TARGET_MAX_WAIT_MS, "verdict": verdict, "figures": rows},
                                        indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
