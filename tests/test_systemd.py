"""systemd: the notify protocol spoken to a socket the test binds, and the unit file as
systemd-analyze judges it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from notifyd.sd_notify import SystemdNotifier

from conftest import DaemonFactory, Receiver, write_config

UNIT = Path(__file__).resolve().parent.parent / "contrib" / "systemd" / "notifyd.service"


def listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    return sock


def messages_until(sock: socket.socket, wanted: str, seen: list[str]) -> list[str]:
    while not any(wanted in m for m in seen):
        seen.append(sock.recv(4096).decode())
    return seen


def test_ready_watchdog_and_stopping_reach_the_notify_socket(tmp_path: Path, daemons: DaemonFactory,
                                                            receiver: Receiver) -> None:
    sock = listen(tmp_path / "notify.sock")
    config = write_config(tmp_path / "config.toml", receiver.json_url)
    env = daemons.env(NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="1000000")
    daemon = daemons.start(config, env=env, wait=False)
    seen: list[str] = []
    messages_until(sock, "READY=1", seen)
    assert daemon.get("/health").status_code == 200       # READY came after the listener was serving
    while seen.count("WATCHDOG=1") < 2:                   # pinged, and pinged again (every 0.5 s here)
        seen.append(sock.recv(4096).decode())
    daemon.proc.send_signal(signal.SIGTERM)
    messages_until(sock, "STOPPING=1", seen)
    assert daemon.proc.wait(15) == 0
    assert seen[0].startswith("READY=1") and "STATUS=listening on" in seen[0]
    sock.close()


def test_notifier_speaks_to_abstract_sockets_and_is_silent_outside_systemd(tmp_path: Path) -> None:
    name = f"notifyd-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000"})
    assert notifier.ready() and sock.recv(100) == b"READY=1"
    assert notifier.watchdog_interval == 15.0
    sock.close()
    quiet = SystemdNotifier({})
    assert not quiet.enabled and not quiet.ready() and quiet.watchdog_interval is None
    other_pid = SystemdNotifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other_pid.watchdog_interval is None             # the watchdog is meant for another process


analyze = shutil.which("systemd-analyze")


@pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed (Debian package: systemd)")
def test_the_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    text = UNIT.read_text()
    for needed in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes", "StateDirectory=notifyd",
                   "ConfigurationDirectory=notifyd", "Restart=on-failure", "NoNewPrivileges=yes",
                   "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
                   "RestrictAddressFamilies=", "SystemCallFilter=@system-service", "WatchdogSec="):
        assert needed in text, needed
    binary = shutil.which("notifyd")
    assert binary, "the notifyd console script is installed"
    unit = tmp_path / "notifyd.service"
    unit.write_text(text.replace("/usr/local/bin/notifyd", binary))
    verify = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    security = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True,
                              timeout=60)
    exposure = re.search(r"Overall exposure level for notifyd\.service: ([0-9.]+)", security.stdout)
    assert exposure, security.stdout[-500:] + security.stderr
    assert float(exposure.group(1)) <= 2.0
