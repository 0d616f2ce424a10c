"""Failed-token limiting: the limiter alone on an injected clock, then a real daemon over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from notifyd.auth_limit import AuthLimiter
from notifyd.errors import TooManyFailures

from conftest import DaemonFactory, write_config


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logged() -> Lines:
    logger = logging.getLogger("test.auth_limit")
    logger.setLevel(logging.INFO)
    handler = Lines()
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def limiter(**kwargs: object) -> AuthLimiter:
    return AuthLimiter(log=logging.getLogger("test.auth_limit"), **kwargs)  # type: ignore[arg-type]


def test_the_limit_refuses_until_the_minute_is_over(logged: Lines) -> None:
    lim = limiter()
    for second in range(3):
        lim.check("10.0.0.9", 1000.0 + second, limit=3)
        lim.failed("10.0.0.9", 1000.0 + second, "the token is wrong")
    with pytest.raises(TooManyFailures) as refused:
        lim.check("10.0.0.9", 1010.0, limit=3)
    assert refused.value.status == 429 and refused.value.retry_after == 50
    assert "10.0.0.9" in refused.value.detail and "50 s" in refused.value.detail
    lim.check("10.0.0.8", 1010.0, limit=3)                 # another address is not affected
    lim.check("10.0.0.9", 1060.0, limit=3)                 # the window is over
    assert [line for line in logged.lines if "refused a token" in line] == [
        "refused a token from 10.0.0.9: the token is wrong (more failures from it within 60 s are counted, "
        "not logged)"]
    assert logged.lines[-1] == "3 failed token(s) from 10.0.0.9 within 60 s; 1 request(s) refused with 429"


def test_retry_after_is_at_least_one_second() -> None:
    lim = limiter()
    lim.failed("::1", 0.0, "wrong")
    with pytest.raises(TooManyFailures) as refused:
        lim.check("::1", 59.9, limit=1)
    assert refused.value.retry_after == 1


def test_a_flood_logs_two_lines_a_minute_per_client(logged: Lines) -> None:
    lim = limiter()
    refused = 0
    for i in range(500):
        now = 2000.0 + i * 0.001
        try:
            lim.check("192.0.2.1", now, limit=20)
        except TooManyFailures:
            refused += 1
            continue
        lim.failed("192.0.2.1", now, "the token is wrong")
    lim.flush(2061.0)
    assert refused == 480
    assert len(logged.lines) == 2
    assert logged.lines[1] == "20 failed token(s) from 192.0.2.1 within 60 s; 480 request(s) refused with 429"


def test_a_single_failure_has_no_summary(logged: Lines) -> None:
    lim = limiter()
    lim.failed("192.0.2.2", 0.0, "a token is required")
    lim.flush(61.0)
    assert len(logged.lines) == 1


def test_memory_is_bounded_by_the_number_of_clients() -> None:
    lim = limiter(max_clients=100)
    for i in range(1000):
        lim.failed(f"2001:db8::{i:x}", 0.0, "wrong")
    with pytest.raises(TooManyFailures):
        lim.check("2001:db8::3e7", 1.0, limit=1)           # the newest are kept
    lim.check("2001:db8::0", 1.0, limit=1)                 # the oldest forgotten


def test_a_daemon_answers_429_after_the_allowance_and_logs_once(tmp_path: Path, daemons: DaemonFactory) -> None:
    config = write_config(tmp_path / "config.toml", extra="")
    config.write_text(config.read_text().replace(
        'max_body = "64KB"', 'max_body = "64KB"\ntoken = "right-token-123"\nauth_failures = 5'))
    daemon = daemons.start(config)
    url = daemon.url + "/webhooks/generic"
    with httpx.Client(timeout=10) as client:
        statuses = [client.post(url, json={"title": "guess"}, headers={"Authorization": f"Bearer guess-{i}"}
                                ).status_code for i in range(40)]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        refused = client.post(url, json={"title": "guess"}, headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        body = refused.json()
        assert body["error"] == "too_many_failures" and "127.0.0.1" in body["detail"]
        # The same address with the right token waits too: a guess must not be confirmed in the window.
        right = client.post(url, json={"title": "ok"}, headers={"Authorization": "Bearer right-token-123"})
        assert right.status_code == 429
        # Health and metrics need no token and are not limited.
        assert client.get(daemon.url + "/health").status_code == 200
    lines = [line for line in daemon.log().splitlines() if "token" in line]
    assert len(lines) == 1, lines
    assert "guess" not in daemon.log() and "right-token-123" not in daemon.log()
