"""A service's pace: at most one message every `interval` seconds, each waiting in the queue for
its turn rather than in a worker thread.

Why: an Apprise plugin paces what it sends by sleeping (`request_rate_per_sec`: 5.5 s between
two messages for the plugins that keep Apprise's default, email, ntfy and Pushover among them).
notifyd keeps one plugin per service, so a burst of messages to one such service slept in every
worker thread in turn, and every other service waited behind it. Here each message is given a
turn (a slot `interval` after the one before), and one whose turn is still ahead is handed back
to the queue, due at its turn; it keeps that turn when it comes back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

FORGET_AFTER = 3600.0     # s past its turn after which a turn never taken (its job cancelled) is dropped
EARLY = 0.05              # s a job may come back before its turn and still go (the clocks' granularity)


class Pace:
    """Turns of one service: `turn(job_id)` says when that job may go (None: now)."""

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.interval = interval
        self._clock, self._wall = clock, wall
        self._next = 0.0                        # the first free turn, on `clock`
        self._turns: dict[int, float] = {}      # job id → its turn, for jobs handed back to wait for it
        self._lock = threading.Lock()

    def turn(self, job_id: int) -> float | None:
        """None: the job goes now (its turn has come). Else the POSIX time its turn comes; the job
        keeps that turn when it comes back."""
        if self.interval <= 0:
            return None
        with self._lock:
            now = self._clock()
            turn = self._turns.pop(job_id, None)
            if turn is None:
                turn = max(now, self._next)
                self._next = turn + self.interval
            if turn <= now + EARLY:
                self._forget(now)
                return None
            self._turns[job_id] = turn
            return self._wall() + (turn - now)

    def _forget(self, now: float) -> None:
        for job_id in [j for j, t in self._turns.items() if t < now - FORGET_AFTER]:
            del self._turns[job_id]
