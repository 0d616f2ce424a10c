"""The `kodi` channel: JSON-RPC scans of the folder that changed, cleans for what was removed.

A scan (VideoLibrary.Scan, AudioLibrary.Scan for music) adds what is new; Kodi skips a scan of a
folder that no longer exists ("does not exist - skipping scan") and keeps its items, so a removal
asks for a clean (VideoLibrary.Clean, AudioLibrary.Clean) instead. Kodi limits a video clean to
one folder only when the folder's content is the `content` asked for: a movie's folder is
"movies", but a show's or a season's folder is "seasons" or "episodes" to Kodi, which no request
can name, so TV removals clean every TV source (content "tvshows"); AudioLibrary.Clean takes no
folder and cleans all music. (Kodi's xbmc/interfaces/builtins/LibraryBuiltins.cpp CleanLibrary,
VideoDatabase::GetContentForPath; parameters from xbmc/interfaces/json-rpc/schema/methods.json.)

While Kodi scans, it ignores a clean ("CleanLibrary is not possible while scanning or cleaning")
and a scan request stops the running scan (LibraryBuiltins.cpp UpdateLibrary), so both first ask
whether it is scanning and, if so, fail transiently to be tried again later.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from notifyd.channels.http import HttpChannel
from notifyd.config.model import ServiceConfig
from notifyd.errors import PermanentError, TransientError
from notifyd.fields import path_separator
from notifyd.model import Delivery

CLEAN_CONTENT = {"movie": "movies", "series": "tvshows", "episode": "tvshows"}   # media_type → Kodi content
SCANNING = {False: "Library.IsScanningVideo", True: "Library.IsScanningMusic"}     # by audio or not


def directory(folder: str) -> str:
    """The folder as Kodi stores a path: with a trailing separator in the folder's own style (Kodi
    matches a scan or clean directory against its sources and paths only so)."""
    sep = path_separator(folder)
    return folder.rstrip(sep) + sep


def clean_request(folder: str | None, audio: bool, media_type: str | None) -> tuple[str, dict[str, Any]]:
    """The JSON-RPC method and parameters that make Kodi drop what was removed from `folder`."""
    # No dialogs: with them Kodi cleans modally, holding its screen and this request until done.
    if audio:
        return "AudioLibrary.Clean", {"showdialogs": False}
    params: dict[str, Any] = {"showdialogs": False}
    content = CLEAN_CONTENT.get(media_type or "")
    if content:
        params["content"] = content
    if content == "movies" and folder:
        params["directory"] = directory(folder)
    return "VideoLibrary.Clean", params


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
        params: dict[str, Any] = {}
        if data.get("test") and not folder:
            method = "JSONRPC.Ping"
        else:
            audio = data.get("library") == "audio"
            self.wait_while_scanning(audio, delivery.job_id)
            if data.get("change") == "deleted":
                method, params = clean_request(folder, audio, data.get("media_type"))
            else:
                method = "AudioLibrary.Scan" if audio else "VideoLibrary.Scan"
                params = {"directory": directory(folder)} if folder else {}
        result = self.call(method, params, delivery.job_id)
        return json.dumps({"method": method, "params": params, "result": result})

    def wait_while_scanning(self, audio: bool, job_id: int) -> None:
        """A TransientError while Kodi scans that library (a scan request would stop it, a clean
        would be ignored)."""
        name = SCANNING[audio]
        answer = self.call("XBMC.GetInfoBooleans", {"booleans": [name]}, job_id)
        if isinstance(answer, dict) and answer.get(name) in (True, "true"):
            library = "music" if audio else "video"
            raise TransientError(f"Kodi at {self.target} is scanning its {library} library; asking now "
                                 "would stop that scan or be ignored, so this waits for it to end")

    def call(self, method: str, params: dict[str, Any], job_id: int) -> Any:
        """One JSON-RPC call; its result, or PermanentError for Kodi's JSON-RPC error."""
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": job_id}
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
        return reply.get("result")
