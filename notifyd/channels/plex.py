"""The `plex` channel: find the library section that holds the folder, then refresh just that path.

Sections are read once from /library/sections (as JSON) and read again when a folder matches none,
so a library added in Plex later is found without a restart. A folder no section holds (books,
when Plex has no library for them) is skipped, not failed: there is nothing for Plex to refresh.

A removal refreshes the folder's parent: for a path it cannot list, Plex's scanner logs "Error
scanning directory, we'll skip and continue … No such file or directory" and goes on, so the
items there stay; a scan of the parent sees the folder gone and sends its items to the trash
(emptied after every scan by default). A section's own location is never climbed out of.
"""

from __future__ import annotations

import json
import threading

import httpx

from notifyd.channels.http import HttpChannel
from notifyd.config.model import ServiceConfig
from notifyd.errors import Skipped, TransientError
from notifyd.fields import path_separator
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
        found = self.section_for(folder)
        if found is None:
            known = "; ".join(f"{title}: {', '.join(locs)}" for _, title, locs in self.sections()) or "none"
            raise Skipped(f"no Plex library section holds {folder} (sections: {known}); "
                          "if one should, check path_map")
        (key, title, _), location = found
        path = folder
        if data.get("change") == "deleted":
            path = parent_within(folder, location)
        self.request("GET", f"{self.url}/library/sections/{key}/refresh", params={"path": path},
                     headers=self.headers)
        return json.dumps({"section": key, "library": title, "path": path})

    def section_for(self, folder: str) -> tuple[Section, str] | None:
        """The section whose location holds `folder` (the longest match) and that location,
        reading the sections again on a miss."""
        for refresh in (False, True):
            best: tuple[Section, str] | None = None
            for section in self.sections(refresh=refresh):
                for location in section[2]:
                    root = location.rstrip("/\\")
                    if holds(root, folder) and (best is None or len(root) > len(best[1])):
                        best = (section, root)
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


def holds(root: str, folder: str) -> bool:
    """Whether `folder` is `root` or below it, by either separator (a Windows server's locations)."""
    return folder == root or folder.startswith(root + "/") or folder.startswith(root + "\\")


def parent_within(folder: str, root: str) -> str:
    """The folder that holds `folder`, in its own separator style, or `folder` itself when it is
    the section's location `root` (a scan never leaves the section)."""
    sep = path_separator(folder)
    parent = folder.rstrip(sep).rpartition(sep)[0]
    if not parent or parent.endswith(":"):
        parent += sep                                   # / or D:\ itself
    return parent if parent != folder and holds(root, parent.rstrip("/\\")) else folder
