"""The config as records: what every section and key means once validated, and which of its
values are secrets (for redaction and masking). No file reading, no validation here."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from notifyd.channels.kinds import CHANNEL_TYPES, url_placeholders
from notifyd.event_kinds import is_known

DEFAULT_LISTEN = "127.0.0.1:8765"
SECRET_KEYS = frozenset({"token", "password", "api_key", "secret", "callback_secret"})


@dataclass(frozen=True)
class ServerConfig:
    """[server]: where to listen, the shared token, body limit, idempotency window."""

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    max_body: int = 1024 * 1024
    dedupe_window: float = 3600.0
    fold_window: float = 10.0          # Sonarr's per-file imports wait this long for their download's Import Complete
    protect_metrics: bool = False
    node_id: str | None = None          # this node's name in attempts and /health; default hostname:pid
    header_timeout: float = 10.0        # a request line and headers must arrive within this
    body_timeout: float = 30.0          # a whole body must arrive within this
    idle_timeout: float = 5.0           # a kept-alive connection with no new request is closed after this
    max_connections: int = 500          # open connections; past it new ones get 503 with Retry-After
    auth_failures: int = 20             # failed tokens per client address a minute before 429
    ui: bool = True                     # the status page at /
    timezone: str | None = None         # IANA name for quiet hours; None: the system's local time
    public_url: str | None = None       # how senders reach this daemon (a reverse proxy), for `notifyd sources`

    @property
    def listen(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class StoreConfig:
    """[store]: the SQLite file (or a PostgreSQL URL), its durability, and how long history is kept."""

    path: Path
    url: str | None = None              # postgresql://…: the engine for more than one node
    synchronous: str = "NORMAL"
    keep_succeeded: float = 30 * 86400.0
    keep_dead: float = 90 * 86400.0


@dataclass(frozen=True)
class WorkerConfig:
    """[worker]: threads, attempt budget, backoff steps, per-delivery timeout, lease length."""

    threads: int = 4
    max_attempts: int = 8
    backoff: tuple[float, ...] = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 10800.0)
    timeout: float = 15.0
    lease: float = 30.0


@dataclass(frozen=True)
class SourceConfig:
    """[sources.NAME]: a named instance of a built-in source type, optionally with its own token."""

    name: str
    type: str
    token: str | None = None
    secret: str | None = None          # whsec_…: bodies must carry a valid Standard Webhooks signature
    api_url: str | None = None         # the sender's status API (its type declares one): asked about stale runs
    api_key: str | None = None         # sent to it as a Bearer token


@dataclass(frozen=True)
class ServiceConfig:
    """[services.NAME]: a delivery target of one channel type."""

    name: str
    type: str
    enabled: bool = True
    events: tuple[str, ...] | None = None       # None: every kind except test
    priority: int = 5
    options: Mapping[str, Any] = field(default_factory=dict)   # the type's own keys (url, …)

    @property
    def job_kind(self) -> str:
        return CHANNEL_TYPES[self.type].job_kind

    @property
    def placeholders(self) -> list[str]:
        """The {names} its URL takes from a tracked run's context (e.g. tgram://BOT/{chat_id});
        empty for a URL complete in itself. Such a service serves runs only (fanout.takes)."""
        url = self.options.get("url")
        if not CHANNEL_TYPES[self.type].fills_placeholders or not isinstance(url, str):
            return []
        return url_placeholders(url)

    @property
    def events_shown(self) -> list[str]:
        """Its `events` filter for people: its own list, or in words what it takes without one."""
        if self.events is not None:
            return list(self.events)
        return ["(runs that name it in notify)"] if self.placeholders else ["(every known kind but test and playback)"]

    def wants(self, kind: str, source_type: str = "") -> bool:
        """Whether an event of `kind` goes to this service by its `events` filter: the kinds it
        names (or "*"); with no filter, every known kind (notifyd.event_kinds), never `test`. An
        unknown kind goes only where it is named; `source_type` tells whose words the kind is."""
        if kind == "test":
            return False
        if self.events is None:
            return is_known(kind, source_type)
        return "*" in self.events or kind in self.events


@dataclass(frozen=True)
class RunsConfig:
    """[runs]: how tracked runs' callbacks are signed, whether they may go to private addresses, and
    after how long without an update a run is looked up at its sender's status API (None: never)."""

    callback_secret: str | None = None
    allow_private_callbacks: bool = False
    stale_after: float | None = None


