"""Every benchmark in one run: each figure of design §12 beside its reference, and one JSON file.

    python tests/bench/run.py --json bench.json              # the full run: about 30 minutes and the soak's hour
    python tests/bench/run.py --skip soak --json bench.json  # all but the hour-long soak
    python tests/bench/run.py --quick --json bench.json      # a smoke run of every part (about 8 minutes)
    python tests/bench/run.py --only queue --only peers      # some of them

It runs the benchmarks of this folder one after another, each in its own Python process (so one's
imports, threads and memory never weigh on the next one's figures), each told to write its JSON;
then prints one table of every figure with its reference, ratio, target and verdict, and writes
them all, with the machine they ran on, to `--json PATH`. Each benchmark can also be run alone
(`python tests/bench/bench_queue.py --help`); their docstrings say what each figure means.

What it needs beyond `pip install -e '.[bench]'`: wrk (`apt-get install wrk`) for the HTTP load,
Chromium and its driver for the status page (`apt-get install chromium chromium-driver`; the
page's benchmark is left out, with a note, when they are missing). PostgreSQL comes from the
`pgserver` package unless $NOTIFYD_TEST_POSTGRES_URL names a server.
It is a script, not a test: pytest does not collect it, and the test suite asserts no timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Part:
    """One benchmark script and the options of a full and of a quick run."""

    name: str
    script: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()         # programs on PATH (or absolute paths) it cannot run without


PARTS = (
    Part("cli", "bench_cli.py", (), ("--runs", "5")),
    Part("queue", "bench_queue.py", (), ("--jobs", "500", "--history", "10000", "--repeat", "1")),
    Part("peers", "bench_peers.py", (), ("--jobs", "500", "--repeat", "1")),
    Part("daemon", "bench_daemon.py", (),
         ("--seconds", "3", "--repeat", "1", "--latency-events", "50", "--deliveries", "2000",
          "--posts", "1000", "--idle-seconds", "20"), needs=("wrk",)),
    Part("apprise", "bench_apprise.py", ("--repeat", "1"), ("--deliveries", "2000", "--repeat", "1")),
    Part("pickup", "bench_pickup.py", (), ("--events", "10", "--flips", "4")),
    Part("retention", "bench_retention.py", (), ("--rows", "20000", "--repeat", "1")),
    Part("ui", "bench_ui.py", (), ("--loads", "5"), needs=("/usr/bin/chromium", "/usr/bin/chromedriver")),
    Part("soak", "bench_soak.py", (), ("--seconds", "60", "--every", "5")),     # an hour when full
)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version, "cpus": os.cpu_count(),
            "cpu": model, "machine": platform.machine(), "system": f"{platform.system()} {platform.release()}",
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def missing(part: Part) -> list[str]:
    return [n for n in part.needs if not (Path(n).exists() if n.startswith("/") else shutil.which(n))]


def run_part(part: Part, out: Path, *, quick: bool, log_dir: Path) -> dict[str, Any]:
    """Run one benchmark in its own process; its JSON document, or one that says why there is none."""
    cmd = [sys.executable, str(BENCH / part.script), *(part.quick if quick else part.full), "--json", str(out)]
    print(f"\n=== {part.name}: {' '.join(cmd[1:])}", flush=True)
    started = time.monotonic()
    log = log_dir / f"{part.name}.log"
    with open(log, "w") as sink:
        # Its own table goes to the terminal as it comes, and to a log beside the JSON.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=BENCH.parent.parent)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sink.write(line)
        code = proc.wait()
    seconds = round(time.monotonic() - started)
    if code != 0 or not out.exists():
        return {"benchmark": part.name, "error": f"exited {code} after {seconds} s; see {log}", "figures": []}
    document: dict[str, Any] = json.loads(out.read_text())
    document.setdefault("wall_seconds", seconds)
    return document


def cell(value: Any) -> str:
    return "" if value is None else str(value)


def summary_rows(documents: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, document in documents.items():
        for figure in document.get("figures", []):
            ratio = figure.get("ratio")
            rows.append([name, cell(figure.get("figure")), cell(figure.get("name")), cell(figure.get("measured")),
                         cell(figure.get("reference")), f"{ratio:g}×" if isinstance(ratio, (int, float)) else "",
                         cell(figure.get("target")), cell(figure.get("verdict"))])
    return rows


def print_summary(documents: dict[str, dict[str, Any]]) -> None:
    print("\n## Every figure, beside its reference\n")
    print("| bench | figure | case | measured | reference | ratio | target | verdict |")
    print("|---|---|---|---|---|--:|---|---|")
    for row in summary_rows(documents):
        print("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
    for name, document in documents.items():
        if "error" in document:
            print(f"\n{name}: NOT MEASURED: {document['error']}")
    verdicts = [r[-1] for r in summary_rows(documents)]
    print(f"\n{verdicts.count('met')} targets met, {verdicts.count('MISSED')} missed, "
          f"{sum(1 for d in documents.values() if 'error' in d)} benchmarks not run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--json", metavar="PATH", type=Path, help="write every figure, and the machine, to PATH")
    parser.add_argument("--quick", action="store_true", help="smaller runs of every part: a smoke run, not figures")
    parser.add_argument("--only", choices=[p.name for p in PARTS], action="append", help="run only these parts")
    parser.add_argument("--skip", choices=[p.name for p in PARTS], action="append", default=[],
                        help="leave these parts out (the hour-long soak, say, run on its own)")
    args = parser.parse_args(argv)
    chosen = [p for p in PARTS if (not args.only or p.name in args.only) and p.name not in args.skip]
    started = time.monotonic()
    info = machine()
    print(f"notifyd benchmarks: Python {info['python']}, SQLite {info['sqlite']}, {info['cpus']} CPUs "
          f"({info['cpu'] or info['machine']}), load average {info['load_average_at_start']}")
    documents: dict[str, dict[str, Any]] = {}
    tmp = tempfile.mkdtemp(prefix="notifyd-bench-")     # kept: each part's JSON and full output
    if True:
        for part in chosen:
            absent = missing(part)
            if absent:
                documents[part.name] = {"benchmark": part.name, "figures": [],
                                        "error": f"needs {', '.join(absent)}, not found on this machine"}
                continue
            documents[part.name] = run_part(part, Path(tmp) / f"{part.name}.json", quick=args.quick, log_dir=Path(tmp))
        print_summary(documents)
        wall = round(time.monotonic() - started)
        print(f"total wall time: {wall} s")
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "quick": args.quick, "wall_seconds": wall,
                                             "benchmarks": documents}, indent=2, ensure_ascii=False) + "\n")
            print(f"wrote {args.json}")
        print(f"each part's output and JSON: {tmp}")
    return 1 if any("error" in d for d in documents.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
