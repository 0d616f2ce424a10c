"""Validating a decoded TOML document into a Config: every key checked by kind, every unknown
key an error, and errors that name the file, the line and the key."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from notifyd.channels.kinds import CHANNEL_TYPES, url_placeholders
from notifyd.config.model import (
    DEFAULT_LISTEN,
    SECRET_KEYS,
    Config,
    RunsConfig,
    ServerConfig,
    ServiceConfig,
    SourceConfig,
    StoreConfig,
    WorkerConfig,
    default_state_path,
    url_secrets,
)
from notifyd.errors import ConfigError
from notifyd.event_kinds import likely_typo
from notifyd.quiet_hours import parse_levels, parse_quiet_hours, parse_timezone
from notifyd.units import parse_duration, parse_size

_SERVICE_COMMON = ("type", "enabled", "events", "priority")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_KIND = re.compile(r"^[a-z0-9_.:*-]{1,64}$")

class _Reader:
    """Validates one table, raising ConfigError with file, line and dotted key."""

    def __init__(self, path: Path | None, text: str) -> None:
        self.path = path
        self.text = text

    def error(self, key: str, reason: str) -> ConfigError:
        return ConfigError(reason, file=str(self.path) if self.path else "<config>", key=key,
                           line=locate_key(self.text, key))

    def table(self, value: Any, key: str, allowed: tuple[str, ...] | frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.error(f"{key}.{name}", f"unknown key (expected one of: {hint})")
        return value

    def get(self, table: Mapping[str, Any], key: str, name: str, convert: Any, default: Any) -> Any:
        if name not in table:
            return default
        value = table[name]
        try:
            return convert(value)
        except (ValueError, TypeError) as exc:
            reason = str(exc)
            if name in SECRET_KEYS:
                reason = reason.split(", got")[0] + " (value hidden)"
            raise self.error(f"{key}.{name}", reason) from None


def parse_config(data: Mapping[str, Any], *, path: Path | None, text: str = "",
                 env: Mapping[str, str] | None = None) -> Config:
    """Validate a decoded TOML document into a Config; every unknown key is an error."""
    r = _Reader(path, text)
    for name in data:
        if name not in ("server", "store", "worker", "sources", "services", "runs"):
            raise r.error(name, "unknown section (expected server, store, worker, sources, services or runs)")

    s = r.table(data.get("server", {}), "server",
                ("listen", "token", "max_body", "dedupe_window", "fold_window", "protect_metrics", "node_id",
                 "header_timeout", "body_timeout", "idle_timeout", "max_connections", "auth_failures", "ui",
                 "timezone", "public_url"))
    host, port = r.get(s, "server", "listen", parse_listen, parse_listen(DEFAULT_LISTEN))
    server = ServerConfig(
        host=host, port=port,
        token=r.get(s, "server", "token", _secret_string, None),
        max_body=r.get(s, "server", "max_body", parse_size, 1024 * 1024),
        dedupe_window=r.get(s, "server", "dedupe_window", parse_duration, 3600.0),
        fold_window=r.get(s, "server", "fold_window", _fold_window, 10.0),
        protect_metrics=r.get(s, "server", "protect_metrics", _bool, False),
        node_id=r.get(s, "server", "node_id", _node_id, None),
        header_timeout=r.get(s, "server", "header_timeout", _timeout, 10.0),
        body_timeout=r.get(s, "server", "body_timeout", _timeout, 30.0),
        idle_timeout=r.get(s, "server", "idle_timeout", _timeout, 5.0),
        max_connections=r.get(s, "server", "max_connections", _int_range(8, 100_000), 500),
        auth_failures=r.get(s, "server", "auth_failures", _int_range(1, 100_000), 20),
        ui=r.get(s, "server", "ui", _bool, True),
        timezone=r.get(s, "server", "timezone", parse_timezone, None),
        public_url=r.get(s, "server", "public_url", _http_url, None),
    )

    st = r.table(data.get("store", {}), "store", ("path", "url", "synchronous", "keep_succeeded", "keep_dead"))
    db_path = r.get(st, "store", "path", _string, None)
    url = r.get(st, "store", "url", postgres_url, None)
    env_url = (os.environ if env is None else env).get("NOTIFYD_STORE_URL")
    if url is None and env_url:
        try:
            url = postgres_url(env_url)
        except ValueError as exc:
            raise ConfigError(str(exc), file="$NOTIFYD_STORE_URL") from None
    if url is not None and db_path is not None:
        raise r.error("store.url", "store.path and store.url are both set: a SQLite file or a PostgreSQL "
                                   "URL, not both" + (" ($NOTIFYD_STORE_URL is set)" if env_url else ""))
    if db_path is None:
        resolved = default_state_path(env, path)
    else:
        try:
            resolved = Path(db_path).expanduser()
        except RuntimeError:
            raise r.error("store.path", f"cannot expand the home folder in {db_path!r}") from None
        if not resolved.is_absolute() and path is not None:
            resolved = path.parent / resolved
    store = StoreConfig(
        path=resolved,
        url=url,
        synchronous=r.get(st, "store", "synchronous", _choice("NORMAL", "FULL"), "NORMAL"),
        keep_succeeded=r.get(st, "store", "keep_succeeded", parse_duration, 30 * 86400.0),
        keep_dead=r.get(st, "store", "keep_dead", parse_duration, 90 * 86400.0),
    )

    w = r.table(data.get("worker", {}), "worker", ("threads", "max_attempts", "backoff", "timeout", "lease"))
    worker = WorkerConfig(
        threads=r.get(w, "worker", "threads", _int_range(1, 64), 4),
        max_attempts=r.get(w, "worker", "max_attempts", _int_range(1, 100), 8),
        backoff=r.get(w, "worker", "backoff", _backoff, WorkerConfig.backoff),
        timeout=r.get(w, "worker", "timeout", _positive_duration, 15.0),
        lease=r.get(w, "worker", "lease", _lease, 30.0),
    )

    sources: dict[str, SourceConfig] = {}
    src_tables = r.table(data.get("sources", {}), "sources", _AnyKey())
    for name, table in src_tables.items():
        # Imported here: it imports every parser, and most configs name no source.
        from notifyd.sources import SOURCE_TYPES

        key = f"sources.{name}"
        if not _NAME.match(name):
            raise r.error(key, "a source name takes letters, digits, '_', '-' and '.'")
        if name in SOURCE_TYPES:
            raise r.error(key, f"{name!r} is a built-in source; give the named instance another name")
        t = r.table(table, key, ("type", "token", "secret", "api_url", "api_key"))
        stype = r.get(t, key, "type", _choice(*sorted(SOURCE_TYPES)), None)
        if stype is None:
            raise r.error(f"{key}.type", f"missing (expected one of: {', '.join(sorted(SOURCE_TYPES))})")
        sender = SOURCE_TYPES[stype]
        if "secret" in t and not sender.signs:
            # A secret on a sender that never signs would refuse every real webhook it sends.
            raise r.error(f"{key}.secret", f"{sender.sender} never signs its webhooks; protect this source "
                                           f"with token = \"…\" and {sender.token_hint}")
        _status_api_keys(r, t, key, stype)
        sources[name] = SourceConfig(name=name, type=stype, token=r.get(t, key, "token", _secret_string, None),
                                     secret=r.get(t, key, "secret", _webhook_secret, None),
                                     api_url=r.get(t, key, "api_url", _http_url, None),
                                     api_key=r.get(t, key, "api_key", _secret_string, None))

    services: dict[str, ServiceConfig] = {}
    svc_tables = r.table(data.get("services", {}), "services", _AnyKey())
    for name, table in svc_tables.items():
        key = f"services.{name}"
        if not _NAME.match(name):
            raise r.error(key, "a service name takes letters, digits, '_', '-' and '.'")
        table = r.table(table, key, _AnyKey())
        stype = table.get("type")
        if not isinstance(stype, str) or stype not in CHANNEL_TYPES:
            got = "nothing" if stype is None else repr(stype)
            raise r.error(f"{key}.type", f"expected one of: {', '.join(sorted(CHANNEL_TYPES))}; got {got}")
        spec = CHANNEL_TYPES[stype]
        t = r.table(table, key, _SERVICE_COMMON + tuple(spec.fields))
        options: dict[str, Any] = {}
        for opt, kind in spec.fields.items():
            if opt in t:
                if kind == "templates":
                    options[opt] = _templates(r, t[opt], f"{key}.{opt}")
                else:
                    options[opt] = r.get(t, key, opt, _FIELD_KINDS[kind], None)
            elif opt in spec.required:
                raise r.error(f"{key}.{opt}", f"missing (a {stype} service needs {opt})")
        _check_companions(r, key, options)
        services[name] = ServiceConfig(
            name=name, type=stype,
            enabled=r.get(t, key, "enabled", _bool, True),
            events=r.get(t, key, "events", _events, spec.default_events),
            priority=r.get(t, key, "priority", _int_range(1, 10), spec.default_priority),
            options=options,
        )

    ru = r.table(data.get("runs", {}), "runs", ("callback_secret", "allow_private_callbacks", "stale_after"))
    runs = RunsConfig(callback_secret=r.get(ru, "runs", "callback_secret", _webhook_secret, None),
                      allow_private_callbacks=r.get(ru, "runs", "allow_private_callbacks", _bool, False),
                      stale_after=r.get(ru, "runs", "stale_after", _stale_after, None))

    return Config(path=path, server=server, store=store, worker=worker, sources=sources, services=services,
                  runs=runs)


def _status_api_keys(r: _Reader, table: Mapping[str, Any], key: str, stype: str) -> None:
    """api_url and api_key: only for a source type with a status API, and only together."""
    from notifyd.sources import SOURCE_TYPES

    status_api = SOURCE_TYPES[stype].status_api
    given = [api for api in ("api_url", "api_key") if api in table]
    if given and status_api is None:
        having = ", ".join(name for name, t in SOURCE_TYPES.items() if t.status_api)
        raise r.error(f"{key}.{given[0]}", f"{SOURCE_TYPES[stype].sender} has no status API that notifyd can ask "
                                           f"about runs; api_url and api_key are for a source of type {having}")
    if status_api is not None and len(given) == 1:
        missing = "api_key" if given == ["api_url"] else "api_url"
        raise r.error(f"{key}.{missing}", f"missing: the status API needs both api_url (such as "
                                          f"\"{status_api.example}\") and api_key")


# A key that means nothing without another, which would be taken silently and do nothing.
_NEEDS = {"quiet_bypass": ("quiet_hours", "the window whose levels it lets through"),
          "digest_all": ("digest", "the window it gathers failures and warnings into too"),
          "attach_max": ("attach", "attach = true, which sends the pictures it bounds")}


def _check_companions(r: _Reader, key: str, options: Mapping[str, Any]) -> None:
    for opt, (needed, what) in _NEEDS.items():
        if opt in options and needed not in options:
            raise r.error(f"{key}.{opt}", f"does nothing without {needed} ({what})")
    url = options.get("url")
    if options.get("digest") and isinstance(url, str) and url_placeholders(url):
        raise r.error(f"{key}.digest", "a URL filled per run ({placeholders}) sends each run its own message, "
                                       "so nothing can be gathered into one; digest needs a URL of its own")


class _AnyKey(frozenset):
    """Allows any key name (named sources and services); values are checked one by one."""

    def __contains__(self, item: object) -> bool:
        return True


def locate_key(text: str, dotted: str) -> int | None:
    """The 1-based line where `dotted` (e.g. services.kodi.url) is set, or its table's header."""
    if not text:
        return None
    parts = dotted.split(".")
    header_line = None
    current: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            header = line.split("#", 1)[0].strip().strip("[]")
            current = [p.strip().strip('"\'') for p in header.split(".")]
            if current == parts:
                header_line = number
            continue
        if "=" not in line or line.startswith("#"):
            continue
        key = line.split("=", 1)[0].strip().strip('"\'')
        full = current + [p.strip().strip('"\'') for p in key.split(".")]
        if full == parts:
            return number
        if header_line is None and full[: len(parts)] == parts:
            header_line = number
    if header_line is None and len(parts) > 1:
        return locate_key(text, ".".join(parts[:-1]))
    return header_line


