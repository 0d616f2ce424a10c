"""Status-page sessions: a signed, HttpOnly, SameSite=Strict cookie that says whether its holder
logged in with the token, and carries the CSRF token every form posts back.

Signing is itsdangerous's (the library Starlette's own sessions use), never hand-written HMAC.
With `server.token` set, the key is derived from the token, so every node that shares the token
accepts the same session and changing the token logs everybody out; with no token (loopback
only) the key is random per process and the session only carries the CSRF token, because a web
page on another site can still make a browser post to 127.0.0.1. Log out revokes the session id
in this process (the cookie would otherwise stay valid until it expires).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "notifyd_session"
MAX_AGE = 12 * 3600             # a login lasts half a day
_REVOKED_MAX = 10_000


@dataclass(frozen=True)
class Session:
    """Who holds the cookie: its id, whether it logged in, and the CSRF token its forms carry."""

    sid: str
    csrf: str
    authenticated: bool


class Sessions:
    """Issues and reads session cookies for one token (or none)."""

    def __init__(self, token: str | None, *, clock_key: bytes | None = None) -> None:
        if token:
            key = hashlib.sha256(b"notifyd status page session\x00" + token.encode("utf-8")).digest()
        else:
            key = clock_key or secrets.token_bytes(32)
        self.token = token
        self._serializer = URLSafeTimedSerializer(key, salt="notifyd-session")
        self._revoked: dict[str, None] = {}
        self._lock = threading.Lock()

    def new(self, *, authenticated: bool) -> tuple[Session, str]:
        """A fresh session and its cookie value."""
        session = Session(sid=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(24), authenticated=authenticated)
        value = self._serializer.dumps({"sid": session.sid, "csrf": session.csrf, "auth": authenticated})
        return session, value

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when it is missing, forged, expired or logged out."""
        if not cookie or len(cookie) > 1024:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("sid", "csrf")):
            return None
        with self._lock:
            if data["sid"] in self._revoked:
                return None
        return Session(sid=data["sid"], csrf=data["csrf"], authenticated=data.get("auth") is True)

    def revoke(self, session: Session) -> None:
        with self._lock:
            self._revoked[session.sid] = None
            while len(self._revoked) > _REVOKED_MAX:
                del self._revoked[next(iter(self._revoked))]

    def token_matches(self, offered: str) -> bool:
        """Whether a login form's token is the server's, compared in constant time."""
        return bool(self.token) and hmac.compare_digest(offered.encode("utf-8"), (self.token or "").encode("utf-8"))


def csrf_matches(session: Session, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(session.csrf.encode(), (offered or "").encode())
