"""The inbound HTTP listener (Starlette): webhooks and POST /notify messages in, answered only after
they are committed; event, run and health reads. It never delivers anything itself.

`POST /webhooks/{source}` is the hot route (a flood of webhooks is what the listener must take),
so `Listener` answers it without the middleware and routing layers: the same host check, the same
endpoint, the same exception handlers, the same answers, with a fraction of the work per request.
Every other request goes through the Starlette application."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from notifyd import __version__
from notifyd.auth import presented_tokens, token_matches
from notifyd.auth_limit import AuthLimiter, client_address
from notifyd.config import Config
from notifyd.config_reload import ConfigState
from notifyd.errors import (
    BadHeader,
    BadToken,
    NotFound,
    NotifydError,
    PayloadTooLarge,
    StoreUnavailable,
    TooManyFailures,
    UnknownSource,
    WebhookError,
)
from notifyd.fields import ROW_ID
from notifyd.ingest import IngestResult, IngestWriter
from notifyd.json_body import decode_body
from notifyd.manual import API_SOURCE, manual_event, parse_notify
from notifyd.metrics import CONTENT_TYPE, Metrics
from notifyd.multipart import Unwrapped
from notifyd.runs import RunConflict, parse_registration
from notifyd.runs import register_run as store_registration
from notifyd.sources import SOURCE_TYPES
from notifyd.ssrf import check_callback_url
from notifyd.store import Store, Tx
from notifyd.views import queue_depth, run_view, show_event

log = logging.getLogger("notifyd.listener")
Handler = Callable[[Request, Exception], Awaitable[Response]]       # an exception's answer
MAX_KEY = 200               # characters of an Idempotency-Key or webhook-id header


@dataclass
class ListenerDeps:
    """Everything the listener needs, passed in by the daemon (or a test)."""

    config: Callable[[], Config]
    writer: IngestWriter
    store: Store
    config_state: Callable[[], ConfigState]
    clock: Callable[[], float] = time.time
    metrics: Metrics | None = None
    auth_limiter: AuthLimiter | None = None     # None: one of its own, logging to the listener's log
    reload_config: Callable[[], object] = lambda: None      # apply an edit the status page made, now


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


class _JsonAnswer(Response):
    media_type = "application/json"


def json_answer(content: dict[str, Any], status: int) -> Response:
    """A JSON answer with JSONResponse's bytes and headers, encoded by orjson (JSONResponse builds
    a json encoder per answer; this is the answer to every webhook)."""
    return _JsonAnswer(orjson.dumps(content), status)


def dedupe_key(headers: Any, raw: bytes) -> str:
    """The idempotency key: the Idempotency-Key or webhook-id header, else a hash of the body."""
    key = headers.get("idempotency-key") or headers.get("webhook-id")
    if key is None:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    if len(key) > MAX_KEY:
        raise BadHeader(f"the Idempotency-Key (or webhook-id) header is {len(key)} characters; the limit is {MAX_KEY}")
    return key


def idempotency_key(headers: Any) -> str | None:
    """POST /notify's dedupe key: the Idempotency-Key header alone, never a hash of the body (a
    script that sends the same text twice means it twice)."""
    key = headers.get("idempotency-key") or None
    if key is not None and len(key) > MAX_KEY:
        raise BadHeader(f"the Idempotency-Key header is {len(key)} characters; the limit is {MAX_KEY}")
    return key


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it passes `limit` bytes. Read straight from the
    ASGI messages (what Request.stream() does, without an async generator per request)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"the body is {length} bytes; the limit (server.max_body) is {limit}")
    receive = request.receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the body is over the limit (server.max_body) of {limit} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif kind == "http.disconnect":
            raise ClientDisconnect()


def verify_signature(secret: str, raw: bytes, headers: Any) -> None:
    """401 unless the body carries a valid, fresh (±5 min) Standard Webhooks signature for `secret`."""
    from standardwebhooks import Webhook

    if not headers.get("webhook-signature"):
        raise BadToken("this source needs a Standard Webhooks signature (webhook-id, webhook-timestamp, "
                       "webhook-signature headers)")
    try:
        Webhook(secret).verify(raw, {k: v for k, v in headers.items()}, json_parse=False)
    except Exception as exc:   # the library raises several kinds for malformed headers; all mean no
        reason = str(exc) if "Webhook" in type(exc).__name__ else "malformed signature headers"
        raise BadToken(f"the signature does not verify: {reason}") from None


def check_token(expected: str | None, request: Request) -> None:
    """401 unless the request carries `expected` (no token configured: open, loopback only)."""
    if expected is None:
        return
    offered = presented_tokens(request.headers, request.query_params)
    if not offered:
        raise BadToken("a token is required (Authorization: Bearer, Basic password, X-Notifyd-Token or ?token=)")
    if not token_matches(expected, offered):
        raise BadToken("the token is wrong")


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
OPEN_PATHS = frozenset({"/health", "/metrics"})     # read-only, no secret: health checkers name hosts freely


def host_name(header: str) -> str:
    """The name part of a Host header: `[::1]:8765` → `::1`, `Localhost:80` → `localhost`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_refusal(scope: Scope, config: Config) -> JSONResponse | None:
    """With no token (loopback only), the 403 for a request whose Host is not a loopback name (see
    LoopbackHosts); None when the request may go on."""
    server = config.server
    if server.token is not None:
        return None
    host = host_name(next((value.decode("latin-1") for name, value in scope["headers"] if name == b"host"), ""))
    if host in LOOPBACK_NAMES or host == server.host.lower():
        return None
    return error_response(403, "host_not_allowed", f"this daemon has no token and answers only "
                          f"to loopback names (localhost, 127.0.0.1, [::1]), not {host[:60]!r}")


