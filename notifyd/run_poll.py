"""Runs that never hear their end. ComfyDeploy gives up on a webhook after three tries within about
1.5 s, so a run whose final webhook was lost would wait for ever. With `[runs] stale_after` set, a
maintenance job looks up each run that has heard nothing for that long at its source's status API
(`[sources.NAME] api_url` and `api_key`, for a source type that declares one: `SourceType.status_api`)
and, when the run has ended there, applies that end through `ingest.record_event` as its webhook
would have: one event (media["via"] says it came from the status API), the run's notifications
and callback, once. A run that a webhook moved meanwhile is left to that webhook.

A run still going upstream is left untouched (it is stale by its `updated_at`, so it is looked at
again), but never more than once a poll: polls come every min(stale_after, 60 s) while a run is
stale, else when the oldest waiting run turns stale, and once per stale_after when none waits.
A poll looks at no more than BATCH runs, continuing at the next poll where it left off, so runs
that stay stuck upstream cannot hide the others. API errors are logged (never the key) and the
run is asked again at the next poll; they never fail the job, which schedules its successor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from urllib.parse import quote

import httpx

from notifyd import __version__
from notifyd.config import Config, SourceConfig
from notifyd.errors import NotifydError, StoreUnavailable, WebhookError
from notifyd.ingest import record_event
from notifyd.json_body import decode_body
from notifyd.model import Event, JobKind, JobSpec, Run
from notifyd.run_state import REGISTERED
from notifyd.sources import SOURCE_TYPES, StatusApi
from notifyd.store import Store

log = logging.getLogger("notifyd.runs")

SERVICE = "(run poll)"            # not a valid service name, so it can never collide with one
UNIQUE_KEY = "maintenance:run-poll"
PRIORITY = 8                      # maintenance, ahead of retention (9): it may end runs
EVERY_MAX = 60.0                  # a run still going upstream is asked again at most this often
BATCH = 50                        # runs one poll asks about
ANSWER_MAX = 4 * 1024 * 1024      # bytes of one answer read at most
DETAIL_MAX = 200                  # characters of an error answer's `detail` quoted in the log
# Answers that say nothing about one run, but about the API or the key: the source's other runs
# are not asked in this poll.
SOURCE_WIDE = frozenset({401, 407, 429, 502, 503, 504})


class StatusApiError(NotifydError):
    """The status API gave no usable answer about a run; `source_wide` when asking about its other
    runs now would fail alike (the key refused, the API down)."""

    def __init__(self, reason: str, *, source_wide: bool = False, unknown: bool = False) -> None:
        super().__init__(reason)
        self.source_wide = source_wide
        self.unknown = unknown          # 404: the API knows no such run (for a registered run: not this source's)
        self.source: SourceConfig | None = None     # whose API said it, when several were asked


@dataclass(frozen=True)
class PollPlan:
    """What polling needs from the config: how long a run may stay silent, and which sources to ask."""

    stale_after: float
    sources: Mapping[str, SourceConfig]

    @property
    def every(self) -> float:
        return min(self.stale_after, EVERY_MAX)

    @property
    def owners(self) -> list[str]:
        """The run owners to look at: the sources with a status API, and "api" for runs a client
        registered that no webhook has reported on yet (their one final webhook may be the lost one)."""
        return [*self.sources, REGISTERED]

    def asked_for(self, run: Run) -> list[SourceConfig]:
        """Whom to ask about a run: its source; for a registered run that no webhook claimed, each
        source with a status API in turn (the first that knows it answers)."""
        if run.source in self.sources:
            return [self.sources[str(run.source)]]
        return list(self.sources.values())


def poll_plan(config: Config) -> PollPlan | None:
    """The plan, or None when polling is off: no `[runs] stale_after`, or no source with a status API."""
    stale_after = config.runs.stale_after
    sources = {name: source for name, source in config.sources.items()
               if source.api_url and source.api_key and _status_api(source) is not None}
    if not stale_after or not sources:
        return None
    return PollPlan(stale_after, sources)


def _status_api(source: SourceConfig) -> StatusApi | None:
    kind = SOURCE_TYPES.get(source.type)
    return kind.status_api if kind is not None else None


def schedule_run_poll(store: Store, config: Config, now: float, *, delay: float | None = None,
                      besides: int | None = None, after: tuple[float, str] | None = None) -> bool:
    """Queue the next poll (in `delay` s, by default the plan's `every`) unless polling is off or one
    (other than job `besides`, the poll scheduling its successor) is queued or running; True if queued.
    `after` is where the next poll continues (its payload)."""
    plan = poll_plan(config)
    if plan is None:
        return False
    spec = JobSpec(service=SERVICE, kind=JobKind.MAINTENANCE, priority=PRIORITY,
                   delay=plan.every if delay is None else delay, unique_key=UNIQUE_KEY,
                   payload={"after": list(after)} if after is not None else {})
    with store.transaction() as tx:
        return tx.schedule_unique(spec, 3, now, besides=besides)


@dataclass
class PollReport:
    """What one poll did: runs asked about, ended here from the API's answer, still going upstream,
    moved by a webhook meanwhile, not answered for; where the next poll continues, and when."""

    asked: int = 0
    ended: list[str] = field(default_factory=list)
    going: int = 0
    moved: int = 0
    failed: int = 0
    after: tuple[float, str] | None = None
    next_in: float = 0.0
    store_error: str | None = None

    def detail(self) -> str:
        if self.store_error is not None:
            return json.dumps({"store_error": self.store_error, "next_in_s": round(self.next_in, 3)})
        return json.dumps({"asked": self.asked, "ended": len(self.ended), "still_going": self.going,
                           "moved_meanwhile": self.moved, "unanswered": self.failed,
                           "next_in_s": round(self.next_in, 3)})


def poll_stale_runs(store: Store, config: Config, plan: PollPlan, connect: Callable[[], httpx.Client],
                    clock: Callable[[], float], *, after: tuple[float, str] | None = None) -> PollReport:
    """Ask the status API about each stale run (at most BATCH, past `after`) and apply the ends it
    reports; `connect` makes the HTTP client, only if some run is stale. Store errors propagate;
    API errors are logged and counted, and so is a bug met with one run (logged with its trace)."""
    now = clock()
    report = PollReport()
    runs = store.stale_runs(now - plan.stale_after, plan.owners, BATCH, after=after)
    given_up: set[str] = set()          # sources whose other runs are not asked in this poll
    with ExitStack() as stack:
        client: httpx.Client | None = None
        for run in runs:
            sources = [s for s in plan.asked_for(run) if s.name not in given_up]
            if not sources:
                report.failed += 1
                continue
            report.asked += 1
            client = client or stack.enter_context(connect())
            source = sources[0]
            try:
                event, source = _answer(client, sources, run.id)
                if not event.media.get("final"):
                    report.going += 1
                elif _apply_end(store, config, run, event, clock()):
                    report.ended.append(run.id)
                else:
                    report.moved += 1
            except StatusApiError as exc:
                report.failed += 1
                source = exc.source or source
                if exc.source_wide:
                    given_up.add(source.name)
                    log.warning("the status API of source %s: %s; its stale runs are asked again at the next poll",
                                source.name, exc)
                else:
                    # A registered run that no status API knows may track something else entirely
                    # (an upload): asked again quietly, not warned about at every poll.
                    quietly = exc.unknown and run.source == REGISTERED
                    log.log(logging.DEBUG if quietly else logging.WARNING,
                            "run %s: the status API of source %s: %s; asked again at the next poll",
                            run.id, source.name, exc)
            except StoreUnavailable:
                raise
            except Exception:           # a bug met with one run must not stop the others' polling
                report.failed += 1
                log.exception("run %s: applying the status API's answer failed; asked again at the next poll",
                              run.id)
    report.after = (runs[-1].updated_at, runs[-1].id) if len(runs) == BATCH else None
    report.next_in = _next_poll(store, plan, clock(), more=report.after is not None)
    return report


def _answer(client: httpx.Client, sources: list[SourceConfig], run_id: str) -> tuple[Event, SourceConfig]:
    """The first answer about the run from these sources, in turn: a source whose API does not
    know the run (404) passes it to the next; any other refusal ends the search."""
    for n, source in enumerate(sources):
        try:
            return ask_status_api(client, source, run_id), source
        except StatusApiError as exc:
            if not exc.unknown or n == len(sources) - 1:
                exc.source = source
                raise
    raise AssertionError("no source to ask")


def ask_status_api(client: httpx.Client, source: SourceConfig, run_id: str) -> Event:
    """GET the run from the source's status API, as the event its final webhook would have made;
    StatusApiError says why not. The key goes in the Authorization header only, never in a message."""
    api = _status_api(source)
    assert api is not None and source.api_url and source.api_key
    url = source.api_url + api.path.format(run_id=quote(run_id, safe=""))
    headers = {"Authorization": f"Bearer {source.api_key}", "Accept": "application/json",
               "User-Agent": f"notifyd/{__version__}"}
    try:
        with client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            raw = _read(response, ANSWER_MAX if status == 200 else 4096)
            content_type = response.headers.get("content-type")
    except httpx.HTTPError as exc:
        raise StatusApiError(f"cannot be reached ({type(exc).__name__}: {str(exc)[:DETAIL_MAX]})",
                             source_wide=True) from None
    if status != 200:
        raise StatusApiError(_refusal(status, raw, source.name), source_wide=status in SOURCE_WIDE,
                             unknown=status == 404)
    try:
        answer = decode_body(raw, content_type)
        event = api.parse(answer, source.name, source.type)
    except WebhookError as exc:                # not JSON, or not a run as the API describes one
        raise StatusApiError(f"an answer notifyd cannot read: {exc}") from None
    if str(event.media.get("run_id", "")).lower() != run_id.lower():
        raise StatusApiError(f"it answered about another run ({str(event.media.get('run_id'))[:80]!r})")
    return replace(event, media={**event.media, "run_id": run_id})     # the run's id as notifyd spells it


def _read(response: httpx.Response, limit: int) -> bytes:
    """The body, refused past `limit` bytes (an error answer is only quoted: cut, not refused)."""
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > limit:
            if response.status_code != 200:
                return bytes(body[:limit])
            raise StatusApiError(f"an answer larger than {limit // (1024 * 1024)} MiB")
    return bytes(body)


def _refusal(status: int, raw: bytes, source: str) -> str:
    """What an error answer means, with its `detail` (FastAPI's error field) when it has one."""
    detail = ""
    try:
        said = json.loads(raw).get("detail")
        if isinstance(said, str) and said.strip():
            detail = f" ({said.strip()[:DETAIL_MAX]!r})"
    except (ValueError, AttributeError, RecursionError):
        pass
    if status == 401:
        return f"HTTP 401{detail}: the API key was refused (check [sources.{source}] api_key)"
    if status == 403:
        return (f"HTTP 403{detail}: not allowed with this API key (another account's run, or a key whose "
                f"scope leaves the run out: check [sources.{source}] api_key)")
    if status == 404:
        return f"HTTP 404{detail}: the API does not know this run (another account's, or none of its runs)"
    return f"HTTP {status}{detail}"


def _apply_end(store: Store, config: Config, seen: Run, event: Event, now: float) -> bool:
    """Apply the API's final status in one transaction, as a webhook would be; False (nothing
    written) when the run moved since it was found stale: a webhook came meanwhile, and said it."""
    with store.transaction() as tx:
        run = tx.run_for_update(seen.id)
        if run is None or run.final or run.updated_at != seen.updated_at:
            return False
        result = record_event(tx, event, config, now)
    log.info("run %s: its final webhook never came; the status API of source %s says %s (event %d, %d job(s))",
             seen.id, seen.source, event.media.get("status"), result.event_id, len(result.jobs))
    return True


def _next_poll(store: Store, plan: PollPlan, now: float, *, more: bool) -> float:
    """Seconds to the next poll: `every` while a run is stale (or this poll left runs unasked),
    else when the oldest waiting run turns stale (at least `every` away), else stale_after."""
    if more:
        return plan.every
    oldest = store.stale_runs(now + plan.stale_after, plan.owners, 1)
    if not oldest:
        return plan.stale_after
    return min(plan.stale_after, max(plan.every, oldest[0].updated_at + plan.stale_after - now))


def run_poll(store: Store, config: Config, clock: Callable[[], float], *, job_id: int,
             after: tuple[float, str] | None = None, transport: httpx.BaseTransport | None = None) -> str:
    """One poll as a job: ask, apply, then schedule the next one (polling off: none); its detail."""
    plan = poll_plan(config)
    if plan is None:
        log.info("job %d run poll: [runs] stale_after or every source's api_url is gone; polling stops", job_id)
        return json.dumps({"skipped": "polling is off"})
    def connect() -> httpx.Client:
        return httpx.Client(timeout=config.worker.timeout, follow_redirects=False, transport=transport)

    try:
        report = poll_stale_runs(store, config, plan, connect, clock, after=after)
    except StoreUnavailable as exc:     # the next poll tries again (if the store takes it: else a retry does)
        log.warning("job %d run poll: the store could not be read: %s", job_id, exc)
        report = PollReport(next_in=plan.every, after=after, store_error=str(exc))
    schedule_run_poll(store, config, clock(), delay=report.next_in, besides=job_id, after=report.after)
    if report.ended or report.failed:
        log.info("job %d run poll: %d stale run(s) asked, %d ended from the status API, %d unanswered",
                 job_id, report.asked, len(report.ended), report.failed)
    return report.detail()


def cursor_of(data: Mapping[str, object]) -> tuple[float, str] | None:
    """Where a poll job continues (its payload's "after"), or None to start from the oldest."""
    after = data.get("after")
    if (isinstance(after, list) and len(after) == 2 and isinstance(after[0], (int, float))
            and isinstance(after[1], str)):
        return float(after[0]), after[1]
    return None
