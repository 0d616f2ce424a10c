"""A JSON object from a request body, decoded strictly: the one check every inbound body passes.

What it refuses, each with the WebhookError that says why (the listener maps them to 4xx): a
media type other than JSON, a charset other than UTF-8, an empty body, bytes that are not UTF-8,
invalid JSON, NaN and numbers beyond a float, nesting deeper than MAX_DEPTH, a NUL character (no
PostgreSQL text can hold one) and an unpaired UTF-16 surrogate escape. The status API answers
that notifyd.run_poll reads pass the same door.

Every webhook passes here, so the common case is made cheap: orjson parses a body first (about a
third of the json module's time on a 2 KB sender body). What orjson takes, the json module takes
too, with the same values, with one exception handled before it: integers beyond 64 bits, which
orjson turns into floats, so a body with a run of 19 digits or more goes to the json module. Any
body orjson refuses is decoded again by the json module, whose verdict (and message) is the answer,
so what is refused and why stays as it always was. The nesting walk runs only for a body with more
than MAX_DEPTH brackets, the only kind that can nest deeper.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from notifyd.errors import BadRequest, UnsupportedMedia

MAX_DEPTH = 64
_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\s;\"]*)", re.IGNORECASE)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abAB]", re.ASCII)
# Digits to "0", everything else to " ": a run of LONG_DIGITS zeros then marks a number orjson would
# not keep exact (or a long run of digits in a string, which only costs the slower decoder).
_DIGITS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
LONG_DIGITS = b"0" * 19


def decode_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """A JSON object from a request body, or the WebhookError that says what is wrong with it."""
    if content_type:
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMedia(f"expected Content-Type application/json, got {media[:60]!r}")
        charset = _CHARSET.search(content_type)
        if charset and charset.group(1).lower() not in ("utf-8", "utf8"):
            raise UnsupportedMedia(f"expected a UTF-8 body, got charset={charset.group(1)[:40]!r}")
    if not raw.strip():
        raise BadRequest("the body is empty; expected a JSON object")
    value = _fast_loads(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not valid UTF-8") from None
    if value is _REFUSED:
        value = _loads(text)
    if not isinstance(value, dict):
        raise BadRequest(f"expected a JSON object, got {type(value).__name__ if value is not None else 'null'}")
    if (raw.count(b"{") + raw.count(b"[") > MAX_DEPTH) and _depth(value) > MAX_DEPTH:
        raise BadRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    if "\\u0000" in text and _holds_nul(value):
        raise BadRequest("the JSON holds a NUL character (\\u0000), which the store cannot keep")
    if _SURROGATE_ESCAPE.search(text):
        # \ud800 alone decodes to a lone surrogate that no UTF-8 store can hold; pairs are fine.
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("the JSON holds an unpaired UTF-16 surrogate escape (such as \\ud800)") from None
    return value


_REFUSED = object()


def _fast_loads(raw: bytes) -> Any:
    """orjson's reading of the body, or _REFUSED when it refuses it or might not keep it exact."""
    if LONG_DIGITS in raw.translate(_DIGITS):
        return _REFUSED
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _REFUSED


def _loads(text: str) -> Any:
    """The json module's reading of the body, or the BadRequest that says why it is not JSON."""
    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=_finite_float)
    except RecursionError:
        raise BadRequest(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None


def _no_constants(name: str) -> Any:
    raise BadRequest(f"the body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    """A JSON number as a float, refusing the ones too large for one (1e999 would be infinity, which
    no JSON can carry back out)."""
    value = float(text)
    if math.isinf(value):
        raise BadRequest(f"the number {text[:40]} is too large (over about 1.8e308)")
    return value


def _holds_nul(value: Any) -> bool:
    """Whether any key or string in a decoded JSON value holds U+0000 (PostgreSQL text cannot)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            return level
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values() if isinstance(v, (dict, list)))
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item if isinstance(v, (dict, list)))
    return deepest
