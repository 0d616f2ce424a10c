"""The status page's reads: overview, events, one event with its attempt logs, jobs, services and
runs, rendered on the server from the same views the CLI's --json prints, and the gate every page
and action passes (session cookie, login, CSRF)."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from notifyd import __version__
from notifyd.auth_limit import AuthLimiter
from notifyd.channels import describe_target
from notifyd.config import Config
from notifyd.config_reload import ConfigState
from notifyd.errors import NotFound, StoreUnavailable
from notifyd.fields import ROW_ID
from notifyd.model import JobState
from notifyd.store import Store
from notifyd.ui.session import COOKIE, MAX_AGE, Session, Sessions
from notifyd.units import format_duration
from notifyd.views import list_events, list_jobs, list_runs, show_event, show_job, stats

HERE = Path(__file__).parent
LIVE_HEADER = "x-notifyd-live"        # live.js asks for the page's <main> only
PAGE_SIZE = 50
CACHE_S = 2.0                         # how long the overview's numbers are shared between refreshes
_NAV = ("/", "/ui/events", "/ui/jobs", "/ui/services", "/ui/runs")
# The stylesheet goes inside each page (4 KB): a first paint then waits for no second request.
# The policy allows exactly that text by its hash, and no other inline style or script.
STYLESHEET = (HERE / "static" / "style.css").read_text(encoding="utf-8")
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLESHEET.encode("utf-8")).digest()).decode()
SECURITY_HEADERS = {
    "Content-Security-Policy": f"default-src 'none'; script-src 'self'; style-src 'sha256-{_STYLE_HASH}'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class UiDeps:
    """What the status page needs, passed in by the listener."""

    config: Callable[[], Config]
    store: Store
    config_state: Callable[[], ConfigState]
    limiter: AuthLimiter
    reload_config: Callable[[], object] = lambda: None
    clock: Callable[[], float] = time.time
    _sessions: dict[str | None, Sessions] = field(default_factory=dict)

    _cache: dict[str, tuple[float, Any]] = field(default_factory=dict)

    def sessions(self) -> Sessions:
        """The session keeper for the current token (a changed token starts a new one)."""
        token = self.config().server.token
        if token not in self._sessions:
            self._sessions.clear()
            self._sessions[token] = Sessions(token, self.store)
        return self._sessions[token]

    async def cached(self, key: str, read: Callable[[], Any]) -> Any:
        """`read()` off the event loop, shared by every open page for CACHE_S: each tab's live
        refresh must not cost the store a scan of its own."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
        value = await run_in_threadpool(read)
        self._cache[key] = (now, value)
        return value


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["duration"] = lambda s: format_duration(s) if isinstance(s, (int, float)) else "—"
    return env


def _when(stamp: str | None) -> str:
    return (stamp or "—").replace("T", " ").removesuffix("Z")


TEMPLATES = _environment()


