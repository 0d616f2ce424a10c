"""A service's `events` filter in the config (and so in `services add --events` and `services set`): a
typo of a known kind is refused with the kind it is close to; a sender's own kind is not."""

from __future__ import annotations

import pytest

from notifyd.config import parse_config
from notifyd.errors import ConfigError
from notifyd.event_kinds import KNOWN_KINDS, likely_typo


@pytest.mark.parametrize("kind, meant", [("downlaod", "download"), ("healthy", "health"), ("deleted", "delete"),
                                         ("run.complete", "run.completed"), ("notifications", "notification")])
def test_a_typo_names_the_kind_it_is_close_to(kind: str, meant: str) -> None:
    assert likely_typo(kind) == meant


@pytest.mark.parametrize("kind", [*sorted(KNOWN_KINDS), "*", "backup", "import", "dl", "run.started", "never-sent"])
def test_known_kinds_and_a_senders_own_are_no_typos(kind: str) -> None:
    assert likely_typo(kind) is None


def test_the_config_refuses_a_typo_in_events_and_takes_a_senders_kind() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"services": {"x": {"type": "apprise", "url": "json://h/x", "events": ["grab", "Downlaod"]}}},
                     path=None)
    assert info.value.key == "services.x.events"
    assert info.value.reason == "unknown event kind 'downlaod' (did you mean download?)"
    config = parse_config({"services": {"x": {"type": "apprise", "url": "json://h/x", "events": ["backup"]}}}, path=None)
    assert config.services["x"].events == ("backup",)
