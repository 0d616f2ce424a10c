"""The kinds vocabulary holds every kind the sources make, and nothing a filter would never meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifyd.event_kinds import (
    ARR_KINDS,
    GENERIC,
    KNOWN_KINDS,
    MEDIA_SERVER_KINDS,
    MONITOR_KINDS,
    OPT_IN,
    PLAYBACK_KINDS,
    REQUEST_KINDS,
    RUN_KINDS,
    TEST,
    is_known,
    likely_typo,
)
from notifyd.run_state import RUN_FINAL_KINDS
from notifyd.sources import arr, comfydeploy, jellyfin, overseerr, plex, uptimekuma

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_arr_event_type_maps_into_the_vocabulary() -> None:
    made = set(arr.KINDS.values())
    assert made - {TEST} <= set(ARR_KINDS)
    assert {"download_failed", "import_failed", "retag"} <= made
    assert set(ARR_KINDS) - made == {"upgrade"}            # a Download with isUpgrade, never an event type


def test_the_final_run_kinds_are_the_vocabulary_s() -> None:
    assert set(comfydeploy.KINDS.values()) == set(RUN_KINDS) == set(RUN_FINAL_KINDS)


def test_request_managers_and_monitors_map_into_the_vocabulary() -> None:
    assert set(overseerr.KINDS.values()) == set(REQUEST_KINDS) | {TEST}
    assert set(REQUEST_KINDS) | set(MONITOR_KINDS) <= KNOWN_KINDS
    # Uptime Kuma's pending and maintenance are recorded quietly, under names of their own.
    told = {kind for status, kind in uptimekuma.KINDS.items() if status not in uptimekuma.QUIET_WHY}
    assert told == set(MONITOR_KINDS)
    assert set(arr.KINDS) >= {"Grab", "Health", "HealthRestored", "ApplicationUpdate", "Test"}   # all Prowlarr sends


def test_media_servers_map_into_the_vocabulary_and_playback_is_opt_in() -> None:
    made = set(plex.KINDS.values()) | set(jellyfin.KINDS.values())
    assert made - {GENERIC} == set(MEDIA_SERVER_KINDS) | set(PLAYBACK_KINDS)    # every kind of the two has a sender
    assert set(plex.KINDS.values()) <= set(MEDIA_SERVER_KINDS) | set(PLAYBACK_KINDS)
    assert set(PLAYBACK_KINDS) == OPT_IN and not any(is_known(kind, "plex") for kind in PLAYBACK_KINDS)
    assert all(is_known(kind, "jellyfin") for kind in MEDIA_SERVER_KINDS)
    # What Jellyfin sends every few seconds, and the types without a kind, keep names of their own.
    assert not is_known(jellyfin.PROGRESS.lower(), "jellyfin") and not is_known("library.on.deck", "plex")


def test_every_arr_kind_is_in_the_readme_table() -> None:
    table = README[README.index("| eventType |"):]
    for kind in ARR_KINDS:
        assert f"`{kind}`" in table, f"the README's table of *arr events lacks {kind}"


@pytest.mark.parametrize(("kind", "source_type", "known"), [
    ("download", "radarr", True), ("foobar", "radarr", False), ("backup", "generic", True),
    ("notification", "manual", True), ("run.completed", "comfydeploy", True), ("run.ignored", "comfydeploy", False),
])
def test_what_a_service_without_a_filter_takes(kind: str, source_type: str, known: bool) -> None:
    assert is_known(kind, source_type) is known


def test_typos_are_caught_and_own_words_are_not() -> None:
    assert likely_typo("downlaod") == "download"
    assert likely_typo("download") is None and likely_typo("*") is None and likely_typo("backup") is None
    assert all(likely_typo(kind) is None for kind in KNOWN_KINDS)
