"""The `generic` source: any JSON sender that says what happened in its own words.

Body: {"kind"?: "backup", "title"?: "…", "body"?: "…", "level"?: "info|success|warning|failure",
"paths"?: ["/folder", …]} plus any other keys, which are kept in the payload. A title or a body
is required: a notification needs something to say. The title is cut to TITLE_MAX and the body
to TEXT_MAX characters (notifyd.fields); paths are absolute, never climb, and are normalised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from notifyd.errors import BadPayload
from notifyd.fields import Fields
from notifyd.model import Event

LEVELS = ("info", "success", "warning", "failure")
PATHS_MAX = 100                 # each folder is a refresh job per media server
_KIND = re.compile(r"\s*[A-Za-z0-9_.:-]{1,64}\s*")
KIND_RULE = "a short lower-case word such as \"backup\" (letters, digits, '_', '.', ':', '-')"


def parse_generic(body: Mapping[str, Any], source: str, source_type: str, raw: str) -> Event:
    """Build an Event from a generic body, or raise BadPayload naming the field."""
    fields = Fields(body)
    kind = fields.pattern("kind", _KIND, KIND_RULE) or "notification"
    title = fields.title("title")
    text = fields.prose("body")
    if text is None:
        text = fields.prose("message")
    if not (title or text):
        raise BadPayload("field 'title' or 'body': expected at least one non-empty string")
    level = fields.choice("level", {name: name for name in LEVELS}) or "info"
    paths = fields.paths("paths", PATHS_MAX)
    return Event(source=source, source_type=source_type, kind=kind.strip().lower(),
                 title=title or "", body=text or "", paths=tuple(dict.fromkeys(paths)),
                 media={"level": level}, payload=raw)
