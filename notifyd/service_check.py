"""`notifyd services test`: one job for one service, run through the queue at once, and its result."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import Any

from notifyd.channels import describe_target
from notifyd.config import Config
from notifyd.errors import NotFound
from notifyd.job_handlers import ChannelCache, JobContext
from notifyd.logs import Redactor
from notifyd.model import Event, JobKind, JobSpec, JobState
from notifyd.store import Store
from notifyd.views import show_job
from notifyd.worker import run_job

WAIT_FOR_DAEMON = 30.0
NOT_DUE_FOR = 60.0


@dataclass(frozen=True)
class ServiceCheckResult:
    """How the test went: the job as `jobs show` gives it, and the gist for people."""

    ok: bool
    target: str
    elapsed: float
    error: str | None
    detail: str | None
    job: dict[str, Any]


def run_service_check(store: Store, config: Config, name: str) -> ServiceCheckResult:
    """Queue a test job for `name` and run it here, unless a running daemon took it first."""
    service = config.services.get(name)
    if service is None:
        raise NotFound(f"no service {name!r} (configured: {', '.join(config.services) or 'none'})")
    service = replace(service, enabled=True)                 # testing before enabling is the point
    config = replace(config, services={**config.services, name: service})
    event = Event(source="cli", source_type="manual", kind="test", title=f"notifyd test: {name}",
                  body=f"Test message from notifyd for service {name}. If you can read this, it works.",
                  media={"level": "info"})
    # "test": asked for now, so quiet hours do not hold it (notifyd.job_handlers).
    payload = ({"path": service.options.get("test_path"), "library": "video", "change": "modified", "test": True}
               if service.job_kind == JobKind.REFRESH else {"test": True})
    now = time.time()
    with store.transaction() as tx:
        event_id = tx.insert_event(event, now)
        # Not due for a while: claimed here at once, never first by a daemon whose config may
        # still have the service disabled (a daemon on another node is told of every enqueue).
        spec = JobSpec(service=name, kind=service.job_kind, priority=1, payload=payload, delay=NOT_DUE_FOR)
        job_id = tx.enqueue(event_id, [spec], 1, now)[0].id   # one attempt: a test is not retried
    started = time.monotonic()
    claim = store.claim_job(job_id, time.time(), config.worker.lease)
    if claim is not None:
        run_job(claim, JobContext(store, config, ChannelCache()), Redactor(config.secrets()))
    else:                                                    # the daemon took it: wait for its outcome
        deadline = time.monotonic() + WAIT_FOR_DAEMON
        while store.get_job(job_id).state in (JobState.QUEUED, JobState.RUNNING) and time.monotonic() < deadline:
            time.sleep(0.1)
    job = show_job(store, job_id)
    last = job["attempt_log"][-1] if job["attempt_log"] else {}
    detail = last.get("detail")
    return ServiceCheckResult(ok=job["state"] == "succeeded", target=describe_target(service),
                              elapsed=time.monotonic() - started, error=job["last_error"],
                              detail=json.dumps(detail) if isinstance(detail, (dict, list)) else detail, job=job)
