"""Reading the store back: events, jobs and their attempts as the stable JSON shapes of design §11.

Shared by the CLI and the HTTP listener so both always answer alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TYPE_CHECKING


from notifyd.errors import NotFound
from notifyd.events import Event
from notifyd.timefmt import iso

if TYPE_CHECKING:
    import sqlite_utils

DELIVERY = {"queued": "pending", "running": "pending", "succeeded": "sent", "dead": "failed",
            "cancelled": "skipped", "skipped": "skipped"}


@dataclass(frozen=True)
class StoredEvent:
    """An Event as stored, with its id and receive time."""

    id: int
    received_at: float
    event: Event


def load_event(db: sqlite_utils.Database, event_id: int) -> StoredEvent:
    """The stored event by id, or NotFound."""
    row = db.conn.execute(
        "SELECT id, source, source_type, kind, title, body, paths, media, payload, received_at "
        "FROM events WHERE id = ?", (event_id,)).fetchone()
    if row is None:
        raise NotFound(f"no event {event_id}")
    event = Event(source=row[1], source_type=row[2], kind=row[3], title=row[4], body=row[5],
                  paths=tuple(json.loads(row[6])), media=json.loads(row[7]), payload=row[8])
    return StoredEvent(row[0], row[9], event)


def job_view(row: dict[str, Any]) -> dict[str, Any]:
    """A jobs row as the job JSON shape."""
    return {
        "id": row["id"], "event_id": row["event_id"], "service": row["service"], "kind": row["kind"],
        "priority": row["priority"], "state": row["state"], "attempts": row["attempts"],
        "max_attempts": row["max_attempts"], "run_at": iso(row["run_at"]),
        "created_at": iso(row["created_at"]), "finished_at": iso(row["finished_at"]),
        "last_error": row["last_error"], "delivery": DELIVERY[row["state"]],
    }


DELIVERIES = "kind != 'maintenance'"      # what queue depth and listings count by default


def list_jobs(db: sqlite_utils.Database, state: str | None = None, service: str | None = None,
              limit: int = 50, include_maintenance: bool = False) -> list[dict[str, Any]]:
    """The newest jobs first, optionally of one state and one service; maintenance jobs on request."""
    where, params = ([] if include_maintenance else [DELIVERIES]), []
    if state:
        where.append("state = ?")
        params.append(state)
    if service:
        where.append("service = ?")
        params.append(service)
    sql = "SELECT * FROM jobs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    return [job_view(r) for r in db.query(sql, [*params, limit])]


def show_job(db: sqlite_utils.Database, job_id: int) -> dict[str, Any]:
    """One job with its attempt log (every try, numbered from the first)."""
    rows = list(db.query("SELECT * FROM jobs WHERE id = ?", [job_id]))
    if not rows:
        raise NotFound(f"no job {job_id}")
    view = job_view(rows[0])
    view["attempt_log"] = [
        {"n": n, "started_at": iso(a["started_at"]), "finished_at": iso(a["finished_at"]),
         "outcome": a["outcome"] or "running", "error": a["error"], "detail": _detail(a["detail"])}
        for n, a in enumerate(db.query("SELECT * FROM attempts WHERE job_id = ? ORDER BY id", [job_id]), start=1)
    ]
    return view


def _detail(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def event_view(row: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """An events row and its jobs as the event JSON shape."""
    return {
        "id": row["id"], "source": row["source"], "source_type": row["source_type"], "kind": row["kind"],
        "title": row["title"], "body": row["body"], "paths": json.loads(row["paths"]),
        "received_at": iso(row["received_at"]),
        "jobs": [{"id": j["id"], "service": j["service"], "state": j["state"], "attempts": j["attempts"],
                  "delivery": DELIVERY[j["state"]], "last_error": j["last_error"]} for j in jobs],
    }


def show_event(db: sqlite_utils.Database, event_id: int) -> dict[str, Any]:
    """One event with each job's delivery status."""
    rows = list(db.query("SELECT * FROM events WHERE id = ?", [event_id]))
    if not rows:
        raise NotFound(f"no event {event_id}")
    jobs = list(db.query("SELECT id, service, state, attempts, last_error FROM jobs WHERE event_id = ? "
                         "UNION SELECT j.id, j.service, j.state, j.attempts, j.last_error FROM jobs j "
                         "JOIN job_events l ON l.job_id = j.id WHERE l.event_id = ? ORDER BY id",
                         [event_id, event_id]))
    return event_view(rows[0], jobs)