def page(request: Request, session: Session, name: str, *, status: int = 200, **context: Any) -> Response:
    """A page, or only its <main> for live.js; with the session's CSRF token for its forms."""
    live = request.headers.get(LIVE_HEADER) == "1"
    config = context.pop("config")
    body = TEMPLATES.get_template(name).render(
        layout="partial.html" if live else "base.html", csrf=session.csrf, path=request.url.path,
        query=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "msg"]),
        stylesheet=Markup(STYLESHEET), version=__version__,
        login=bool(config.server.token) and session.authenticated,
        section=next((href for href in reversed(_NAV) if request.url.path == href or
                      (href != "/" and request.url.path.startswith(href + "/"))), ""),
        message=getattr(request.state, "flash", ""), **context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def problem(status: int, title: str, detail: str) -> Response:
    """A page that says what went wrong (a missing event, a store that does not answer)."""
    body = TEMPLATES.get_template("problem.html").render(title=title, detail=detail, stylesheet=Markup(STYLESHEET))
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def with_cookie(response: Response, request: Request, value: str) -> Response:
    response.set_cookie(COOKIE, value, max_age=MAX_AGE, path="/", httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def local_path(target: str | None, default: str = "/") -> str:
    """A path on this site to go back to (never another host: no scheme, no //)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    return parts.path + (f"?{parts.query}" if parts.query else "") if not parts.netloc else default


Handler = Callable[[Request, Session, Config], Awaitable[Response]]


def gated(deps: UiDeps, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page handler behind the gate: with a token, a logged-in session or the login form; with
    none, any session (one is made, for the CSRF token its forms need)."""

    async def endpoint(request: Request) -> Response:
        config = deps.config()
        sessions = deps.sessions()
        cookie = request.cookies.get(COOKIE)
        session = await run_in_threadpool(sessions.read, cookie)
        if session is None and cookie is None and request.headers.get("sec-fetch-site") == "cross-site":
            # A link from another site: the SameSite=Strict cookie stayed behind. Load the page again
            # from here (the cookie comes along then) rather than replace a login with a new session.
            return HTMLResponse('<!doctype html><meta http-equiv="refresh" content="0"><title>notifyd</title>',
                                headers=SECURITY_HEADERS)
        if config.server.token and (session is None or not session.authenticated):
            if request.headers.get(LIVE_HEADER) == "1":
                return Response(status_code=401)
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?next={quote(local_path(here))}", status_code=303)
        fresh = None
        if session is None:
            session, fresh = sessions.new(authenticated=False)
        request.state.flash = sessions.read_flash(request.query_params.get("msg"))
        try:
            response = await handler(request, session, config)
        except NotFound as exc:
            response = problem(404, "Not found", str(exc))
        except StoreUnavailable as exc:
            response = problem(503, "The store is not available", str(exc))
        return with_cookie(response, request, fresh) if fresh else response

    return endpoint


def routes_of(deps: UiDeps) -> dict[str, Handler]:
    """The pages, by path."""

    async def overview(request: Request, session: Session, config: Config) -> Response:
        numbers = await deps.cached("stats", lambda: stats(deps.store, deps.clock()))
        state = deps.config_state()
        return page(request, session, "overview.html", config=config, title="Overview", stats=numbers,
                    config_state=state, engine=deps.store.engine, node=deps.store.node_id,
                    location=deps.store.location if deps.store.engine == "sqlite" else None,
                    config_path=str(config.path) if config.path else None)

    async def events(request: Request, session: Session, config: Config) -> Response:
        rows = await run_in_threadpool(list_events, deps.store, None, None, PAGE_SIZE)
        return page(request, session, "events.html", config=config, title="Events", events=rows)

    async def event(request: Request, session: Session, config: Config) -> Response:
        raw = request.path_params["event_id"]
        if not ROW_ID.fullmatch(raw):
            raise NotFound(f"no event {raw[:40]!r}")

        def load() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            view = show_event(deps.store, int(raw))
            return view, [show_job(deps.store, j["id"]) for j in view["jobs"]]

        view, jobs = await run_in_threadpool(load)
        return page(request, session, "event.html", config=config, title=f"Event {view['id']}", event=view,
                    jobs=jobs)

    async def jobs(request: Request, session: Session, config: Config) -> Response:
        state = request.query_params.get("state") or None
        service = request.query_params.get("service") or None
        if state is not None and state not in set(JobState):
            state = None
        if service is not None and service not in config.services:
            service = None
        rows = await run_in_threadpool(list_jobs, deps.store, state, service, PAGE_SIZE)
        dead = await deps.cached("depth", lambda: deps.store.queue_depth(deps.clock()))
        return page(request, session, "jobs.html", config=config, title="Jobs", jobs=rows, state=state or "",
                    service=service or "", states=[str(s) for s in JobState], services=sorted(config.services),
                    dead=dead.dead)

    async def services(request: Request, session: Session, config: Config) -> Response:
        switched_off = await run_in_threadpool(deps.store.services_switched_off)
        rows = [{"name": s.name, "type": s.type, "target": describe_target(s),
                 "enabled": s.enabled and s.name not in switched_off,
                 "gone": switched_off.get(s.name),
                 "events": ", ".join(s.events_shown).strip("()")}
                for s in config.services.values()]
        return page(request, session, "services.html", config=config, title="Services", services=rows,
                    editable=config.path is not None)

    async def runs(request: Request, session: Session, config: Config) -> Response:
        rows = await run_in_threadpool(list_runs, deps.store, PAGE_SIZE)
        for row in rows:
            row.pop("callback_url", None)          # it may carry the receiver's own token
        return page(request, session, "runs.html", config=config, title="Runs", runs=rows)

    return {"/": overview, "/ui/events": events, "/ui/events/{event_id}": event, "/ui/jobs": jobs,
            "/ui/services": services, "/ui/runs": runs}


