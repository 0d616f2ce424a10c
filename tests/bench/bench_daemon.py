"""Benchmark of a running ``notifyd serve``: ingest over HTTP, end-to-end latency, deliveries/s, RSS.

What it measures, on one machine and in one run (design §12):

1. Ingest (accepted webhooks/s and latency percentiles). wrk with ``--connections`` (32)
   connections POSTs what Radarr sends for a download (tests/fixtures/arr/radarr/Download.json,
   its ``downloadId`` unique per request so that none is a duplicate; ``--ingest-body generic``
   posts a small generic event instead) for ``--seconds`` after a warm-up, against: the baseline,
   a bare uvicorn[standard]+Starlette endpoint on the same route that reads the body and answers
   202 (``peers.py``: ``bare``); ``notifyd serve`` with no service (each request commits an event;
   a diagnostic); and ``notifyd serve`` with three ``webhook`` services (each request commits an
   event and three jobs, which the workers deliver to the counting sink meanwhile, on the same
   cores: the issue's case). The three are measured one after the other in each of ``--repeat``
   rounds, each daemon started afresh per round; each ratio divides two figures of one round, and
   the medians of the rounds are reported with their p50 and p99, and the server's CPU time per
   request (user and system, all its threads, from /proc: steadier than the rates when other work
   shares the machine). After each run the stored events are counted and must be at least the
   2xx answers wrk saw.
2. End-to-end latency when idle: after five untimed warm-up events (the first delivery imports
   the channel's code), ``--latency-events`` POSTs, one every 50 ms, each timed from just before
   the POST to its arrival at the sink (both read CLOCK_MONOTONIC), through the ``webhook``
   channel and through Apprise's ``json://``.
3. Deliveries/s with the default worker threads: ``--deliveries`` events are written into the
   store (with notifyd's own ingest code) before the daemon starts; then it is started and the
   rate is taken between the first and the last arrival at the sink. Through ``webhook`` and
   ``json://``. Every job must end ``succeeded``.
4. Deliveries/s of posted webhooks, per store engine and node count: ``--posts`` webhooks are
   POSTed by wrk (``--post-connections`` connections in all, each body unique) to running
   daemons with one ``webhook`` service pointing at the counting sink, and the rate is taken
   from the first POST to the last arrival at the sink (``--posts`` / that time). Three cases:
   one daemon on SQLite; one daemon on PostgreSQL; two daemons (two ``notifyd serve``
   processes on different ports, same database) each sent half the webhooks, over half the
   connections. Each daemon first gets five untimed warm-up webhooks, delivered before the
   clock starts. Every job must end ``succeeded``; how many deliveries each node made (from
   its attempts) is printed. The PostgreSQL server is $NOTIFYD_TEST_POSTGRES_URL when set (an
   admin URL: each case gets a database of its own, dropped at the end), else one the
   ``pgserver`` package starts in a temporary folder for the run.
5. RSS of the daemon (VmRSS and its peak, VmHWM) after the deliveries run and after the ingest
   run with a service (and of each node after the posted runs).

The daemon runs on its defaults but for the listen address, the store (path or url), the node
id and the services (``[worker] threads`` stays 4). Run it from the repository root; it needs
``wrk`` on the PATH (Debian: ``apt-get install wrk``):

    python tests/bench/bench_daemon.py
    python tests/bench/bench_daemon.py --json bench-daemon.json
    python tests/bench/bench_daemon.py --seconds 5 --repeat 1 --latency-events 100 --deliveries 2000 --posts 2000
    python tests/bench/bench_daemon.py --only posted          # just the SQLite / PostgreSQL node comparison

``--json PATH`` writes every figure (its numbers, reference, ratio, target and verdict) and the
notes as JSON.

It is a script, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
INGEST_TARGET = 0.7
P99_TARGET_MS = 15.0
E2E_P50_TARGET_MS = 5.0
E2E_P99_TARGET_MS = 20.0
DELIVERIES_TARGET = 1000.0
IDLE_CPU_TARGET = 0.1          # percent of one core
RSS_TARGET_MB = 64.0
WARM_UP = 5  # events sent, and delivered, before the latency is timed

# The ingest body: what Radarr sends for a download (compact, as its Newtonsoft serialiser writes it).
RADARR_BODY = BENCH.parent / "fixtures" / "arr" / "radarr" / "Download.json"
UNIQUE_FIELD = "downloadId"     # made unique per request, so the body hash never finds a repeat
INGEST_SERVICES = 3             # the case: every event fans out to three services

# wrk's script for the ingest runs: every request the same body but for one field, made unique
# from the tag (wrk's argument after --), the thread and a counter, so notifyd's body-hash
# idempotency never collapses two of them and runs against one daemon stay apart. HEAD and TAIL
# are the body either side of that field's value (Lua long strings, so nothing is escaped).
WRK_SCRIPT = """\
local head = [==[{head}]==]
local tail = [==[{tail}]==]
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  tag = args[1] or "run"
  n = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. tag .. "-" .. tid .. "-" .. n .. tail)
