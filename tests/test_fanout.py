"""notifyd.fanout.plan_jobs: which services an event becomes jobs for."""

from __future__ import annotations

from notifyd.config import ServiceConfig
from notifyd.events import Event
from notifyd.fanout import JobSpec, plan_jobs


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
