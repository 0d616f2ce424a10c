"""Benchmark of the CLI's start: `notifyd --help`, `notifyd jobs list` and `notifyd services list`.

What it measures, on one machine and in one run (design §12: `notifyd --help` ≤ 150 ms, `jobs list`
and `services list` ≤ 250 ms):

1. The wall time of each command, run as a fresh process (``python -m notifyd …``, what the
   console script runs) from the start of the child to its exit, as the median and p90 of
   ``--runs`` runs, and the CPU time it used (user + system, median). Beside them, in the same
   rounds, the references: ``python -c pass`` (the interpreter's start with this machine's site
   packages and their .pth files), ``python -I -S -c pass`` (the bare interpreter), and
   ``python -c "import typer"`` (the least any typer CLI can take). The cases are interleaved, one
   run of each per round in an order rotated every round, so drift on the machine hits each alike.
2. Each command's figure net of interpreter start: its median minus ``python -c pass``'s median.
   The verdict is read on that net figure, because on a loaded or slow machine the interpreter's
   start alone can exceed the target (the absolute figures are printed and written too).
3. With ``--imports N`` (default 3), what each command still imports: the 15 modules with the
   largest cumulative import time (median of N runs under ``python -X importtime``).
4. With ``--baseline DIR`` (another source tree of notifyd, such as an earlier commit unpacked with
   ``git archive``), the same commands run from that tree too, in the same interleaved rounds,
   and what this tree saves on each.

The commands run against a config and a SQLite store the benchmark creates in a temporary folder
(``--events`` manual events, each queued for both services: an Apprise one, as the README's quick
start adds, and a webhook one). ``services list`` shows each service's target with its secrets
masked, and for an Apprise URL that is Apprise's own privacy form, so it imports Apprise; a
"(diag.)" row runs it on the same config without the Apprise service. Children get this
environment without notifyd's variables, ``NOTIFYD_CONFIG`` set, ``COLUMNS=100``, and a private
``PYTHONPYCACHEPREFIX`` (so compiled files are written and reused whatever the checkout's
``__pycache__`` holds, as for an installed package; the untimed warm-up runs write them).

Run it from the repository root:

    python tests/bench/bench_cli.py                      # defaults: --runs 20 --imports 3 (about a minute)
    python tests/bench/bench_cli.py --runs 5 --imports 0 # a smoke run
    python tests/bench/bench_cli.py --json bench-cli.json
    git archive HEAD | tar -x -C /tmp/before && python tests/bench/bench_cli.py --baseline /tmp/before

It is a script, not a test: pytest does not collect it, and the test suite asserts no timings
(tests/test_cli_imports.py checks what each command imports, by name).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_daemon import Row  # noqa: E402  (one row shape, and one JSON, for every benchmark)

ROOT = Path(__file__).resolve().parent.parent.parent
HELP_TARGET_MS = 150.0
LIST_TARGET_MS = 250.0
TOP_IMPORTS = 15


@dataclass(frozen=True)
class Case:
    """One command line timed; `target_ms` is the design's, read net of `python -c pass`."""

    name: str
    argv: tuple[str, ...]
    target_ms: float | None = None
    config: str = "full"            # which of the benchmark's configs NOTIFYD_CONFIG names
    diagnostic: bool = False
    root: Path = ROOT               # the source tree whose notifyd runs (--baseline adds another)
    baseline_of: str | None = None  # for a --baseline case: the case it is the before of


PASS = "python -c pass"
CASES = (
    Case(PASS, ("-c", "pass")),
    Case("python -I -S -c pass", ("-I", "-S", "-c", "pass")),
    Case('python -c "import typer"', ("-c", "import typer")),
    Case("notifyd --help", ("-m", "notifyd", "--help"), HELP_TARGET_MS),
    Case("notifyd jobs list", ("-m", "notifyd", "jobs", "list"), LIST_TARGET_MS),
    Case("notifyd services list", ("-m", "notifyd", "services", "list"), LIST_TARGET_MS),
    Case("notifyd services list (no Apprise service)", ("-m", "notifyd", "services", "list"), LIST_TARGET_MS,
         config="no-apprise", diagnostic=True),
)


@dataclass
class Timings:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall_ms)

    @property
    def p90(self) -> float:
        ordered = sorted(self.wall_ms)
        return ordered[math.ceil(0.9 * len(ordered)) - 1]

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms)


# -- set-up ----------------------------------------------------------------------------------------

SERVICES = {
    "discord": '[services.discord]\ntype = "apprise"\nurl = "discord://1234567890/abcdefghijklmnop"\n',
    "hook": '[services.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n',
}