end
"""


def ingest_body(kind: str) -> tuple[str, str, str]:
    """The body wrk posts, as (route source, text before the unique value, text after it)."""
    if kind == "generic":
        return "generic", '{"kind":"bench","title":"bench","body":"', '"}'
    body = json.loads(RADARR_BODY.read_text())
    body[UNIQUE_FIELD] = "\0"
    head, tail = json.dumps(body, separators=(",", ":")).split('"\\u0000"')
    return "radarr", head + '"', '"' + tail


# wrk's script for a fixed number of POSTs (arguments after --: tag, count per thread): each body
# unique (the tag keeps the nodes' apart), then GETs of a path that answers 404 until every POST
# has had its answer, when the thread stops; done() prints how many POSTs were not answered 2xx.
WRK_POST_N = """\
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  tag = args[1] or "run"
  limit = tonumber(args[2])
  sent, answered, failed = 0, 0, 0
  -- wrk calls the first thread's request() once before it starts, to check the script, and
  -- sends nothing of it: that call must not count.
  checked = tid ~= 1
  wrk.headers["Content-Type"] = "application/json"
end
function request()
  if not checked then
    checked = true
    return wrk.format("POST")
  end
  sent = sent + 1
  if sent > limit then
    return wrk.format("GET", "/bench-posted-all")
  end
  return wrk.format("POST", nil, nil, string.format(
    '{"kind":"bench","title":"posted %s","body":"seq %d from %s thread %d"}', tag, sent, tag, tid))
end
function response(status, headers, body)
  if status ~= 404 then
    answered = answered + 1
    if status < 200 or status > 299 then failed = failed + 1 end
    if answered >= limit then wrk.thread:stop() end
  end
end
function done(summary, latency, requests)
  local failed_all = 0
  for _, thread in ipairs(threads) do failed_all = failed_all + thread:get("failed") end
  io.write(string.format("posted-failed: %d\\n", failed_all))
end
"""


@dataclass
class WrkRun:
    """What one wrk run printed."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass
class Row:
    """One line of the results table, and one entry of the JSON (`numbers` holds what `measured`
    says in figures; `reference` names the case the ratio divides by)."""

    figure: str
    case: str
    measured: str
    ratio: str = ""
    target: str = ""
    numbers: dict[str, float] | None = None
    reference: str | None = None

    @property
    def verdict(self) -> str | None:
        for word in ("met", "MISSED"):
            if self.target.endswith(word):
                return word
        return None

    def as_json(self) -> dict[str, Any]:
        ratio = self.ratio.rstrip("×")
        return {"figure": self.figure, "name": self.case, "measured": self.measured, **(self.numbers or {}),
                "reference": self.reference, "ratio": float(ratio) if ratio else None,
                "target": self.target.rsplit(":", 1)[0] if self.target else None, "verdict": self.verdict}


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


STARTED: list[Proc] = []  # every child, stopped by main() however the run ends


