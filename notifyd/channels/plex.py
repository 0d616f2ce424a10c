"""The `plex` channel: find the library section that holds the folder, then refresh just that path.

Sections are read once from /library/sections (as JSON) and read again when a folder matches none,
so a library added in Plex later is found without a restart.
"""

from __future__ import annotations

import json
import threading

import httpx

from notifyd.channels.http import HttpChannel
from notifyd.config.model import ServiceConfig
from notifyd.errors import PermanentError, TransientError
from notifyd.model import Delivery

Section = tuple[str, str, tuple[str, ...]]       # key, title, locations


class PlexChannel(HttpChannel):
    """Plex Media Server at `url`, authenticated by X-Plex-Token."""

    credential = "token"

    def __init__(self, service: ServiceConfig, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(service.options["url"], timeout, transport)
        self.headers = {"X-Plex-Token": service.options["token"], "Accept": "application/json"}
        self._sections: list[Section] | None = None
        self._lock = threading.Lock()


    def deliver(self, delivery: Delivery) -> str:
        data = delivery.data
        folder = data.get("path")
        if not folder:
            sections = self.sections(refresh=True)
            if data.get("test"):
                return json.dumps({"request": "GET /library/sections", "sections": [s[1] for s in sections]})
            for key, _, _ in sections:
                self.request("GET", f"{self.url}/library/sections/{key}/refresh", headers=self.headers)
            return json.dumps({"refreshed": [s[1] for s in sections]})
        section = self.section_for(folder)
        if section is None:
            known = "; ".join(f"{title}: {', '.join(locs)}" for _, title, locs in self.sections()) or "none"
            raise PermanentError(f"no Plex library holds {folder} (libraries: {known}); check path_map")
        key, title, _ = section
        self.request("GET", f"{self.url}/library/sections/{key}/refresh", params={"path": folder},
                     headers=self.headers)
        return json.dumps({"section": key, "library": title, "path": folder})

    def section_for(self, folder: str) -> Section | None:
        """The section whose location holds `folder` (the longest match), reading again on a miss."""
        for refresh in (False, True):
            best: Section | None = None
            best_len = -1
            for section in self.sections(refresh=refresh):
                for location in section[2]:
                    root = location.rstrip("/")
                    if (folder == root or folder.startswith(root + "/")) and len(root) > best_len:
                        best, best_len = section, len(root)
            if best is not None:
                return best
        return None

    def sections(self, refresh: bool = False) -> list[Section]:
        with self._lock:
            if self._sections is None or refresh:
                response = self.request("GET", f"{self.url}/library/sections", headers=self.headers)
                try:
                    directories = response.json()["MediaContainer"].get("Directory", [])
                    self._sections = [(str(d["key"]), str(d.get("title", d["key"])),
                                       tuple(str(loc["path"]) for loc in d.get("Location", [])))
                                      for d in directories]
                except (ValueError, KeyError, TypeError, AttributeError):
                    raise TransientError(f"Plex at {self.target} answered /library/sections with an "
                                         "unexpected shape") from None
            return list(self._sections)
