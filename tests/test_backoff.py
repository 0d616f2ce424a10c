"""notifyd.backoff.RetryPolicy: steps per attempt, ±20 % jitter, Retry-After."""

from __future__ import annotations

import random

import pytest

from notifyd.backoff import MAX_RETRY_AFTER, RetryPolicy

STEPS = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0)


def middle() -> float:
    return 0.5


@pytest.mark.parametrize("attempt, seconds", list(enumerate(STEPS, start=1)))
def test_steps_by_attempt_number(attempt, seconds):
    assert RetryPolicy().delay(attempt, rand=middle) == pytest.approx(seconds)


@pytest.mark.parametrize("attempt", [8, 9, 20, 1000])
def test_last_step_repeats(attempt):
    assert RetryPolicy().delay(attempt, rand=middle) == pytest.approx(10800.0)


def test_attempt_below_one_uses_the_first_step():
    assert RetryPolicy().delay(0, rand=middle) == pytest.approx(5.0)


def test_configured_steps():
    policy = RetryPolicy(steps=(0.1, 0.2))
    assert [policy.delay(n, rand=middle) for n in (1, 2, 3, 4)] == pytest.approx([0.1, 0.2, 0.2, 0.2])


def test_single_step_repeats():
    policy = RetryPolicy(steps=(60.0,))
    assert [policy.delay(n, rand=middle) for n in (1, 2, 5)] == pytest.approx([60.0, 60.0, 60.0])


@pytest.mark.parametrize("attempt, base", [(1, 5.0), (2, 30.0), (7, 10800.0), (12, 10800.0)])
def test_jitter_bounds_are_minus_and_plus_twenty_percent(attempt, base):
    policy = RetryPolicy()
    assert policy.delay(attempt, rand=lambda: 0.0) == pytest.approx(base * 0.8)
    assert policy.delay(attempt, rand=lambda: 1.0) == pytest.approx(base * 1.2)
    assert policy.delay(attempt, rand=lambda: 0.5) == pytest.approx(base)
    assert policy.delay(attempt, rand=lambda: 0.75) == pytest.approx(base * 1.1)


def test_jitter_stays_within_twenty_percent_for_random_draws():
    draw = random.Random(1234).random
    policy = RetryPolicy()
    delays = [policy.delay(2, rand=draw) for _ in range(2000)]
    assert all(24.0 - 1e-9 <= d <= 36.0 + 1e-9 for d in delays)
    assert max(delays) - min(delays) > 10.0      # it does vary


def test_retry_after_wins_over_the_step_without_jitter():
    policy = RetryPolicy()
    assert policy.delay(1, retry_after=90.0, rand=lambda: 1.0) == 90.0
    assert policy.delay(7, retry_after=2.0, rand=lambda: 0.0) == 2.0
    assert policy.delay(3, retry_after=0.0, rand=lambda: 1.0) == 0.0


@pytest.mark.parametrize("retry_after", [86400.0 + 1, 10 * 86400.0, float("inf")])
def test_retry_after_is_capped_at_a_day(retry_after):
    assert MAX_RETRY_AFTER == 86400.0
    assert RetryPolicy().delay(1, retry_after=retry_after, rand=middle) == 86400.0


def test_retry_after_of_exactly_a_day_is_kept():
    assert RetryPolicy().delay(1, retry_after=86400.0, rand=middle) == 86400.0


def test_negative_retry_after_is_ignored():
    assert RetryPolicy().delay(2, retry_after=-5.0, rand=middle) == pytest.approx(30.0)
