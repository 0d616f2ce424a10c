"""Editing the user's config file in place (tomlkit), keeping every comment and blank line.

Every edit is validated as a whole file by the same loader `serve` uses before anything is written,
and the file is replaced atomically, keeping its permissions: a refused edit leaves it untouched.
A file that cannot be written raises ConfigNotWritable naming the file and the system's reason.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Comment, InlineTable, Table, Whitespace

from notifyd.config import Config, parse_config_text
from notifyd.errors import ConfigError, ConfigNotWritable, NotFound


def set_service_enabled(path: Path, name: str, enabled: bool) -> Config:
    """Set services.NAME.enabled in the file; returns the validated result."""
    return set_service_fields(path, name, {"enabled": enabled})


def set_service_fields(path: Path, name: str, changes: Mapping[str, Any], *,
                       check: Callable[[Config], None] | None = None) -> Config:
    """Set keys of services.NAME (a None value removes the key, back to its default); a changed
    key keeps its line and its comment, a new one goes after the table's last key. `check` may
    refuse the edited config (raising ConfigError) before anything is written."""
    doc = _parse(path)
    table = _service(doc, path, name)
    for key, value in changes.items():
        if value is None:
            if key in table:
                del table[key]
        else:
            _set_key(table, key, toml_value(value))
    return _write_validated(path, doc, check)


def add_service(path: Path, name: str, fields: Mapping[str, Any], *,
                check: Callable[[Config], None] | None = None) -> Config:
    """Append a [services.NAME] table; refuses a name that exists (and what `check` refuses)."""
    doc = _parse(path)
    services = _services_table(doc, path)
    if services is not None and name in services:
        raise ConfigError(f"service {name!r} already exists", file=str(path), key=f"services.{name}")
    if services is None:
        services = tomlkit.table(is_super_table=True)
        doc["services"] = services
    table = tomlkit.table()
    for key, value in fields.items():
        table[key] = toml_value(value)
    services[name] = table
    return _write_validated(path, doc, check)


def remove_service(path: Path, name: str) -> Config:
    """Delete the [services.NAME] table: its header, its keys and the comments between them. The
    comments after its last key stay where they were, since they usually introduce the next table."""
    doc = _parse(path)
    _service(doc, path, name)
    services = _services_table(doc, path)
    item = services.value.item(name) if isinstance(services, Table) else None
    kept = _detach_trailing_trivia(item) if isinstance(item, Table) else ""
    body = services.value.body if isinstance(services, Table) else []
    index = next((i for i, (_, value) in enumerate(body) if value is item), None)
    del services[name]
    if kept and index is not None:
        body[index] = (None, Whitespace(kept))      # tomlkit left a placeholder where the table was
    return _write_validated(path, doc)


def write_config_file(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write a whole new config file atomically (creating its folder), with `mode`: it will hold
    tokens. Refuses to replace anything but a regular file (a device or a folder at that path)."""
    target = Path(path).resolve()        # through a symlink, as edits do
    above = target.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise ConfigNotWritable(str(path), f"{above} is not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigNotWritable(str(path), exc.strerror or str(exc)) from None
    _replace(target, text, mode, shown=str(path))


def _service(doc: tomlkit.TOMLDocument, path: Path, name: str) -> Any:
    services = _services_table(doc, path)
    if services is None or name not in services:
        known = ", ".join(services.keys()) if services else "none"
        raise NotFound(f"no service {name!r} in {path} (configured: {known})")
    table = services[name]
    if not isinstance(table, dict):
        raise ConfigError("expected a table", file=str(path), key=f"services.{name}")
    return table


def toml_value(value: Any) -> Any:
    """Arrays of tables as one line of inline tables (`path_map = [{ from = …, to = … }]`), as a
    person writes them, rather than tomlkit's [[array.of.tables]] appended after the next comment."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) for v in value):
        array = tomlkit.array()
        for entry in value:
            inline = tomlkit.inline_table()
            inline.update(entry)
            array.append(inline)
        return array
    return value


def _detach_trailing_trivia(table: Table) -> str:
    """Take the comment and blank lines after a table's last key (or its last sub-table's) out of
    it, and return them as text."""
    body = table.value.body
    last = body[-1][1] if body else None
    if isinstance(last, AoT) and last.body:
        last = last.body[-1]
    if isinstance(last, Table):
        return _detach_trailing_trivia(last)
    cut = len(body)
    while cut and body[cut - 1][0] is None and isinstance(body[cut - 1][1], (Whitespace, Comment)):
        cut -= 1
    text = "".join(item.as_string() for _, item in body[cut:])
    del body[cut:]
    return text


def _set_key(table: Any, key: str, value: Any) -> None:
    """Set a key; a new one goes right after the table's last key, not after the comments that
    introduce the next table (where tomlkit's plain append would put it)."""
    if key in table or not list(table.keys()) or isinstance(table, InlineTable):
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
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None


def _write_validated(path: Path, doc: tomlkit.TOMLDocument,
                     check: Callable[[Config], None] | None = None) -> Config:
    """Validate the edited text, then replace the file atomically with the same permissions."""
    text = tomlkit.dumps(doc)
    config = parse_config_text(text, path)
    if check is not None:
        check(config)
    real = path.resolve()            # a symlinked config is edited where it really lives
    try:
        mode = real.stat().st_mode & 0o7777
    except OSError as exc:
        raise ConfigNotWritable(str(path), exc.strerror or str(exc)) from None
    _replace(real, text, mode, shown=str(path))
    tell_daemon(config)
    return config


def tell_daemon(config: Config) -> bool:
    """Ask the `notifyd serve` holding this config's SQLite store to read its config now (SIGHUP),
    so what the edit changed applies to the next request, not within the watcher's second: a
    `services add` followed at once by a request naming the service works. Only a process that is
    `notifyd serve` by its command line is signalled; True when one was. Its own watcher (or
    `systemctl reload`) remains the way for a daemon on PostgreSQL or of another user."""
    import signal

    from notifyd.lock import ServeLock

    if config.store.url is not None:
        return False
    holder = ServeLock(config.store.path).holder() or ""
    pid = int(holder[4:]) if holder.startswith("pid ") and holder[4:].isdigit() else None
    if pid is None or pid == os.getpid():
        return False
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"serve" not in words or not any(b"notifyd" in w for w in words):
            return False
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        return False
    return True


def _replace(target: Path, text: str, mode: int, *, shown: str) -> None:
    """Write `text` beside `target`, flush it to disk, then rename it over `target`."""
    try:
        if target.is_dir():
            raise ConfigNotWritable(shown, "Is a directory")
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            raise ConfigNotWritable(shown, "not a regular file")
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as exc:
        raise ConfigNotWritable(shown, exc.strerror or str(exc)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        _discard(tmp)
        raise ConfigNotWritable(shown, exc.strerror or str(exc)) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass
