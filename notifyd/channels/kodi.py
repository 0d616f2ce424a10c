"""The `kodi` channel: JSON-RPC VideoLibrary.Scan (AudioLibrary.Scan for music) of one folder."""

from __future__ import annotations

import json

import httpx

from notifyd.channels.http import HttpChannel
from notifyd.config.model import ServiceConfig
from notifyd.errors import PermanentError, TransientError
from notifyd.model import Delivery


class KodiChannel(HttpChannel):
    """Kodi's web server at `url` (the /jsonrpc endpoint), with Basic auth when a username is set."""

    credential = "username and password"

    def __init__(self, service: ServiceConfig, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(service.options["url"], timeout, transport)
        username = service.options.get("username")
        self.auth = (username, service.options.get("password", "")) if username else None


    def deliver(self, delivery: Delivery) -> str:
        data = delivery.data
        folder = data.get("path")
        if data.get("test") and not folder:
            method, params = "JSONRPC.Ping", {}
        else:
            method = "AudioLibrary.Scan" if data.get("library") == "audio" else "VideoLibrary.Scan"
            # Kodi matches a scan directory against its sources only with the trailing slash.
            params = {"directory": folder.rstrip("/") + "/"} if folder else {}
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": delivery.job_id}
        response = self.request("POST", self.url, json=body, auth=self.auth)
        try:
            reply = response.json()
        except ValueError:
            raise TransientError(f"Kodi at {self.target} answered {method} with something that is not JSON") from None
        if not isinstance(reply, dict):
            raise TransientError(f"Kodi at {self.target} answered {method} with an unexpected reply")
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            raise PermanentError(f"Kodi refused {method}: {error.get('message', 'error')} "
                                 f"(JSON-RPC {error.get('code', '?')})", json.dumps(reply)[:500])
        return json.dumps({"method": method, "params": params, "result": reply.get("result")})
