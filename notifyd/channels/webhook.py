"""The `webhook` channel and tracked runs' callbacks: JSON POSTs signed per Standard Webhooks.

The webhook-id stays the same on every retry of a job (receivers deduplicate on it); the
timestamp is each attempt's own. 2xx is delivered; a redirect is a failure (never followed);
410 Gone switches the service off; 429 and 5xx are retried, honouring Retry-After.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from notifyd import strict_json
from notifyd.channels.http import HttpChannel
from notifyd.config.model import Config, ServiceConfig
from notifyd.errors import PermanentError, ReceiverGone, TransientError
from notifyd.model import Delivery, Run, StoredEvent
from notifyd.run_state import callback_body
from notifyd.ssrf import CallbackRefused, pinned_request_args
from notifyd.timefmt import iso


def signed_headers(secret: str | None, message_id: str, body: str, now: float | None = None) -> dict[str, str]:
    """Standard Webhooks headers for one attempt (webhook-signature only when there is a secret)."""
    when = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    headers = {"webhook-id": message_id, "webhook-timestamp": str(int(when.timestamp())),
               "content-type": "application/json", "user-agent": "notifyd"}
    if secret:
        headers["webhook-signature"] = Webhook(secret).sign(message_id, when, body)
    return headers


def message_id(job_id: int) -> str:
    return f"msg_notifyd_{job_id}"


def event_payload(stored: StoredEvent) -> dict[str, Any]:
    """What a webhook service receives for an event."""
    event = stored.event
    return {"type": event.kind, "event_id": stored.id, "source": event.source, "source_type": event.source_type,
            "title": event.title, "body": event.body, "paths": list(event.paths), "media": dict(event.media),
            "received_at": iso(stored.received_at)}


class WebhookChannel(HttpChannel):
    """POSTs each event as JSON to the service's URL, signed with its `secret` (whsec_…)."""

    credential = "secret"

    def __init__(self, service: ServiceConfig, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(service.options["url"], float(service.options.get("timeout", timeout)), transport)
        self.secret = service.options.get("secret")


    def deliver(self, delivery: Delivery) -> str:
        body = strict_json.dumps(event_payload(delivery.event), separators=(",", ":"))
        return self.post(self.url, body, message_id(delivery.job_id))

    def post(self, url: str, body: str, msg_id: str, headers: dict[str, str] | None = None,
             extensions: dict | None = None) -> str:
        all_headers = {**signed_headers(self.secret, msg_id, body), **(headers or {})}
        try:
            response = self.client.post(url, content=body.encode(), headers=all_headers, extensions=extensions or {})
        except httpx.TimeoutException:
            raise TransientError(f"timed out posting to {self.target}") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach {self.target}: {type(exc).__name__}") from None
        if response.status_code == 410:
            raise ReceiverGone(f"HTTP 410 Gone from {self.target}: the receiver wants no more deliveries")
        self.check(response)
        return json.dumps({"status": response.status_code, "webhook-id": msg_id})


def deliver_run_callback(delivery: Delivery, run: Run, config: Config, timeout: float,
                         transport: httpx.BaseTransport | None = None) -> str:
    """POST a finished run's result to its callback_url, signed with [runs] callback_secret, connecting
    only to an address that passes the SSRF rules at this moment."""
    url = delivery.data["url"]
    try:
        pinned, host_header, extensions = pinned_request_args(url, config.runs.allow_private_callbacks)
    except CallbackRefused as exc:
        if "cannot resolve" in str(exc):
            raise TransientError(str(exc)) from None        # DNS may come back
        raise PermanentError(str(exc)) from None
    channel = WebhookChannel(ServiceConfig(name="(callback)", type="webhook", options={"url": url}), timeout,
                             transport)
    channel.secret = config.runs.callback_secret
    try:
        body = strict_json.dumps(callback_body(run), separators=(",", ":"))
        return channel.post(pinned, body, message_id(delivery.job_id), headers=host_header, extensions=extensions)
    finally:
        channel.close()