class LoopbackHosts:
    """With no token (loopback only), refuse any Host but a loopback name: a page on another site
    that rebinds its own name to 127.0.0.1 (DNS rebinding) must not read events or press the status
    page's buttons. With a token, the token (or the session cookie) is what protects."""

    def __init__(self, app: ASGIApp, config: Callable[[], Config]) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            response = host_refusal(scope, self.config())
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def handler_for(handlers: dict[Any, Handler], exc: Exception) -> Handler | None:
    """The handler Starlette would pick for `exc`: the first of its classes, most derived first."""
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return None


class Listener:
    """The ASGI application: `POST /webhooks/{source}` answered here, anything else by `app`.

    What Starlette's layers do for that route is done here in line, in their order: the Host check
    (LoopbackHosts), the route's match (its own regex, so the same paths match), the endpoint, and
    on an exception the handler Starlette would pick: those of `handlers` (ExceptionMiddleware), or
    else `server_error` (ServerErrorMiddleware), which answers 500 and raises the exception again
    for uvicorn to log."""

    def __init__(self, app: Starlette, route: Route, config: Callable[[], Config],
                 handlers: dict[Any, Handler], server_error: Handler) -> None:
        self.app = app
        self.route = route
        self.config = config
        self.handlers = handlers
        self.server_error = server_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            match = self.route.path_regex.match(scope["path"])     # (under a root_path, Starlette matches)
        if match is None:
            await self.app(scope, receive, send)
            return
        refused = host_refusal(scope, self.config())
        if refused is not None:
            await refused(scope, receive, send)
            return
        scope["app"] = self.app
        scope["router"] = self.app.router
        scope["route"] = self.route
        scope["endpoint"] = self.route.endpoint
        scope["path_params"] = match.groupdict()
        request = Request(scope, receive, send)
        try:
            response = await self.route.endpoint(request)
        except Exception as exc:
            handler = handler_for(self.handlers, exc)
            if handler is None:
                await (await self.server_error(request, exc))(scope, receive, send)
                raise
            response = await handler(request, exc)
            exc.__traceback__ = None
        try:
            await response(scope, receive, send)
        except Exception as exc:
            await self.server_error(request, exc)           # logs it; the answer has begun or is lost
            raise


