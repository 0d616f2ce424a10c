"""notifyd.fanout.plan_jobs: which services an event becomes jobs for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifyd.config import ServiceConfig
from notifyd.config import parse_config as _parse_config
from notifyd.fanout import map_path, plan_jobs, refresh_jobs
from notifyd.model import Event, JobSpec


def event(kind: str) -> Event:
    return Event(source="generic", source_type="generic", kind=kind, title="The Matrix (1999)")


def service(name: str, *, events: tuple[str, ...] | None = None, enabled: bool = True,
            priority: int = 5) -> ServiceConfig:
    return ServiceConfig(name=name, type="apprise", enabled=enabled, events=events, priority=priority,
                         options={"url": f"json://127.0.0.1/{name}"})


SERVICES = [
    service("all"),
    service("star", events=("*",)),
    service("downloads", events=("download", "upgrade"), priority=3),
    service("health", events=("health",), priority=8),
    service("off", enabled=False),
]


def names(specs: list[JobSpec]) -> list[str]:
    return [spec.service for spec in specs]


def test_test_events_get_no_jobs():
    assert plan_jobs(event("test"), SERVICES) == []


def test_test_events_get_no_jobs_even_for_named_services():
    assert plan_jobs(event("test"), SERVICES, only=["all", "star"]) == []


def test_one_job_per_matching_enabled_service_in_order():
    assert names(plan_jobs(event("download"), SERVICES)) == ["all", "star", "downloads"]
    assert names(plan_jobs(event("health"), SERVICES)) == ["all", "star", "health"]
    assert names(plan_jobs(event("grab"), SERVICES)) == ["all", "star"]


def test_disabled_services_get_no_jobs():
    assert "off" not in names(plan_jobs(event("download"), SERVICES))
    assert plan_jobs(event("download"), [service("off", enabled=False)]) == []
    assert plan_jobs(event("download"), [service("off", enabled=False)], only=["off"]) == []


def test_no_services_no_jobs():
    assert plan_jobs(event("download"), []) == []


def test_only_overrides_the_filter():
    assert names(plan_jobs(event("grab"), SERVICES, only=["health"])) == ["health"]
    assert names(plan_jobs(event("download"), SERVICES, only=["health", "downloads"])) == ["downloads", "health"]


def test_only_excludes_services_not_named():
    assert names(plan_jobs(event("download"), SERVICES, only=["star"])) == ["star"]
    assert plan_jobs(event("download"), SERVICES, only=["nosuch"]) == []


def test_only_accepts_any_iterable_once_per_service():
    specs = plan_jobs(event("grab"), SERVICES, only=iter(["health", "health"]))
    assert names(specs) == ["health"]


def test_priority_and_kind_come_from_the_service():
    specs = {spec.service: spec for spec in plan_jobs(event("download"), SERVICES)}
    assert specs["downloads"] == JobSpec(service="downloads", kind="notify", priority=3)
    assert specs["all"].priority == 5
    specs = {spec.service: spec for spec in plan_jobs(event("health"), SERVICES)}
    assert specs["health"].priority == 8
    assert specs["health"].kind == "notify"
    assert specs["health"].delay == 0.0
    assert specs["health"].unique_key is None


# -- refreshes -------------------------------------------------------------------------------



def _refresher(**options):
    table = {"type": "jellyfin", "url": "http://jf:8096", "api_key": "k", **options}
    return _parse_config({"services": {"jf": table}}, path=None).services["jf"]


def _arr_event(kind="download", paths=("/data/media/tv/Show/Season 02",), media_type="episode"):
    return Event(source="sonarr", source_type="sonarr", kind=kind, title="Show S02E01", paths=paths,
                 media={"media_type": media_type})


def test_a_refresh_per_folder_mapped_delayed_and_keyed():
    service = _refresher(path_map=[{"from": "/data/media", "to": "/storage/media"}], scan_delay="30s")
    jobs = refresh_jobs(_arr_event(paths=("/data/media/tv/Show/Season 02", "/data/media/tv/Show/Season 02",
                                          "/data/media/tv/Show/Season 03")), service)
    assert [j.payload["path"] for j in jobs] == ["/storage/media/tv/Show/Season 02", "/storage/media/tv/Show/Season 03"]
    assert all(j.delay == 30 and j.kind == "refresh" and j.priority == 3 for j in jobs)
    assert jobs[0].unique_key == "refresh:jf:video:created:/storage/media/tv/Show/Season 02"
    assert jobs[0].payload == {"path": "/storage/media/tv/Show/Season 02", "library": "video", "change": "created"}


def test_no_folder_means_a_whole_library_refresh_and_music_is_audio():
    jobs = refresh_jobs(_arr_event(kind="delete", paths=(), media_type="music"), _refresher())
    assert len(jobs) == 1 and jobs[0].payload == {"path": None, "library": "audio", "change": "deleted"}
    assert jobs[0].unique_key == "refresh:jf:audio:deleted:*" and jobs[0].delay == 10


def test_refreshers_skip_kinds_that_change_no_files_by_default():
    service = _refresher()
    assert plan_jobs(_arr_event(kind="health", paths=()), [service]) == []
    assert plan_jobs(_arr_event(kind="grab"), [service]) == []
    assert [j.kind for j in plan_jobs(_arr_event(kind="upgrade"), [service])] == ["refresh"]
    everything = _refresher(events=["*"])
    assert len(plan_jobs(_arr_event(kind="grab"), [everything])) == 1


@pytest.mark.parametrize("path, expected", [
    ("/data/media/movies/A (2016)", "/storage/movies/A (2016)"),
    ("/data/media/tv/B", "/mnt/tv/B"),                     # the longer prefix wins
    ("/data/media", "/storage"),
    ("/data/mediaextra/C", "/data/mediaextra/C"),           # only whole folder names match
    ("/elsewhere/D", "/elsewhere/D"),
])
def test_map_path(path, expected):
    mapping = (("/data/media", "/storage"), ("/data/media/movies", "/storage/movies"), ("/data/media/tv", "/mnt/tv"))
    assert map_path(path, mapping) == expected


@pytest.mark.parametrize("path, mapping, expected", [
    (r"D:\Media\Movies\X (2016)", ((r"D:\Media", "/storage/media"),), "/storage/media/Movies/X (2016)"),
    ("/data/media/x", (("/data/media", r"E:\Media"),), r"E:\Media\x"),
    ("/data/media", (("/data/media/", "/storage"),), "/storage"),
])
def test_map_path_across_windows_and_posix(path, mapping, expected):
    assert map_path(path, mapping) == expected


def test_only_a_tracked_runs_intermediate_status_is_quiet():
    service = _parse_config({"services": {"all": {"type": "apprise", "url": "json://h/x", "events": ["*"]}}},
                            path=None).services["all"]
    generic = Event(source="generic", source_type="generic", kind="run.nightly-backup", title="x")
    assert len(plan_jobs(generic, [service])) == 1
    tracked = Event(source="comfydeploy", source_type="comfydeploy", kind="run.running", title="x",
                    media={"run_id": "r1"})
    assert plan_jobs(tracked, [service]) == []
    assert len(plan_jobs(replace(tracked, kind="run.completed"), [service])) == 1
