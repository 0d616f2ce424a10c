"""JSON out, always strict: whatever notifyd serves, stores or sends parses in every JSON reader.

Bodies are refused at decode time when a number would overflow to infinity, but rows stored by
older versions may still hold NaN or an infinity, and a lone surrogate can come from a string
that was cut. `json_safe` turns those into null and U+FFFD; `dumps` serialises with allow_nan off,
so a value that slipped past both is an error here rather than invalid JSON at a receiver."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")     # in a str, any surrogate is an unpaired one
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")     # one as json.dumps escapes it (pairs too)


def json_safe(value: Any) -> Any:
    """A decoded JSON value that always serialises as strict JSON: NaN and infinities become null,
    unpaired surrogates U+FFFD."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {json_safe(k) if isinstance(k, str) else k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """`json.dumps` that never writes NaN or Infinity: a value that is strict already (every event
    the ingest path checked) is written as it is, without a walk through it first; any other is
    written as `json_safe` makes it."""
    try:
        text = json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:                  # NaN or an infinity somewhere
        return json.dumps(json_safe(value), allow_nan=False, **kwargs)
    if _SURROGATE.search(text) or _SURROGATE_ESCAPE.search(text):    # maybe a lone one: let json_safe see
        return json.dumps(json_safe(value), allow_nan=False, **kwargs)
    return text