def create_app(deps: ListenerDeps) -> Listener:
    """The application serving design §3 (webhooks, events, health): Starlette's, with the hot
    route in front of it (`Listener`)."""
    limiter = deps.auth_limiter or AuthLimiter(log=log)

    def authorize(expected: str | None, request: Request, check: Callable[[], None] | None = None) -> None:
        """check_token (then `check`, a signature) under the failed-token limit of the client's address."""
        if expected is None and check is None:
            return
        client, now = client_address(request.client), deps.clock()
        limiter.check(client, now, limit=deps.config().server.auth_failures)
        try:
            check_token(expected, request)
        except BadToken as exc:
            # Each wrong token offered counts: a header and ?token= at once are two guesses.
            offered = len(presented_tokens(request.headers, request.query_params))
            limiter.failed(client, now, exc.detail, count=max(1, offered))
            raise
        if check is not None:
            try:
                check()
            except BadToken as exc:
                limiter.failed(client, now, exc.detail)
                raise

    def accepted(result: IngestResult, source: str, title: str) -> Response:
        """The answer to a stored event (202; 200 for a repeat or a sender's test), counted and logged once."""
        if not result.duplicate:
            if deps.metrics is not None:
                deps.metrics.observe_event(source, result.kind)
            log.info("event %d from %s: %s %r, %d job(s)", result.event_id, source, result.kind,
                     title[:80], len(result.jobs))
        status = 200 if result.duplicate or result.kind == "test" else 202
        return json_answer({"event_id": result.event_id, "kind": result.kind,
                            "jobs": [{"id": j.id, "service": j.service} for j in result.jobs],
                            "duplicate": result.duplicate}, status)

    async def receive_webhook(request: Request) -> Response:
        config = deps.config()
        name = request.path_params["source"]
        named = config.sources.get(name)
        if named is not None:
            source_type, token = named.type, named.token or config.server.token
        elif name in SOURCE_TYPES:
            source_type, token = name, config.server.token
        else:
            # Say which sources exist only to a caller who may post (named ones are private).
            authorize(config.server.token, request)
            raise UnknownSource(f"no source {name[:60]!r} (built-in: {', '.join(sorted(SOURCE_TYPES))})")
        authorize(token, request)
        raw = await read_body(request, config.server.max_body)
        if named is not None and named.secret:
            secret = named.secret
            authorize(None, request, lambda: verify_signature(secret, raw, request.headers))
        sender, content_type = SOURCE_TYPES[source_type], request.headers.get("content-type")
        # A body that is not bare JSON (Plex's form) is unwrapped first, off the event loop (a form of
        # 1 MiB takes the parser a tenth of a second); the JSON inside it is what is decoded, kept as
        # the payload and hashed for repeats (a form's boundary changes with every post).
        sent = Unwrapped(raw, content_type)
        if sender.unwrap is not None:
            sent = await run_in_threadpool(sender.unwrap, raw, content_type)
        body = decode_body(sent.document, sent.content_type)
        key = dedupe_key(request.headers, sent.document)
        event = sender.parse(body, name, source_type, sent.document.decode("utf-8"))
        if sent.media:
            event = replace(event, media={**event.media, **sent.media})
        result: IngestResult = await deps.writer.submit_async(event, key)
        return accepted(result, name, event.title)

    async def receive_notification(request: Request) -> Response:
        """POST /notify: a message a script or app writes itself, taken like a webhook (durable,
        retried, answered only once committed) without a sender's shape."""
        config = deps.config()
        authorize(config.server.token, request)
        raw = await read_body(request, config.server.max_body)
        body = decode_body(raw, request.headers.get("content-type"))
        key = idempotency_key(request.headers)
        message = parse_notify(body, config)
        event = manual_event(message, source=API_SOURCE, payload=raw.decode("utf-8"))
        result: IngestResult = await deps.writer.submit_async(event, key, only=message.services)
        return accepted(result, API_SOURCE, event.title)

    async def get_event(request: Request) -> JSONResponse:
        authorize(deps.config().server.token, request)
        raw_id = request.path_params["event_id"]
        if not ROW_ID.fullmatch(raw_id):
            raise NotFound(f"no event {raw_id[:40]!r}")
        # Reads run off the event loop: a database server that is slow to answer must not stall it.
        return JSONResponse(await run_in_threadpool(show_event, deps.store, int(raw_id)))

    async def register_run(request: Request) -> JSONResponse:
        config = deps.config()
        authorize(config.server.token, request)
        body = decode_body(await read_body(request, config.server.max_body), request.headers.get("content-type"))

        def check(url: str) -> None:
            check_callback_url(url, config.runs.allow_private_callbacks)

        # The callback check resolves DNS, so it runs off the event loop.
        registration = await run_in_threadpool(parse_registration, body, config, check)
        def store_it(tx: Tx, now: float) -> dict[str, Any]:
            return store_registration(tx, registration, now, config)

        answer = await asyncio.wrap_future(deps.writer.call(store_it))
        log.info("run %s registered (%s)", registration.id, registration.name or "unnamed")
        return JSONResponse(answer, status_code=201)

    async def get_run(request: Request) -> JSONResponse:
        authorize(deps.config().server.token, request)
        return JSONResponse(await run_in_threadpool(run_view, deps.store, request.path_params["run_id"]))

    async def health(request: Request) -> JSONResponse:
        # The write probe, the queue read and the store's own check run side by side: a database
        # that does not answer costs one pool timeout, not one per question.
        probe, queue, problems = await asyncio.gather(
            asyncio.wait_for(asyncio.wrap_future(deps.writer.probe()), timeout=10),
            run_in_threadpool(queue_depth, deps.store, deps.clock()),
            run_in_threadpool(deps.store.health, deps.clock()),   # writes that work today but not for long
            return_exceptions=True)
        writable, reason = True, None
        if isinstance(probe, (TimeoutError, StoreUnavailable)):
            writable, reason = False, str(probe) or "the store did not answer within 10 s"
        elif isinstance(probe, BaseException):
            raise probe
        if isinstance(queue, BaseException):   # the store cannot even be read: health says so rather than failing
            writable, reason, queue = False, f"cannot read the store: {queue}", None
        if isinstance(problems, BaseException):
            problems = [f"cannot check the store: {problems}"]
        status = "unavailable" if not writable else "degraded" if problems else "ok"
        state = deps.config_state()
        body = {"status": status, "version": __version__,
                "store": {"writable": writable, "error": reason or "; ".join(problems) or None,
                          "problems": problems, "engine": deps.store.engine},
                "node": deps.store.node_id, "queue": queue,
                "config": {"state": state.state, "error": state.error}}
        # Design §3: 503 only when the store cannot be written; "degraded" still takes webhooks.
        return JSONResponse(body, status_code=503 if status == "unavailable" else 200)

    async def metrics(request: Request) -> Response:
        config = deps.config()
        if config.server.protect_metrics:
            authorize(config.server.token, request)
        if deps.metrics is None:
            raise NotFound("metrics are not collected here")
        return Response(await run_in_threadpool(deps.metrics.render), media_type=CONTENT_TYPE)

    async def webhook_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, WebhookError)
        if not isinstance(exc, (BadToken, TooManyFailures)):   # the limiter logs those, once a minute
            log.info("refused %s %s: %s %s", request.method, request.url.path[:200], exc.status, exc.detail)
        response = error_response(exc.status, exc.code, exc.detail)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response

    async def client_gone(request: Request, exc: Exception) -> Response:
        # Nobody is left to read an answer; nothing was stored.
        log.debug("client left %s %s before its body was read", request.method, request.url.path)
        return Response(status_code=400)

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return error_response(409, "conflict", str(exc))

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return error_response(404, "not_found", str(exc))

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        return error_response(503, "store_unavailable", f"the event was not stored: {exc}")

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        shown = request.url.path if len(request.url.path) <= 200 else request.url.path[:200] + "…"
        detail = {404: f"no route for {shown}", 405: f"{request.method[:20]} is not allowed on {shown}"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"),
                              detail.get(exc.status_code, str(exc.detail)))

    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "an unexpected error; see the daemon's log")

    webhooks = Route("/webhooks/{source}", receive_webhook, methods=["POST"])
    routes: list[BaseRoute] = [
        webhooks,
        Route("/notify", receive_notification, methods=["POST"]),
        Route("/events/{event_id}", get_event, methods=["GET"]),
        Route("/runs", register_run, methods=["POST"]),
        Route("/runs/{run_id}", get_run, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if deps.config().server.ui:      # fixed at start, like the listening address
        from notifyd.ui import UiDeps, ui_routes

        routes += ui_routes(UiDeps(config=deps.config, store=deps.store, config_state=deps.config_state,
                                   limiter=limiter, reload_config=deps.reload_config, clock=deps.clock))
    handlers: dict[Any, Handler] = {
        WebhookError: webhook_error, NotFound: not_found, StoreUnavailable: store_unavailable, RunConflict: conflict,
        ClientDisconnect: client_gone, HTTPException: http_error, NotifydError: internal_error,
    }
    app = Starlette(routes=routes, middleware=[Middleware(LoopbackHosts, config=deps.config)],
                    exception_handlers={**handlers, Exception: internal_error})
    # /webhooks/generic/ is a 404 with a JSON reason, never a redirect a sender would not follow.
    app.router.redirect_slashes = False
    return Listener(app, webhooks, deps.config, handlers, internal_error)
