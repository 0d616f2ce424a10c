"""notifyd.logs: `serve --log-level`, and the libraries that log a line per request kept quiet."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifyd.logs import CHATTY_LOGGERS, LOG_LEVELS, Redactor, setup_logging

from conftest import DaemonFactory, Receiver, wait_for, write_config


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in (*CHATTY_LOGGERS, "notifyd")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


@pytest.mark.parametrize("name", list(LOG_LEVELS))
def test_a_level_applies_to_notifyd_and_the_chatty_libraries_speak_at_debug_only(name: str,
                                                                                  restore_logging: None) -> None:
    level = LOG_LEVELS[name]
    setup_logging(Redactor(), "text", level)
    notifyd = logging.getLogger("notifyd.worker")
    assert notifyd.isEnabledFor(level) and not notifyd.isEnabledFor(level - 10)
    for library in CHATTY_LOGGERS:
        assert logging.getLogger(library).isEnabledFor(logging.INFO) is (name == "debug")
        assert logging.getLogger(library).isEnabledFor(max(level, logging.WARNING))


def _deliver_once(daemons: DaemonFactory, receiver: Receiver, tmp_path: Path, level: str) -> str:
    """Start serve at `level`, deliver one webhook through httpx, stop it; its log."""
    config = write_config(tmp_path / f"{level}.toml", db=tmp_path / f"{level}.db",
                          services=f'\n[services.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:{receiver.port}/in"\n')
    daemon = daemons.start(config, args=("--log-level", level))
    before = len(receiver.requests)
    assert daemon.post("/webhooks/generic", {"title": f"at {level}"}).status_code == 202
    wait_for(lambda: len(receiver.requests) > before, message="the delivery")
    wait_for(lambda: " sent " in daemon.log() or level in ("warning", "error"), message="the job's log line")
    assert daemon.stop() == 0
    return daemon.log()


def test_serve_logs_at_its_level_and_httpx_only_at_debug(tmp_path: Path, daemons: DaemonFactory,
                                                         receiver: Receiver) -> None:
    info = _deliver_once(daemons, receiver, tmp_path, "info")
    assert "listening on" in info and " sent " in info
    assert "HTTP Request:" not in info                      # httpx's line per request
    debug = _deliver_once(daemons, receiver, tmp_path, "debug")
    assert "HTTP Request: POST http://127.0.0.1" in debug
    warning = _deliver_once(daemons, receiver, tmp_path, "warning")
    assert "listening on" not in warning and " sent " not in warning and "HTTP Request" not in warning
