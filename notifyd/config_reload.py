"""Live config: the current Config, reloaded on file change (watchfiles) or SIGHUP, keeping the
last good one when the new file is invalid."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from notifyd.config import Config, read_config_file
from notifyd.errors import ConfigError

log = logging.getLogger("notifyd.config")
# How often the file watcher looks up from waiting (for its stop signal, and to hand over changes
# it saw): every half second keeps an idle daemon near 0 % CPU and an edit is followed within a second.
STEP_MS = 500


@dataclass
class ConfigState:
    """What /health reports of the config: ok, or the last reload's error."""

    state: str = "ok"
    error: str | None = None


class ConfigHolder:
    """Holds the effective Config; readers call it, and get the whole new one after a reload."""

    def __init__(self, config: Config, on_change: Callable[[Config], None] = lambda c: None,
                 prepare: Callable[[Config], Config] = lambda c: c) -> None:
        self._config = config
        self.state = ConfigState()
        self.on_change = on_change
        self.prepare = prepare            # the daemon's overrides and safety checks, applied every time
        self._lock = threading.Lock()

    def __call__(self) -> Config:
        return self._config

    def reload(self) -> bool:
        """Read the file again; True when the new config is in force."""
        path = self._config.path
        if path is None:
            return False
        with self._lock:
            try:
                new = self.prepare(read_config_file(path))
            except ConfigError as exc:
                self.state = ConfigState("error", str(exc))
                log.error("config reload refused, keeping the last good config: %s", exc)
                return False
            except Exception as exc:  # a validation gap must not kill the watcher or go unreported
                self.state = ConfigState("error", f"{path}: cannot be used ({type(exc).__name__})")
                log.exception("config reload failed, keeping the last good config")
                return False
            old = self._config
            at_start = (("server.listen", old.server.listen, new.server.listen),
                        ("server.header_timeout", old.server.header_timeout, new.server.header_timeout),
                        ("server.body_timeout", old.server.body_timeout, new.server.body_timeout),
                        ("server.idle_timeout", old.server.idle_timeout, new.server.idle_timeout),
                        ("server.max_connections", old.server.max_connections, new.server.max_connections),
                        ("store.path", old.store.path, new.store.path),
                        ("store.url", old.store.url, new.store.url),
                        ("worker.threads", old.worker.threads, new.worker.threads))
            for what, before, after in at_start:
                if before != after:
                    log.warning("%s changed; it takes effect after a restart", what)
            self._config = new
            self.state = ConfigState()
            self.on_change(new)
        changed = sorted(n for n in set(old.services) | set(new.services)
                         if old.services.get(n) != new.services.get(n))
        log.info("config reloaded from %s%s", path, f" (services changed: {', '.join(changed)})" if changed else "")
        return True


class ConfigWatcher:
    """Watches the config file's folder and reloads when the file changes."""

    def __init__(self, holder: ConfigHolder, path: Path) -> None:
        self.holder = holder
        self.path = path.resolve()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notifyd-config-watch", daemon=True)

    def start(self) -> ConfigWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        import watchfiles

        # Watch the folder, not the file: editors and `services enable` may replace the file whole.
        def is_config(change: watchfiles.Change, changed: str) -> bool:
            return Path(changed).name == self.path.name

        try:
            for _ in watchfiles.watch(self.path.parent, watch_filter=is_config, stop_event=self._stop,
                                      debounce=200, step=STEP_MS, rust_timeout=10_000, yield_on_timeout=False,
                                      raise_interrupt=False):
                if self.path.is_file():
                    self.holder.reload()
        except Exception:
            log.exception("config watcher stopped; SIGHUP still reloads")
