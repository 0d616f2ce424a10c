"""The ComfyDeploy source: webhooks about one run of a deployed ComfyUI workflow.

Body, as ComfyDeploy's backend sends it (`send_webhook` in comfy-deploy/api; samples and sources in
tests/fixtures/comfydeploy/): {"event_type"?: "run.updated" | "run.output", "status": "<run
status>", "live_status": "…" | null, "progress": 0..1, "run_id": "…", "outputs": [{"id", "run_id",
"data": {"images" | "files" | "gifs": [{"url", "filename", …}], "text": ["…"]}, "node_meta",
"created_at", "updated_at", "output_id"?}, …]}. Older backends and the SDK's schema send no
`event_type`; such a body is a `run.updated`.

- `run.updated` reports the run's status. ComfyDeploy's statuses are not-started, queued, started,
  running, uploading, success, failed, timeout and cancelled; they become a run status (design §11
  "Runs": success is `completed`) and a kind: `run.completed` for success, `run.failed` for failed,
  timeout and cancelled (the final statuses that fan out), `run.<status>` for the others.
- `run.output` (sent only when the webhook URL asks for it with `?target_events=run.output`)
  carries one new output; its kind is `run.output`, it adds that output to the run and never moves
  the run's status (media["outputs_only"]).

Every value read goes through the field vocabulary (`notifyd.fields`), and a wrong one raises
BadPayload naming the field ("field 'progress': expected a number from 0 to 1, got 45"); `outputs`
are kept as sent, but every number in them must be finite, so that the run can always be shown and
called back as JSON. For notifications, media["output_urls"] lists the outputs' file URLs (every
"url" under outputs[].data: images, files, gifs, and any kind ComfyDeploy adds) and
media["output_texts"] their text outputs (outputs[].data.text).

ComfyDeploy never signs its webhooks: a source of this type is protected by a token in the webhook
URL (`[sources.NAME] token`, `?token=…`), never by `secret` (refused at config load).

ComfyDeploy also answers for a run on its status API (`GET {api_url}/run/{run_id}`, Bearer API
key; `WorkflowRunModel` in comfy-deploy/api): `parse_comfydeploy_run` turns that answer into the
event its final webhook would have made, for a run whose webhook never came (notifyd.run_poll).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from notifyd.fields import URL_MAX, Fields, clip
from notifyd.model import Event

STATUS_EVENT, OUTPUT_EVENT = "run.updated", "run.output"
EVENT_TYPES = {STATUS_EVENT: STATUS_EVENT, OUTPUT_EVENT: OUTPUT_EVENT}
OUTPUT_URLS_MAX = 10            # 10 × URL_MAX stays well inside templates.MAX_OUTPUT
OUTPUT_TEXTS_MAX = 3            # text outputs a notification quotes…
OUTPUT_TEXT_MAX = 1000          # …each cut to this many characters
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
STATUS_API_PATH = "/run/{run_id}"          # ComfyDeploy's GET run, under its API's base URL
STATUS_API_URL = "https://api.comfydeploy.com/api"
STATUS_API_VIA = "status_api"              # media["via"] of an event made from the status API's answer


def parse_comfydeploy(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a ComfyDeploy `run.updated` or `run.output` body, or raise BadPayload
    naming the field."""
    fields = Fields(body)
    # absent or null: an older backend's body, or one shaped by the SDK's schema — a status update
    event_type = fields.choice("event_type", EVENT_TYPES,
                               f"\"{STATUS_EVENT}\" or \"{OUTPUT_EVENT}\" (the events ComfyDeploy sends)")
    run_id = fields.run_id("run_id", required=True)
    status = fields.choice("status", STATUSES, f"one of {', '.join(ACCEPTED)}", fold_case=True, required=True)
    assert run_id is not None and status is not None
    progress = fields.fraction("progress", PROGRESS_TOLERANCE)
    live_status = fields.prose("live_status")
    outputs = fields.json_objects("outputs")
    outputs_only = event_type == OUTPUT_EVENT

    media: dict[str, Any] = {"run_id": run_id, "status": status,
                             "final": status in FINAL and not outputs_only}
    if outputs_only:
        media["outputs_only"] = True
    if progress is not None:
        media["progress"] = progress
    if live_status is not None:
        media["live_status"] = live_status
    media["outputs"] = outputs
    if not outputs_only:
        if status == "failed":
            # ComfyDeploy's live status is where the run was ("Executing <node class>"), not the error
            media["error"] = f"the run failed ({live_status})" if live_status else "the run failed"
        elif status in ERRORS:
            media["error"] = ERRORS[status]
    media["output_urls"] = _output_urls(outputs)
    media["output_texts"] = _output_texts(outputs)
    if outputs_only:
        kind, level, title = OUTPUT_EVENT, "info", f"run {run_id[:8]} output"
    else:
        kind, level = KINDS.get(status, f"run.{status}"), LEVELS.get(status, "info")
        title = f"run {run_id[:8]} {status}"
    media["level"] = level
    return Event(source=source, source_type=source_type, kind=kind, title=title, body="", paths=(),
                 media=media, payload=raw)


def parse_comfydeploy_run(answer: Mapping[str, Any], source: str, source_type: str) -> Event:
    """The event a run's `run.updated` webhook would have made, from the status API's answer about
    it (`id`, `status`, `live_status`, `progress`, `outputs`: the webhook's fields under the API's
    names); media["via"] says where it came from. BadPayload names the answer's field."""
    run_id = Fields(answer).run_id("id", required=True)
    body = {"event_type": STATUS_EVENT, "status": answer.get("status"), "live_status": answer.get("live_status"),
            "progress": answer.get("progress"), "run_id": run_id, "outputs": answer.get("outputs") or []}
    event = parse_comfydeploy(body, source, source_type, json.dumps(body, separators=(",", ":")))
    return replace(event, media={**event.media, "via": STATUS_API_VIA})


def _output_texts(outputs: list[Mapping[str, Any]]) -> list[str]:
    """The text outputs (outputs[].data.text: a string or an array of strings), in order, once each:
    the first OUTPUT_TEXTS_MAX, stripped and cut to OUTPUT_TEXT_MAX characters."""
    texts: dict[str, None] = {}
    for output in outputs:
        data = output.get("data")
        value = data.get("text") if isinstance(data, Mapping) else None
        for item in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            if isinstance(item, str) and item.strip():
                texts.setdefault(clip(item.strip(), OUTPUT_TEXT_MAX), None)
                if len(texts) == OUTPUT_TEXTS_MAX:
                    return list(texts)
    return list(texts)


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