def write_configs(folder: Path) -> dict[str, Path]:
    """The benchmark's two configs, both on one SQLite store in `folder`."""
    store = f'[store]\npath = "{folder / "notifyd.db"}"\n\n'
    full = folder / "config.toml"
    full.write_text(store + "\n".join(SERVICES.values()))
    lean = folder / "config-no-apprise.toml"
    lean.write_text(store + SERVICES["hook"])
    return {"full": full, "no-apprise": lean}


def fill_store(config: Path, events: int) -> int:
    """`events` manual events, queued as `notifyd send` queues them; the number of jobs made."""
    from notifyd.config import load_config
    from notifyd.ingest import record_event
    from notifyd.manual import CLI_SOURCE, ManualMessage, manual_event
    from notifyd.store import open_store

    cfg = load_config(str(config))
    store = open_store(cfg.store, node_id="bench-cli")
    jobs = 0
    try:
        store.migrate()
        for i in range(events):
            event = manual_event(ManualMessage(title=f"bench {i}", body=f"message {i} of {events}"), source=CLI_SOURCE)
            with store.transaction() as tx:
                jobs += len(record_event(tx, event, cfg, time.time()).jobs)
    finally:
        store.close()
    return jobs


def child_env(config: Path, pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYD_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(NOTIFYD_CONFIG=str(config), COLUMNS="100", PYTHONPYCACHEPREFIX=str(pycache))
    return env


# -- timing ----------------------------------------------------------------------------------------


def run_once(case: Case, env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one child, from its start to its exit."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *case.argv], cwd=case.root, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{case.name} exited {proc.returncode}: {errors.decode(errors='replace')}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def measure(cases: list[Case], envs: dict[str, dict[str, str]], runs: int, warmup: int) -> dict[str, Timings]:
    for case in cases:
        for _ in range(warmup):
            run_once(case, envs[case.config])
    found = {case.name: Timings() for case in cases}
    for i in range(runs):
        shift = i % len(cases)
        for case in cases[shift:] + cases[:shift]:
            wall, cpu = run_once(case, envs[case.config])
            found[case.name].wall_ms.append(wall)
            found[case.name].cpu_ms.append(cpu)
    return found


def import_profile(case: Case, env: dict[str, str], runs: int) -> list[dict[str, Any]]:
    """The modules with the largest cumulative import time (median of `runs` runs), nesting kept."""
    cumulative: dict[str, list[int]] = {}
    own: dict[str, list[int]] = {}
    depth: dict[str, int] = {}
    for _ in range(runs):
        result = subprocess.run([sys.executable, "-X", "importtime", *case.argv], cwd=ROOT, env=env,
                                capture_output=True, text=True, check=True)
        for line in result.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
            module = name.strip()
            depth[module] = (len(name) - len(name.lstrip()) - 1) // 2
            own.setdefault(module, []).append(int(self_us))
            cumulative.setdefault(module, []).append(int(cumulative_us))
    ranked = sorted(cumulative, key=lambda m: statistics.median(cumulative[m]), reverse=True)[:TOP_IMPORTS]
    return [{"module": m, "depth": depth[m], "cumulative_ms": round(statistics.median(cumulative[m]) / 1000, 1),
             "self_ms": round(statistics.median(own[m]) / 1000, 1)} for m in ranked]


# -- report ----------------------------------------------------------------------------------------


def rows_of(cases: list[Case], found: dict[str, Timings]) -> list[Row]:
    start = found[PASS].median
    rows = []
    for case in cases:
        t = found[case.name]
        net = t.median - start
        numbers = {"median_ms": round(t.median, 1), "p90_ms": round(t.p90, 1), "cpu_ms": round(t.cpu, 1),
                   "net_ms": round(net, 1)}
        measured = f"median {t.median:.0f} ms, p90 {t.p90:.0f} ms, CPU {t.cpu:.0f} ms"
        if case.baseline_of is not None:
            after = found[case.baseline_of]
            numbers.update(saved_ms=round(t.median - after.median, 1), saved_cpu_ms=round(t.cpu - after.cpu, 1))
            rows.append(Row("baseline", case.name, measured + f"; net {net:.0f} ms; this tree saves "
                            f"{t.median - after.median:.0f} ms ({t.cpu - after.cpu:.0f} ms CPU)",
                            numbers=numbers, reference=PASS))
            continue
        if case.target_ms is None:
            if case.name != PASS:
                measured += f"; {net:+.0f} ms beside `{PASS}`"
            rows.append(Row("reference", case.name, measured, numbers=numbers,
                            reference=None if case.name == PASS else PASS))
            continue
        verdict = "met" if net <= case.target_ms else "MISSED"
        rows.append(Row("CLI start (diag.)" if case.diagnostic else "CLI start", case.name,
                        measured + f"; net {net:.0f} ms", target=f"net ≤ {case.target_ms:g} ms: {verdict}",
                        numbers=numbers, reference=PASS))
    return rows


def print_table(rows: list[Row]) -> None:
    headers = ("case", "median ms", "p90 ms", "CPU ms", "net ms", "target (net of python -c pass)")
    cells = [(r.case, f"{r.numbers['median_ms']:.0f}", f"{r.numbers['p90_ms']:.0f}", f"{r.numbers['cpu_ms']:.0f}",
              f"{r.numbers['net_ms']:+.0f}" if r.reference else "", r.target) for r in rows if r.numbers]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(v.rjust(w) if 0 < i < 5 else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths, strict=True))).rstrip()

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for cell in cells:
        print(line(cell))