@dataclass(frozen=True)
class Config:
    """The whole effective configuration; `path` is None when running on defaults."""

    path: Path | None
    server: ServerConfig
    store: StoreConfig
    worker: WorkerConfig
    sources: Mapping[str, SourceConfig]
    services: Mapping[str, ServiceConfig]
    runs: RunsConfig = field(default_factory=RunsConfig)

    def secrets(self) -> list[str]:
        """Every secret string in this config, for redaction; longest first."""
        found: set[str] = set()
        if self.server.token:
            found.add(self.server.token)
        if self.runs.callback_secret:
            found.add(self.runs.callback_secret)
        if self.store.url:
            found.update(database_url_secrets(self.store.url))
        for source in self.sources.values():
            found.update(s for s in (source.token, source.secret, source.api_key) if s)
            if source.api_url:
                found.update(url_secrets(source.api_url))
        for service in self.services.values():
            for key, value in service.options.items():
                if key in SECRET_KEYS and isinstance(value, str):
                    found.add(value)
                elif key == "url" and isinstance(value, str):
                    found.update(url_secrets(value))
        return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def database_url_secrets(url: str) -> set[str]:
    """A database URL's password, given in its user part or as a `password=` query parameter."""
    parts = urlsplit(url)
    found = {parts.password, unquote(parts.password)} if parts.password else set()
    found.update(value for name, value in parse_qsl(parts.query) if name == "password" and value)
    return found


def mask_database_url(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) replaced by ***,
    safe for logs and `store info`."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    query = [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="/*"))) if query else urlunsplit(parts)


def url_secrets(url: str) -> set[str]:
    """The parts of a URL that may be credentials: password, token-like host/path segments, query values."""
    found: set[str] = set()
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    if parts.password:
        found.add(parts.password)
    if parts.username and len(parts.username) >= 8:      # Pushover's user key, for one
        found.add(parts.username)
    if parts.scheme not in ("http", "https", "json", "jsons", "xml", "xmls", "form", "forms"):
        host = parts.netloc.rpartition("@")[2]
        if host and not _looks_like_address(host):
            found.add(host)
    for segment in parts.path.split("/"):
        if len(segment) >= 8:
            found.add(segment)
    for _, value in parse_qsl(parts.query):
        if len(value) >= 8:
            found.add(value)
    return found


def _looks_like_address(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return "." in name or name == "localhost"


SYSTEM_CONFIG = Path("/etc/notifyd/config.toml")    # the unit's ConfigurationDirectory=notifyd
SYSTEM_STATE = Path("/var/lib/notifyd/notifyd.db")   # the unit's StateDirectory=notifyd


def default_state_path(env: Mapping[str, str] | None = None, config_path: Path | None = None) -> Path:
    """Where the database lives without a [store] path; one rule for the daemon and the CLI alike.

    A config in /etc/notifyd (the system one, which the systemd unit serves) means
    /var/lib/notifyd/notifyd.db, whoever reads it: the daemon under systemd and `sudo notifyd jobs list`
    open the same file. Otherwise $STATE_DIRECTORY when systemd sets it (a user unit), else
    $XDG_STATE_HOME/notifyd/notifyd.db.
    """
    env = os.environ if env is None else env
    if config_path is not None and _inside(config_path, SYSTEM_CONFIG.parent):
        return SYSTEM_STATE
    if env.get("STATE_DIRECTORY"):
        return Path(env["STATE_DIRECTORY"].split(":")[0]) / "notifyd.db"
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "notifyd" / "notifyd.db"


def outside_state_directory(store: StoreConfig, env: Mapping[str, str] | None = None) -> str | None:
    """Why a SQLite store under systemd may not be writable: outside every $STATE_DIRECTORY, a
    ProtectSystem=strict unit sees it read-only. None when systemd sets no state directory, or it fits."""
    env = os.environ if env is None else env
    folders = [Path(f) for f in env.get("STATE_DIRECTORY", "").split(":") if f]
    if store.url or not folders:
        return None
    resolved = Path(os.path.abspath(store.path))
    if any(resolved.is_relative_to(os.path.abspath(folder)) for folder in folders):
        return None
    return (f"the store {store.path} is outside systemd's StateDirectory ({', '.join(map(str, folders))}); "
            "under the unit's ProtectSystem=strict it cannot be written: set [store] path inside it")


def _inside(path: Path, folder: Path) -> bool:
    try:
        return Path(os.path.abspath(path)).parent == folder
    except (OSError, ValueError):
        return False
