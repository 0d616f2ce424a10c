"""Benchmark of the status page: what its overview costs a browser, measured in headless Chromium.

What it measures, on one machine and in one run (design §14: a small page, no build step, no CDN):

1. Bytes transferred for one cold load of the overview (``/``): the HTML, the stylesheet and the
   script, from the browser's own accounting (Navigation and Resource Timing ``transferSize``:
   headers and body as they crossed the wire; the cache is switched off through the DevTools
   protocol, so every load fetches all three). Cross-checked by fetching each with httpx
   (bodies only). Also: what one live refresh (live.js, every 2 s) fetches.
2. First contentful paint of the overview on loopback (``PerformanceObserver`` ``paint``
   entries, ``first-contentful-paint``, from the start of the navigation), as the median (and
   min / max) over ``--loads`` loads, after ``--warm-up`` untimed loads.

The daemon runs with a token (the browser logs in through the form first, as a person would), a
SQLite store beside its config, and data that makes the overview look like a busy day: ``--events``
webhooks (the *arr samples of tests/fixtures and generic ones) delivered to a sink on 127.0.0.1,
and ``--dead`` health events whose second service answers nothing, so their jobs end dead (the
overview lists the last ten). Chromium is Debian's (``apt-get install chromium chromium-driver``)
at /usr/bin, driven by Selenium through /usr/bin/chromedriver; run it from the repository root:

    python tests/bench/bench_ui.py
    python tests/bench/bench_ui.py --json                  # the figures as JSON on stdout too
    python tests/bench/bench_ui.py --json bench-ui.json
    python tests/bench/bench_ui.py --loads 50 --events 500

``--json PATH`` writes every figure (its numbers, target and verdict) and the notes as JSON (to
stdout, after the table, when PATH is left out).

It is a script, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync")
TOKEN = "bench-ui-token-7d1e"
BYTES_TARGET = 100 * 1024
FCP_TARGET_MS = 200.0
ARR_SAMPLES = ("radarr-grab", "radarr-download", "sonarr-download", "lidarr-download", "readarr-download",
               "radarr-upgrade", "radarr-rename")

# Wait for the first contentful paint (already buffered, or still to come), then report it with
# the navigation's and the stylesheet's and script's transfer sizes.
MEASURE = """
var done = arguments[arguments.length - 1];
function report(fcp) {
  var nav = performance.getEntriesByType('navigation')[0];
  var resources = performance.getEntriesByType('resource').filter(function (e) {
    return e.initiatorType !== 'fetch' && e.initiatorType !== 'xmlhttprequest'; });
  done({fcp: fcp, nav: {name: nav.name, transfer: nav.transferSize, body: nav.encodedBodySize,
                        decoded: nav.decodedBodySize, status: nav.responseStatus,
                        request: nav.requestStart, first_byte: nav.responseStart, last_byte: nav.responseEnd},
        resources: resources.map(function (e) {
          return {name: e.name, transfer: e.transferSize, body: e.encodedBodySize, type: e.initiatorType,
                  end: e.responseEnd}; })});
}
var seen = performance.getEntriesByName('first-contentful-paint');
if (seen.length) { report(seen[0].startTime); return; }
new PerformanceObserver(function (list) {
  var fcp = list.getEntriesByName('first-contentful-paint');
  if (fcp.length) { report(fcp[0].startTime); }
}).observe({type: 'paint', buffered: true});
"""


@dataclass
class Row:
    """One line of the results table, and one entry of the JSON."""

    figure: str
    measured: str
    target: str = ""
    numbers: dict[str, float] | None = None

    @property
    def verdict(self) -> str | None:
        for word in ("met", "MISSED"):
            if self.target.endswith(word):
                return word
        return None

    def as_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "measured": self.measured, **(self.numbers or {}),
                "target": self.target.rsplit(":", 1)[0] if self.target else None, "verdict": self.verdict}


# -- the daemon and its data -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BLANK = b"<!doctype html><html lang=en><meta charset=utf-8><title>blank</title><p>Hello.</p>"


class Sink:
    """A receiver on 127.0.0.1 that answers every POST 200 and counts them; and serves a page of
    one sentence at GET / (the floor of first paint for this browser on this machine)."""

    def __init__(self) -> None:
        self.count = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length") or 0))
                sink.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(BLANK)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(BLANK)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """`notifyd serve` on a config of its own in a folder, its output in a log file there."""

    def __init__(self, folder: Path, sink: Sink) -> None:
        self.port = free_port()
        nobody = free_port()                      # nothing listens there: the phone's jobs end dead
        self.config = folder / "config.toml"
        self.config.write_text(f"""\
[server]
listen = "127.0.0.1:{self.port}"
token = "{TOKEN}"

[store]
path = "{folder / 'notifyd.db'}"

[worker]
max_attempts = 2
backoff = ["50ms"]

[services.sink]
type = "apprise"
url = "json://127.0.0.1:{sink.port}/hook"

