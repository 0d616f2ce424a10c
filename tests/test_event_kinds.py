"""The kinds vocabulary holds every kind the sources make, and nothing a filter would never meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifyd.event_kinds import ARR_KINDS, KNOWN_KINDS, RUN_KINDS, TEST, is_known, likely_typo
from notifyd.run_state import RUN_FINAL_KINDS
from notifyd.sources import arr, comfydeploy

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_arr_event_type_maps_into_the_vocabulary() -> None:
    made = set(arr.KINDS.values())
    assert made - {TEST} <= set(ARR_KINDS)
    assert {"download_failed", "import_failed", "retag"} <= made
    assert set(ARR_KINDS) - made == {"upgrade"}            # a Download with isUpgrade, never an event type


def test_the_final_run_kinds_are_the_vocabulary_s() -> None:
    assert set(comfydeploy.KINDS.values()) == set(RUN_KINDS) == set(RUN_FINAL_KINDS)


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
