"""The status page's writes: log in and out, and the buttons (Retry, Cancel, Retry all dead,
Enable, Disable, Test). Every one is a POST that needs the session cookie and its CSRF token, and
goes through the same code as the CLI command of the same name.

An action without a valid session answers 401, without the right CSRF token (or from another
origin) 403, and changes nothing either way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from notifyd.auth_limit import client_address
from notifyd.config import Config
from notifyd.errors import ConfigError, NotFound, StoreUnavailable, TooManyFailures
from notifyd.fields import ROW_ID
from notifyd.operations import disable_service, enable_service
from notifyd.service_check import run_service_check
from notifyd.ui.pages import SECURITY_HEADERS, UiDeps, local_path, page, with_cookie
from notifyd.ui.session import COOKIE, Session, csrf_matches

MAX_FORM = 16 * 1024


class Refused(Exception):
    """An action refused before it changed anything: 401 (no session) or 403 (CSRF, origin)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def refused(exc: Refused) -> Response:
    return PlainTextResponse(f"{exc.status} {exc}\n", status_code=exc.status, headers=SECURITY_HEADERS)


async def _form(request: Request) -> dict[str, str]:
    """The posted form's fields (the page's forms are small and urlencoded; the standard library
    reads those)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise Refused(403, "expected a form (application/x-www-form-urlencoded)")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM:
            raise Refused(403, "the form is too large")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise Refused(403, "the form cannot be read") from None
    return dict(pairs)


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST came from; it must be this site (no header: not a browser)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host")


async def _checked(deps: UiDeps, request: Request, *, logged_in: bool = True) -> tuple[Session, dict[str, str]]:
    session = await run_in_threadpool(deps.sessions().read, request.cookies.get(COOKIE))
    if session is None:
        raise Refused(401, "no session: open the status page (and log in) first")
    if logged_in and deps.config().server.token and not session.authenticated:
        raise Refused(401, "log in first")
    if not _same_origin(request):
        raise Refused(403, "a request from another site")
    form = await _form(request)
    if not csrf_matches(session, form.get("csrf")):
        raise Refused(403, "the form's CSRF token is missing or stale: reload the page")
    return session, form


def _back(deps: UiDeps, form: dict[str, str], message: str, default: str = "/") -> RedirectResponse:
    parts = urlsplit(local_path(form.get("next"), default))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "msg"] + [("msg", deps.sessions().flash(message))]
    return RedirectResponse(f"{parts.path}?{urlencode(query)}", status_code=303)


Action = Callable[[Config, dict[str, str], Request], Awaitable[str]]


def action(deps: UiDeps, do: Action, default: str) -> Callable[[Request], Awaitable[Response]]:
    """A button's endpoint: checked, done through the shared code, then back to the page it was on
    with a one-line result."""

    async def endpoint(request: Request) -> Response:
        try:
            _, form = await _checked(deps, request)
        except Refused as exc:
            return refused(exc)
        try:
            message = await do(deps.config(), form, request)
        except (NotFound, ConfigError, StoreUnavailable) as exc:
            message = f"not done: {exc}"
        return _back(deps, form, message, default)

    return endpoint


def _job_id(request: Request) -> int:
    raw = request.path_params["job_id"]
    if not ROW_ID.fullmatch(raw):
        raise NotFound(f"no job {raw[:40]!r}")
    return int(raw)


def _results(results: dict[int, str]) -> str:
    return "; ".join(f"job {job_id}: {result}" for job_id, result in results.items()) or "no jobs"


def actions_of(deps: UiDeps) -> dict[str, Callable[[Request], Awaitable[Response]]]:
    """The POST endpoints, by path."""

    async def retry(config: Config, form: dict[str, str], request: Request) -> str:
        return _results(await run_in_threadpool(deps.store.retry, [_job_id(request)], deps.clock()))

    async def cancel(config: Config, form: dict[str, str], request: Request) -> str:
        return _results(await run_in_threadpool(deps.store.cancel, [_job_id(request)], deps.clock()))

    async def retry_dead(config: Config, form: dict[str, str], request: Request) -> str:
        def run() -> dict[int, str]:
            ids = deps.store.dead_ids()
            return deps.store.retry(ids, deps.clock()) if ids else {}

        results = await run_in_threadpool(run)
        queued = sum(1 for r in results.values() if r == "queued")
        return f"{queued} dead job(s) queued again" + ("" if queued == len(results) else f"; {_results(results)}")

    def service(request: Request) -> str:
        return request.path_params["name"]

    async def enable(config: Config, form: dict[str, str], request: Request) -> str:
        name = service(request)
        cleared = await run_in_threadpool(enable_service, config.path, deps.store, name)
        await run_in_threadpool(deps.reload_config)
        return f"service {name} enabled" + (" (its 410 Gone switch-off is cleared)" if cleared else "")

    async def disable(config: Config, form: dict[str, str], request: Request) -> str:
        name = service(request)
        await run_in_threadpool(disable_service, config.path, name)
        await run_in_threadpool(deps.reload_config)
        return f"service {name} disabled"

    async def test(config: Config, form: dict[str, str], request: Request) -> str:
        name = service(request)
        result = await run_in_threadpool(run_service_check, deps.store, config, name)
        if result.ok:
            return f"{name}: ok ({result.target}) in {result.elapsed:.2f}s"
        return f"{name}: failed ({result.target}): {result.error}"

    return {"/ui/jobs/{job_id}/retry": action(deps, retry, "/ui/jobs"),
            "/ui/jobs/{job_id}/cancel": action(deps, cancel, "/ui/jobs"),
            "/ui/jobs/retry-dead": action(deps, retry_dead, "/ui/jobs"),
            "/ui/services/{name}/enable": action(deps, enable, "/ui/services"),
            "/ui/services/{name}/disable": action(deps, disable, "/ui/services"),
            "/ui/services/{name}/test": action(deps, test, "/ui/services")}


def login_endpoints(deps: UiDeps) -> tuple[Callable[[Request], Awaitable[Response]], ...]:
    """GET and POST /ui/login, POST /ui/logout."""

    async def login_form(request: Request) -> Response:
        config = deps.config()
        if not config.server.token:
            return RedirectResponse("/", status_code=303)
        sessions = deps.sessions()
        session = await run_in_threadpool(sessions.read, request.cookies.get(COOKIE))
        request.state.flash = sessions.read_flash(request.query_params.get("msg"))
        fresh = None
        if session is None:
            session, fresh = sessions.new(authenticated=False)
        response = page(request, session, "login.html", config=config, title="Log in",
                        next=local_path(request.query_params.get("next")), error="")
        return with_cookie(response, request, fresh) if fresh else response

    async def login(request: Request) -> Response:
        config = deps.config()
        if not config.server.token:
            return RedirectResponse("/", status_code=303)
        try:
            session, form = await _checked(deps, request, logged_in=False)
        except Refused as exc:
            return refused(exc)
        client, now = client_address(request.client), deps.clock()
        try:
            deps.limiter.check(client, now, limit=config.server.auth_failures)
        except TooManyFailures as exc:
            busy = page(request, session, "login.html", config=config, title="Log in", next=form.get("next", "/"),
                        error=exc.detail, status=429)
            busy.headers["Retry-After"] = str(exc.retry_after)
            return busy
        sessions = deps.sessions()
        if not sessions.token_matches(form.get("token", "")):
            deps.limiter.failed(client, now, "a wrong token at the status page's login")
            return page(request, session, "login.html", config=config, title="Log in", next=form.get("next", "/"),
                        error="That is not the token in the daemon's config (server.token).", status=401)
        _, value = sessions.new(authenticated=True)     # a new id at login: no session fixation
        return with_cookie(RedirectResponse(local_path(form.get("next")), status_code=303), request, value)

    async def logout(request: Request) -> Response:
        try:
            session, _ = await _checked(deps, request, logged_in=False)
        except Refused as exc:
            return refused(exc)
        sessions = deps.sessions()
        await run_in_threadpool(sessions.revoke, session, deps.clock())
        response = RedirectResponse("/ui/login?" + urlencode({"msg": sessions.flash("logged out")})
                                    if deps.config().server.token else "/", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    return login_form, login, logout

