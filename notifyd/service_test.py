"""`notifyd services test`: one job for one service, run through the queue at once, and its result."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from notifyd.channels import describe_target
from notifyd.config import Config
from notifyd.errors import NotFound
from notifyd.events import Event
from notifyd.fanout import JobSpec
from notifyd.history import show_job
from notifyd.logs import Redactor
from notifyd.queue import JobQueue, enqueue
from notifyd.store import write
from notifyd.worker import ChannelCache, deliver_claim

if TYPE_CHECKING:
    import sqlite_utils

WAIT_FOR_DAEMON = 30.0


@dataclass(frozen=True)
class ServiceTestResult:
    """How the test went: the job as `jobs show` gives it, and the gist for people."""

    ok: bool
    target: str
    elapsed: float
    error: str | None
    detail: str | None
    job: dict[str, Any]


def run_service_test(db: sqlite_utils.Database, config: Config, name: str) -> ServiceTestResult:
    """Queue a test job for `name` and run it here, unless a running daemon took it first."""
    service = config.services.get(name)
    if service is None:
        raise NotFound(f"no service {name!r} (configured: {', '.join(config.services) or 'none'})")
    service = replace(service, enabled=True)                 # testing before enabling is the point
    config = replace(config, services={**config.services, name: service})
    event = Event(source="cli", source_type="manual", kind="test", title=f"notifyd test: {name}",
                  body=f"Test message from notifyd for service {name}. If you can read this, it works.",
                  media={"level": "info"})
    payload = ({"path": service.options.get("test_path"), "library": "video", "change": "modified", "test": True}
               if service.job_kind == "refresh" else {})
    now = time.time()
    with write(db):
        event_id = db.conn.execute(
            "INSERT INTO events (source, source_type, kind, title, body, media, payload, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, '{}', ?)",
            (event.source, event.source_type, event.kind, event.title, event.body, json.dumps(event.media), now),
        ).lastrowid
        spec = JobSpec(service=name, kind=service.job_kind, priority=1, payload=payload)
        job_id = enqueue(db, event_id, [spec], 1, now)[0].id   # one attempt: a test is not retried
    started = time.monotonic()
    queue = JobQueue(db, lease=config.worker.lease)
    claim = queue.claim_job(job_id)
    if claim is not None:
        deliver_claim(claim, queue, config, ChannelCache(), Redactor(config.secrets()))
    else:                                                    # the daemon took it: wait for its outcome
        deadline = time.monotonic() + WAIT_FOR_DAEMON
        while show_job(db, job_id)["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.1)
    job = show_job(db, job_id)
    last = job["attempt_log"][-1] if job["attempt_log"] else {}
    detail = last.get("detail")
    return ServiceTestResult(ok=job["state"] == "succeeded", target=describe_target(service),
                      elapsed=time.monotonic() - started, error=job["last_error"],
                      detail=json.dumps(detail) if isinstance(detail, (dict, list)) else detail, job=job)
