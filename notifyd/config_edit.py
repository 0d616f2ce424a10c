"""Editing the user's config file in place (tomlkit), keeping every comment and blank line."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import tomlkit

from notifyd.config import Config, parse_config_text
from notifyd.errors import ConfigError, NotFound


def set_service_enabled(path: Path, name: str, enabled: bool) -> Config:
    """Set services.NAME.enabled in the file; returns the validated result."""
    doc = _parse(path)
    services = _services_table(doc, path)
    if services is None or name not in services:
        known = ", ".join(services.keys()) if services else "none"
        raise NotFound(f"no service {name!r} in {path} (configured: {known})")
    _set_key(services[name], "enabled", enabled)
    return _write_validated(path, doc)


def add_service(path: Path, name: str, fields: dict[str, Any]) -> Config:
    """Append a [services.NAME] table; refuses a name that exists."""
    doc = _parse(path)
    services = _services_table(doc, path)
    if services is not None and name in services:
        raise ConfigError(f"service {name!r} already exists", file=str(path), key=f"services.{name}")
    if services is None:
        services = tomlkit.table(is_super_table=True)
        doc["services"] = services
    table = tomlkit.table()
    for key, value in fields.items():
        table[key] = value
    services[name] = table
    return _write_validated(path, doc)


def _set_key(table: Any, key: str, value: Any) -> None:
    """Set a key; a new one goes right after the table's last key, not after the comments that
    introduce the next table (where tomlkit's plain append would put it)."""
    if key in table or not list(table.keys()):
        table[key] = value
        return
    try:
        table.value._insert_after(list(table.keys())[-1], key, value)
    except (AttributeError, KeyError, ValueError):
        table[key] = value


def _parse(path: Path) -> tomlkit.TOMLDocument:
    text = _read(path)
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=str(path), line=exc.line) from None


def _services_table(doc: tomlkit.TOMLDocument, path: Path) -> Any:
    services = doc.get("services")
    if services is not None and not isinstance(services, dict):
        raise ConfigError("expected a table of services", file=str(path), key="services")
    return services


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file (create one with `notifyd config init`)", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None


def _write_validated(path: Path, doc: tomlkit.TOMLDocument) -> Config:
    """Validate the edited text, then replace the file atomically with the same permissions."""
    text = tomlkit.dumps(doc)
    config = parse_config_text(text, path)
    path = path.resolve()            # a symlinked config is edited where it really lives
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return config
