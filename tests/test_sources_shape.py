"""json_type: what a 422 says a sender put where another type belonged."""

from __future__ import annotations

from typing import Any

import pytest

from notifyd.sources.shape import json_type


@pytest.mark.parametrize(("value", "named"), [
    (None, "null"), (True, "a boolean"), (False, "a boolean"), (0, "a number"), (2.5, "a number"),
    ("", "a string"), ([], "an array"), ({"a": 1}, "an object"), (b"x", "bytes"),
])
def test_each_json_type_is_named_with_its_article(value: Any, named: str) -> None:
    assert json_type(value) == named
