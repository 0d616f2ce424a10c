"""The loop that watches the daemon's own threads and tells systemd's watchdog they are alive."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from notifyd.sd_notify import SystemdNotifier

log = logging.getLogger("notifyd.supervisor")
CHECK_EVERY = 30.0


class Supervisor:
    """Every `interval` seconds: if every part is alive, ping the watchdog; if one died, say so and stop
    pinging, so systemd restarts a wedged daemon instead of leaving it half-working."""

    def __init__(self, notifier: SystemdNotifier, parts: dict[str, Callable[[], bool]]) -> None:
        self.notifier = notifier
        self.parts = parts
        self.interval = notifier.watchdog_interval or CHECK_EVERY
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifyd-supervisor", daemon=True)
        self.failed: list[str] = []

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def check(self) -> bool:
        """Whether every part is alive; pings the watchdog when they are."""
        dead = [name for name, alive in self.parts.items() if not alive()]
        if dead:
            if dead != self.failed:
                log.error("%s stopped working; no more watchdog pings, so systemd restarts notifyd",
                          ", ".join(dead))
            self.failed = dead
            return False
        if self.notifier.watchdog_interval is not None:
            self.notifier.watchdog()
        return True

    def _run(self) -> None:
        self.check()
        while not self._stop.wait(self.interval):
            self.check()