def parse_listen(value: Any) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT) into its parts."""
    if not isinstance(value, str):
        raise ValueError(f"expected \"HOST:PORT\", got {_kind(value)}")
    match = re.match(r"^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$", value) or re.match(r"^([^:\[\]]+):(\d{1,5})$", value)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"expected \"HOST:PORT\" such as \"127.0.0.1:8765\", got {value!r}")
    return match.group(1), int(match.group(2))


def is_loopback(host: str) -> bool:
    """Whether a listen host only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _kind(value: Any) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {_kind(value)}")
    return value


def _secret_string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {_kind(value)}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_kind(value)}")
    return value


def _choice(*choices: str) -> Any:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"expected one of: {', '.join(choices)}; got {value!r}")
        return value
    return convert


def _int_range(low: int, high: int) -> Any:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return value
    return convert


def _positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration above 0, got {value!r}")
    return seconds


def _stale_after(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 1:
        raise ValueError(f"expected a duration of at least 1s (such as \"10m\"), got {value!r}")
    return seconds


def _fold_window(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds > 3600:
        raise ValueError(f"expected a duration from 0s to 1h, got {value!r}")
    return seconds


def _timeout(value: Any) -> float:
    seconds = parse_duration(value)
    if not 0.1 <= seconds <= 3600:
        raise ValueError(f"expected a duration from 100ms to 1h, got {value!r}")
    return seconds


def _lease(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < 1:
        raise ValueError(f"expected a duration of at least 1s (workers renew leases every third of it), got {value!r}")
    return seconds


def _backoff(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"expected a non-empty array of durations such as [\"5s\", \"30s\"], got {_kind(value)}")
    return tuple(parse_duration(v) for v in value)


def _events(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected an array of event kinds such as [\"download\", \"health\"], got {_kind(value)}")
    kinds = tuple(v.strip().lower() for v in value)
    for kind in kinds:
        if not _KIND.match(kind):
            raise ValueError(f"expected event kinds in lower case (letters, digits, '_', '.', '*'), got {kind!r}")
        typo = likely_typo(kind)
        if typo:
            raise ValueError(f"unknown event kind {kind!r} (did you mean {typo}?)")
    return kinds


def postgres_url(value: Any) -> str:
    """A PostgreSQL URL, or ValueError saying what one looks like."""
    text = _string(value)
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres") or not (parts.hostname or "host=" in parts.query):
        raise ValueError("expected a PostgreSQL URL such as postgresql://user:password@host:5432/notifyd")
    # libpq reads "p#ss" or "p?ss" in a password where a URL parser sees a fragment or a query:
    # the password could then not be masked. Such characters must be percent-encoded.
    if "#" in text or ("@" in text.split("://", 1)[1] and "@" not in parts.netloc):
        raise ValueError("percent-encode the special characters of the user and password "
                         "(# as %23, ? as %3F, @ as %40, / as %2F) (value hidden)")
    return text


def _node_id(value: Any) -> str:
    text = _string(value)
    if not re.fullmatch(r"[A-Za-z0-9_.:@-]{1,100}", text):
        raise ValueError("expected up to 100 letters, digits, '_', '.', ':', '@' or '-'")
    return text


def _url(value: Any) -> str:
    if not isinstance(value, str) or "://" not in value:
        shown = "a value of another type" if not isinstance(value, str) else "a string without a scheme"
        raise ValueError(f"expected a URL such as \"scheme://…\", got {shown}")
    return value


def _http_url(value: Any) -> str:
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in ("http", "https") and parts.hostname:
            return value.rstrip("/")
        # Echo what was written only when it cannot hold a credential.
        shown = f'"{value}"' if "@" not in value and not url_secrets(value) and "?" not in value \
            else "a URL with credentials in it (not shown)"
        raise ValueError(f"expected an http(s) URL such as \"http://host:port\", got {shown}")
    raise ValueError(f"expected an http(s) URL, got {_kind(value)}")


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"expected an absolute folder path such as \"/data/media\", got {value!r}")
    return value


def _path_map(value: Any) -> tuple[tuple[str, str], ...]:
    example = '[{ from = "/data/media", to = "/storage/media" }]'
    if not isinstance(value, list):
        raise ValueError(f"expected an array such as {example}, got {_kind(value)}")
    pairs = []
    for entry in value:
        if (not isinstance(entry, dict) or set(entry) != {"from", "to"}
                or not all(isinstance(entry[k], str) and entry[k] for k in ("from", "to"))):
            raise ValueError(f"expected entries with exactly `from` and `to` folder strings, as in {example}")
        pairs.append((entry["from"].rstrip("/") or "/", entry["to"].rstrip("/") or "/"))
    return tuple(pairs)


def _templates(r: _Reader, value: Any, key: str) -> dict[str, dict[str, str]]:
    """Per-kind title/body overrides, compiled now so a broken template fails at load, not delivery."""
    from notifyd.templates import TemplateProblem, check_template

    if not isinstance(value, dict):
        raise r.error(key, f"expected a table of event kinds, got {_kind(value)}")
    result: dict[str, dict[str, str]] = {}
    for kind, parts in value.items():
        if not isinstance(parts, dict):
            raise r.error(f"{key}.{kind}", f"expected a table with title and/or body, got {_kind(parts)}")
        for part, text in parts.items():
            if part not in ("title", "body"):
                raise r.error(f"{key}.{kind}.{part}", "unknown key (expected one of: body, title)")
            if not isinstance(text, str):
                raise r.error(f"{key}.{kind}.{part}", f"expected a template string, got {_kind(text)}")
            try:
                check_template(text)
            except TemplateProblem as exc:
                raise r.error(f"{key}.{kind}.{part}", str(exc)) from None
        result[kind.lower()] = dict(parts)
    return result


def _webhook_secret(value: Any) -> str:
    """A Standard Webhooks secret: whsec_ followed by base64 of at least 24 bytes."""
    import base64
    import binascii

    if not isinstance(value, str) or not value.startswith("whsec_"):
        raise ValueError("expected a Standard Webhooks secret starting with whsec_, got something else")
    try:
        raw = base64.b64decode(value[len("whsec_"):] + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ValueError("expected whsec_ followed by base64, got something else") from None
    if len(raw) < 24:
        raise ValueError("expected a secret of at least 24 bytes after whsec_ (try: notifyd config secret)")
    return value


_FIELD_KINDS = {"apprise_url": _url, "http_url": _http_url, "string": _string, "secret": _secret_string,
                "path": _path, "path_map": _path_map, "duration": parse_duration, "webhook_secret": _webhook_secret,
                "bool": _bool, "size": parse_size, "positive_duration": _positive_duration,
                "quiet_hours": parse_quiet_hours, "levels": parse_levels}
