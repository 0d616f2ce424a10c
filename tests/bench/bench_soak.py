"""Soak: a running ``notifyd serve`` fed webhooks at a steady rate for an hour; does its memory stay put?

design §12 asks for RSS ≤ 64 MB after 10,000 deliveries through Apprise, and the issue for no
growth over an hour. One daemon on its defaults (SQLite beside its config, 4 worker threads)
with one Apprise ``json://`` service pointing at a counting uvicorn sink on 127.0.0.1
(``peers.py``: ``sink``), fed ``--rate`` generic webhooks a second (each body unique) for
``--seconds``; its RSS (VmRSS from /proc) is read every ``--every`` seconds. Reported:

- RSS at the end and at its peak, against the 64 MB target;
- growth: the mean RSS of the last fifth of the run minus that of its second fifth (the first
  fifth is warm-up: Apprise's plugins load, SQLite's page cache fills), against "none" (≤ 2 MB,
  what a few pages of cache come and go by); and the least-squares slope over the last four
  fifths, in MB per hour;
- the deliveries the sink counted against the webhooks accepted (every one must arrive).

    python tests/bench/bench_soak.py                        # an hour, 20 webhooks a second
    python tests/bench/bench_soak.py --seconds 300 --rate 50 --json soak.json

The reference is the bare uvicorn+Starlette endpoint (``peers.py``: ``bare``) posted to at the
same rate over the same hour: what the HTTP stack alone does to RSS.
It is a script, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_daemon import (  # noqa: E402
    RSS_TARGET_MB,
    STARTED,
    Proc,
    Row,
    apprise_service,
    notifyd,
    print_markdown,
    sink_count,
    uvicorn_app,
    wait_until,
)

GROWTH_TARGET_MB = 2.0


def rss_mb(proc: Proc) -> float:
    return proc.rss_mb()[0]


def slope_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) in MB per hour."""
    if len(samples) < 2:
        return 0.0
    xs, ys = [s for s, _ in samples], [m for _, m in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


def fifth(samples: list[tuple[float, float]], n: int, seconds: float) -> list[float]:
    return [m for s, m in samples if n * seconds / 5 <= s < (n + 1) * seconds / 5] or [samples[-1][1]]


def soak(root: Path, args: argparse.Namespace) -> tuple[list[Row], list[str], dict[str, Any]]:
    sink = uvicorn_app("sink", root / "sink.log")
    bare = uvicorn_app("bare", root / "bare.log")
    daemon = notifyd(root / "soak", apprise_service(sink))
    samples: dict[str, list[tuple[float, float]]] = {"notifyd": [], "bare": []}
    accepted = 0
    try:
        client = httpx.Client(timeout=30)
        started = time.monotonic()
        next_sample = started
        sent = 0
        while (elapsed := time.monotonic() - started) < args.seconds:
            due = started + sent / args.rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            body = {"title": f"soak {sent}", "body": f"seq {sent} of a steady stream", "level": "info"}
            answer = client.post(daemon.url + "/webhooks/generic", json=body)
            accepted += answer.status_code == 202
            client.post(bare.url + "/webhooks/generic", json=body)
            sent += 1
            if time.monotonic() >= next_sample:
                samples["notifyd"].append((elapsed, rss_mb(daemon)))
                samples["bare"].append((elapsed, rss_mb(bare)))
                next_sample += args.every
        wait_until(lambda: sink_count(sink) >= accepted, 120, "every delivery")
        delivered = sink_count(sink)
        final = {"notifyd": daemon.rss_mb(), "bare": bare.rss_mb()}
    finally:
        daemon.stop()
        bare.stop()
        sink.stop()
    rows, figures = [], {}
    for name, label in (("notifyd", "notifyd serve, Apprise json://"), ("bare", "bare endpoint")):
        series = samples[name]
        growth = statistics.fmean(fifth(series, 4, args.seconds)) - statistics.fmean(fifth(series, 1, args.seconds))
        slope = slope_per_hour([s for s in series if s[0] >= args.seconds / 5])
        end, peak = final[name]
        figures[name] = {"rss_end_mb": round(end, 1), "rss_peak_mb": round(peak, 1), "growth_mb": round(growth, 2),
                         "slope_mb_per_hour": round(slope, 2), "samples": [[round(s), round(m, 2)] for s, m in series]}
        reference = None if name == "bare" else "bare endpoint"
        rows.append(Row("RSS over a soak", f"{label}, {args.seconds / 60:.0f} min at {args.rate:g}/s",
                        f"{end:.1f} MB at the end, peak {peak:.1f} MB", "",
                        (f"≤ {RSS_TARGET_MB:g} MB: " + ("met" if peak <= RSS_TARGET_MB else "MISSED"))
                        if name == "notifyd" else "reference",
                        numbers={"rss_end_mb": round(end, 1), "rss_peak_mb": round(peak, 1)}, reference=reference))
        rows.append(Row("RSS growth over a soak", f"{label}, last fifth − second fifth",
                        f"{growth:+.2f} MB ({slope:+.2f} MB/h)", "",
                        (f"≤ {GROWTH_TARGET_MB:g} MB: " + ("met" if growth <= GROWTH_TARGET_MB else "MISSED"))
                        if name == "notifyd" else "reference",
                        numbers={"growth_mb": round(growth, 2), "slope_mb_per_hour": round(slope, 2)},
                        reference=reference))
    notes = [f"{accepted:,} webhooks accepted, {delivered:,} deliveries counted by the sink"]
    if delivered < accepted:
        raise SystemExit(f"only {delivered} of {accepted} deliveries arrived")
    return rows, notes, figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3600.0, help="length of the soak")
    parser.add_argument("--rate", type=float, default=20.0, help="webhooks posted a second (to each side)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between RSS readings")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write every figure to PATH as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="notifyd-soak-") as tmp:
        try:
            rows, notes, series = soak(Path(tmp), args)
        finally:
            for proc in STARTED:
                proc.stop()
    print()
    print_markdown(rows)
    for note in notes:
        print(note)
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "bench_soak", "options": {k: v for k, v in vars(args).items()
                                                                               if k != "json"},
                                         "figures": [r.as_json() for r in rows], "series": series, "notes": notes},
                                        indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
