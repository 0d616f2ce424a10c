"""Reading the store back as the stable JSON shapes of design §11 (events, jobs, runs, stats).

Shared by the CLI and the HTTP listener so both always answer alike; the store gives records,
this module gives them their public shape. What a view returns always serialises as strict JSON
(`allow_nan=False`, UTF-8): a NaN or an infinity in a row stored by an older version is shown as
null rather than failing every read of it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from notifyd.model import FINAL_RUN_STATUSES, Attempt, DeliveryStatus, Job, Run, StoredEvent
from notifyd.strict_json import json_safe
from notifyd.timefmt import iso
from notifyd.units import filesize

if TYPE_CHECKING:
    from notifyd.store import Store


def job_view(job: Job) -> dict[str, Any]:
    """A job as the job JSON shape."""
    return {
        "id": job.id, "event_id": job.event_id, "service": job.service, "kind": str(job.kind),
        "priority": job.priority, "state": str(job.state), "attempts": job.attempts,
        "max_attempts": job.max_attempts, "run_at": iso(job.run_at), "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at), "last_error": job.last_error, "delivery": str(job.delivery),
    }


def job_summary(job: Job) -> dict[str, Any]:
    """A job as an event or run lists it."""
    return {"id": job.id, "service": job.service, "state": str(job.state), "attempts": job.attempts,
            "delivery": str(job.delivery), "last_error": job.last_error}


def attempt_view(n: int, attempt: Attempt) -> dict[str, Any]:
    return {"n": n, "started_at": iso(attempt.started_at), "finished_at": iso(attempt.finished_at),
            "outcome": attempt.outcome or "running", "error": attempt.error, "detail": _detail(attempt.detail),
            "node": attempt.node}


def _detail(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def list_jobs(store: Store, state: str | None = None, service: str | None = None, limit: int = 50,
              include_maintenance: bool = False) -> list[dict[str, Any]]:
    """The newest jobs first, optionally of one state and one service; maintenance jobs on request."""
    return [job_view(j) for j in store.list_jobs(state=state, service=service, limit=limit,
                                                 include_maintenance=include_maintenance)]


def show_job(store: Store, job_id: int) -> dict[str, Any]:
    """One job with its attempt log (every try, numbered from the first)."""
    view = job_view(store.get_job(job_id))
    view["attempt_log"] = [attempt_view(n, a) for n, a in enumerate(store.job_attempts(job_id), start=1)]
    return json_safe(view)


def event_view(stored: StoredEvent, jobs: list[Job]) -> dict[str, Any]:
    """An event and its jobs as the event JSON shape; `skipped_services` lists the services whose
    filter took it but which got no job, and why (a URL its run context cannot fill); `thumbnail`
    says what picture the sender attached ("image/jpeg, 34 KiB"), or null."""
    # Imported here: `jobs list` needs no fan-out.
    from notifyd.fanout import SKIPPED_SERVICES

    event = stored.event
    skipped = event.media.get(SKIPPED_SERVICES)
    return json_safe({
        "id": stored.id, "source": event.source, "source_type": event.source_type, "kind": event.kind,
        "title": event.title, "body": event.body, "paths": list(event.paths),
        "received_at": iso(stored.received_at), "jobs": [job_summary(j) for j in jobs],
        "skipped_services": [{"service": str(name), "reason": str(reason)} for name, reason in skipped.items()]
        if isinstance(skipped, dict) else [],
        "thumbnail": thumbnail_summary(event.media.get("thumbnail")),
    })


def thumbnail_summary(thumbnail: Any) -> str | None:
    """The picture a sender attached (media["thumbnail"]: a Plex poster) as people read it,
    "image/jpeg, 34 KiB", never its base64; None when the event has none."""
    if not isinstance(thumbnail, dict) or not isinstance(thumbnail.get("data"), str):
        return None
    data = thumbnail["data"]
    size = len(data) * 3 // 4 - data[-2:].count("=")
    return f"{thumbnail.get('content_type') or 'an image'}, {filesize(size) or '0 B'}"


def show_event(store: Store, event_id: int) -> dict[str, Any]:
    """One event with each job's delivery status."""
    stored = store.get_event(event_id)
    return event_view(stored, store.jobs_of_events([event_id])[event_id])