def list_events(db: sqlite_utils.Database, source: str | None = None, kind: str | None = None,
                limit: int = 50) -> list[dict[str, Any]]:
    """The newest events first, with their jobs."""
    where, params = [], []
    if source:
        where.append("source = ?")
        params.append(source)
    if kind:
        where.append("kind = ?")
        params.append(kind)
    sql = "SELECT * FROM events" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?"
    events = list(db.query(sql, [*params, limit]))
    if not events:
        return []
    marks = ",".join("?" for _ in events)
    by_event: dict[int, list[dict[str, Any]]] = {}
    ids = [e["id"] for e in events]
    for j in db.query(f"SELECT id, event_id, service, state, attempts, last_error FROM jobs "
                      f"WHERE event_id IN ({marks}) UNION SELECT j.id, l.event_id, j.service, j.state, j.attempts, "
                      f"j.last_error FROM jobs j JOIN job_events l ON l.job_id = j.id "
                      f"WHERE l.event_id IN ({marks}) ORDER BY id", ids + ids):
        by_event.setdefault(j["event_id"], []).append(j)
    return [event_view(e, by_event.get(e["id"], [])) for e in events]


def queue_depth(db: sqlite_utils.Database, now: float) -> dict[str, Any]:
    """Counts of queued, running and dead jobs and the age of the oldest due queued job."""
    counts = {state: n for state, n in db.conn.execute(
        f"SELECT state, count(*) FROM jobs WHERE state IN ('queued', 'running', 'dead') AND {DELIVERIES} "
        "GROUP BY state")}
    oldest = db.conn.execute(f"SELECT min(run_at) FROM jobs WHERE state = 'queued' AND run_at <= ? AND {DELIVERIES}",
                             (now,)).fetchone()[0]
    return {"queued": counts.get("queued", 0), "running": counts.get("running", 0),
            "dead": counts.get("dead", 0),
            "oldest_queued_s": round(now - oldest, 3) if oldest is not None else 0.0}


def stats(db: sqlite_utils.Database, now: float) -> dict[str, Any]:
    """One screen of numbers: jobs by state, by service and state, the last hour, dead jobs."""
    by_state = {s: n for s, n in db.conn.execute(f"SELECT state, count(*) FROM jobs WHERE {DELIVERIES} GROUP BY state")}
    by_service: dict[str, dict[str, int]] = {}
    for service, state, n in db.conn.execute(
            f"SELECT service, state, count(*) FROM jobs WHERE {DELIVERIES} GROUP BY service, state ORDER BY service"):
        by_service.setdefault(service, {})[state] = n
    hour = now - 3600
    events_hour = db.conn.execute("SELECT count(*) FROM events WHERE received_at >= ?", (hour,)).fetchone()[0]
    finished_hour = {s: n for s, n in db.conn.execute(
        f"SELECT state, count(*) FROM jobs WHERE finished_at >= ? AND {DELIVERIES} GROUP BY state", (hour,))}
    dead = [job_view(r) for r in db.query("SELECT * FROM jobs WHERE state = 'dead' ORDER BY id DESC LIMIT 10")]
    return {"jobs": by_state, "services": by_service, "queue": queue_depth(db, now),
            "last_hour": {"events": events_hour, "jobs_finished": finished_hour},
            "events_total": db.conn.execute("SELECT count(*) FROM events").fetchone()[0],
            "dead_recent": dead}
