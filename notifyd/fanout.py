"""Fan-out: which jobs an event becomes. Pure: an Event and services in, job specs out."""

from __future__ import annotations

from collections.abc import Iterable

from notifyd.channels.kinds import CHANNEL_TYPES
from notifyd.config import ServiceConfig
from notifyd.event_kinds import QUIET
from notifyd.fields import path_separator
from notifyd.model import Event, JobKind, JobSpec
from notifyd.run_state import RUN_FINAL_KINDS

CALLBACK_SERVICE = "(callback)"      # a run's own callback URL: not a configured service
SKIPPED_SERVICES = "skipped_services"  # event media: services `unfillable` left without a job, and why


def is_quiet(event: Event) -> bool:
    """Events recorded that notify no one: a sender's test, a tracked run's intermediate status, and
    what a source marks QUIET (an *arr file deleted by an upgrade: the upgrade itself tells)."""
    if event.kind == "test" or event.media.get(QUIET):
        return True
    return "run_id" in event.media and event.kind.startswith("run.") and event.kind not in RUN_FINAL_KINDS


def takes(service: ServiceConfig, event: Event) -> bool:
    """Whether a service's own `events` filter takes this event.

    A service whose URL has {placeholders} (tgram://BOT/{chat_id}) can only deliver what a tracked
    run's context fills in, so it serves runs: with no `events` of its own it takes nothing here
    (runs that name it in `notify` still reach it, whatever its filter); with an explicit filter, only
    events whose run context fills every placeholder (`context_gap`), never a job sure to die.
    """
    if not service.wants(event.kind, event.source_type):
        return False
    if service.placeholders:
        return service.events is not None and context_gap(service, event) is None
    return True


def context_gap(service: ServiceConfig, event: Event) -> str | None:
    """Why the event's run context cannot fill this service's URL, or None when it can."""
    context = event.media.get("context") or {}
    missing = [name for name in service.placeholders if name not in context]
    if not missing:
        return None
    needs = ", ".join("{" + name + "}" for name in missing)
    if context:
        has = ", ".join(sorted(context))
    else:
        has = "nothing" if "run_id" in event.media else "none (it is not about a tracked run)"
    return f"its URL needs {needs} from a tracked run's context; this event's context has {has}"


def unfillable(event: Event, services: Iterable[ServiceConfig], notify: Iterable[str] = ()) -> dict[str, str]:
    """The services whose `events` filter names this event's kind but got no job because its run
    context cannot fill their URL (`takes`): name → why, for the event's record."""
    if is_quiet(event):
        return {}
    named = set(notify)
    gaps = {}
    for service in services:
        if service.enabled and service.name not in named and service.events is not None \
                and service.wants(event.kind, event.source_type) and (gap := context_gap(service, event)) is not None:
            gaps[service.name] = gap
    return gaps


def plan_jobs(event: Event, services: Iterable[ServiceConfig], only: Iterable[str] | None = None,
              notify: Iterable[str] = (), callback: tuple[str, str] | None = None) -> list[JobSpec]:
    """One job per enabled service whose `events` filter takes this event (`takes`).

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
        elif not (service.name in extra or takes(service, event)):
            continue
        if service.job_kind == JobKind.REFRESH:
            specs.extend(refresh_jobs(event, service))
        elif gathers(service, event):
            specs.append(digest_job(service))
        else:
            specs.append(JobSpec(service=service.name, kind=service.job_kind, priority=service.priority))
    if callback is not None:
        specs.append(JobSpec(service=CALLBACK_SERVICE, kind=JobKind.CALLBACK, priority=5,
                             payload={"run_id": callback[0], "url": callback[1]}))
    return specs


URGENT_LEVELS = frozenset({"failure", "warning"})   # not held for a digest unless digest_all


def gathers(service: ServiceConfig, event: Event) -> bool:
    """Whether this event waits in the service's digest (`digest = "2m"`): failures and warnings go
    at once unless `digest_all`; a URL filled per run ({chat_id}) cannot share one message."""
    if not service.options.get("digest") or service.placeholders:
        return False
    return bool(service.options.get("digest_all")) or str(event.media.get("level", "info")) not in URGENT_LEVELS


DIGEST_KEY = "digest:"
DIGEST_MAX = 200         # events one digest tells; past them it says there were more (a library scan's flood)


def is_digest(spec: JobSpec) -> bool:
    return (spec.unique_key or "").startswith(DIGEST_KEY)


def digest_job(service: ServiceConfig) -> JobSpec:
    """The service's digest: the first event of a window opens the job, due when the window ends;
    the window's later events collapse into it (unique_key) while it has not run, and its delivery
    reads them all (Store.events_of_job). Durable like any job: a restart inside the window keeps
    it, and it is sent once."""
    return JobSpec(service=service.name, kind=service.job_kind, priority=service.priority,
                   delay=float(service.options["digest"]), unique_key=DIGEST_KEY + service.name,
                   payload={"digest": True})


DEFAULT_SCAN_DELAY = 10.0
CHANGE_OF_KIND = {"download": "created", "delete": "deleted", "file_delete": "deleted"}


def refresh_jobs(event: Event, service: ServiceConfig) -> list[JobSpec]:
    """One refresh per folder the event changed, as the media server sees it (path_map applied).

    Each waits scan_delay and shares a unique_key with any still-queued refresh of the same folder,
    so a season pack's episodes collapse into one scan per server. No folder: a whole-library refresh.
    No job for media the server keeps no library of (a book on Kodi): its channel kind says which.
    """
    media_type = event.media.get("media_type")
    if not CHANNEL_TYPES[service.type].can_refresh(media_type):
        return []
    mapping = service.options.get("path_map", ())
    folders: list[str | None] = list(dict.fromkeys(map_path(p, mapping) for p in event.paths)) or [None]
    library = "audio" if media_type == "music" else "video"
    change = CHANGE_OF_KIND.get(event.kind, "modified")
    delay = float(service.options.get("scan_delay", DEFAULT_SCAN_DELAY))
    return [JobSpec(service=service.name, kind=JobKind.REFRESH, priority=service.priority, delay=delay,
                    unique_key=f"refresh:{service.name}:{library}:{change}:{folder or '*'}",
                    payload={"path": folder, "library": library, "change": change, "media_type": media_type})
            for folder in folders]


def map_path(path: str, mapping: Iterable[tuple[str, str]]) -> str:
    """Rewrite a sender's folder to the media server's view by the longest matching `from` prefix,
    the rest of it written with the separator of the `to` side (D:\\Media → /storage, or back)."""
    best = None
    for source, target in mapping:
        root = source.rstrip("/\\")
        if path == source or path == root or path.startswith(root + "/") or path.startswith(root + "\\"):
            if best is None or len(root) > len(best[0]):
                best = (root, target)
    if best is None:
        return path
    root, target = best
    rest = path[len(root):].lstrip("/\\")
    sep, theirs = path_separator(target), path_separator(path)
    if sep != theirs:
        rest = rest.replace(theirs, sep)   # a Windows sender's folder seen by a POSIX server, or the reverse
    return target.rstrip("/\\") + sep + rest if rest else target