def child_env() -> dict[str, str]:
    """This environment without notifyd's own variables ($NOTIFYD_STORE_URL would override the
    store a daemon's config names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYD_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Proc:
    """A child process serving HTTP on 127.0.0.1:port, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], port: int, log: Path, ready_path: str) -> None:
        self.name, self.port, self.log = name, port, log
        self.popen = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=child_env())
        STARTED.append(self)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise SystemExit(f"{name} exited {self.popen.returncode}:\n{log.read_text(errors='replace')}")
            try:
                httpx.get(self.url + ready_path, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit(f"{name} did not answer on port {port} within 20 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time (user and system, all threads) the process has used so far."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> tuple[float, float]:
        """VmRSS and VmHWM (the peak) in MB."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines())
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def uvicorn_app(app: str, log: Path) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", f"peers:{app}", "--app-dir", str(BENCH), "--host", "127.0.0.1",
           "--port", str(port), "--no-access-log", "--log-level", "warning", "--no-server-header",
           "--no-date-header"]
    return Proc(app, cmd, port, log, "/")


def write_config(directory: Path, port: int, service: str | None, store_url: str | None = None,
                 node_id: str | None = None) -> Path:
    """A config on the daemon's defaults: the SQLite file beside it, or the PostgreSQL `store_url`."""
    store = f'url = "{store_url}"' if store_url else f'path = "{directory / "notifyd.db"}"'
    node = f'node_id = "{node_id}"\n' if node_id else ""
    text = f'[server]\nlisten = "127.0.0.1:{port}"\n{node}\n[store]\n{store}\n'
    if service:
        text += service
    path = directory / "config.toml"
    path.write_text(text)
    return path


def webhook_service(sink: Proc) -> str:
    return f'\n[services.sink]\ntype = "webhook"\nurl = "{sink.url}/hook"\nevents = ["*"]\n'


def apprise_service(sink: Proc) -> str:
    return f'\n[services.sink]\ntype = "apprise"\nurl = "json://127.0.0.1:{sink.port}/hook"\nevents = ["*"]\n'


def notifyd(directory: Path, service: str | None, prepare: Callable[[Path], None] | None = None,
            store_url: str | None = None, node_id: str | None = None) -> Proc:
    """`notifyd serve` on a config of its own in directory; prepare(config) runs before it starts."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(directory, port, service, store_url, node_id)
    if prepare is not None:
        prepare(config)
    return Proc("notifyd", [sys.executable, "-m", "notifyd", "serve", "--config", str(config)], port,
                directory / "notifyd.log", "/health")


def stored(directory: Path, sql: str) -> int:
    with sqlite3.connect(directory / "notifyd.db") as conn:
        return conn.execute(sql).fetchone()[0]


# -- ingest (wrk) ------------------------------------------------------------------------------

_DURATION = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _DURATION[unit]


def parse_wrk(output: str) -> WrkRun:
    count, took, unit = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", output).groups()
    percentile = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)$", output, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkRun(int(count), _ms(took + unit) / 1000, int(non_2xx.group(1)) if non_2xx else 0,
                  sum(map(int, errors.groups())) if errors else 0, percentile["50"], percentile["99"])


def wrk(url: str, seconds: int, connections: int, threads: int, script: Path, tag: str) -> WrkRun:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
           url, "--", tag]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def ingest_services(sink: Proc, count: int) -> str:
    """`count` webhook services, all pointing at the counting sink and taking every event."""
    return "".join(f'\n[services.sink{i}]\ntype = "webhook"\nurl = "{sink.url}/hook{i}"\nevents = ["*"]\n'
                   for i in range(count))


def measure_ingest(root: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    """Rounds of wrk runs, each round the baseline then each notifyd case, one after the other, so
    every ratio divides two figures taken a few seconds apart. Each round starts each daemon
    afresh (its own store), warms it up, measures and stops it: the deliveries a run with
    services leaves queued never spill into the next run's measurement."""
    source, head, tail = ingest_body(args.ingest_body)
    script = root / "post.lua"
    script.write_text(WRK_SCRIPT.format(head=head, tail=tail))
    path = f"/webhooks/{source}"
    rows: list[Row] = []
    notes: list[str] = []
    base_case = "bare Starlette endpoint answering 202 (baseline)"
    cases = (("notifyd, no service (event committed)", 0),
             (f"notifyd, {INGEST_SERVICES} webhook services (event + {INGEST_SERVICES} jobs committed, "
              "delivered meanwhile)", INGEST_SERVICES))
    runs: dict[str, list[WrkRun]] = {base_case: [], **{case: [] for case, _ in cases}}
    ratios: dict[str, list[float]] = {case: [] for case, _ in cases}
    answered: dict[str, int] = {case: 0 for case, _ in cases}
    stored_events: dict[str, int] = {case: 0 for case, _ in cases}
    rss: list[tuple[float, float]] = []

    cpu: dict[str, list[float]] = {base_case: [], **{case: [] for case, _ in cases}}

    def run(target: Proc, label: str, warm: bool) -> tuple[WrkRun, int, float]:
        """The measured run, the 2xx answers (warm-up included) and the server's CPU ms per request."""
        url = target.url + path
        done = 0
        if warm:
            warmed = wrk(url, min(3, args.seconds), args.connections, args.wrk_threads, script, f"{label}-warm")
            done += warmed.requests - warmed.non_2xx
        before = target.cpu_seconds()
        measured = wrk(url, args.seconds, args.connections, args.wrk_threads, script, label)
        cpu_ms = (target.cpu_seconds() - before) * 1000 / max(1, measured.requests)
        print(f"  {label}: {measured.rate:,.0f} req/s, p50 {measured.p50_ms:.2f} ms, p99 {measured.p99_ms:.2f} ms, "
              f"CPU {cpu_ms:.3f} ms/request, non-2xx {measured.non_2xx}, socket errors {measured.socket_errors}",
              flush=True)
        return measured, done + measured.requests - measured.non_2xx, cpu_ms

    bare = uvicorn_app("bare", root / "bare.log")
    sink = uvicorn_app("sink", root / "sink-ingest.log")
    try:
        wrk(bare.url + path, min(3, args.seconds), args.connections, args.wrk_threads, script, "bare-warm")
        for round_no in range(args.repeat):
            baseline, _, cpu_ms = run(bare, f"round {round_no + 1} bare", warm=False)
            runs[base_case].append(baseline)
            cpu[base_case].append(cpu_ms)
            for case, services in cases:
                directory = root / f"ingest-{services}-services-{round_no}"
                daemon = notifyd(directory, ingest_services(sink, services) if services else None)
                try:
                    measured, ok, cpu_ms = run(daemon, f"round {round_no + 1} notifyd {services} services", warm=True)
                    if services:
                        rss.append(daemon.rss_mb())
                finally:
                    daemon.stop()
                runs[case].append(measured)
                cpu[case].append(cpu_ms)
                ratios[case].append(measured.rate / baseline.rate)
                answered[case] += ok
                events = stored(directory, "SELECT count(*) FROM events")
                stored_events[case] += events
                if events < ok:
                    raise SystemExit(f"{case}: wrk saw {ok} 2xx answers but only {events} events are stored")
    finally:
        bare.stop()
        sink.stop()

    base = runs[base_case]
    base_rate = median([r.rate for r in base])
    base_cpu = median(cpu[base_case])
    rows.append(Row("ingest", base_case, f"{base_rate:,.0f} req/s, p50 {median([r.p50_ms for r in base]):.2f} ms, "
                    f"p99 {median([r.p99_ms for r in base]):.2f} ms, CPU {base_cpu:.3f} ms/request",
                    numbers={"requests_per_s": round(base_rate, 1), "p50_ms": median([r.p50_ms for r in base]),
                             "p99_ms": median([r.p99_ms for r in base]), "cpu_ms_per_request": round(base_cpu, 4)}))
    for case, _ in cases:
        found = runs[case]
        rate, p50, p99 = (median([r.rate for r in found]), median([r.p50_ms for r in found]),
                          median([r.p99_ms for r in found]))
        ratio, cpu_ms = median(ratios[case]), median(cpu[case])
        ok = ratio >= INGEST_TARGET and p99 <= P99_TARGET_MS
        rows.append(Row("ingest", case, f"{rate:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
                        f"CPU {cpu_ms:.3f} ms/request", f"{ratio:.2f}×", f"≥ {INGEST_TARGET}×, p99 ≤ "
                        f"{P99_TARGET_MS:g} ms: " + ("met" if ok else "MISSED"),
                        numbers={"requests_per_s": round(rate, 1), "p50_ms": p50, "p99_ms": p99,
                                 "ratio_min": round(min(ratios[case]), 3), "ratio_max": round(max(ratios[case]), 3),
                                 "cpu_ms_per_request": round(cpu_ms, 4)},
                        reference=base_case))
        notes.append(f"{case}: ratio per round " + ", ".join(f"{r:.2f}×" for r in ratios[case])
                     + f"; {answered[case]:,} answered 2xx, {stored_events[case]:,} events stored")
    notes.append(f"ingest body: {args.ingest_body} ({len(head) + len(tail) + 12} bytes, POST {path}), "
                 f"{args.connections} connections, {args.repeat} rounds of {args.seconds} s; "
                 "figures are the medians of the rounds")
    if rss:
        notes.append("RSS after each ingest run with services: "
                     + ", ".join(f"{now:.1f} MB (peak {peak:.1f} MB)" for now, peak in rss))
    return rows, notes


# -- end-to-end latency ------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


_poller: httpx.Client | None = None


def sink_count(sink: Proc) -> int:
    """How many deliveries the sink has counted. One client, kept open, for all the polling: a new
    httpx client per poll builds an SSL context each time, which costs a 2-core machine a fifth
    of a core at ten polls a second, beside the daemon being measured."""
    global _poller
    if _poller is None:
        _poller = httpx.Client(timeout=10)
    return int(_poller.get(sink.url + "/count").json())


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def measure_latency(root: Path, args: argparse.Namespace) -> list[Row]:
    rows = []
    for case, make in (("webhook channel", webhook_service), ("apprise json://", apprise_service)):
        directory = root / f"latency-{case.split()[0]}"
        sink = uvicorn_app("sink", root / f"sink-{directory.name}.log")
        daemon = notifyd(directory, make(sink))
        try:
            sent: dict[int, float] = {}
            with httpx.Client(base_url=daemon.url, timeout=10) as client:
                # Warm-up, not timed: the first delivery imports the channel's code and connects.
                for seq in range(-WARM_UP, 0):
                    client.post("/webhooks/generic", json={"kind": "bench", "title": "warm-up", "body": f"seq {seq}"})
                wait_until(lambda sink=sink: sink_count(sink) >= WARM_UP, 30, "the warm-up deliveries")
                for seq in range(args.latency_events):
                    started = time.monotonic()
                    answer = client.post("/webhooks/generic", json={"kind": "bench", "title": "latency",
                                                                    "body": f"seq {seq}"})
                    if answer.status_code != 202:
                        raise SystemExit(f"POST answered {answer.status_code}: {answer.text}")
                    sent[seq] = started
                    time.sleep(0.05)
            wait_until(lambda sink=sink, sent=sent: sink_count(sink) >= len(sent), 30, "the last delivery")
            arrivals = httpx.get(sink.url + "/arrivals").json()
        finally:
            daemon.stop()
            sink.stop()
        latency = [(at - sent[seq]) * 1000 for at, seq in arrivals if seq in sent]
        if len(latency) != len(sent):
            raise SystemExit(f"{case}: {len(latency)} of {len(sent)} events arrived")
        p50, p99 = percentile(latency, 50), percentile(latency, 99)
        ok = p50 <= E2E_P50_TARGET_MS and p99 <= E2E_P99_TARGET_MS
        rows.append(Row("end-to-end latency, idle", f"{case}, {len(latency)} events 50 ms apart",
                        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latency):.1f} ms", "",
                        f"p50 ≤ {E2E_P50_TARGET_MS:g} ms, p99 ≤ {E2E_P99_TARGET_MS:g} ms: "
                        + ("met" if ok else "MISSED"),
                        numbers={"p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "max_ms": round(max(latency), 2),
                                 "events": len(latency)}))
    return rows


