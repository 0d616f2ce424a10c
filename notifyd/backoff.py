"""When a failed job runs again: the configured steps, ±20 % jitter, and the receiver's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

MAX_RETRY_AFTER = 24 * 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff steps in seconds (after attempt 1, 2, …; then the last step again) and jitter."""

    steps: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0)
    jitter: float = 0.2

    def delay(self, attempt: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        A receiver's Retry-After wins when given (capped at a day), because it knows its own load.
        """
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, MAX_RETRY_AFTER)
        base = self.steps[min(max(attempt, 1), len(self.steps)) - 1]
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))
