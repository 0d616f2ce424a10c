"""notifyd.fanout.plan_jobs: which services an event becomes jobs for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from notifyd.config import ServiceConfig
from notifyd.config import parse_config as _parse_config
from notifyd.fanout import map_path, plan_jobs, refresh_jobs, unfillable
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
    assert jobs[0].payload == {"path": "/storage/media/tv/Show/Season 02", "library": "video", "change": "created",
                               "media_type": "episode"}


def test_no_folder_means_a_whole_library_refresh_and_music_is_audio():
    jobs = refresh_jobs(_arr_event(kind="delete", paths=(), media_type="music"), _refresher())
    assert len(jobs) == 1 and jobs[0].payload == {"path": None, "library": "audio", "change": "deleted",
                                                  "media_type": "music"}
    assert jobs[0].unique_key == "refresh:jf:audio:deleted:*" and jobs[0].delay == 10


def test_removals_are_deleted_changes_keyed_apart_from_downloads_of_the_same_folder():
    service = _refresher()
    removed = refresh_jobs(_arr_event(kind="file_delete"), service)[0]
    deleted = refresh_jobs(_arr_event(kind="delete"), service)[0]
    downloaded = refresh_jobs(_arr_event(kind="download"), service)[0]
    assert removed.payload["change"] == deleted.payload["change"] == "deleted"
    assert removed.unique_key == deleted.unique_key != downloaded.unique_key


def _of_type(kind, name="s", **options):
    extra = {"kodi": {}, "jellyfin": {"api_key": "k"}, "emby": {"api_key": "k"}, "plex": {"token": "t"}}[kind]
    table = {"type": kind, "url": "http://media:8080/jsonrpc", **extra, **options}
    return _parse_config({"services": {name: table}}, path=None).services[name]


def test_books_get_no_kodi_refresh_but_servers_with_book_libraries_do():
    book = _arr_event(paths=("/data/media/books/Ursula K. Le Guin",), media_type="book")
    services = [_of_type(kind, name=kind) for kind in ("kodi", "jellyfin", "emby", "plex")]
    assert names(plan_jobs(book, services)) == ["jellyfin", "emby", "plex"]
    for media_type in ("movie", "series", "episode", "music", None):
        media = {"media_type": media_type} if media_type else {}
        other = replace(book, media=media)
        assert names(plan_jobs(other, services)) == ["kodi", "jellyfin", "emby", "plex"], media_type


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
    ("/data/media/movies/X (2016)", (("/data/media", "E:\\Media\\"),), r"E:\Media\movies\X (2016)"),
    ("/data/media/movies/X (2016)", (("/data/media", r"\\nas\media"),), r"\\nas\media\movies\X (2016)"),
    (r"\\nas\media\tv\Show\Season 01", ((r"\\nas\media", "/mnt/media"),), "/mnt/media/tv/Show/Season 01"),
    ("/data/media/tv/Show", (("/data/media", "smb://nas/media"),), "smb://nas/media/tv/Show"),
    ("/data/media/we\\ird", (("/data/media", "/storage"),), "/storage/we\\ird"),   # a POSIX name keeps its backslash
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


# -- services whose URL takes {placeholders} from a tracked run's context ----------------------

def placeholder(name: str, events: tuple[str, ...] | None = None) -> ServiceConfig:
    return ServiceConfig(name=name, type="apprise", events=events, options={"url": "tgram://123456:ABCDEF/{chat_id}"})


def run_final(context: dict | None) -> Event:
    media: dict = {"run_id": "r1", "status": "completed", "final": True}
    if context is not None:
        media["context"] = context
    return Event(source="comfydeploy", source_type="comfydeploy", kind="run.completed", title="run r1", media=media)


def test_a_placeholder_service_without_a_filter_takes_only_runs_that_name_it():
    chat = placeholder("chat")
    assert chat.placeholders == ["chat_id"] and service("plain").placeholders == []
    assert plan_jobs(event("download"), [chat]) == []
    assert unfillable(event("download"), [chat]) == {}          # no filter of its own: nothing to explain
    assert plan_jobs(run_final({"chat_id": "42"}), [chat]) == []
    assert names(plan_jobs(run_final({"chat_id": "42"}), [chat], notify=["chat"])) == ["chat"]
    # named by the run: it still gets its job (the run's delivery then says what was missing)
    assert names(plan_jobs(run_final({}), [chat], notify=["chat"])) == ["chat"]
    assert names(plan_jobs(event("download"), [chat], only=["chat"])) == ["chat"]     # a manual send names it


def test_a_placeholder_service_with_a_filter_takes_only_what_its_context_fills():
    chat, star = placeholder("chat", events=("run.completed", "download")), placeholder("star", events=("*",))
    assert names(plan_jobs(run_final({"chat_id": "42"}), [chat, star])) == ["chat", "star"]
    for unfilled in (run_final({"other": "x"}), run_final(None), event("download")):
        assert plan_jobs(unfilled, [chat, star]) == []
    assert unfillable(run_final({"other": "x"}), [chat, star]) == {
        name: "its URL needs {chat_id} from a tracked run's context; this event's context has other"
        for name in ("chat", "star")}
    assert unfillable(run_final(None), [chat])["chat"].endswith("this event's context has nothing")
    assert unfillable(event("download"), [chat])["chat"].endswith("has none (it is not about a tracked run)")
    assert unfillable(event("grab"), [chat]) == {}                              # its filter does not take grab
    assert unfillable(run_final({"other": "x"}), [chat], notify=["chat"]) == {}  # named: it gets a job
    assert unfillable(run_final({"chat_id": "1"}), [chat]) == {}
    assert unfillable(event("test"), [star]) == {}


# -- known kinds and quiet events -------------------------------------------------------------


def test_an_arr_event_type_notifyd_does_not_know_goes_only_where_it_is_named():
    unknown = replace(_arr_event(kind="foobar"), media={"media_type": "episode", "event_type": "FooBar"})
    everyone = [*SERVICES, service("named", events=("foobar",))]
    assert names(plan_jobs(unknown, everyone)) == ["star", "named"]
    assert names(plan_jobs(replace(unknown, kind="download_failed"), everyone)) == ["all", "star"]
    assert names(plan_jobs(event("backup"), everyone)) == ["all", "star"]      # a generic sender's own kind


def test_a_quiet_event_is_recorded_for_no_one_not_even_refreshers():
    deleted_by_upgrade = replace(_arr_event(kind="file_delete"),
                                 media={"media_type": "episode", "quiet": "replaced by an upgrade"})
    assert plan_jobs(deleted_by_upgrade, [*SERVICES, _refresher()]) == []
    assert len(plan_jobs(replace(deleted_by_upgrade, media={"media_type": "episode"}), [_refresher()])) == 1
