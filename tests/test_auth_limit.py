"""Failed-token limiting: the limiter alone on an injected clock, then a real daemon over HTTP."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from notifyd.auth_limit import AuthLimiter, client_address
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
    lim.check("10.0.0.9", 1060.0, limit=3)                 # the window is over (and a flush runs)
    assert logged.lines == [
        "refused a token from 10.0.0.9: the token is wrong (further failures from it within a minute are "
        "counted, not logged)",
        "failed tokens from 10.0.0.9 (2 more failed token(s) and 1 request(s) refused with 429 since the last line)"]


def test_retry_after_is_at_least_one_second() -> None:
    lim = limiter()
    lim.failed("::1", 0.0, "wrong")
    with pytest.raises(TooManyFailures) as refused:
        lim.check("::1", 59.9, limit=1)
    assert refused.value.retry_after == 1


def test_a_flood_logs_one_line_a_minute_per_client(logged: Lines) -> None:
    lim = limiter()
    refused = 0
    for i in range(3000):                                  # 3 minutes of guessing, 1,000 a minute
        now = 2000.0 + i * 0.06
        try:
            lim.check("192.0.2.1", now, limit=20)
        except TooManyFailures:
            refused += 1
            continue
        lim.failed("192.0.2.1", now, "the token is wrong")
    lim.flush(2000.0 + 3000 * 0.06 + 60)
    assert refused == 3000 - 3 * 20
    assert len(logged.lines) == 4                          # a line a minute, and one after the flood
    assert all("192.0.2.1" in line for line in logged.lines)


def test_a_single_failure_has_no_summary(logged: Lines) -> None:
    lim = limiter()
    lim.failed("192.0.2.2", 0.0, "a token is required")
    lim.flush(61.0)
    lim.flush(200.0)
    assert len(logged.lines) == 1


def test_every_wrong_token_of_a_request_counts() -> None:
    lim = limiter()
    lim.failed("192.0.2.3", 0.0, "the token is wrong", count=3)
    with pytest.raises(TooManyFailures):
        lim.check("192.0.2.3", 1.0, limit=3)


def test_ipv6_clients_are_counted_per_64() -> None:
    assert client_address(("2001:db8:1:2:aaaa::1", 5000)) == client_address(("2001:db8:1:2:bbbb::9", 5001))
    assert client_address(("2001:db8:1:2::1", 1)) == "2001:db8:1:2::/64"
    assert client_address(("2001:db8:1:3::1", 1)) != client_address(("2001:db8:1:2::1", 1))
    assert client_address(("192.0.2.7", 1)) == "192.0.2.7"
    assert client_address(("::ffff:192.0.2.7", 1)) == "192.0.2.7"
    assert client_address(None) == "unknown"


def test_memory_is_bounded_by_the_number_of_clients() -> None:
    lim = limiter(max_clients=100)
    for i in range(1000):
        lim.failed(f"10.0.{i // 256}.{i % 256}", 0.0, "wrong")
    with pytest.raises(TooManyFailures):
        lim.check("10.0.3.231", 1.0, limit=1)              # the newest are kept
    lim.check("10.0.0.0", 1.0, limit=1)                    # the oldest forgotten


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


def test_a_request_with_several_wrong_tokens_spends_one_failure_each(tmp_path: Path, daemons: DaemonFactory) -> None:
    config = write_config(tmp_path / "config.toml")
    config.write_text(config.read_text().replace(
        'max_body = "64KB"', 'max_body = "64KB"\ntoken = "right-token-123"\nauth_failures = 6'))
    daemon = daemons.start(config)
    three = {"headers": {"Authorization": "Bearer a-guess", "X-Notifyd-Token": "b-guess"},
             "params": {"token": "c-guess"}}
    with httpx.Client(timeout=10) as client:
        statuses = [client.post(daemon.url + "/webhooks/generic", json={"title": "x"}, **three).status_code
                    for _ in range(3)]
    assert statuses == [401, 401, 429]
