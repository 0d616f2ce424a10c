"""The `jellyfin` and `emby` channels: tell the server which folder changed, or refresh it all.

Both take POST /Library/Media/Updated {"Updates": [{"Path", "UpdateType"}]} and POST
/Library/Refresh; they differ in how the API key travels.
"""

from __future__ import annotations

import json

import httpx

from notifyd.channels.http import HttpChannel
from notifyd.config.model import ServiceConfig
from notifyd.model import Delivery

UPDATE_TYPES = {"created": "Created", "modified": "Modified", "deleted": "Deleted"}


class JellyfinChannel(HttpChannel):
    """Jellyfin: the key as `Authorization: MediaBrowser Token="…"` (Jellyfin 12 drops X-Emby-Token)."""

    credential = "api_key"
    product = "Jellyfin"

    def __init__(self, service: ServiceConfig, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(service.options["url"], timeout, transport)
        self.headers = self.auth_headers(service.options["api_key"])

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"Authorization": f'MediaBrowser Token="{api_key}"'}


    def deliver(self, delivery: Delivery) -> str:
        data = delivery.data
        folder = data.get("path")
        if folder:
            update = {"Path": folder, "UpdateType": UPDATE_TYPES.get(data.get("change", ""), "Modified")}
            self.request("POST", f"{self.url}/Library/Media/Updated", json={"Updates": [update]},
                         headers=self.headers)
            return json.dumps({"request": "POST /Library/Media/Updated", "update": update})
        if data.get("test"):
            info = self.request("GET", f"{self.url}/System/Info", headers=self.headers)
            return json.dumps({"request": "GET /System/Info", "status": info.status_code})
        self.request("POST", f"{self.url}/Library/Refresh", headers=self.headers)
        return json.dumps({"request": "POST /Library/Refresh"})


class EmbyChannel(JellyfinChannel):
    """Emby: the same calls, with the key in Emby's own X-Emby-Token header."""

    product = "Emby"

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {"X-Emby-Token": api_key}
