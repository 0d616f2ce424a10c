"""The `generic` source: any JSON sender that says what happened in its own words.

Body: {"kind"?: "backup", "title"?: "…", "body"?: "…", "level"?: "info|success|warning|failure",
"paths"?: ["/folder", …]} plus any other keys, which are kept in the payload. A title or a body
is required: a notification needs something to say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from notifyd.errors import BadPayload
from notifyd.model import Event

LEVELS = ("info", "success", "warning", "failure")
_KIND = re.compile(r"^[a-z0-9_.:-]{1,64}$")


def parse_generic(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a generic body, or raise BadPayload naming the field."""
    kind = body.get("kind", "notification")
    if not isinstance(kind, str) or not _KIND.match(kind.strip().lower()):
        raise BadPayload("field 'kind': expected a short lower-case word such as \"backup\" "
                         "(letters, digits, '_', '.', ':', '-')")
    title = _optional_text(body, "title")
    text = _optional_text(body, "body")
    if text is None:
        text = _optional_text(body, "message")
    if not (title or text):
        raise BadPayload("field 'title' or 'body': expected at least one non-empty string")
    level = body.get("level", "info")
    if level not in LEVELS:
        raise BadPayload(f"field 'level': expected one of {', '.join(LEVELS)}")
    paths = body.get("paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        raise BadPayload("field 'paths': expected an array of folder paths (strings)")
    return Event(source=source, source_type=source_type, kind=kind.strip().lower(),
                 title=title or "", body=text or "", paths=tuple(paths),
                 media={"level": level}, payload=raw)


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadPayload(f"field {name!r}: expected a string")
    return value.strip()
