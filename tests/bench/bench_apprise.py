"""Benchmark of the Apprise channel in a running ``notifyd serve``: deliveries/s, the daemon's CPU
per delivery, its RSS and whether the RSS grows with deliveries, beside the ``webhook`` channel.

What it measures, on one machine and in one run (design §12, issue 14 items 2 and 3):

1. Deliveries/s with the default worker threads: ``2 × --deliveries`` events are written into
   the store (with notifyd's own ingest code) before the daemon starts, one job each for one
   service pointing at a counting sink on 127.0.0.1 (``peers.py``: ``sink``); the rate is taken
   between the first and the last arrival at the sink. Cases: the ``webhook`` channel and Apprise
   ``json://``, run ``--repeat`` times alternately (the best rate of each is reported, with
   the Apprise/webhook ratio of the best runs). Every job must end ``succeeded``.
2. The daemon's CPU (user + system, from /proc) per delivery over the same window: what the rate
   would be if the daemon had the machine's cores to itself, and the measure that the other
   loads on a shared machine disturb least.
3. RSS (VmRSS, and the peak VmHWM) once ``--deliveries`` jobs have arrived, and again after
   ``2 × --deliveries``: the second minus the first is the growth (none wanted). The figure
   the design's target is about is the Apprise case's RSS after ``--deliveries``.

Whether the RSS stays put over time, at a steady rate of webhooks, is ``bench_soak.py``'s.

Run it from the repository root:

    python tests/bench/bench_apprise.py                              # --deliveries 10000
    python tests/bench/bench_apprise.py --deliveries 2000 --repeat 1  # a smoke run
    python tests/bench/bench_apprise.py --json bench-apprise.json

``--json PATH`` writes every figure (its numbers, reference, ratio, target and verdict) and the
notes as JSON. It is a script, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_daemon import (  # noqa: E402  (the daemon harness this benchmark shares)
    STARTED,
    Row,
    apprise_service,
    notifyd,
    prefill,
    print_markdown,
    sink_count,
    stored,
    uvicorn_app,
    wait_until,
    webhook_service,
)

DELIVERIES_TARGET = 1000.0
RSS_TARGET_MB = 64.0
GROWTH_TOLERANCE_MB = 1.0      # what counts as "no growth" between two readings of RSS
CASES = (("webhook channel", webhook_service), ("apprise json://", apprise_service))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(root: Path, case: str, make: Any, count: int, run: int) -> dict[str, float]:
    """2 × count queued jobs delivered by a fresh daemon: its rate, CPU per delivery, RSS at count
    and at 2 × count."""
    directory = root / f"{case.split()[0]}-{run}"
    sink = uvicorn_app("sink", root / f"sink-{directory.name}.log")
    daemon = notifyd(directory, make(sink), lambda config: prefill(config, 2 * count))
    readings: dict[str, Any] = {}
    try:
        pid = daemon.popen.pid
        wait_until(lambda: sink_count(sink) >= 100, 120, "the first deliveries")
        cpu_from, arrived_from = cpu_seconds(pid), sink_count(sink)
        wait_until(lambda: sink_count(sink) >= count, 900, f"{count} deliveries")
        readings["half"] = daemon.rss_mb()
        wait_until(lambda: sink_count(sink) >= 2 * count, 900, f"{2 * count} deliveries")
        cpu_to, arrived_to = cpu_seconds(pid), sink_count(sink)
        readings["full"] = daemon.rss_mb()
        arrivals = sorted(at for at, _ in httpx.get(sink.url + "/arrivals", timeout=30).json())
    finally:
        daemon.stop()
        sink.stop()
    not_done = stored(directory, "SELECT count(*) FROM jobs WHERE service = 'sink' AND state != 'succeeded'")
    if not_done:
        raise SystemExit(f"{case}: {not_done} jobs did not succeed")
    rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    cpu_ms = 1000 * (cpu_to - cpu_from) / max(1, arrived_to - arrived_from)
    print(f"  {case} run {run + 1}: {rate:,.0f}/s, {cpu_ms:.2f} ms CPU per delivery, RSS at {count:,} "
          f"{readings['half'][0]:.1f} MB, at {2 * count:,} {readings['full'][0]:.1f} MB", flush=True)
    return {"rate": rate, "cpu_ms": cpu_ms, "rss_half": readings["half"][0], "hwm_half": readings["half"][1],
            "rss_full": readings["full"][0], "hwm_full": readings["full"][1]}


def measure_deliveries(root: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    runs: dict[str, list[dict[str, float]]] = {case: [] for case, _ in CASES}
    for run in range(args.repeat):
        order = CASES if run % 2 == 0 else CASES[::-1]        # drift on the machine hits both alike
        for case, make in order:
            runs[case].append(one_run(root, case, make, args.deliveries, run))
    best = {case: max(found, key=lambda r: r["rate"]) for case, found in runs.items()}
    reference = CASES[0][0]
    rows: list[Row] = []
    notes: list[str] = []
    for case, _ in CASES:
        b = best[case]
        is_ref = case == reference
        ratio = "" if is_ref else f"{b['rate'] / best[reference]['rate']:.2f}×"
        rows.append(Row("deliveries/s, default threads", f"{case}, {2 * args.deliveries:,} queued jobs, SQLite",
                        f"{b['rate']:,.0f}/s (best of {args.repeat})", ratio,
                        f"≥ {DELIVERIES_TARGET:g}/s: " + ("met" if b["rate"] >= DELIVERIES_TARGET else "MISSED"),
                        numbers={"deliveries_per_s": round(b["rate"], 1), "jobs": 2 * args.deliveries},
                        reference=None if is_ref else reference))
        cpu = min(r["cpu_ms"] for r in runs[case])
        cpu_ref = min(r["cpu_ms"] for r in runs[reference])
        rows.append(Row("daemon CPU per delivery", case, f"{cpu:.2f} ms (least of {args.repeat}; "
                        f"{1000 / cpu:,.0f}/s if one core were its own)", "" if is_ref else f"{cpu / cpu_ref:.2f}×",
                        "reference" if is_ref else "",
                        numbers={"cpu_ms_per_delivery": round(cpu, 3)}, reference=None if is_ref else reference))
        rss = min(r["rss_half"] for r in runs[case])
        hwm = min(r["hwm_half"] for r in runs[case])
        rows.append(Row(f"RSS after {args.deliveries:,} deliveries", case, f"{rss:.1f} MB (peak {hwm:.1f} MB)",
                        target=(f"≤ {RSS_TARGET_MB:g} MB: " + ("met" if hwm <= RSS_TARGET_MB else "MISSED"))
                        if not is_ref else "reference",
                        numbers={"rss_mb": round(rss, 1), "peak_mb": round(hwm, 1)}))
        growth = max(r["rss_full"] - r["rss_half"] for r in runs[case])
        rows.append(Row(f"RSS growth, {args.deliveries:,} → {2 * args.deliveries:,} deliveries", case,
                        f"{growth:+.1f} MB (most of {args.repeat})",
                        target=f"≤ {GROWTH_TOLERANCE_MB:g} MB: " + ("met" if growth <= GROWTH_TOLERANCE_MB
                                                                    else "MISSED"),
                        numbers={"growth_mb": round(growth, 2)}))
        notes.append(f"{case}: runs " + "; ".join(f"{r['rate']:,.0f}/s, {r['cpu_ms']:.2f} ms CPU, RSS "
                                                  f"{r['rss_half']:.1f} → {r['rss_full']:.1f} MB" for r in runs[case]))
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=10_000,
                        help="RSS is read after this many deliveries and after twice as many (2x are queued)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each case, alternated")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write every figure to PATH as JSON")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print(f"notifyd Apprise channel benchmark: python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}, load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-apprise-") as tmp:
        try:
            rows, notes = measure_deliveries(Path(tmp), args)
        finally:
            for proc in STARTED:
                proc.stop()
    print()
    print_markdown(rows)
    print()
    for note in notes:
        print(note)
    notes.append(f"load average at the end: {os.getloadavg()[0]:.2f}")
    wall = time.perf_counter() - started
    print(f"total wall time: {wall:.0f} s")
    if args.json:
        document = {"benchmark": "bench_apprise",
                    "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                                "cpus": os.cpu_count(), "machine": platform.machine(), "system": platform.system()},
                    "options": {k: v for k, v in vars(args).items() if k != "json"},
                    "wall_seconds": round(wall), "figures": [r.as_json() for r in rows], "notes": notes}
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
