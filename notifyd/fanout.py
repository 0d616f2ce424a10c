"""Fan-out: which jobs an event becomes. Pure: an Event and services in, job specs out."""

from __future__ import annotations

from collections.abc import Iterable

from notifyd.config import ServiceConfig
from notifyd.model import Event, JobKind, JobSpec
from notifyd.run_state import RUN_FINAL_KINDS

CALLBACK_SERVICE = "(callback)"      # a run's own callback URL: not a configured service


def is_quiet(event: Event) -> bool:
    """Events recorded that notify no one: a sender's test, a tracked run's intermediate status."""
    if event.kind == "test":
        return True
    return "run_id" in event.media and event.kind.startswith("run.") and event.kind not in RUN_FINAL_KINDS


def plan_jobs(event: Event, services: Iterable[ServiceConfig], only: Iterable[str] | None = None,
              notify: Iterable[str] = (), callback: tuple[str, str] | None = None) -> list[JobSpec]:
    """One job per enabled service whose `events` filter takes this event's kind.

    A test event or an intermediate run status gets no jobs. `only` (a manual send naming
    services) replaces the filter; `notify` (a run's named services) adds to it, whatever their
    filters say; `callback` (run id, URL) adds the run's signed callback. One job per service.
    """
    if is_quiet(event):
        return []
    named = set(only) if only is not None else None
    extra = set(notify)
    specs = []
    for service in services:
        if not service.enabled:
            continue
        if named is not None:
            if service.name not in named:
                continue
        elif not (service.wants(event.kind) or service.name in extra):
            continue
        if service.job_kind == JobKind.REFRESH:
            specs.extend(refresh_jobs(event, service))
        else:
            specs.append(JobSpec(service=service.name, kind=service.job_kind, priority=service.priority))
    if callback is not None:
        specs.append(JobSpec(service=CALLBACK_SERVICE, kind=JobKind.CALLBACK, priority=5,
                             payload={"run_id": callback[0], "url": callback[1]}))
    return specs


DEFAULT_SCAN_DELAY = 10.0
CHANGE_OF_KIND = {"download": "created", "delete": "deleted", "file_delete": "deleted"}


def refresh_jobs(event: Event, service: ServiceConfig) -> list[JobSpec]:
    """One refresh per folder the event changed, as the media server sees it (path_map applied).

    Each waits scan_delay and shares a unique_key with any still-queued refresh of the same folder,
    so a season pack's episodes collapse into one scan per server. No folder: a whole-library refresh.
    """
    mapping = service.options.get("path_map", ())
    folders: list[str | None] = list(dict.fromkeys(map_path(p, mapping) for p in event.paths)) or [None]
    library = "audio" if event.media.get("media_type") == "music" else "video"
    change = CHANGE_OF_KIND.get(event.kind, "modified")
    delay = float(service.options.get("scan_delay", DEFAULT_SCAN_DELAY))
    return [JobSpec(service=service.name, kind=JobKind.REFRESH, priority=service.priority, delay=delay,
                    unique_key=f"refresh:{service.name}:{library}:{change}:{folder or '*'}",
                    payload={"path": folder, "library": library, "change": change})
            for folder in folders]


def map_path(path: str, mapping: Iterable[tuple[str, str]]) -> str:
    """Rewrite a sender's folder to the media server's view by the longest matching `from` prefix."""
    best = None
    for source, target in mapping:
        root = source.rstrip("/\\")
        if path == source or path == root or path.startswith(root + "/") or path.startswith(root + "\\"):
            if best is None or len(root) > len(best[0]):
                best = (root, target)
    if best is None:
        return path
    rest = path[len(best[0]):].lstrip("/\\")
    target = best[1]
    if target.startswith("/"):
        rest = rest.replace("\\", "/")            # a Windows sender's folder, seen by a POSIX server
    sep = "\\" if not target.startswith("/") and "\\" in target else "/"
    return target.rstrip("/\\") + sep + rest if rest else target
