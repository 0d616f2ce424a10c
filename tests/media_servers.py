"""Test doubles for the media servers notifyd refreshes, and an SMTP sink.

Each double speaks the server's real protocol on 127.0.0.1 (ephemeral port, daemon thread), checks
credentials the way the real server does, records every request, and can be told to misbehave:

    KodiServer      POST /jsonrpc, JSON-RPC 2.0, HTTP Basic auth (realm "XBMC")
    JellyfinServer  Jellyfin 12 auth: `Authorization: MediaBrowser Token="…"` or `?ApiKey=`; the legacy
                    forms (X-Emby-Token, X-Emby-Authorization, X-MediaBrowser-Token, ?api_key=) only
                    with `legacy_auth=True`, as on 10.x (`EnableLegacyAuthorization`)
    EmbyServer      same endpoints, also under /emby; `X-Emby-Token`, `?api_key=`, or the Emby/
                    MediaBrowser authorization header
    PlexServer      /library/sections (JSON with `Accept: application/json`, else XML),
                    /library/sections/{key}/refresh?path=…, X-Plex-Token header or query
    SmtpSink        aiosmtpd on 127.0.0.1, no TLS, accepts any AUTH; `apprise_url()` gives the
                    Apprise URL that delivers plain text to it

Common to the HTTP doubles: `.url`, `.port`, `.requests` (list of `Request`), `.fail_next(status,
count=1)` (answer the next N requests with that status before anything else; `DROP` closes the
connection without an answer), `.delay` (seconds to wait before answering), `.stop()` (closes the
socket: connection refused), `.start()` (listen again on the same port), `.wait_until(pred)`,
context-manager use. Fixtures `kodi`, `jellyfin`, `emby`, `plex`, `smtp` are at the bottom; a test
module imports them (`from media_servers import kodi`) or a conftest lists this module in
`pytest_plugins`.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import json
import re
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

DROP = 0
"""Pass to `fail_next` to close the connection without sending any response."""

KODI_USER = "kodi"
KODI_PASSWORD = "kodi-test-pass"
JELLYFIN_KEY = "0123456789abcdef0123456789abcdef"   # Jellyfin API keys are 32 hex digits
EMBY_KEY = "fedcba9876543210fedcba9876543210"
PLEX_TOKEN = "plex-test-token-xyz"

DEFAULT_PLEX_SECTIONS: list[dict[str, Any]] = [
    {"key": "1", "title": "Movies", "type": "movie", "locations": ["/storage/movies"]},
    {"key": "2", "title": "TV Shows", "type": "show", "locations": ["/storage/tv"]},
    {"key": "3", "title": "Music", "type": "artist", "locations": ["/storage/music"]},
]


# --------------------------------------------------------------------------------------------------
# Shared HTTP machinery
# --------------------------------------------------------------------------------------------------

@dataclass
class Request:
    """One request as the double received it, and what it answered."""

    method: str
    path: str                          # without the query string, percent-decoding NOT applied
    query: dict[str, list[str]]        # parse_qs of the query string (decoded)
    headers: dict[str, str]            # as received (original case); see header()
    body: bytes
    status: int | None = None          # status the double answered (None: dropped / not answered)
    auth: str | None = None            # how it authenticated: "basic", "Authorization", "ApiKey", ...

    def header(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lname:
                return value
        return default

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, value: Any, content_type: str = "application/json") -> Reply:
        return cls(status, json.dumps(value).encode(), content_type)

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Reply:
        return cls(status, text.encode(), content_type)


class FakeHTTPServer:
    """Base of the HTTP doubles: a ThreadingHTTPServer on 127.0.0.1 that records every request.

    HTTP/1.0 (one request per connection), so after `stop()` no pooled connection can still reach it.
    """

    server_header = "fake"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.delay = 0.0
        self.port: int = 0
        self._failures: list[int] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.start()

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base_url

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeHTTPServer:
        """Listen (again). After `stop()` it comes back on the same port."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        # A short poll interval keeps stop() (which waits for serve_forever to notice) fast.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.02,),
                                         name=f"{type(self).__name__}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: new connections are refused."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    close = stop

    def __enter__(self) -> FakeHTTPServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- misbehaviour and inspection ------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1) -> None:
        """Answer the next `count` requests with `status` (or drop them, `DROP`) before any auth."""
        with self._lock:
            self._failures.extend([status] * count)

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0,
                   message: str = "condition") -> Any:
        """Block until `predicate()` is truthy (re-checked after every request); return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{type(self).__name__}: timed out after {timeout}s waiting for {message}")
                self._changed.wait(min(left, 0.1))

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[Request]:
        self.wait_until(lambda: len(self.requests) >= count, timeout, f"{count} request(s)")
        with self._lock:
            return list(self.requests)

    # ---- request handling -----------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:  # pragma: no cover - overridden
        raise NotImplementedError

    def _process(self, handler: BaseHTTPRequestHandler) -> Reply | None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        req = Request(handler.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                      dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(req)
            failure = self._failures.pop(0) if self._failures else None
            delay = self.delay
        if delay:
            time.sleep(delay)
        if failure is not None:
            reply = None if failure == DROP else Reply.text(failure, f"{failure} injected by the test double\n")
        else:
            try:
                with self._lock:
                    reply = self.handle(req)
            except Exception as exc:  # a bug in the double must show, not hang the client
                reply = Reply.text(500, f"test double error: {exc!r}\n")
        with self._changed:
            req.status = reply.status if reply is not None else None
            self._changed.notify_all()
        return reply

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            server_version = double.server_header
            sys_version = ""

            def _serve(self) -> None:
                reply = double._process(self)
                if reply is None:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                if reply.content_type:
                    self.send_header("Content-Type", reply.content_type)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD" and reply.body:
                    self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


# --------------------------------------------------------------------------------------------------
# Kodi
# --------------------------------------------------------------------------------------------------

# Method schemas (Kodi JSON-RPC v12/v13 methods.json): ordered (name, JSON type, enum or None).
_KODI_METHODS: dict[str, tuple[str, list[tuple[str, str, tuple[str, ...] | None]]]] = {
    "videolibrary.scan": ("VideoLibrary.Scan", [("directory", "string", None), ("showdialogs", "boolean", None)]),
    "audiolibrary.scan": ("AudioLibrary.Scan", [("directory", "string", None), ("showdialogs", "boolean", None)]),
    "videolibrary.clean": ("VideoLibrary.Clean", [
        ("showdialogs", "boolean", None),
        ("content", "string", ("video", "movies", "tvshows", "musicvideos")),
        ("directory", "string", None)]),
    "audiolibrary.clean": ("AudioLibrary.Clean", [("showdialogs", "boolean", None)]),
    "xbmc.getinfobooleans": ("XBMC.GetInfoBooleans", [("booleans", "array", None)]),
    "jsonrpc.ping": ("JSONRPC.Ping", []),
    "jsonrpc.version": ("JSONRPC.Version", []),
}

_KODI_ERRORS = {
    -32700: "Parse error.",
    -32600: "Invalid request.",
    -32601: "Method not found.",
    -32602: "Invalid params.",
}

_KODI_CONTENT_TYPES = ("application/json-rpc", "application/json", "application/jsonrequest")

# Sources as Kodi stores them (trailing separator) → the content set on them.
DEFAULT_KODI_SOURCES = {"/storage/movies/": "movies", "/storage/tv/": "tvshows", "/storage/music/": "music"}
_KODI_SCANNING = {"Library.IsScanningVideo": ("video",), "Library.IsScanningMusic": ("audio",),
                  "Library.IsScanning": ("video", "audio")}


def _below(path: str, folder: str) -> bool:
    """Whether `path` lies under `folder` (written with or without its trailing separator)."""
    if folder.endswith(("/", "\\")):
        return path.startswith(folder) and path != folder
    return path.startswith(folder + "/") or path.startswith(folder + "\\")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class KodiServer(FakeHTTPServer):
    """Kodi's web server, JSON-RPC endpoint only.

    - Basic auth as Kodi does it: required only when a password is set (Kodi's
      `m_authenticationRequired = !password.empty()`); failure → 401 `WWW-Authenticate: Basic realm="XBMC"`.
    - POST with a Content-Type other than exactly application/json, application/json-rpc or
      application/jsonrequest → 415 (Kodi compares the whole header value). GET `?request=` works too.
    - JSON-RPC errors come back with HTTP 200, as in Kodi.
    - `.calls`: (method as sent, params as sent or None) for every well-formed authenticated call.
      `.scans`: ("video" | "audio", directory or None, showdialogs) for every successful Scan;
      `.cleans`: ("video" | "audio", params) for every successful Clean.

    A disk and a library, as Kodi 20's scanner and cleaner treat them (xbmc/video/VideoInfoScanner.cpp,
    xbmc/interfaces/builtins/LibraryBuiltins.cpp, VideoDatabase::GetContentForPath):
    - `.sources`: path (with its trailing separator) → content ("movies", "tvshows", "musicvideos",
      "music"); `.files`: the files on disk as Kodi sees them (`add_files`, `remove_files`);
      `.library`: file → "video" | "audio", what Kodi's databases hold; `.log`: Kodi's log lines.
    - Scan of a directory that does not exist answers "OK", logs "Process directory '…' does not
      exist - skipping scan." and changes nothing; else it adds the files under the directory (every
      source of that library without one) that lie in a source of that library.
    - VideoLibrary.Clean with `directory` cleans only when the directory's content is the `content`
      asked for ("video": none): a movie folder is "movies", a folder below a TV source is "seasons"
      or "episodes" (no request names those), a TV source itself "tvshows". With only `content`, it
      cleans every source of that content; with neither, everything. AudioLibrary.Clean cleans all
      music. A clean removes the items whose files are gone.
    - `.scanning`: {"video", "audio"}, set by a test: XBMC.GetInfoBooleans reports it
      (Library.IsScanningVideo / …Music / Library.IsScanning); a Clean meanwhile is ignored (logged,
      as Kodi does) and a Scan stops the running scan instead of starting one (Kodi's UpdateLibrary).
    """

    server_header = "Kodi"

    def __init__(self, username: str = KODI_USER, password: str = KODI_PASSWORD,
                 api_version: tuple[int, int, int] = (13, 0, 0), sources: dict[str, str] | None = None) -> None:
        self.username = username
        self.password = password
        self.api_version = api_version
        self.calls: list[tuple[str, Any]] = []
        self.scans: list[tuple[str, str | None, bool]] = []
        self.cleans: list[tuple[str, dict[str, Any]]] = []
        self.sources = dict(DEFAULT_KODI_SOURCES if sources is None else sources)
        self.files: set[str] = set()
        self.library: dict[str, str] = {}
        self.log: list[str] = []
        self.scanning: set[str] = set()
        super().__init__()

    # ---- the disk and the library -----------------------------------------------------------

    def add_files(self, *paths: str, in_library: bool = True) -> None:
        """Put files on Kodi's disk; `in_library`: as if a scan had already added them."""
        with self._lock:
            self.files.update(paths)
            if in_library:
                for path in paths:
                    kind = self._library_of(path)
                    assert kind is not None, f"{path} is in no Kodi source"
                    self.library[path] = kind

    def remove_files(self, folder: str) -> None:
        """Delete a folder (or a file) from Kodi's disk; the library keeps what it held."""
        with self._lock:
            self.files = {f for f in self.files if not (f == folder or _below(f, folder))}

    def in_library(self, folder: str) -> list[str]:
        """The library's files under `folder`."""
        with self._lock:
            return sorted(f for f in self.library if _below(f, folder))

    def _source_of(self, path: str) -> str | None:
        roots = [s for s in self.sources if path.startswith(s)]
        return max(roots, key=len) if roots else None

    def _library_of(self, path: str) -> str | None:
        source = self._source_of(path)
        if source is None:
            return None
        return "audio" if self.sources[source] == "music" else "video"

    def _exists(self, directory: str) -> bool:
        return any(_below(f, directory) for f in self.files) or any(
            s == directory or _below(s, directory) for s in self.sources)

    def _content_for(self, path: str) -> str:
        """VideoDatabase::GetContentForPath."""
        source = self._source_of(path)
        if source is None or self.sources[source] == "music":
            return ""
        content = self.sources[source]
        if content != "tvshows":
            return content
        if path == source:       # content set on this very path
            episodes = any(f.startswith(path) and f[len(path):].count(path[-1]) == 0 for f in self.library)
            return "episodes" if episodes else "tvshows"
        return "episodes" if any(f.startswith(path) for f in self.library) else "seasons"

    @property
    def url(self) -> str:
        return f"{self.base_url}/jsonrpc"

    def handle(self, req: Request) -> Reply:
        if self.password:
            if not self._authorized(req):
                return Reply(401, b"<html><head><title>Unauthorized</title></head><body>401 Unauthorized</body></html>",
                             "text/html", {"WWW-Authenticate": 'Basic realm="XBMC"'})
            req.auth = "basic"
        if req.path != "/jsonrpc":
            return Reply.text(404, "File not found\n")
        if req.method == "POST":
            ctype = req.header("Content-Type")
            if ctype and ctype not in _KODI_CONTENT_TYPES:
                return Reply(415)
            raw = req.body
        elif req.method in ("GET", "HEAD") and req.param("request"):
            raw = (req.param("request") or "").encode()
        else:
            return Reply.text(405, "Method Not Allowed\n")
        text = self._call(raw)
        return Reply(200, text.encode(), "application/json")

    def _authorized(self, req: Request) -> bool:
        value = req.header("Authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and user == self.username and password == self.password

    # ---- JSON-RPC ---------------------------------------------------------------------------

    def _call(self, raw: bytes) -> str:
        try:
            root = json.loads(raw)
        except ValueError:
            return json.dumps(self._error(None, -32700))
        if isinstance(root, list):
            if not root:
                return json.dumps(self._error(None, -32600))
            out = [r for r in (self._one(item) for item in root) if r is not None]
            return json.dumps(out) if out else ""
        response = self._one(root)
        return json.dumps(response) if response is not None else ""

    @staticmethod
    def _error(request: Any, code: int, data: Any = None) -> dict[str, Any]:
        rid = request.get("id") if isinstance(request, dict) else None
        error: dict[str, Any] = {"code": code, "message": _KODI_ERRORS[code]}
        if data is not None:
            error["data"] = data
        return {"id": rid, "jsonrpc": "2.0", "error": error}

    def _one(self, request: Any) -> dict[str, Any] | None:
        proper = (isinstance(request, dict) and request.get("jsonrpc") == "2.0"
                  and isinstance(request.get("method"), str)
                  and ("params" not in request or isinstance(request["params"], (dict, list))))
        if not proper:
            return self._error(request, -32600)
        notification = "id" not in request
        method_sent: str = request["method"]
        params_sent = request.get("params")
        self.calls.append((method_sent, params_sent))
        entry = _KODI_METHODS.get(method_sent.lower())
        if entry is None:
            response = self._error(request, -32601)
        else:
            name, schema = entry
            params, error = self._check(name, schema, params_sent)
            if error is not None:
                response = self._error(request, -32602, error)
            else:
                response = {"id": request.get("id"), "jsonrpc": "2.0", "result": self._execute(name, params)}
        return None if notification else response

    @staticmethod
    def _check(method: str, schema: list[tuple[str, str, tuple[str, ...] | None]],
               params: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if params is None:
            params = {}
        if isinstance(params, list):
            if len(params) > len(schema):
                return {}, {"method": method, "message": "Too many parameters"}
            params = {schema[i][0]: value for i, value in enumerate(params)}
        known = {name for name, _, _ in schema}
        for name, jtype, enum in schema:
            if name not in params:
                continue
            value = params[name]
            if _json_type(value) != jtype:
                return {}, {"method": method, "stack": {
                    "name": name, "type": jtype, "message": f"Invalid type {_json_type(value)} received"}}
            if enum is not None and value not in enum:
                return {}, {"method": method, "stack": {
                    "name": name, "type": jtype, "message": "Received value does not match any of the defined enum values"}}
        if set(params) - known:
            return {}, {"method": method, "message": "Too many parameters"}
        return params, None

    def _execute(self, method: str, params: dict[str, Any]) -> Any:
        if method == "JSONRPC.Ping":
            return "pong"
        if method == "JSONRPC.Version":
            major, minor, patch = self.api_version
            return {"version": {"major": major, "minor": minor, "patch": patch}}
        if method == "XBMC.GetInfoBooleans":
            return {name: any(k in self.scanning for k in _KODI_SCANNING.get(name, ())) for name in
                    params.get("booleans", [])}
        if method in ("VideoLibrary.Scan", "AudioLibrary.Scan"):
            library = "video" if method.startswith("Video") else "audio"
            directory = params.get("directory") or None
            self.scans.append((library, directory, params.get("showdialogs", True)))
            self._scan(library, directory)
            return "OK"
        if method in ("VideoLibrary.Clean", "AudioLibrary.Clean"):
            library = "video" if method.startswith("Video") else "audio"
            self.cleans.append((library, dict(params)))
            self._clean(library, params)
            return "OK"
        raise AssertionError(method)

    def _scan(self, library: str, directory: str | None) -> None:
        if library in self.scanning:             # Kodi's UpdateLibrary: a scan request stops a running scan
            self.scanning.discard(library)
            self.log.append(f"{library} library scan stopped by a new scan request")
            return
        if directory is not None and not self._exists(directory):
            self.log.append(f"Process directory '{directory}' does not exist - skipping scan.")
            return
        roots = [directory] if directory else [s for s in self.sources if self._library_of(s) == library]
        for path in self.files:
            if any(path.startswith(root) for root in roots) and self._library_of(path) == library:
                self.library[path] = library

    def _clean(self, library: str, params: dict[str, Any]) -> None:
        if library in self.scanning:
            self.log.append("CleanLibrary is not possible while scanning or cleaning")
            return
        content = params.get("content", "video")
        content = "" if content == "video" else content
        directory = params.get("directory", "")
        roots: list[str] | None = None                 # None: everything in that library
        if library == "video" and (content or directory):
            candidates = [directory] if directory else [s for s in self.sources if self.sources[s] != "music"]
            roots = [path for path in candidates if self._content_for(path) == content]
        gone = [f for f, kind in self.library.items() if kind == library and f not in self.files
                and (roots is None or any(f.startswith(root) for root in roots))]
        for path in gone:
            del self.library[path]


# --------------------------------------------------------------------------------------------------
# Jellyfin and Emby
# --------------------------------------------------------------------------------------------------

_UPDATE_TYPES = ("Created", "Modified", "Deleted")
_JSON_BODY_TYPES = re.compile(r"^\s*(application/json|text/json|application/[\w.+-]*\+json)\s*(;.*)?$", re.I)


def parse_mediabrowser(value: str, schemes: tuple[str, ...]) -> dict[str, str] | None:
    """Parse `MediaBrowser Client="x", Token="y"` the way Jellyfin's AuthorizationContext.GetParts does.

    Returns None when the scheme is not one of `schemes` (case-insensitive)."""
    scheme, sep, rest = value.strip().partition(" ")
    if not sep or scheme.lower() not in {s.lower() for s in schemes}:
        return None
    result: dict[str, str] = {}
    key, start, quoted = "", 0, False
    for i, ch in enumerate(rest):
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            if start < i:
                result[key] = unquote(rest[start:i].strip().strip('"'))
                key = ""
            start = i + 1
        elif ch == "=" and not quoted:
            key = rest[start:i].strip()
            start = i + 1
    if start < len(rest):
        result[key] = unquote(rest[start:].strip().strip('"'))
    return result


class _MediaBrowserServer(FakeHTTPServer):
    """Common part of Jellyfin and Emby: the library endpoints, recording, body checks."""

    product = "MediaBrowser"
    path_prefixes: tuple[str, ...] = ("",)

    def __init__(self, api_key: str, server_name: str, version: str) -> None:
        self.api_key = api_key
        self.server_name = server_name
        self.version = version
        self.server_id = uuid.uuid4().hex
        self.updates: list[tuple[str, str | None]] = []
        self.refreshes = 0
        super().__init__()

    def token_from(self, req: Request) -> tuple[str | None, str | None]:  # pragma: no cover - overridden
        """(token, how) the way this server reads it; (None, None) when there is none."""
        raise NotImplementedError

    def _route(self, req: Request) -> str | None:
        path = req.path.rstrip("/") or "/"
        for prefix in sorted(self.path_prefixes, key=len, reverse=True):
            if prefix and path.lower().startswith(prefix.lower() + "/"):
                return path[len(prefix):].lower()
        return path.lower()

    def handle(self, req: Request) -> Reply:
        route = self._route(req)
        if route == "/system/info/public" and req.method == "GET":
            return Reply.json(200, self._public_info(), "application/json; charset=utf-8")
        token, how = self.token_from(req)
        if token is None or token != self.api_key:
            return Reply(401)
        req.auth = how
        if route == "/system/info":
            if req.method != "GET":
                return Reply(405)
            return Reply.json(200, {**self._public_info(), "OperatingSystem": "Linux",
                                    "HasPendingRestart": False}, "application/json; charset=utf-8")
        if route == "/library/refresh":
            if req.method != "POST":
                return Reply(405)
            self.refreshes += 1
            return Reply(204)
        if route == "/library/media/updated":
            if req.method != "POST":
                return Reply(405)
            return self._media_updated(req)
        return Reply(404)

    def _public_info(self) -> dict[str, Any]:
        return {"LocalAddress": self.base_url, "ServerName": self.server_name, "Version": self.version,
                "ProductName": self.product, "Id": self.server_id, "StartupWizardCompleted": True}

    def _media_updated(self, req: Request) -> Reply:
        ctype = req.header("Content-Type") or ""
        if not req.body:
            return self._bad("A non-empty request body is required.")
        if not _JSON_BODY_TYPES.match(ctype):
            return Reply(415)
        try:
            body = json.loads(req.body)
        except ValueError:
            return self._bad("The request body is not valid JSON.")
        updates = body.get("Updates") if isinstance(body, dict) else None
        if not isinstance(updates, list):
            return self._bad("Updates must be an array.")
        parsed: list[tuple[str, str | None]] = []
        for item in updates:
            if not isinstance(item, dict):
                return self._bad("Each update must be an object.")
            path, kind = item.get("Path"), item.get("UpdateType")
            if not isinstance(path, str) or not path:
                return self._bad("Each update needs a Path.")
            if kind is not None and kind not in _UPDATE_TYPES:
                return self._bad(f"UpdateType must be one of {', '.join(_UPDATE_TYPES)}.")
            parsed.append((path, kind))
        self.updates.extend(parsed)
        return Reply(204)

    @staticmethod
    def _bad(detail: str) -> Reply:
        return Reply.json(400, {"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                                "title": "One or more validation errors occurred.", "status": 400,
                                "errors": {"dto": [detail]}}, "application/problem+json; charset=utf-8")


class JellyfinServer(_MediaBrowserServer):
    """Jellyfin 12 by default: only `Authorization: MediaBrowser …Token="KEY"` and `?ApiKey=KEY`.

    `legacy_auth=True` emulates `EnableLegacyAuthorization` (on by default up to 10.11): then also
    X-Emby-Authorization, the `Emby` scheme, X-Emby-Token, X-MediaBrowser-Token and `?api_key=`.
    Each authenticated request gets `.auth` = "Authorization" | "ApiKey" | the legacy name used.
    """

    product = "Jellyfin Server"
    server_header = "Kestrel"

    def __init__(self, api_key: str = JELLYFIN_KEY, legacy_auth: bool = False,
                 server_name: str = "jellyfin-test", version: str = "12.0.0") -> None:
        self.legacy_auth = legacy_auth
        super().__init__(api_key, server_name, version)

    def token_from(self, req: Request) -> tuple[str | None, str | None]:
        schemes = ("MediaBrowser", "Emby") if self.legacy_auth else ("MediaBrowser",)
        headers = ("X-Emby-Authorization", "Authorization") if self.legacy_auth else ("Authorization",)
        for name in headers:
            value = req.header(name)
            if value:   # the first header present is the one parsed, as in Jellyfin
                parts = parse_mediabrowser(value, schemes) or {}
                if parts.get("Token"):
                    return parts["Token"], name
                break
        candidates = [("X-Emby-Token", "header"), ("X-MediaBrowser-Token", "header")] if self.legacy_auth else []
        candidates.append(("ApiKey", "query"))
        if self.legacy_auth:
            candidates.append(("api_key", "query"))
        for name, where in candidates:
            value = req.header(name) if where == "header" else req.param(name)
            if value:
                return value, name
        return None, None


class EmbyServer(_MediaBrowserServer):
    """Emby: the same library endpoints, also served under `/emby`.

    Emby's documented API-key forms are the `X-Emby-Token` header and the `api_key` query parameter;
    like the MediaBrowser code both servers grew from, it also reads `Token=` from an
    `X-Emby-Authorization` / `Authorization` header with the `Emby` or `MediaBrowser` scheme and the
    `X-MediaBrowser-Token` header. `accept_authorization_header=False` limits it to the two documented forms.
    """

    product = "Emby Server"
    server_header = "UPnP/1.0 DLNADOC/1.50"
    path_prefixes = ("", "/emby")

    def __init__(self, api_key: str = EMBY_KEY, accept_authorization_header: bool = True,
                 server_name: str = "emby-test", version: str = "4.9.1.90") -> None:
        self.accept_authorization_header = accept_authorization_header
        super().__init__(api_key, server_name, version)

    def _public_info(self) -> dict[str, Any]:
        info = super()._public_info()
        info.pop("ProductName")   # Emby does not send ProductName
        return info

    def token_from(self, req: Request) -> tuple[str | None, str | None]:
        if self.accept_authorization_header:
            for name in ("X-Emby-Authorization", "Authorization"):
                value = req.header(name)
                if value:
                    parts = parse_mediabrowser(value, ("Emby", "MediaBrowser")) or {}
                    if parts.get("Token"):
                        return parts["Token"], name
                    break
        names = ["X-Emby-Token"] + (["X-MediaBrowser-Token"] if self.accept_authorization_header else [])
        for name in names:
            value = req.header(name)
            if value:
                return value, name
        value = req.param("api_key")
        if value:
            return value, "api_key"
        return None, None


# --------------------------------------------------------------------------------------------------
# Plex
# --------------------------------------------------------------------------------------------------

_PLEX_AGENTS = {
    "movie": ("tv.plex.agents.movie", "Plex Movie"),
    "show": ("tv.plex.agents.series", "Plex TV Series"),
    "artist": ("tv.plex.agents.music", "Plex Music"),
    "photo": ("com.plexapp.agents.none", "Plex Photo Scanner"),
}


class PlexServer(FakeHTTPServer):
    """Plex Media Server: library sections and partial scans.

    `sections`: [{"key": "1", "title": "Movies", "type": "movie", "locations": ["/storage/movies"]}, ...];
    replace them at run time with `set_sections`. Location ids are assigned once per path.
    Records `.section_reads` (GET /library/sections count) and `.refreshes` ((key, path or None)).

    A disk and a library: `.files`, the files on disk as Plex sees them (`add_files`,
    `remove_files`); `.items`, file → section key; `.log`, the server's log lines. A refresh with a
    path that does not exist logs "Error scanning directory, we'll skip and continue" and changes
    nothing (Plex's scanner cannot list it); otherwise it adds the files under the path (the
    section's locations without one) and drops the section's items under it whose files are gone
    (their trash emptied after the scan, Plex's default).
    """

    server_header = "Plex Media Server"

    def __init__(self, token: str = PLEX_TOKEN, sections: list[dict[str, Any]] | None = None,
                 version: str = "1.41.3.9314-a0bfb8370", machine_identifier: str | None = None) -> None:
        self.token = token
        self.version = version
        self.machine_identifier = machine_identifier or uuid.uuid4().hex
        self.section_reads = 0
        self.refreshes: list[tuple[str, str | None]] = []
        self.files: set[str] = set()
        self.items: dict[str, str] = {}
        self.log: list[str] = []
        self._location_ids: dict[str, int] = {}
        self.sections: list[dict[str, Any]] = []
        self.set_sections(DEFAULT_PLEX_SECTIONS if sections is None else sections)
        super().__init__()

    def set_sections(self, sections: list[dict[str, Any]]) -> None:
        normalised = []
        for s in sections:
            locations = list(s.get("locations", []))
            for path in locations:
                self._location_ids.setdefault(path, len(self._location_ids) + 1)
            normalised.append({"key": str(s["key"]), "title": s["title"], "type": s["type"], "locations": locations})
        lock = getattr(self, "_lock", None)
        if lock is None:
            self.sections = normalised
        else:
            with lock:
                self.sections = normalised

    def add_section(self, key: str, title: str, type: str, locations: list[str]) -> None:  # noqa: A002
        with self._lock:
            self.set_sections([*self.sections, {"key": key, "title": title, "type": type, "locations": locations}])

    def add_files(self, *paths: str, in_library: bool = True) -> None:
        """Put files on Plex's disk; `in_library`: as if a scan had already added them."""
        with self._lock:
            self.files.update(paths)
            if in_library:
                for path in paths:
                    key = self._section_of(path)
                    assert key is not None, f"{path} is in no Plex section"
                    self.items[path] = key

    def remove_files(self, folder: str) -> None:
        """Delete a folder (or a file) from Plex's disk; the library keeps what it held."""
        with self._lock:
            self.files = {f for f in self.files if not (f == folder or _below(f, folder))}

    def in_library(self, folder: str) -> list[str]:
        """The library's files under `folder`."""
        with self._lock:
            return sorted(f for f in self.items if _below(f, folder))

    def _section_of(self, path: str) -> str | None:
        held = [(len(loc), s["key"]) for s in self.sections for loc in s["locations"] if _below(path, loc)]
        return max(held)[1] if held else None

    def _scan(self, key: str, path: str | None) -> None:
        roots = [path] if path else next(s["locations"] for s in self.sections if s["key"] == key)
        if path and not any(f == path or _below(f, path) for f in self.files) and not any(
                loc == path or _below(loc, path) for s in self.sections for loc in s["locations"]):
            self.log.append(f"Error scanning directory, we'll skip and continue: boost::filesystem::"
                            f'last_write_time: No such file or directory: "{path}"')
            return
        for root in roots:
            for f in self.files:
                if (f == root or _below(f, root)) and self._section_of(f) == key:
                    self.items[f] = key
            for f in [f for f, k in self.items.items() if k == key and _below(f, root) and f not in self.files]:
                del self.items[f]

    def handle(self, req: Request) -> Reply:
        wants_json = "application/json" in (req.header("Accept") or "")
        if req.path == "/identity" and req.method == "GET":
            return self._container({"size": 0, "claimed": True, "machineIdentifier": self.machine_identifier,
                                    "version": self.version}, [], wants_json)
        token = req.header("X-Plex-Token") or req.param("X-Plex-Token")
        if token != self.token:
            return Reply(401, b"<html><head><title>Unauthorized</title></head><body><h1>401 Unauthorized</h1>"
                              b"</body></html>", "text/html")
        req.auth = "X-Plex-Token header" if req.header("X-Plex-Token") else "X-Plex-Token query"
        if req.path.rstrip("/") == "/library/sections":
            if req.method != "GET":
                return Reply(405)
            self.section_reads += 1
            return self._sections(wants_json)
        match = re.fullmatch(r"/library/sections/([^/]+)/refresh", req.path)
        if match:
            if req.method not in ("GET", "PUT"):
                return Reply(405)
            key = unquote(match.group(1))
            if key != "all" and not any(s["key"] == key for s in self.sections):
                return Reply(404, b"<html><head><title>Not Found</title></head><body><h1>404 Not Found</h1>"
                                  b"</body></html>", "text/html")
            path = req.param("path")
            self.refreshes.append((key, path if path else None))
            for section_key in [s["key"] for s in self.sections] if key == "all" else [key]:
                self._scan(section_key, path or None)
            return Reply(200)
        return Reply(404, b"<html><head><title>Not Found</title></head><body><h1>404 Not Found</h1>"
                          b"</body></html>", "text/html")

    def _directory(self, s: dict[str, Any]) -> dict[str, Any]:
        agent, scanner = _PLEX_AGENTS.get(s["type"], ("tv.plex.agents.none", "Plex Video Files Scanner"))
        return {"allowSync": True, "art": f"/:/resources/{s['type']}-fanart.jpg", "filters": True,
                "refreshing": False, "thumb": f"/:/resources/{s['type']}.png", "key": s["key"], "type": s["type"],
                "title": s["title"], "agent": agent, "scanner": scanner, "language": "en-US",
                "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"plex-section-{s['key']}")), "updatedAt": 1700000000,
                "createdAt": 1700000000, "scannedAt": 1700000000, "content": True, "directory": True,
                "hidden": 0,
                "Location": [{"id": self._location_ids[p], "path": p} for p in s["locations"]]}

    def _sections(self, wants_json: bool) -> Reply:
        directories = [self._directory(s) for s in self.sections]
        attrs = {"size": len(directories), "allowSync": False, "title1": "Plex Library"}
        return self._container(attrs, directories, wants_json, child="Directory")

    @staticmethod
    def _container(attrs: dict[str, Any], children: list[dict[str, Any]], wants_json: bool,
                   child: str = "Directory") -> Reply:
        if wants_json:
            container = dict(attrs)
            if children:   # Plex leaves the array out when it is empty
                container[child] = children
            return Reply.json(200, {"MediaContainer": container}, "application/json")

        def xml_value(v: Any) -> str:
            return ("1" if v else "0") if isinstance(v, bool) else str(v)

        root = ET.Element("MediaContainer", {k: xml_value(v) for k, v in attrs.items()})
        for c in children:
            el = ET.SubElement(root, child, {k: xml_value(v) for k, v in c.items() if not isinstance(v, list)})
            for k, v in c.items():
                if isinstance(v, list):
                    for item in v:
                        ET.SubElement(el, k, {ik: xml_value(iv) for ik, iv in item.items()})
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
        return Reply(200, body, "text/xml;charset=utf-8")


# --------------------------------------------------------------------------------------------------
# SMTP
# --------------------------------------------------------------------------------------------------

class ReceivedMail(EmailMessage):
    """An EmailMessage (parsed with email.policy.default) plus its SMTP envelope."""

    envelope_from: str = ""
    envelope_to: list[str] = []
    auth_login: str | None = None     # the AUTH login the client used, if any

    @property
    def text(self) -> str:
        """The text/plain body (from a multipart/alternative too), line endings normalised."""
        part = self.get_body(preferencelist=("plain",))
        return "" if part is None else part.get_content().replace("\r\n", "\n")


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that accepts every message (no TLS; AUTH optional, any
    credentials accepted) and keeps them in `.messages` as `ReceivedMail` (an `EmailMessage`)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list[ReceivedMail] = []
        self.logins: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                raw = envelope.original_content or envelope.content
                if isinstance(raw, str):
                    raw = raw.encode("utf-8")
                msg = email.message_from_bytes(raw, _class=ReceivedMail, policy=email.policy.default)
                msg.envelope_from = envelope.mail_from
                msg.envelope_to = list(envelope.rcpt_tos)
                auth = getattr(session, "auth_data", None)
                login = getattr(auth, "login", None)
                msg.auth_login = login.decode() if isinstance(login, bytes) else login
                with sink._changed:
                    sink.messages.append(msg)
                    sink._changed.notify_all()
                return "250 Message accepted for delivery"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
            login = getattr(auth_data, "login", b"") or b""
            password = getattr(auth_data, "password", b"") or b""
            with sink._lock:
                sink.logins.append((login.decode(errors="replace"), password.decode(errors="replace")))
            return AuthResult(success=True, auth_data=auth_data)

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.host = "127.0.0.1"
        self.port: int = sock.getsockname()[1]

        class BoundController(Controller):
            # Serve on the socket bound above: no free-port race.
            def _create_server(self) -> Any:
                return self.loop.create_server(self._factory_invoker, sock=sock)

        self.controller = BoundController(Handler(), hostname=self.host, port=self.port, ready_timeout=5.0,
                                          auth_require_tls=False, authenticator=authenticator)
        self.controller.start()
        self._running = True

    def apprise_url(self, to: str = "me@example.com", sender: str = "notifyd@example.com",
                    user: str | None = None, password: str | None = None) -> str:
        """The Apprise URL that delivers plain text to this sink without TLS.

        `mailto://` (not `mailtos://`) makes Apprise 2.x use secure mode "insecure" (plain SMTP, no
        STARTTLS); the explicit port beats the default 25; `format=text` makes it send text/plain
        instead of its default HTML multipart. With `user` and `password` it also sends AUTH.
        """
        auth = ""
        if user is not None and password is not None:
            auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        return (f"mailto://{auth}{self.host}:{self.port}"
                f"?from={quote(sender, safe='@')}&to={quote(to, safe='@,')}&format=text")

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"SmtpSink: {len(self.messages)} message(s) after {timeout}s, wanted {count}")
                self._changed.wait(left)
            return list(self.messages)

    def stop(self) -> None:
        if self._running:
            self._running = False
            self.controller.stop()

    close = stop

    def __enter__(self) -> SmtpSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------------

@pytest.fixture
def kodi() -> Iterator[KodiServer]:
    with KodiServer() as server:
        yield server


@pytest.fixture
def jellyfin() -> Iterator[JellyfinServer]:
    with JellyfinServer() as server:
        yield server


@pytest.fixture
def emby() -> Iterator[EmbyServer]:
    with EmbyServer() as server:
        yield server


@pytest.fixture
def plex() -> Iterator[PlexServer]:
    with PlexServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink
