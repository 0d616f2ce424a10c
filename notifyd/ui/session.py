"""Status-page sessions: a signed, HttpOnly, SameSite=Strict cookie that says whether its holder
logged in with the token, and carries the CSRF token every form posts back.

Signing is itsdangerous's (the library Starlette's own sessions use), never hand-written HMAC.
The key is derived from a random secret kept in the store (so every node sharing the store
accepts the same session, and a restart keeps it) and from the token (so changing the token logs
everybody out). Because the secret never leaves the store, a cookie cannot be used to guess the
token offline. With no token (loopback only) the session carries only the CSRF token: a web page
on another site can still make a browser post to 127.0.0.1. Log out records the session id in
the store until the cookie would have expired, so it is refused on every node.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from notifyd.auth import token_matches
from notifyd.store import Store

COOKIE = "notifyd_session"
MAX_AGE = 12 * 3600             # a login lasts half a day
FLASH_AGE = 120                 # a one-line result shown after an action, for this long
SECRET_NAME = "ui-session"


@dataclass(frozen=True)
class Session:
    """Who holds the cookie: its id, whether it logged in, and the CSRF token its forms carry."""

    sid: str
    csrf: str
    authenticated: bool


class Sessions:
    """Issues and reads session cookies (and signed one-line results) for one token, or none."""

    def __init__(self, token: str | None, store: Store) -> None:
        secret = bytes.fromhex(store.secret(SECRET_NAME))
        key = hmac.new(secret, b"notifyd status page\x00" + (token or "").encode("utf-8"), hashlib.sha256).digest()
        self.token = token
        self._store = store
        self._serializer = URLSafeTimedSerializer(key, salt="notifyd-session")
        self._flash = URLSafeTimedSerializer(key, salt="notifyd-flash")

    def new(self, *, authenticated: bool) -> tuple[Session, str]:
        """A fresh session and its cookie value."""
        session = Session(sid=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(24), authenticated=authenticated)
        value = self._serializer.dumps({"sid": session.sid, "csrf": session.csrf, "auth": authenticated})
        return session, value

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when it is missing, forged, expired or logged out.
        A logged-in session costs one store read (was it logged out?)."""
        if not cookie or len(cookie) > 1024:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("sid", "csrf")):
            return None
        session = Session(sid=data["sid"], csrf=data["csrf"], authenticated=data.get("auth") is True)
        if session.authenticated and self._store.session_revoked(session.sid):
            return None
        return session

    def revoke(self, session: Session, now: float) -> None:
        """Log a session out everywhere (an anonymous one has nothing to end)."""
        if session.authenticated:
            self._store.revoke_session(session.sid, now + MAX_AGE)

    def token_matches(self, offered: str) -> bool:
        """Whether a login form's token is the server's, compared in constant time."""
        return bool(self.token) and token_matches(self.token or "", [offered])

    def flash(self, text: str) -> str:
        """A one-line result to show on the next page, signed so no link can put words there."""
        return self._flash.dumps(text[:300])

    def read_flash(self, value: str | None) -> str:
        if not value or len(value) > 2048:
            return ""
        try:
            text = self._flash.loads(value, max_age=FLASH_AGE)
        except BadSignature:
            return ""
        return text if isinstance(text, str) else ""


def csrf_matches(session: Session, offered: str | None) -> bool:
    return bool(offered) and hmac.compare_digest(session.csrf.encode(), (offered or "").encode())