def list_events(store: Store, source: str | None = None, kind: str | None = None,
                limit: int = 50) -> list[dict[str, Any]]:
    """The newest events first, with their jobs."""
    events = store.list_events(source=source, kind=kind, limit=limit)
    jobs = store.jobs_of_events([e.id for e in events])
    return [event_view(e, jobs[e.id]) for e in events]


def queue_depth(store: Store, now: float) -> dict[str, Any]:
    """Counts of queued, running and dead jobs and the age of the oldest due queued job."""
    depth = store.queue_depth(now)
    return {"queued": depth.queued, "running": depth.running, "dead": depth.dead,
            "oldest_queued_s": depth.oldest_queued_s}


def stats(store: Store, now: float) -> dict[str, Any]:
    """One screen of numbers: jobs by state, by service and state, the last hour, dead jobs."""
    numbers = store.stats(now)
    return {"jobs": dict(numbers.jobs_by_state), "services": {k: dict(v) for k, v in numbers.jobs_by_service.items()},
            "queue": queue_depth(store, now),
            "last_hour": {"events": numbers.events_last_hour, "jobs_finished": dict(numbers.finished_last_hour)},
            "events_total": numbers.events_total, "dead_recent": [job_view(j) for j in numbers.dead_recent]}


def run_view(store: Store, run_id: str) -> dict[str, Any]:
    """The run JSON shape of design §11, with its delivery derived from the final event's jobs."""
    return _run_view(store, store.get_run(run_id))


def list_runs(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    return [_run_view(store, run) for run in store.list_runs(limit)]


def _run_view(store: Store, run: Run) -> dict[str, Any]:
    from notifyd.run_state import timing

    jobs: list[Job] = []
    if run.final_event_id is not None:
        jobs = store.jobs_of_events([run.final_event_id])[run.final_event_id]
        jobs = [j for j in jobs if j.event_id == run.final_event_id]
    times = timing(run)
    return json_safe({
        "id": run.id, "name": run.name, "status": str(run.status), "progress": run.progress,
        "live_status": run.live_status, "created_at": iso(run.created_at),
        "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
        "duration_s": times["duration_s"], "cost_usd": times["cost_usd"], "outputs": list(run.outputs),
        "error": run.error, "notify": list(run.notify), "callback_url": run.callback_url,
        "registered": run.registered, "delivery": run_delivery(run, jobs),
        "jobs": [job_summary(j) for j in jobs],
    })


# How far a delivery is from done, furthest first: the one that decides what the run's delivery reads.
_BEHIND = {DeliveryStatus.FAILED: 3, DeliveryStatus.PENDING: 2, DeliveryStatus.SENT: 1, DeliveryStatus.SKIPPED: 0}


def run_delivery(run: Run, jobs: list[Job]) -> dict[str, Any]:
    """How the run's final news went out: each of its deliveries (a notification per service, the
    callback) is a job of the final event, listed under the run's `jobs`; this sums them up as the
    delivery of the one furthest from done, so that every figure reads as one delivery's.

    - status: pending until every job is done; then failed if any failed, skipped if all were
      skipped (or there were none), else sent.
    - delivered_at: when the last one was sent, once all are (status sent).
    - service, attempts, last_error: the job furthest from done (failed, then pending, then sent,
      then skipped; among equals the one with the most tries): which service it is, how many tries
      it has taken, and its last error while it is not sent (None once sent). A run told to three
      services at the first try reads attempts 1, not 3; 0 before any try.
    """
    states = [j.delivery for j in jobs]
    if run.status not in FINAL_RUN_STATUSES or DeliveryStatus.PENDING in states:
        status = DeliveryStatus.PENDING
    elif not states or all(s == DeliveryStatus.SKIPPED for s in states):
        status = DeliveryStatus.SKIPPED
    elif DeliveryStatus.FAILED in states:
        status = DeliveryStatus.FAILED
    else:
        status = DeliveryStatus.SENT
    sent = [j.finished_at for j in jobs if j.delivery == DeliveryStatus.SENT and j.finished_at]
    behind = max(jobs, key=lambda j: (_BEHIND[j.delivery], j.attempts, j.id), default=None)
    last_error = behind.last_error if behind is not None and behind.delivery != DeliveryStatus.SENT else None
    return {"status": str(status), "delivered_at": iso(max(sent)) if sent and status == DeliveryStatus.SENT else None,
            "service": behind.service if behind is not None else None,
            "attempts": behind.attempts if behind is not None else 0, "last_error": last_error}
