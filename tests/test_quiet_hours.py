"""Quiet hours: notifications due inside a service's window wait for its end, in order; nothing is
dropped; levels named in quiet_bypass go at once; retries falling inside wait too.

The window arithmetic on fixed instants (midnight, daylight saving), the queue's part on both
engines with a clock the test moves, and a running daemon whose `jobs list` shows the wait.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from notifyd.config import Config, ConfigError, load_config, parse_config
from notifyd.ingest import record_event
from notifyd.job_handlers import ChannelCache, JobContext
from notifyd.logs import Redactor
from notifyd.model import Event, JobSpec, JobState
from notifyd.quiet_hours import QuietHours, defer_quiet, deferred_until, parse_quiet_hours
from notifyd.store import Store
from notifyd.worker import run_job

from conftest import DaemonFactory, Receiver, cli_json, run_cli, wait_for, write_config

UTC_ZONE = ZoneInfo("UTC")


def at(text: str, zone: Any = UTC_ZONE) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


@pytest.mark.parametrize(("text", "window"), [
    ("23:00-07:30", QuietHours(time(23), time(7, 30))),
    (" 9:05 - 17:00 ", QuietHours(time(9, 5), time(17))),
    ("22:00-24:00", QuietHours(time(22), time(0))),
])
def test_windows_parse(text: str, window: QuietHours) -> None:
    assert parse_quiet_hours(text) == window


@pytest.mark.parametrize("text", ["23:00", "25:00-07:00", "07:60-08:00", "08:00-08:00", "late", 2300])
def test_bad_windows_say_the_form(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_quiet_hours(text)


@pytest.mark.parametrize(("moment", "ends"), [
    ("2026-11-27 23:30", "2026-11-28 07:30"),     # after the start, before midnight
    ("2026-11-28 03:00", "2026-11-28 07:30"),     # after midnight
    ("2026-11-28 07:30", None),                   # the end is outside
    ("2026-11-28 12:00", None),
    ("2026-11-27 23:00", "2026-11-28 07:30"),     # the start is inside
])
def test_a_window_across_midnight(moment: str, ends: str | None) -> None:
    window = parse_quiet_hours("23:00-07:30")
    assert window.ends_after(at(moment), UTC_ZONE) == (at(ends) if ends else None)


def test_a_window_within_a_day() -> None:
    window = parse_quiet_hours("12:00-14:00")
    assert window.ends_after(at("2026-11-27 13:00"), UTC_ZONE) == at("2026-11-27 14:00")
    assert window.ends_after(at("2026-11-27 11:59"), UTC_ZONE) is None


def test_daylight_saving_is_the_zone_s() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    window = parse_quiet_hours("01:00-03:30")
    # 29 March 2026: 02:00 becomes 03:00 in Berlin; the window still ends at 03:30 local.
    assert window.ends_after(at("2026-03-29 01:30", berlin), berlin) == at("2026-03-29 03:30", berlin)
    # A window that ends inside the gap (02:30 does not exist that night) ends after it, never before.
    spring = parse_quiet_hours("23:00-02:30")
    assert spring.ends_after(at("2026-03-28 23:30", berlin), berlin) == at("2026-03-29 01:30", UTC_ZONE)   # 03:30 CEST
    # 25 October 2026: 03:00 becomes 02:00; 01:30 local is one hour of a window that ends at 03:30.
    ends = window.ends_after(at("2026-10-25 01:30", berlin), berlin)
    assert ends == at("2026-10-25 03:30", berlin)


def test_levels_in_bypass_pass_and_others_wait() -> None:
    window = parse_quiet_hours("22:00-06:00")
    night = at("2026-11-27 23:00")
    assert deferred_until(night, window, zone=UTC_ZONE, level="failure", bypass=("failure",)) is None
    assert deferred_until(night, window, zone=UTC_ZONE, level="warning", bypass=("failure",)) == at("2026-11-28 06:00")
    assert deferred_until(night, None, zone=UTC_ZONE, level="info") is None


def quiet_config(url: str, **service: Any) -> Config:
    return parse_config({"server": {"timezone": "UTC"},
                         "worker": {"backoff": ["5m"], "max_attempts": 3},
                         "services": {"quiet": {"type": "apprise", "url": url, "quiet_hours": "22:00-07:00",
                                                **service},
                                      "loud": {"type": "apprise", "url": url}}}, path=None)


def test_only_quiet_services_jobs_wait_and_their_delays_count_from_when_they_are_due() -> None:
    config = quiet_config("json://127.0.0.1:9/x")
    specs = [JobSpec("quiet", "notify", 5), JobSpec("loud", "notify", 5), JobSpec("quiet", "notify", 5, delay=3600)]
    night = at("2026-11-27 20:30")
    timed = defer_quiet(specs, config.services.values(), level="info", now=night, zone=UTC_ZONE)
    assert [s.delay for s in timed] == [0.0, 0.0, 3600.0]          # 20:30 and 21:30 are before the window
    later = defer_quiet(specs, config.services.values(), level="info", now=night + 3600, zone=UTC_ZONE)
    assert [later[0].delay, later[1].delay] == [0.0, 0.0]
    assert later[2].delay == at("2026-11-28 07:00") - (night + 3600)   # due 22:30: waits for 07:00


def test_config_names_the_key_of_a_bad_window_or_zone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[server]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="server.timezone"):
        load_config(path)
    path.write_text('[services.a]\ntype = "apprise"\nurl = "json://x/y"\nquiet_hours = "late"\n')
    with pytest.raises(ConfigError, match="services.a.quiet_hours"):
        load_config(path)
    path.write_text('[services.a]\ntype = "apprise"\nurl = "json://x/y"\nquiet_bypass = ["urgent"]\n')
    with pytest.raises(ConfigError, match="services.a.quiet_bypass"):
        load_config(path)


@pytest.mark.parametrize(("keys", "refused", "reason"), [
    ('quiet_bypass = ["failure"]', "quiet_bypass", "does nothing without quiet_hours"),
    ("digest_all = true", "digest_all", "does nothing without digest"),
    ('attach_max = "5MiB"', "attach_max", "does nothing without attach"),
    ('digest = "2m"\nurl = "tgram://123456789:ABC/{chat_id}"', "digest", "a URL filled per run"),
])
def test_a_key_that_would_do_nothing_is_refused_by_name(tmp_path: Path, keys: str, refused: str, reason: str) -> None:
    path = tmp_path / "config.toml"
    url = "" if "url =" in keys else 'url = "json://x/y"\n'
    path.write_text(f'[services.a]\ntype = "apprise"\n{url}{keys}\n')
    with pytest.raises(ConfigError, match=f"services.a.{refused}") as info:
        load_config(path)
    assert reason in str(info.value)
    path.write_text('[services.a]\ntype = "apprise"\nurl = "json://x/y"\nattach = false\nattach_max = "5MiB"\n')
    assert load_config(path).services["a"].options["attach_max"] == 5 * 1024 * 1024     # switched off, kept


def event(title: str, level: str = "info") -> Event:
    return Event("nas", "generic", "backup", title, body=title, media={"level": level})


def test_night_notifications_wait_for_the_morning_then_go_in_order(store: Store, receiver: Receiver) -> None:
    config = quiet_config(receiver.json_url, quiet_bypass=["failure"])
    config = replace(config, services={"quiet": config.services["quiet"]})
    night, morning = at("2026-11-27 23:00"), at("2026-11-28 07:00")
    with store.transaction() as tx:
        ids = [record_event(tx, event(f"backup {n}"), config, night + n).jobs[0].id for n in range(3)]
        urgent = record_event(tx, event("disk failing", "failure"), config, night + 5).jobs[0].id
    assert [store.get_job(i).run_at for i in ids] == [morning] * 3
    assert store.get_job(urgent).run_at == night + 5

    context = JobContext(store, config, ChannelCache(), clock=lambda: night + 10)
    claim = store.claim(night + 10, 30)
    assert claim is not None and claim.job.id == urgent
    run_job(claim, context, Redactor([]))
    assert store.claim(morning - 1, 30) is None                        # nothing else goes in the night
    context = replace(context, clock=lambda: morning)
    for _ in ids:
        claim = store.claim(morning, 30)
        assert claim is not None
        run_job(claim, context, Redactor([]))
    assert [b["title"] for b in receiver.bodies()] == ["disk failing", "backup 0", "backup 1", "backup 2"]
    assert all(store.get_job(i).state == JobState.SUCCEEDED for i in ids)


def test_a_retry_that_would_fall_in_the_night_waits_for_its_end(store: Store, receiver: Receiver) -> None:
    config = quiet_config(receiver.json_url)
    config = replace(config, services={"quiet": config.services["quiet"]})
    evening = at("2026-11-27 21:58")                                   # due before the window; the retry is not
    with store.transaction() as tx:
        [job] = record_event(tx, event("backup"), config, evening).jobs
    receiver.script = [503]
    claim = store.claim(evening, 30)
    assert claim is not None
    run_job(claim, JobContext(store, config, ChannelCache(), clock=lambda: evening), Redactor([]))
    retried = store.get_job(job.id)
    assert (retried.state, retried.attempts, retried.run_at) == (JobState.QUEUED, 1, at("2026-11-28 07:00"))


def test_a_job_queued_before_quiet_hours_were_set_waits_when_it_comes_up(store: Store, receiver: Receiver) -> None:
    loud = quiet_config(receiver.json_url)
    quiet = replace(loud, services={"quiet": loud.services["quiet"]})
    loud = replace(loud, services={"quiet": replace(loud.services["quiet"], options={"url": receiver.json_url})})
    evening, night, morning = at("2026-11-27 21:00"), at("2026-11-27 23:00"), at("2026-11-28 07:00")
    with store.transaction() as tx:
        [job] = record_event(tx, event("backup"), loud, evening).jobs    # queued due at once, no quiet hours yet
    claim = store.claim(night, 30)                                      # the worker was busy until 23:00
    assert claim is not None
    outcome = run_job(claim, JobContext(store, quiet, ChannelCache(), clock=lambda: night), Redactor([]))
    held = store.get_job(job.id)
    assert (outcome.state, held.state, held.attempts, held.run_at) == ("deferred", JobState.QUEUED, 0, morning)
    assert store.job_attempts(job.id) == [] and receiver.bodies() == []
    claim = store.claim(morning, 30)
    assert claim is not None
    run_job(claim, JobContext(store, quiet, ChannelCache(), clock=lambda: morning), Redactor([]))
    assert [b["title"] for b in receiver.bodies()] == ["backup"]


def test_services_test_is_not_held_by_quiet_hours(store: Store, receiver: Receiver) -> None:
    from notifyd.service_check import run_service_check

    now = datetime.now(UTC)
    window = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M}"
    config = parse_config({"server": {"timezone": "UTC"},
                           "services": {"phone": {"type": "apprise", "url": receiver.json_url, "quiet_hours": window}}},
                          path=None)
    assert run_service_check(store, config, "phone").ok
    assert [b["title"] for b in receiver.bodies()] == ["notifyd test: phone"]


def test_a_running_daemon_lists_them_queued_with_their_due_time(
        daemons: DaemonFactory, tmp_path: Path, receiver: Receiver) -> None:
    now = datetime.now(UTC)
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    config = write_config(tmp_path / "config.toml", services=f"""
[services.quiet]
type = "apprise"
url = "{receiver.json_url}"
quiet_hours = "{start:%H:%M}-{end:%H:%M}"
quiet_bypass = ["failure"]
""")
    text = config.read_text().replace('max_body = "64KB"', 'max_body = "64KB"\ntimezone = "UTC"')
    config.write_text(text)
    daemon = daemons.start(config)
    waiting = [daemon.post("/webhooks/generic", {"title": f"backup {n}", "level": "success"}) for n in range(3)]
    urgent = daemon.post("/webhooks/generic", {"title": "disk failing", "level": "failure"})
    assert [r.status_code for r in waiting + [urgent]] == [202] * 4
    wait_for(lambda: [b["title"] for b in receiver.bodies()] == ["disk failing"], 15, message="the failure")
    ends = datetime.combine(end.date(), end.time().replace(second=0, microsecond=0), UTC)
    jobs = {j["id"]: j for j in cli_json("jobs", "list", config=config)}
    for answer in waiting:
        job = jobs[answer.json()["jobs"][0]["id"]]
        assert job["state"] == "queued"
        assert datetime.fromisoformat(job["run_at"].replace("Z", "+00:00")) == ends
    table = run_cli("jobs", "list", "--state", "queued", config=config, check=True).stdout
    assert table.count("queued, due in 1h") == 3 or table.count("queued, due in 2h") == 3
    assert [b["title"] for b in receiver.bodies()] == ["disk failing"]


def test_services_set_writes_the_keys_and_refuses_a_bad_window_by_name(tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.toml", services="""
[services.phone]
type = "apprise"
url = "json://127.0.0.1:9/x"
""")
    run_cli("services", "set", "phone", "quiet_hours=23:00-07:30", "quiet_bypass=failure,warning", "digest=2m",
            "digest_all=yes", config=config, check=True)
    loaded = load_config(config).services["phone"].options
    assert (str(loaded["quiet_hours"]), loaded["quiet_bypass"], loaded["digest"], loaded["digest_all"]) == \
        ("23:00-07:30", ("failure", "warning"), 120.0, True)
    refused = run_cli("services", "set", "phone", "quiet_hours=late", config=config)
    assert refused.returncode == 2 and "quiet_hours" in refused.stderr and "23:00-07:30" in refused.stderr
    assert str(load_config(config).services["phone"].options["quiet_hours"]) == "23:00-07:30"   # untouched
