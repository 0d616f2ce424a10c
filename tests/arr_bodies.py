"""The *arr webhook bodies of tests/fixtures/arr (one per event type per app, shaped as each app's
own serialiser writes them; tests/fixtures/arr/README.md says from where), and a Sonarr season
pack told both ways: one Download per imported file, then its Import Complete."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

ARR = Path(__file__).parent / "fixtures" / "arr"
APPS = ("radarr", "sonarr", "lidarr", "readarr")


def arr_body(app: str, name: str) -> dict[str, Any]:
    """tests/fixtures/arr/<app>/<name>.json, decoded."""
    body: dict[str, Any] = json.loads((ARR / app / f"{name}.json").read_text())
    return body


def every_fixture() -> list[tuple[str, str]]:
    """(app, name) of every fixture, in a stable order."""
    return [(app, path.stem) for app in APPS for path in sorted((ARR / app).glob("*.json"))]


def season_pack(*, upgrade: bool = False, download_id: str | None = None) -> tuple[list[dict[str, Any]],
                                                                                   dict[str, Any]]:
    """Sonarr's webhooks for one season pack: the per-file Download bodies (upgrades of WEBDL-1080p
    files when `upgrade`), in import order, and the Import Complete body that follows them; all
    under one downloadId."""
    complete = arr_body("sonarr", "Download-import-complete")
    if download_id is not None:
        complete["downloadId"] = download_id
    template = arr_body("sonarr", "Download-upgrade" if upgrade else "Download")
    per_file = []
    for episode, episode_file in zip(complete["episodes"], complete["episodeFiles"], strict=True):
        body = copy.deepcopy(template)
        body["episodes"] = [episode]
        body["episodeFile"] = dict(episode_file, sourcePath=f"{complete['sourcePath']}/{episode_file['sceneName']}.mkv")
        body["release"] = dict(complete["release"])
        body["downloadId"] = complete["downloadId"]
        if upgrade:
            old = copy.deepcopy(template["deletedFiles"][0])
            relative = episode_file["relativePath"].replace("WEBDL-2160p", "WEBDL-1080p")
            old.update(id=8000 + episode["episodeNumber"], relativePath=relative,
                       path=f"{complete['series']['path']}/{relative}",
                       sceneName=episode_file["sceneName"].replace("2160p", "1080p"))
            old.pop("recycleBinPath", None)
            body["deletedFiles"] = [old]
        per_file.append(body)
    return per_file, complete
