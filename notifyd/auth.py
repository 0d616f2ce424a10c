"""Request tokens: Bearer, Basic password, X-Notifyd-Token or ?token=, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping


def presented_tokens(headers: Mapping[str, str], query: Mapping[str, str]) -> list[str]:
    """Every token the request offers, in the order the design lists them."""
    found = []
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    elif scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            found.append(decoded.partition(":")[2])
        except (binascii.Error, UnicodeDecodeError):
            pass
    if headers.get("x-notifyd-token"):
        found.append(headers["x-notifyd-token"])
    if query.get("token"):
        found.append(query["token"])
    return found


def token_matches(expected: str, offered: list[str]) -> bool:
    """Whether any offered token equals `expected`; every comparison takes constant time."""
    want = expected.encode("utf-8")
    ok = False
    for token in offered:
        ok |= hmac.compare_digest(want, token.encode("utf-8"))
    return ok
