"""Apprise plugins imported one at a time: the one a service's URL names, not Apprise's ~190.

Why: `apprise.Apprise.instantiate` asks Apprise's plugin registry for the URL's schema, and the
registry's first use imports every plugin module with what they import (oauthlib, cryptography,
every codec, …): about 600 modules and 22 MB a daemon keeps for its life, to send through one
or two of them. Here the schema is looked up in the plugins' sources instead (each declares its
`protocol` / `secure_protocol` as literals), only that module is imported, and the plugin is
built as `instantiate` builds it: its own `parse_url`, then the class called with the result.
Apprise's registry is left alone, unloaded, for anyone else in the process.

A URL whose schema no plugin declares goes through `apprise.Apprise.instantiate` itself, which
loads every plugin: a service's native `https://` URL (Discord's, Slack's webhook address), a
plugin declaring its schemas in code (dbus). So does a module that, once imported, turns out not
to take the schema. Either way the answer is what Apprise's own would be.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apprise import AppriseAsset
    from apprise.plugins import NotifyBase

log = logging.getLogger("notifyd.worker")

PACKAGE = "apprise.plugins"
# What Apprise's NotificationManager takes for a plugin module, and for a plugin class in it.
_MODULE = re.compile(r"^(?P<name>(?!base|_)[a-z0-9_]+)(\.py)?$", re.IGNORECASE)
_CLASS = re.compile(r"^Notify(?!Base|Format|ImageSize|Type)[A-Za-z0-9]+$")
_SCHEMA = re.compile(r"^\s*(?P<schema>[a-z0-9]{1,32})://", re.IGNORECASE)   # apprise's GET_SCHEMA_RE
_DECLARED = re.compile(r"protocol[ \t]*=[ \t]*([^\n]*)")
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_lock = threading.Lock()


def schema_of(url: str) -> str | None:
    """The URL's schema as Apprise reads it (lower case), or None."""
    found = _SCHEMA.match(url)
    return found.group("schema").lower() if found else None


def instantiate(url: str, asset: AppriseAsset | None = None) -> NotifyBase | None:
    """`apprise.Apprise.instantiate(url, asset)`, importing only the plugin the URL's schema names:
    the plugin, or None when no plugin takes the URL (or it is disabled, or its arguments are
    refused). `/#` becomes `/%23` first, as Apprise's own URL parsing does."""
    import apprise

    asset = asset if asset is not None else apprise.AppriseAsset()
    schema = schema_of(url)
    plugin_class = find_class(schema) if schema else None
    if plugin_class is None:
        return apprise.Apprise.instantiate(url, asset=asset)
    if not plugin_class.enabled:
        return None
    results = plugin_class.parse_url(url.replace("/#", "/%23"))
    if not results:
        return None
    results["tag"] = set()
    results["asset"] = asset
    try:
        plugin = plugin_class(**results)
    except Exception:                           # as Apprise's instantiate: refused arguments are no plugin
        return None
    return plugin if plugin.enabled else None


@lru_cache(maxsize=256)
def find_class(schema: str) -> type[NotifyBase] | None:
    """The plugin class taking `schema`, its module imported (and only it); None when the sources
    name no module for it, the module will not import, or it holds no class taking it."""
    module_name = _module_for(schema)
    if module_name is None:
        return None
    try:
        with _lock:                              # one import of a module at a time, as Apprise does
            module = importlib.import_module(f"{PACKAGE}.{module_name}")
    except Exception as exc:                     # Apprise's registry decides what to make of it
        log.debug("apprise plugin module %s did not import (%s); loading every plugin", module_name, exc)
        return None
    # As Apprise's registry: the module's first Notify… class with an app_id is its plugin.
    plugin = next((getattr(module, name) for name in sorted(dir(module))
                   if _CLASS.match(name) and hasattr(getattr(module, name), "app_id")), None)
    if plugin is not None and schema in _schemas(plugin):
        return plugin
    log.debug("apprise plugin module %s does not take %s://; loading every plugin", module_name, schema)
    return None


def _schemas(plugin_class: Any) -> set[str]:
    schemas = plugin_class.schemas(plugin_class) if callable(getattr(plugin_class, "schemas", None)) else set()
    return {s.lower() for s in schemas}


def _module_for(schema: str) -> str | None:
    """The plugin module that declares `schema`: tried first under the schema's own name
    (ntfy, discord, gotify), then found in the index of every plugin's declarations."""
    folder = plugins_folder()
    if folder is None:
        return None
    own = folder / f"{schema}.py"
    if _MODULE.match(own.name) and schema in set(_declared(_read(own))):
        return schema
    return schema_index().get(schema)


@lru_cache(maxsize=1)
def plugins_folder() -> Path | None:
    """Where Apprise's plugin modules are, found without importing Apprise (None: not a folder)."""
    spec = importlib.util.find_spec("apprise")
    locations = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(locations[0]) / "plugins" if locations else None
    return folder if folder is not None and folder.is_dir() else None


@lru_cache(maxsize=1)
def schema_index() -> dict[str, str]:
    """Schema → plugin module name, read from the plugins' sources (a package's from all its files).
    A schema two modules declare is left out: which one Apprise would take depends on the order
    it lists them in, so Apprise decides (by loading every plugin)."""
    folder = plugins_folder()
    index: dict[str, str] = {}
    clashes: set[str] = set()
    for entry in sorted(os.listdir(folder)) if folder else []:
        found = _MODULE.match(entry)
        path = folder / entry if folder else Path(entry)
        if found is None or not (path.is_dir() or entry.endswith(".py")):
            continue
        files = sorted(path.glob("*.py")) if path.is_dir() else [path]
        for schema in {s for file in files for s in _declared(_read(file))}:
            if index.setdefault(schema, found.group("name")) != found.group("name"):
                clashes.add(schema)
    for schema in clashes:
        del index[schema]
    return index


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _declared(source: str) -> Iterator[str]:
    """The schemas a plugin source assigns to `protocol` and `secure_protocol` in a class body: a
    string, or a tuple/list/set of them, written out or named by constants of the same file
    (kodi: `protocol = (kodi_protocol, xbmc_protocol)`)."""
    for found in _DECLARED.finditer(source):
        line = source[source.rfind("\n", 0, found.start()) + 1:found.start()]
        if not line[:1].isspace() or line.strip() not in ("", "secure_"):
            continue
        value = _literal(source, found.start(1))
        if value is None:
            value = _named(source, found.group(1))
        if isinstance(value, str):
            yield value.lower()
        elif isinstance(value, (tuple, list, set, frozenset)):
            yield from (v.lower() for v in value if isinstance(v, str))


def _literal(source: str, start: int) -> Any:
    """The Python literal starting at `start`, on its line or over the next few; None if it is none."""
    lines = source[start:start + 1000].split("\n")[:10]
    for count in range(1, len(lines) + 1):
        try:
            return ast.literal_eval("\n".join(lines[:count]).strip())
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
    return None


def _named(source: str, expression: str) -> Any:
    """An expression of names, each assigned a plain string in the source, with their values."""
    values = {}
    for name in set(_NAME.findall(expression)):
        assigned = re.search(rf"^[ \t]+{name}[ \t]*=[ \t]*(\"[A-Za-z0-9_+.-]+\"|'[A-Za-z0-9_+.-]+')[ \t]*$",
                             source, re.MULTILINE)
        if assigned is None:
            return None
        values[name] = assigned.group(1)
    try:
        return ast.literal_eval(_NAME.sub(lambda m: values[m.group(0)], expression))
    except (SyntaxError, ValueError, KeyError):
        return None
