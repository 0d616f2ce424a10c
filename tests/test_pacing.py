"""A service's pace: each message gets a turn `interval` after the one before, keeps it when it
comes back for it, and goes at once when its turn has come."""

from __future__ import annotations

from notifyd.channels.pacing import FORGET_AFTER, Pace

WALL = 1_700_000_000.0      # the POSIX time the fake clocks start at


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL + self.now - 100.0


def pace(interval: float) -> tuple[Pace, Clock]:
    clock = Clock()
    return Pace(interval, clock=clock.monotonic, wall=clock.wall), clock


def test_the_first_message_goes_and_the_next_ones_get_turns_one_interval_apart() -> None:
    p, clock = pace(5.5)
    assert p.turn(1) is None
    assert p.turn(2) == WALL + 5.5
    assert p.turn(3) == WALL + 11.0
    assert p.turn(4) == WALL + 16.5


def test_a_message_back_at_its_turn_goes_and_keeps_the_others_turns() -> None:
    p, clock = pace(5.5)
    p.turn(1)
    p.turn(2)
    p.turn(3)
    clock.now += 5.5
    assert p.turn(2) is None                  # its turn: it goes
    assert p.turn(5) == WALL + 16.5           # after job 3's turn, which stays taken
    clock.now += 5.5
    assert p.turn(3) is None


def test_a_message_back_a_little_early_still_goes_but_not_much_early() -> None:
    p, clock = pace(5.0)
    p.turn(1)
    p.turn(2)
    clock.now += 4.99
    assert p.turn(2) is None
    p.turn(3)
    clock.now += 1.0                          # job 3's turn is 4 s away
    assert p.turn(3) == WALL + 10.0           # still the same turn, not a new one


def test_after_a_quiet_spell_the_next_message_goes_at_once() -> None:
    p, clock = pace(5.5)
    assert p.turn(1) is None
    clock.now += 60
    assert p.turn(2) is None
    assert p.turn(3) == WALL + 60 + 5.5


def test_no_interval_means_no_turns() -> None:
    p, _ = pace(0)
    assert all(p.turn(job) is None for job in range(100))


def test_turns_never_taken_are_forgotten() -> None:
    p, clock = pace(1.0)
    p.turn(1)
    for job in range(2, 12):                  # turns for jobs that will never come back (cancelled)
        p.turn(job)
    clock.now += FORGET_AFTER + 20
    assert p.turn(99) is None
    assert p._turns == {}
