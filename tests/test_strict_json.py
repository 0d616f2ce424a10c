"""notifyd.strict_json: what notifyd serves and sends is strict JSON, whatever older rows hold."""

from __future__ import annotations

import json

from notifyd.strict_json import dumps, json_safe


def test_json_safe_makes_any_stored_value_strict_json() -> None:
    value = {"a": [float("nan"), float("inf"), -float("inf"), 1.5, "ok\ud800"], "b": ({"c": 1},)}
    safe = json_safe(value)
    assert safe == {"a": [None, None, None, 1.5, "ok\ufffd"], "b": [{"c": 1}]}
    json.dumps(safe, allow_nan=False).encode("utf-8")


def test_dumps_never_writes_nan_or_infinity() -> None:
    assert dumps({"v": float("inf"), "w": [float("nan")]}, separators=(",", ":")) == '{"v":null,"w":[null]}'



def test_dumps_replaces_a_lone_surrogate_however_it_is_written() -> None:
    assert dumps({"t": "a\ud800"}) == '{"t": "a\\ufffd"}'
    assert dumps({"t": "a\ud800"}, ensure_ascii=False) == '{"t": "a\ufffd"}'
    assert dumps({"t": "😀"}, ensure_ascii=False) == '{"t": "😀"}'
