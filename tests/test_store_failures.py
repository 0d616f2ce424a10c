"""A store that cannot be written: ingest answers 503 (never 202), /health says why, and the daemon
recovers by itself once writes work again, with every accepted event kept."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DaemonFactory, Receiver, wait_for, write_config


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB file system (tmpfs), so 'disk full' is the kernel's ENOSPC, not a simulation."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            pass
    return filler


def test_a_full_disk_gets_503_and_the_daemon_recovers_alone(tmp_path: Path, small_disk: Path,
                                                             daemons: DaemonFactory, receiver: Receiver) -> None:
    config = write_config(tmp_path / "config.toml", receiver.json_url, db=small_disk / "notifyd.db")
    daemon = daemons.start(config)
    accepted = []
    first = daemon.post("/webhooks/generic", {"title": "before"})
    assert first.status_code == 202
    accepted.append(first.json()["event_id"])
    filler = fill(small_disk)

    answers = []
    for n in range(40):                                   # 60 KB bodies: the WAL soon needs a page it cannot get
        answer = daemon.post("/webhooks/generic", {"title": f"while full {n}", "body": "x" * 60_000})
        answers.append(answer.status_code)
        assert answer.status_code in (202, 503), answer.text
        if answer.status_code == 202:
            accepted.append(answer.json()["event_id"])
        else:
            assert answer.json()["error"] == "store_unavailable" and "full" in answer.json()["detail"]
            break
    assert answers[-1] == 503, f"the store never filled up: {answers}"
    health = daemon.get("/health")
    assert health.status_code == 503
    assert health.json()["store"]["writable"] is False and "full" in health.json()["store"]["error"]

    filler.unlink()                                       # space comes back; no restart
    after = wait_for(lambda: (lambda r: r if r.status_code == 202 else None)(
        daemon.post("/webhooks/generic", {"title": "after"})), 10, interval=0.2, message="a 202 again")
    accepted.append(after.json()["event_id"])
    assert daemon.get("/health").status_code == 200
    for event_id in accepted:                             # nothing that was accepted is missing
        assert daemon.get(f"/events/{event_id}").status_code == 200
    titles = {"before", "after"} | {f"while full {n}" for n in range(len(answers) - 1)}
    wait_for(lambda: titles <= {b["title"] for b in receiver.bodies()}, 15, message="every accepted event delivered")
    assert daemon.stop() == 0
