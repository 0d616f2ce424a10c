"""GET /metrics: Prometheus text that prometheus-client's parser reads, with counters that move."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from conftest import DaemonFactory, Receiver, wait_for, write_config


def scrape(daemon, **kwargs) -> dict[tuple[str, tuple], float]:
    response = daemon.get("/metrics", **kwargs)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_parse_and_move_with_traffic(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    receiver.script = [503]
    daemon = daemons.start(write_config(tmp_path / "config.toml", receiver.json_url))
    before = scrape(daemon)
    assert before[("notifyd_jobs", (("state", "queued"),))] == 0
    assert ("notifyd_events_received_total", (("kind", "backup"), ("source", "generic"))) not in before
    for n in range(3):
        assert daemon.post("/webhooks/generic", {"kind": "backup", "title": f"b{n}"}).status_code == 202
    wait_for(lambda: len(receiver.bodies()) == 4, message="3 deliveries and one retry")

    def settled():
        after = scrape(daemon)
        return after if after.get(("notifyd_job_outcomes_total", (("outcome", "succeeded"), ("service", "sink")))) == 3 \
            else None
    after = wait_for(settled, message="three successes counted")
    assert after[("notifyd_events_received_total", (("kind", "backup"), ("source", "generic")))] == 3
    assert after[("notifyd_job_outcomes_total", (("outcome", "retry"), ("service", "sink")))] == 1
    assert after[("notifyd_delivery_seconds_count", (("service", "sink"),))] == 4
    assert after[("notifyd_jobs", (("state", "succeeded"),))] == 3
    assert after[("notifyd_oldest_queued_seconds", ())] == 0
    assert daemon.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 200   # open by default


def test_metrics_can_be_put_behind_the_token(tmp_path: Path, daemons: DaemonFactory, receiver: Receiver) -> None:
    config = write_config(tmp_path / "config.toml", receiver.json_url)
    config.write_text(config.read_text().replace('max_body = "64KB"',
                                                 'max_body = "64KB"\ntoken = "metrics-tok"\nprotect_metrics = true'))
    daemon = daemons.start(config)
    assert daemon.get("/metrics").status_code == 401
    assert scrape(daemon, headers={"Authorization": "Bearer metrics-tok"})
    assert daemon.get("/health").status_code == 200          # health stays open
