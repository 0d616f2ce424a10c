"""The effective config written out again (`notifyd config show`): every section and key with its
defaults filled in, in the forms a config file takes ("1MiB", "1h30m", `path_map = [{ from, to }]`),
and every secret masked so that the output can be shared and still loads:

- a plain secret (a token, a password, an API key) is "***";
- a Standard Webhooks secret keeps its `whsec_` and its length, its characters masked;
- a URL keeps its shape: each credential in it (password, key-like path segments, a token
  host, query values) has its digits written 0 and its letters x or X, so an Apprise plugin that
  checks a token's form still accepts it; `{placeholders}` filled per run stay as they are;
- a database URL's password is "***".

Each masked value carries a `# masked` comment in the TOML form. `notifyd config check` passes
on the output; the daemon would run with it, sending with fake credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from notifyd.channels.kinds import CHANNEL_TYPES
from notifyd.config.model import SECRET_KEYS, Config, mask_database_url, url_secrets
from notifyd.units import duration_text, size_text

_PLACEHOLDER = re.compile(r"(\{[A-Za-z0-9_]+\})")


class Masked(str):
    """A value shown in place of a secret."""


def effective_config(config: Config) -> dict[str, Any]:
    """The config as TOML-ready data: sections server, store, worker, runs, sources, services."""
    server = config.server
    data: dict[str, Any] = {"server": {
        "listen": server.listen, **({"token": Masked("***")} if server.token else {}),
        "max_body": size_text(server.max_body), "dedupe_window": duration_text(server.dedupe_window),
        "fold_window": duration_text(server.fold_window),
        "protect_metrics": server.protect_metrics, **({"node_id": server.node_id} if server.node_id else {}),
        "header_timeout": duration_text(server.header_timeout), "body_timeout": duration_text(server.body_timeout),
        "idle_timeout": duration_text(server.idle_timeout), "max_connections": server.max_connections,
        "auth_failures": server.auth_failures, "ui": server.ui,
        **({"timezone": server.timezone} if server.timezone else {}),
        **({"public_url": server.public_url} if server.public_url else {}),
    }}
    store = config.store
    data["store"] = {**({"url": Masked(mask_database_url(store.url))} if store.url else {"path": str(store.path)}),
                     "synchronous": store.synchronous, "keep_succeeded": duration_text(store.keep_succeeded),
                     "keep_dead": duration_text(store.keep_dead)}
    worker = config.worker
    data["worker"] = {"threads": worker.threads, "max_attempts": worker.max_attempts,
                      "backoff": [duration_text(s) for s in worker.backoff], "timeout": duration_text(worker.timeout),
                      "lease": duration_text(worker.lease)}
    runs = config.runs
    data["runs"] = {**({"callback_secret": mask_webhook_secret(runs.callback_secret)} if runs.callback_secret else {}),
                    "allow_private_callbacks": runs.allow_private_callbacks,
                    **({"stale_after": duration_text(runs.stale_after)} if runs.stale_after else {})}
    data["sources"] = {name: {"type": source.type, **({"token": Masked("***")} if source.token else {}),
                              **({"secret": mask_webhook_secret(source.secret)} if source.secret else {}),
                              **({"api_url": _option("api_url", "http_url", source.api_url)} if source.api_url else {}),
                              **({"api_key": Masked("***")} if source.api_key else {})}
                       for name, source in config.sources.items()}
    services: dict[str, Any] = {}
    for name, service in config.services.items():
        entry: dict[str, Any] = {"type": service.type, "enabled": service.enabled, "priority": service.priority}
        if service.events is not None:
            entry["events"] = list(service.events)
        kinds = CHANNEL_TYPES[service.type].fields
        for key, value in service.options.items():
            entry[key] = _option(key, kinds.get(key, ""), value)
        services[name] = entry
    data["services"] = services
    return data


def effective_toml(config: Config) -> str:
    """`effective_config` as a TOML document, masked values marked `# masked`."""
    import tomlkit

    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"the effective config of {config.path or 'notifyd (no config file: built-in defaults)'}"))
    doc.add(tomlkit.comment("secrets are masked (***, or 0 and x in their place): this copy holds none of them"))
    for section, values in effective_config(config).items():
        doc.add(tomlkit.nl())
        if section in ("sources", "services"):
            outer = tomlkit.table(is_super_table=True)
            for name, entry in values.items():
                outer.add(name, _table(entry))
            if not values:
                outer = tomlkit.table()
            doc.add(section, outer)
        else:
            doc.add(section, _table(values))
    text = tomlkit.dumps(doc)
    return text if text.endswith("\n") else text + "\n"


def plain(data: Any) -> Any:
    """Data with its Masked markers gone, for JSON."""
    if isinstance(data, Mapping):
        return {k: plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return str(data) if isinstance(data, Masked) else data


def mask_webhook_secret(secret: str) -> Masked:
    """whsec_ and as many characters as the secret had, each masked: still a valid secret."""
    return Masked("whsec_" + _shape(secret.removeprefix("whsec_")))


def mask_url(url: str) -> str:
    """The URL with each credential in it written in 0, x and X (lengths and punctuation kept)."""
    for secret in sorted(url_secrets(url), key=len, reverse=True):
        shaped = "".join(part if _PLACEHOLDER.fullmatch(part) else _shape(part)
                         for part in _PLACEHOLDER.split(secret))
        url = url.replace(secret, shaped)
    return url


def _shape(text: str) -> str:
    return re.sub(r"[A-Z]", "X", re.sub(r"[a-z]", "x", re.sub(r"[0-9]", "0", text)))


def _option(key: str, kind: str, value: Any) -> Any:
    if kind == "webhook_secret" and isinstance(value, str):
        return mask_webhook_secret(value)
    if key in SECRET_KEYS:
        return Masked("***")
    if kind in ("apprise_url", "http_url") and isinstance(value, str):
        return Masked(mask_url(value)) if url_secrets(value) else value
    if kind in ("duration", "positive_duration") and isinstance(value, (int, float)):
        return duration_text(value)
    if kind == "size" and isinstance(value, int):
        return size_text(value)
    if kind == "quiet_hours" or kind == "levels":
        return str(value) if kind == "quiet_hours" else list(value)
    if kind == "path_map":
        return [{"from": source, "to": target} for source, target in value]
    return value


def _table(values: Mapping[str, Any]) -> Any:
    import tomlkit

    table = tomlkit.table()
    for key, value in values.items():
        if isinstance(value, Mapping):
            table.add(key, _table(value))
            continue
        item = tomlkit.item(_inline(value))
        if isinstance(value, Masked):
            item.comment("masked")
        table.add(key, item)
    return table


def _inline(value: Any) -> Any:
    """Arrays of tables as one array of inline tables, the way `path_map` is written by hand."""
    from notifyd.config_edit import toml_value

    return str(value) if isinstance(value, Masked) else toml_value(value)