# -- deliveries/s ------------------------------------------------------------------------------


def prefill(config_path: Path, count: int) -> None:
    """Write count events, and their jobs, with notifyd's own ingest code, before the daemon starts."""
    from notifyd.config import read_config_file
    from notifyd.ingest import record_event
    from notifyd.model import Event
    from notifyd.store import open_store

    config = read_config_file(config_path, env={})
    store = open_store(config.store, node_id="bench-prefill", pool_size=2)
    store.migrate()
    try:
        for start in range(0, count, 500):
            with store.transaction() as tx:
                for seq in range(start, min(count, start + 500)):
                    event = Event(source="generic", source_type="generic", kind="bench", title="deliveries",
                                  body=f"seq {seq}", payload="{}")
                    record_event(tx, event, config, time.time())
    finally:
        store.close()


def measure_deliveries(root: Path, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    rows, notes = [], []
    for case, make in (("webhook channel", webhook_service), ("apprise json://", apprise_service)):
        directory = root / f"deliveries-{case.split()[0]}"
        sink = uvicorn_app("sink", root / f"sink-{directory.name}.log")
        daemon = notifyd(directory, make(sink), lambda config: prefill(config, args.deliveries))
        try:
            wait_until(lambda sink=sink: sink_count(sink) >= args.deliveries, 600, "every delivery")
            wait_until(lambda directory=directory: stored(
                directory, "SELECT count(*) FROM jobs WHERE service = 'sink' AND state = 'succeeded'")
                >= args.deliveries, 30, "every job to be recorded succeeded")
            rss, hwm = daemon.rss_mb()
            arrivals = sorted(at for at, _ in httpx.get(sink.url + "/arrivals").json())
        finally:
            daemon.stop()
            sink.stop()
        not_done = stored(directory, "SELECT count(*) FROM jobs WHERE service = 'sink' AND state != 'succeeded'")
        if not_done:
            raise SystemExit(f"{case}: {not_done} jobs did not succeed")
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
        rows.append(Row("deliveries/s, default threads", f"{case}, {len(arrivals):,} queued jobs, SQLite",
                        f"{rate:,.0f}/s", "", f"≥ {DELIVERIES_TARGET:g}/s: "
                        + ("met" if rate >= DELIVERIES_TARGET else "MISSED"),
                        numbers={"deliveries_per_s": round(rate, 1), "jobs": len(arrivals)}))
        notes.append(f"RSS after {args.deliveries:,} deliveries ({case}): {rss:.1f} MB (peak {hwm:.1f} MB); "
                     f"target ≤ {RSS_TARGET_MB:g} MB: " + ("met" if hwm <= RSS_TARGET_MB else "MISSED"))
    return rows, notes


# -- idle CPU ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc (clock ticks, 10 ms here)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_idle(root: Path, args: argparse.Namespace) -> list[Row]:
    """CPU used over `--idle-seconds` by an idle `notifyd serve` (one webhook service, nothing
    queued) beside the bare uvicorn+Starlette endpoint idling over the same seconds."""
    sink = uvicorn_app("sink", root / "sink-idle.log")
    bare = uvicorn_app("bare", root / "bare-idle.log")
    daemon = notifyd(root / "idle", webhook_service(sink))
    try:
        time.sleep(5)                   # past start-up: the first poll, the first checkpoint
        procs = (("notifyd serve", daemon), ("bare endpoint", bare))
        before = {name: cpu_seconds(p.popen.pid) for name, p in procs}
        started = time.monotonic()
        time.sleep(args.idle_seconds)
        spent = time.monotonic() - started
        used = {name: 100 * (cpu_seconds(p.popen.pid) - before[name]) / spent for name, p in procs}
    finally:
        daemon.stop()
        bare.stop()
        sink.stop()
    tick = 100 / os.sysconf("SC_CLK_TCK") / spent
    return [Row("idle CPU", f"{name}, {spent:.0f} s", f"{used[name]:.3f} % of a core",
                target=(f"≤ {IDLE_CPU_TARGET:g} %: " + ("met" if used[name] <= IDLE_CPU_TARGET else "MISSED"))
                if name.startswith("notifyd") else "reference",
                numbers={"cpu_percent": round(used[name], 4), "seconds": round(spent, 1),
                         "resolution_percent": round(tick, 4)},
                reference=None if name.startswith("bare") else "bare endpoint")
            for name, _ in procs]


# -- deliveries/s of posted webhooks, SQLite and PostgreSQL nodes ---------------------------------


def wait_for_arrivals(sink: Proc, target: int, stall: float = 60.0) -> None:
    """Until the sink has counted `target` arrivals; SystemExit once none came for `stall` seconds."""
    seen, since = -1, time.monotonic()
    while (count := sink_count(sink)) < target:
        if count != seen:
            seen, since = count, time.monotonic()
        elif time.monotonic() - since > stall:
            raise SystemExit(f"the sink counted {count} of {target} deliveries, and none for {stall:.0f} s")
        time.sleep(0.25)


def pg_counts(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """The sink's jobs by state, and its attempts by node."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM jobs WHERE service = 'sink' GROUP BY state").fetchall())
        nodes = dict(conn.execute("SELECT a.node, count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id "
                                  "WHERE j.service = 'sink' GROUP BY a.node ORDER BY a.node").fetchall())
    return states, nodes


def sqlite_counts(directory: Path) -> tuple[dict[str, int], dict[str, int]]:
    with sqlite3.connect(directory / "notifyd.db") as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM jobs WHERE service = 'sink' GROUP BY state").fetchall())
        nodes = dict(conn.execute("SELECT a.node, count(*) FROM attempts a JOIN jobs j ON j.id = a.job_id "
                                  "WHERE j.service = 'sink' GROUP BY a.node ORDER BY a.node").fetchall())
    return states, nodes


def post_with_wrk(daemons: list[Proc], posts: int, connections: int, script: Path, tag: str,
                  root: Path) -> list[subprocess.Popen]:
    """One wrk per daemon, each POSTing its share of `posts` over its share of the connections;
    they stop sending once their POSTs are answered (main() or the caller ends the processes)."""
    procs = []
    share, extra = divmod(posts, len(daemons))
    per_node = max(1, connections // len(daemons))
    for i, daemon in enumerate(daemons):
        count = share + (1 if i < extra else 0)
        out = open(root / f"wrk-{tag}-{i}.log", "w+")
        cmd = ["wrk", "-t1", f"-c{min(per_node, count)}", "-d600s", "-s", str(script),
               daemon.url + "/webhooks/generic", "--", f"{tag}-{i}", str(count)]
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        procs[-1].log = out  # type: ignore[attr-defined]
    return procs


def stop_wrk(procs: list[subprocess.Popen]) -> int:
    """SIGINT each wrk (it prints its summary and exits); the POSTs not answered 2xx, in all."""
    failed = 0
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log = proc.log  # type: ignore[attr-defined]
        log.seek(0)
        text = log.read()
        log.close()
        found = re.search(r"posted-failed: (\d+)", text)
        if found is None:
            raise SystemExit(f"wrk did not finish its POSTs:\n{text}")
        failed += int(found.group(1))
    return failed


def measure_posted(root: Path, args: argparse.Namespace, pg: Any) -> tuple[list[Row], list[str]]:
    """Deliveries/s from the first POST to the last arrival: SQLite, PostgreSQL one node and two."""
    script = root / "post-n.lua"
    script.write_text(WRK_POST_N)
    rows: list[Row] = []
    notes: list[str] = []
    rates: dict[str, float] = {}
    cases = (("SQLite, one node", "sqlite", 1, None),
             ("PostgreSQL, one node", "postgresql", 1, "SQLite, one node"),
             ("PostgreSQL, two nodes", "postgresql", 2, "PostgreSQL, one node"))
    for case, engine, nodes, reference in cases:
        tag = f"posted-{engine}-{nodes}"
        directory = root / tag
        url = pg.new_database(f"bench_{engine}_{nodes}") if engine == "postgresql" else None
        sink = uvicorn_app("sink", root / f"sink-{tag}.log")
        daemons: list[Proc] = []
        procs: list[subprocess.Popen] = []
        try:
            for i in range(nodes):
                # The nodes share the database; each has a folder (config, log) of its own.
                daemons.append(notifyd(directory / f"node-{i}", webhook_service(sink), store_url=url,
                                       node_id=f"bench-node-{i}"))
            with httpx.Client(timeout=10) as client:   # warm-up, not timed: the channel's code imported
                for daemon in daemons:
                    for seq in range(WARM_UP):
                        client.post(daemon.url + "/webhooks/generic",
                                    json={"kind": "bench", "title": "warm-up", "body": f"warm-up {daemon.port} {seq}"})
            warm = WARM_UP * nodes
            wait_until(lambda sink=sink, warm=warm: sink_count(sink) >= warm, 30, "the warm-up deliveries")
            started = time.monotonic()
            procs = post_with_wrk(daemons, args.posts, args.post_connections, script, tag, root)
            wait_for_arrivals(sink, warm + args.posts)
            arrivals = sorted(at for at, _ in httpx.get(sink.url + "/arrivals", timeout=30).json())
            failed = stop_wrk(procs)
            rss = [daemon.rss_mb() for daemon in daemons]
            counts = (pg_counts(url) if url else sqlite_counts(directory / "node-0"))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for daemon in daemons:
                daemon.stop()
            sink.stop()
        states, by_node = counts
        if failed or states.get("succeeded", 0) != warm + args.posts or len(states) != 1:
            raise SystemExit(f"{case}: {failed} POSTs not answered 2xx; the sink's jobs by state: {states}")
        delivered = len(arrivals) - warm
        seconds = arrivals[-1] - started
        rate = args.posts / seconds
        rates[case] = rate
        ratio = f"{rate / rates[reference]:.2f}×" if reference in rates else ""
        rows.append(Row("deliveries/s, posted webhooks", f"webhook channel, {args.posts:,} posted, {case}",
                        f"{rate:,.0f}/s ({seconds:.1f} s from first POST to last delivery)", ratio, "",
                        numbers={"deliveries_per_s": round(rate, 1), "seconds": round(seconds, 3),
                                 "posted": args.posts, "delivered": delivered, "nodes": nodes},
                        reference=reference if ratio else None))
        split = ", ".join(f"{node} {n:,}" for node, n in by_node.items())
        peaks = ", ".join(f"{hwm:.1f} MB" for _, hwm in rss)
        notes.append(f"{case}: attempts per node (the {warm} warm-up deliveries included) {split}; "
                     f"peak RSS per node {peaks}")
    return rows, notes


# -- report ------------------------------------------------------------------------------------


def print_markdown(rows: list[Row]) -> None:
    print("| figure | case | measured | ratio | target |")
    print("|---|---|---|--:|---|")
    for r in rows:
        print(f"| {r.figure} | {r.case} | {r.measured} | {r.ratio} | {r.target} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (the server gets the other core)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="ingest rounds (baseline, then each notifyd case); the medians are reported")
    parser.add_argument("--ingest-body", choices=("radarr", "generic"), default="radarr",
                        help="what the ingest runs post: a Radarr download, or a small generic event")
    parser.add_argument("--latency-events", type=int, default=300, help="events timed end to end")
    parser.add_argument("--deliveries", type=int, default=10_000, help="queued jobs for deliveries/s")
    parser.add_argument("--posts", type=int, default=5_000,
                        help="webhooks posted for the SQLite / PostgreSQL node deliveries/s")
    parser.add_argument("--post-connections", type=int, default=16,
                        help="wrk connections for the posted webhooks, in all (split between the nodes)")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="length of the idle CPU measurement")
    parser.add_argument("--only", choices=("ingest", "latency", "deliveries", "posted", "idle"), action="append",
                        help="run only these parts (repeat the option)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write every figure to PATH as JSON")
    args = parser.parse_args(argv)
    # A TERM (timeout, Ctrl-C from a supervisor) unwinds like an exception, so the finally blocks
    # stop the daemons, the sink and the PostgreSQL server this run started.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    parts = args.only or ["ingest", "latency", "deliveries", "posted", "idle"]
    if args.posts < 2 or args.post_connections < 2:
        parser.error("--posts and --post-connections must be >= 2 (two nodes share them)")
    if {"ingest", "posted"} & set(parts) and shutil.which("wrk") is None:
        parser.error("wrk is not on the PATH (Debian: apt-get install wrk); or leave out the ingest and "
                     "posted parts")

    print(f"notifyd daemon benchmark: python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}", flush=True)
    started = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    pg = None
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-") as tmp:
        root = Path(tmp)
        try:
            if "ingest" in parts:
                found, said = measure_ingest(root, args)
                rows += found
                notes += said
            if "latency" in parts:
                rows += measure_latency(root, args)
            if "deliveries" in parts:
                found, said = measure_deliveries(root, args)
                rows += found
                notes += said
            if "idle" in parts:
                rows += measure_idle(root, args)
            if "posted" in parts:
                from pg_server import PostgresServer

                pg = PostgresServer()
                notes.append(f"PostgreSQL {pg.version()} from {pg.origin}")
                found, said = measure_posted(root, args, pg)
                rows += found
                notes += said
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
        document = {"benchmark": "bench_daemon",
                    "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                                "cpus": os.cpu_count(), "machine": platform.machine(), "system": platform.system()},
                    "options": {k: v for k, v in vars(args).items() if k != "json"} | {"only": parts},
                    "wall_seconds": round(wall), "figures": [r.as_json() for r in rows], "notes": notes}
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
