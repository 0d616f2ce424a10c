"""notifyd.folding through ingest, on every store engine: a Sonarr download told file by file and
then as a whole (Import Complete) is one notification per service; refreshes still collapse."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from notifyd.config import Config, parse_config
from notifyd.ingest import IngestResult, record_event
from notifyd.model import Event, Job, JobKind, JobState
from notifyd.sources import SOURCE_TYPES
from notifyd.store import Store

from arr_bodies import arr_body, season_pack

NOW = 1_800_000_000.0


def config(fold_window: str = "10s") -> Config:
    return parse_config({
        "server": {"fold_window": fold_window},
        "services": {
            "chat": {"type": "apprise", "url": "json://127.0.0.1:9/chat"},
            "upgrades": {"type": "apprise", "url": "json://127.0.0.1:9/up", "events": ["upgrade"]},
            "kodi": {"type": "kodi", "url": "http://127.0.0.1:9/jsonrpc", "scan_delay": "30s"},
        },
    }, path=None)


CONFIG = config()


def parsed(app: str, body: dict[str, Any]) -> Event:
    raw = json.dumps(body)
    return SOURCE_TYPES[app].parse(body, app, app, raw)


def post(store: Store, app: str, body: dict[str, Any], now: float, cfg: Config = CONFIG) -> IngestResult:
    with store.transaction() as tx:
        return record_event(tx, parsed(app, body), cfg, now)


def jobs_of(store: Store, result: IngestResult) -> dict[str, Job]:
    return {j.service: j for j in store.jobs_of_events([result.event_id])[result.event_id]}


def test_a_per_file_import_waits_the_fold_window_its_refresh_waits_scan_delay(store: Store) -> None:
    result = post(store, "sonarr", arr_body("sonarr", "Download"), NOW)
    jobs = jobs_of(store, result)
    assert sorted(jobs) == ["chat", "kodi"]
    assert (jobs["chat"].run_at, jobs["kodi"].run_at) == (NOW + 10, NOW + 30)


def test_each_later_webhook_of_the_download_pushes_the_wait(store: Store) -> None:
    files, _ = season_pack()
    first = post(store, "sonarr", files[0], NOW)
    second = post(store, "sonarr", files[1], NOW + 8)
    assert jobs_of(store, first)["chat"].run_at == NOW + 18 == jobs_of(store, second)["chat"].run_at
    assert jobs_of(store, first)["kodi"].id == jobs_of(store, second)["kodi"].id      # one scan, as ever
    assert jobs_of(store, first)["kodi"].run_at == NOW + 30


def test_the_import_complete_folds_the_waiting_per_file_notifications(store: Store) -> None:
    files, complete = season_pack()
    per_file = [post(store, "sonarr", body, NOW + n) for n, body in enumerate(files)]
    summary = post(store, "sonarr", complete, NOW + 10)
    assert summary.kind == "download"
    mine = jobs_of(store, summary)
    assert sorted(mine) == ["chat", "kodi"] and mine["chat"].run_at == NOW + 10       # it waits for nothing
    for result in per_file:
        theirs = jobs_of(store, result)
        assert theirs["chat"].state == JobState.SKIPPED
        assert theirs["chat"].last_error == f"folded into event {summary.event_id}"
        assert theirs["kodi"].id == mine["kodi"].id and theirs["kodi"].state == JobState.QUEUED
    assert len(store.list_jobs(state="queued")) == 2                                 # one message, one scan


def test_an_import_complete_of_upgrades_says_upgraded_and_what_it_replaced_once(store: Store) -> None:
    files, complete = season_pack(upgrade=True)
    per_file = [post(store, "sonarr", body, NOW + n) for n, body in enumerate(files)]
    assert {r.kind for r in per_file} == {"upgrade"}
    summary = post(store, "sonarr", complete, NOW + 10)
    assert summary.kind == "upgrade"
    stored = store.get_event(summary.event_id).event
    assert stored.media["replaces"] == [{"quality": "WEBDL-1080p", "count": 10}]
    assert len(stored.media["replaced"]) == 10 and stored.media["import_complete"] is True
    mine = jobs_of(store, summary)
    assert sorted(mine) == ["chat", "kodi", "upgrades"]
    for result in per_file:                              # both services' per-file messages are folded
        theirs = jobs_of(store, result)
        assert theirs["chat"].state == theirs["upgrades"].state == JobState.SKIPPED
        assert theirs["kodi"].id == mine["kodi"].id      # same change ("modified"): one scan
    queued = store.list_jobs(state="queued")
    assert sorted(j.service for j in queued) == ["chat", "kodi", "upgrades"]


def test_a_mixed_pack_is_imported_and_keeps_what_only_upgrades_would_tell(store: Store) -> None:
    plain, complete = season_pack()
    upgraded, _ = season_pack(upgrade=True)
    first = post(store, "sonarr", upgraded[0], NOW)
    second = post(store, "sonarr", plain[1], NOW + 1)
    summary = post(store, "sonarr", complete, NOW + 2)
    assert summary.kind == "download"
    assert "upgrades" not in jobs_of(store, summary)
    assert jobs_of(store, first)["upgrades"].state == JobState.QUEUED   # its only word on the upgrade stays
    assert jobs_of(store, first)["chat"].state == jobs_of(store, second)["chat"].state == JobState.SKIPPED


def test_a_per_file_webhook_after_the_import_complete_tells_no_one_again(store: Store) -> None:
    files, complete = season_pack()
    summary = post(store, "sonarr", complete, NOW)
    late = post(store, "sonarr", files[9], NOW + 1)
    assert sorted(jobs_of(store, late)) == ["kodi"]                     # its folder is still refreshed
    assert jobs_of(store, late)["kodi"].id == jobs_of(store, summary)["kodi"].id
    assert jobs_of(store, summary)["chat"].state == JobState.QUEUED


def test_another_download_or_another_source_is_not_folded(store: Store) -> None:
    files, _ = season_pack()
    _, other = season_pack(download_id="SABnzbd_nzo_other")
    first = post(store, "sonarr", files[0], NOW)
    post(store, "sonarr", other, NOW + 1)
    with store.transaction() as tx:
        elsewhere = record_event(tx, replace(parsed("sonarr", files[1]), source="sonarr4k"), CONFIG, NOW + 2)
    assert jobs_of(store, first)["chat"].state == JobState.QUEUED
    assert jobs_of(store, first)["chat"].run_at == NOW + 10             # not pushed by the other source
    assert jobs_of(store, elsewhere)["chat"].state == JobState.QUEUED


@pytest.mark.parametrize("app, name", [("radarr", "Download"), ("lidarr", "Download"), ("readarr", "Download")])
def test_apps_that_send_no_import_complete_do_not_wait(store: Store, app: str, name: str) -> None:
    result = post(store, app, arr_body(app, name), NOW)
    jobs = jobs_of(store, result)
    assert jobs["chat"].run_at == NOW and jobs["chat"].kind == JobKind.NOTIFY


def test_a_fold_window_of_zero_sends_each_file_at_once_and_still_folds_what_waits(store: Store) -> None:
    cfg = config("0s")
    files, complete = season_pack()
    first = post(store, "sonarr", files[0], NOW, cfg)
    assert jobs_of(store, first)["chat"].run_at == NOW
    summary = post(store, "sonarr", complete, NOW, cfg)
    assert jobs_of(store, first)["chat"].last_error == f"folded into event {summary.event_id}"


def test_a_per_file_import_without_download_id_is_not_held(store: Store) -> None:
    body = arr_body("sonarr", "Download")
    del body["downloadId"]
    result = post(store, "sonarr", body, NOW)
    assert jobs_of(store, result)["chat"].run_at == NOW


def test_a_file_deleted_by_an_upgrade_is_recorded_and_does_nothing(store: Store) -> None:
    for app, name in (("radarr", "MovieFileDelete-upgrade"), ("sonarr", "EpisodeFileDelete-upgrade")):
        result = post(store, app, arr_body(app, name), NOW)
        assert result.kind == "file_delete" and result.jobs == []
        assert store.get_event(result.event_id).event.media["delete_reason"] == "replaced by an upgrade"
    other = post(store, "radarr", arr_body("radarr", "MovieFileDelete"), NOW)
    assert sorted(jobs_of(store, other)) == ["chat", "kodi"]
