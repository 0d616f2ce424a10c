"""The ComfyDeploy source: `run.updated` webhooks about one run of a deployed ComfyUI workflow.

Body: {"event_type"?: "run.updated", "run_id": "…", "status": "<run status>", "progress"?: 0..1,
"live_status"?: "…" | null, "outputs"?: [{"node_id", "output_id", "data": {"images": [{"url", …}]}},
…]}. ComfyDeploy's statuses are not-started, queued, started, running, uploading, success, failed,
timeout and cancelled; they become a run status (design §11 "Runs": success is `completed`) and a
kind: `run.completed` for success, `run.failed` for failed, timeout and cancelled (the final
statuses that fan out), `run.<status>` for the intermediate ones. Every value read goes through the
field vocabulary (`notifyd.fields`), and a wrong one raises BadPayload naming the field ("field
'progress': expected a number from 0 to 1, got 45"); `outputs` are kept as sent, but every number
in them must be finite, so that the run can always be shown and called back as JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from notifyd.fields import URL_MAX, Fields
from notifyd.model import Event

EVENT_TYPE = "run.updated"
OUTPUT_URLS_MAX = 10            # 10 × URL_MAX stays well inside templates.MAX_OUTPUT
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
PROGRESS_TOLERANCE = 0.01  # a progress this far outside 0..1 is rounding, and is clamped


def parse_comfydeploy(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a ComfyDeploy `run.updated` body, or raise BadPayload naming the field."""
    fields = Fields(body)
    fields.choice("event_type", {EVENT_TYPE: EVENT_TYPE},
                  f"\"{EVENT_TYPE}\" (the only event this source takes)")   # absent or null: older bodies
    run_id = fields.run_id("run_id", required=True)
    status = fields.choice("status", STATUSES, f"one of {', '.join(ACCEPTED)}", fold_case=True, required=True)
    assert run_id is not None and status is not None
    progress = fields.fraction("progress", PROGRESS_TOLERANCE)
    live_status = fields.prose("live_status")
    outputs = fields.json_objects("outputs")

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
    """Every string under a key named "url" inside outputs[].data: depth first, in order, once each;
    the first OUTPUT_URLS_MAX of at most URL_MAX characters (the ones a notification lists)."""
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
                if len(value.url) <= URL_MAX:
                    urls.setdefault(value.url, None)
                    if len(urls) == OUTPUT_URLS_MAX:
                        return list(urls)
            stack.extend(reversed(children))
    return list(urls)


class _Url:
    """A found URL, kept on the stack so that it is taken in document order."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url
