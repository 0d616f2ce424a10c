"""The ComfyDeploy source: `run.updated` webhooks about one run of a deployed ComfyUI workflow.

Body: {"event_type"?: "run.updated", "run_id": "…", "status": "<run status>", "progress"?: 0..1,
"live_status"?: "…" | null, "outputs"?: [{"node_id", "output_id", "data": {"images": [{"url", …}]}},
…]}. ComfyDeploy's statuses are not-started, queued, started, running, uploading, success, failed,
timeout and cancelled; they become a run status (design §11 "Runs": success is `completed`) and a
kind: `run.completed` for success, `run.failed` for failed, timeout and cancelled (the final
statuses that fan out), `run.<status>` for the intermediate ones. Every value read is type-checked,
and a wrong one raises BadPayload naming the field ("field 'progress': expected a number from 0 to
1, got a string").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from notifyd.errors import BadPayload
from notifyd.model import Event
from notifyd.sources.shape import json_type

EVENT_TYPE = "run.updated"
RUN_ID_MAX = 200
# ComfyDeploy's status → the run status (design §11 "Runs")
STATUSES = {
    "not-started": "queued",
    "queued": "queued",
    "started": "started",
    "running": "running",
    "uploading": "uploading",
    "success": "completed",
    "failed": "failed",
    "timeout": "timeout",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
ACCEPTED = ("not-started", "queued", "started", "running", "uploading", "success", "failed", "timeout",
            "cancelled")
FINAL = ("completed", "failed", "timeout", "cancelled")
KINDS = {"completed": "run.completed", "failed": "run.failed", "timeout": "run.failed",
         "cancelled": "run.failed"}
LEVELS = {"completed": "success", "failed": "failure", "timeout": "failure", "cancelled": "warning"}
ERRORS = {"timeout": "the run timed out", "cancelled": "the run was cancelled"}
PROGRESS_SLACK = 0.01  # a progress this far outside 0..1 is rounding, and is clamped


class _Fields:
    """A JSON object whose values are read with type checks; errors name the field."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def _got(self, key: str) -> str:
        if key not in self.data:
            return "nothing (the field is missing)"
        return _describe(self.data[key])

    def run_id(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip() or len(value) > RUN_ID_MAX:
            got = (f"a string of {len(value)} characters" if isinstance(value, str) and value.strip()
                   else self._got(key))
            raise BadPayload(f"field {key!r}: expected a non-empty string of at most {RUN_ID_MAX} "
                             f"characters, got {got}")
        return value

    def status(self, key: str) -> str:
        value = self.data.get(key)
        status = STATUSES.get(value.strip().lower()) if isinstance(value, str) else None
        if status is None:
            raise BadPayload(f"field {key!r}: expected one of {', '.join(ACCEPTED)}, got {self._got(key)}")
        return status

    def event_type(self, key: str) -> None:
        value = self.data.get(key)
        if value is None:
            return  # absent or null: ComfyDeploy's older bodies do not say
        if not isinstance(value, str) or value.strip() != EVENT_TYPE:
            raise BadPayload(f"field {key!r}: expected \"{EVENT_TYPE}\" (the only event this source "
                             f"takes), got {self._got(key)}")

    def text(self, key: str) -> str | None:
        """A string, or None when absent, null or blank."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise BadPayload(f"field {key!r}: expected a string or null, got {self._got(key)}")
        return value.strip() or None

    def fraction(self, key: str) -> float | None:
        """A number from 0 to 1 (clamped when just outside), or None when absent or null."""
        value = self.data.get(key)
        if value is None:
            return None
        what = "a number from 0 to 1"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadPayload(f"field {key!r}: expected {what}, got {self._got(key)}")
        number = float(value)
        if not (math.isfinite(number) and -PROGRESS_SLACK <= number <= 1 + PROGRESS_SLACK):
            raise BadPayload(f"field {key!r}: expected {what}, got {value!r}")
        return min(max(number, 0.0), 1.0)

    def objects(self, key: str) -> list[Any]:
        """An array of objects, kept as given; [] when absent or null."""
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise BadPayload(f"field {key!r}: expected an array of objects, got {self._got(key)}")
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise BadPayload(f"field '{key}[{i}]': expected an object, got {_describe(item)}")
        return list(value)


def parse_comfydeploy(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a ComfyDeploy `run.updated` body, or raise BadPayload naming the field."""
    fields = _Fields(body)
    fields.event_type("event_type")
    run_id = fields.run_id("run_id")
    status = fields.status("status")
    progress = fields.fraction("progress")
    live_status = fields.text("live_status")
    outputs = fields.objects("outputs")

    media: dict[str, Any] = {"run_id": run_id, "status": status, "final": status in FINAL}
    if progress is not None:
        media["progress"] = progress
    if live_status is not None:
        media["live_status"] = live_status
    media["outputs"] = outputs
    if status == "failed":
        media["error"] = live_status or "the run failed"
    elif status in ERRORS:
        media["error"] = ERRORS[status]
    media["output_urls"] = _output_urls(outputs)
    media["level"] = LEVELS.get(status, "info")
    return Event(source=source, source_type=source_type, kind=KINDS.get(status, f"run.{status}"),
                 title=f"run {run_id[:8]} {status}", body="", paths=(), media=media, payload=raw)


def _output_urls(outputs: list[Mapping[str, Any]]) -> list[str]:
    """Every string under a key named "url" inside outputs[].data: depth first, in order, once each."""
    urls: dict[str, None] = {}
    for output in outputs:
        stack: list[Any] = [output.get("data")]
        while stack:  # a stack, not recursion: a deep body must not overflow Python's
            value = stack.pop()
            children: list[Any] = []
            if isinstance(value, Mapping):
                for key, inner in value.items():
                    if key == "url" and isinstance(inner, str):
                        if inner.strip():
                            children.append(_Url(inner))
                    else:
                        children.append(inner)
            elif isinstance(value, list):
                children = list(value)
            elif isinstance(value, _Url):
                urls.setdefault(value.url, None)
            stack.extend(reversed(children))
    return list(urls)


class _Url:
    """A found URL, kept on the stack so that it is taken in document order."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40] + "…")
    return json_type(value)