[services.phone]
type = "apprise"
url = "json://127.0.0.1:{nobody}/phone"
events = ["health"]
""")
        self.log = folder / "notifyd.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFYD_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.popen = subprocess.Popen([sys.executable, "-m", "notifyd", "serve", "--config", str(self.config)],
                                      stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        self.wait_until(self.healthy, 20, "the daemon's /health")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        if self.popen.poll() is not None:
            raise SystemExit(f"notifyd exited {self.popen.returncode}:\n{self.log.read_text(errors='replace')}")
        try:
            return httpx.get(self.url + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def queue(self) -> dict[str, int]:
        return httpx.get(self.url + "/health", timeout=10).json()["queue"]

    @staticmethod
    def wait_until(check: Any, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise SystemExit(f"timed out after {seconds:.0f} s waiting for {what}")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def seed(daemon: Daemon, events: int, dead: int) -> None:
    """`events` webhooks (the *arr samples in turn, every fifth a generic one) and `dead` health
    events; returns when every job has finished."""
    samples = [(name.split("-")[0], json.loads((FIXTURES / f"{name}.json").read_text())) for name in ARR_SAMPLES]
    health = json.loads((FIXTURES / "radarr-health.json").read_text())
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=daemon.url, headers=headers, timeout=10) as client:
        for n in range(events):
            if n % 5 == 4:
                source, body = "generic", {"title": f"Nightly backup {n} finished", "body": f"{n} GiB in 4m"}
            else:
                source, body = samples[n % len(samples)]
            # a key of its own: the same sample again is a new event, not a duplicate
            answer = client.post(f"/webhooks/{source}", json=body, headers={"Idempotency-Key": f"bench-{n}"})
            if answer.status_code not in (200, 202):
                raise SystemExit(f"POST /webhooks/{source}: {answer.status_code} {answer.text}")
        for n in range(dead):
            client.post("/webhooks/radarr", json={**health, "message": f"Indexer {n} is unavailable"},
                        headers={"Idempotency-Key": f"bench-health-{n}"})
    daemon.wait_until(lambda: (lambda q: q["queued"] == 0 and q["running"] == 0)(daemon.queue()), 120,
                      "every job to finish")


# -- the browser -------------------------------------------------------------------------------


def chromium(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1200,900")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def log_in(driver: Any, daemon: Daemon) -> None:
    from selenium.webdriver.common.by import By

    driver.get(daemon.url + "/")
    target = driver.find_element(By.XPATH, "//label[normalize-space()='Token']").get_attribute("for")
    driver.find_element(By.ID, target).send_keys(TOKEN)
    driver.find_element(By.XPATH, "//button[normalize-space()='Log in']").click()
    Daemon.wait_until(lambda: driver.current_url.rstrip("/") == daemon.url, 15, "the overview after logging in")


def load(driver: Any, url: str) -> dict[str, Any]:
    driver.get(url)
    return driver.execute_async_script(MEASURE)


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(driver: Any, daemon: Daemon, sink: Sink, args: argparse.Namespace) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    for _ in range(args.warm_up):
        load(driver, daemon.url + "/")
    # Interleaved with the baseline, so a busy moment of the machine touches both alike.
    loads, blank = [], []
    for _ in range(args.loads):
        loads.append(load(driver, daemon.url + "/"))
        blank.append(load(driver, f"http://127.0.0.1:{sink.port}/")["fcp"])

    first = loads[0]
    if first["nav"]["status"] not in (0, 200) or not first["nav"]["name"].rstrip("/") == daemon.url:
        raise SystemExit(f"the overview did not load: {first['nav']}")
    names = sorted({r["name"].removeprefix(daemon.url) for one in loads for r in one["resources"]})
    totals = [one["nav"]["transfer"] + sum(r["transfer"] for r in one["resources"]) for one in loads]
    html = [one["nav"]["transfer"] for one in loads]
    by_name = {name: statistics.median([r["transfer"] for one in loads for r in one["resources"]
                                        if r["name"].removeprefix(daemon.url) == name]) for name in names}
    total = statistics.median(totals)
    parts = ", ".join([f"HTML {statistics.median(html) / 1024:.1f} KB"]
                      + [f"{name.rsplit('/', 1)[-1]} {size / 1024:.1f} KB" for name, size in by_name.items()])
    rows.append(Row("overview, bytes transferred (cold load: HTML + CSS + JS, headers included)",
                    f"{total / 1024:.1f} KB ({parts})",
                    f"< {BYTES_TARGET // 1024} KB: " + ("met" if total < BYTES_TARGET else "MISSED"),
                    {"bytes_median": total, "html_bytes": statistics.median(html),
                     **{f"bytes {name}": size for name, size in by_name.items()}, "resources": len(names) + 1}))

    fcp = [one["fcp"] for one in loads]
    fcp_stats = summary(fcp)
    rows.append(Row(f"overview, first contentful paint on loopback ({args.loads} cold loads)",
                    f"median {fcp_stats['median']:.0f} ms (min {fcp_stats['min']:.0f}, max {fcp_stats['max']:.0f})",
                    f"< {FCP_TARGET_MS:g} ms: " + ("met" if fcp_stats["median"] < FCP_TARGET_MS else "MISSED"),
                    {f"fcp_ms_{k}": round(v, 1) for k, v in fcp_stats.items()}))
    blank_stats = summary(blank)
    rows.append(Row("baseline: a page of one sentence, no CSS or JS (Python's http.server), first contentful paint",
                    f"median {blank_stats['median']:.0f} ms (min {blank_stats['min']:.0f}, max {blank_stats['max']:.0f})",
                    numbers={f"fcp_ms_{k}": round(v, 1) for k, v in blank_stats.items()}))
    steps = {"request sent": [one["nav"]["request"] for one in loads],
             "first byte of the HTML": [one["nav"]["first_byte"] for one in loads],
             "last byte of the HTML": [one["nav"]["last_byte"] for one in loads],
             "last byte of the CSS and JS": [max([r["end"] for r in one["resources"]] or [0]) for one in loads]}
    server = [one["nav"]["first_byte"] - one["nav"]["request"] for one in loads]
    rows.append(Row("overview, where the time goes (medians, ms from the start of the navigation)",
                    ", ".join(f"{step} {statistics.median(v):.0f}" for step, v in steps.items())
                    + f"; the daemon answers in {statistics.median(server):.0f} ms (request to first byte)",
                    numbers={**{f"ms {step}": round(statistics.median(v), 1) for step, v in steps.items()},
                             "server_ms_median": round(statistics.median(server), 1)}))

    # Cross-check by fetching each (bodies only), with the browser's session cookie.
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    with httpx.Client(base_url=daemon.url, cookies=cookies, timeout=10) as client:
        bodies = {path: len(client.get(path).content) for path in ["/", *names]}
        live = client.get("/", headers={"X-Notifyd-Live": "1"})
    fetched = sum(bodies.values())
    rows.append(Row("overview, bodies fetched with httpx (HTML + CSS + JS, no headers)",
                    f"{fetched / 1024:.1f} KB (" + ", ".join(f"{p} {n / 1024:.1f} KB" for p, n in bodies.items()) + ")",
                    numbers={"bytes": fetched, **{f"bytes {p}": n for p, n in bodies.items()}}))
    rows.append(Row("overview, one live refresh (live.js every 2 s: <main> only)",
                    f"{len(live.content) / 1024:.1f} KB body, HTTP {live.status_code}",
                    numbers={"bytes": len(live.content)}))
    notes.append("resources the overview loads: " + ", ".join(["/", *names]))
    notes.append(f"no compression: the daemon sends content-encoding {live.headers.get('content-encoding', 'none')}")
    notes.append("load average (1, 5, 15 min) at the end: " + ", ".join(f"{n:.2f}" for n in os.getloadavg()))
    return rows, notes


def print_markdown(rows: list[Row]) -> None:
    print("| figure | measured | target |")
    print("|---|---|---|")
    for r in rows:
        print(f"| {r.figure} | {r.measured} | {r.target} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--loads", type=int, default=20, help="timed loads of the overview")
    parser.add_argument("--warm-up", type=int, default=3, help="untimed loads first")
    parser.add_argument("--events", type=int, default=200, help="webhooks posted before measuring")
    parser.add_argument("--dead", type=int, default=12, help="health events whose phone job ends dead")
    parser.add_argument("--json", metavar="PATH", type=Path, nargs="?", const=Path("-"),
                        help="also write every figure as JSON to PATH (no PATH: to stdout, last)")
    args = parser.parse_args(argv)
    if args.loads < 1:
        parser.error("--loads must be at least 1")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        parser.error("no headless Chromium and driver: apt-get install chromium chromium-driver")
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"notifyd status page benchmark: python {platform.python_version()}, {version}, "
          f"{os.cpu_count()} CPUs, {platform.machine()} {platform.system()}", flush=True)
    started = time.perf_counter()
    sink = Sink()
    daemon = driver = None
    with tempfile.TemporaryDirectory(prefix="notifyd-bench-ui-") as tmp:
        try:
            daemon = Daemon(Path(tmp), sink)
            seed(daemon, args.events, args.dead)
            print(f"  seeded {args.events} events and {args.dead} dead jobs ({sink.count} deliveries)", flush=True)
            driver = chromium(Path(tmp) / "profile")
            log_in(driver, daemon)
            rows, notes = measure(driver, daemon, sink, args)
        finally:
            if driver is not None:
                driver.quit()
            if daemon is not None:
                daemon.stop()
            sink.close()
    print()
    print_markdown(rows)
    print()
    for note in notes:
        print(note)
    wall = time.perf_counter() - started
    print(f"total wall time: {wall:.0f} s")
    if args.json:
        document = {"benchmark": "bench_ui",
                    "machine": {"python": platform.python_version(), "chromium": version, "cpus": os.cpu_count(),
                                "machine": platform.machine(), "system": platform.system()},
                    "options": {k: v for k, v in vars(args).items() if k != "json"},
                    "wall_seconds": round(wall), "figures": [r.as_json() for r in rows], "notes": notes}
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if str(args.json) == "-":
            print(text, end="")
        else:
            args.json.write_text(text)
            print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