def print_imports(profiles: dict[str, list[dict[str, Any]]]) -> None:
    for name, modules in profiles.items():
        print(f"\n{name}: the {len(modules)} largest cumulative import times (ms, median; self in brackets)")
        for m in modules:
            print(f"  {m['cumulative_ms']:7.1f} ({m['self_ms']:5.1f})  {'  ' * m['depth']}{m['module']}")


def with_baseline(baseline: Path | None) -> list[Case]:
    """The cases, and with a baseline source tree the notifyd ones again from that tree."""
    cases = list(CASES)
    if baseline is not None:
        cases += [replace(case, name=f"{case.name} [baseline]", target_ms=None, root=baseline, baseline_of=case.name)
                  for case in CASES if case.target_ms is not None]
    return cases


def machine() -> dict[str, Any]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "system": platform.system(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each case (interleaved)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of each case first")
    parser.add_argument("--events", type=int, default=100, help="events in the store (two jobs each)")
    parser.add_argument("--imports", type=int, default=3, metavar="N",
                        help="runs under -X importtime per notifyd command for its import profile (0: none)")
    parser.add_argument("--baseline", metavar="DIR", type=Path,
                        help="also run the notifyd commands from this source tree (e.g. `git archive HEAD~1 | tar "
                             "-x -C DIR`), interleaved with the others, and print what this tree saves")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write every figure to PATH as JSON")
    args = parser.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "notifyd" / "__main__.py").exists():
        parser.error(f"--baseline {args.baseline}: no notifyd/__main__.py there")
    if args.runs < 1 or args.warmup < 0 or args.events < 0 or args.imports < 0:
        parser.error("--runs must be >= 1; --warmup, --events and --imports >= 0")
    info = machine()
    print(f"notifyd CLI start benchmark: python {info['python']}, {info['cpus']} CPUs, {info['machine']} "
          f"{info['system']}, load average {info['load_average_at_start']}; --runs {args.runs} "
          f"--events {args.events}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-cli-") as tmp:
        folder = Path(tmp)
        configs = write_configs(folder)
        jobs = fill_store(configs["full"], args.events)
        envs = {name: child_env(path, folder / "pycache") for name, path in configs.items()}
        cases = with_baseline(args.baseline.resolve() if args.baseline else None)
        found = measure(cases, envs, args.runs, args.warmup)
        profiles = {case.name: import_profile(case, envs[case.config], args.imports)
                    for case in CASES if args.imports and case.target_ms is not None and not case.diagnostic}
    wall = time.perf_counter() - started
    rows = rows_of(cases, found)
    print()
    print_table(rows)
    notes = {
        "store": f"{args.events} events, {jobs} jobs (SQLite); services: discord (apprise), hook (webhook)",
        "net": f"a command's median minus `{PASS}`'s median, from the same interleaved rounds",
        "spread": "; ".join(f"{name}: {min(t.wall_ms):.0f}–{max(t.wall_ms):.0f} ms" for name, t in found.items()),
    }
    print()
    for key, value in notes.items():
        print(f"{key}: {value}")
    print(f"total wall time: {wall:.1f} s")
    print_imports(profiles)
    if args.json:
        document = {"benchmark": "bench_cli", "machine": info,
                    "options": {"runs": args.runs, "warmup": args.warmup, "events": args.events,
                                "imports": args.imports, "baseline": str(args.baseline) if args.baseline else None},
                    "wall_seconds": round(wall, 1), "figures": [r.as_json() for r in rows], "notes": notes,
                    "imports": profiles}
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
