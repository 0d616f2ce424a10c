"""`notifyd services`: list, add, set, remove, enable, disable, test — edits keep the config file's
comments, are validated as `serve` validates the file, and a refused one leaves the file untouched.
A refused value is named by what was typed (`services set: priority: …`, `services add: --url: …`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from notifyd.channels import CHANNEL_TYPES, describe_target
from notifyd.cli.common import ConfigOption, JsonOption, open_store
from notifyd.cli.output import cli_errors, escape, fail, print_json, print_table, say
from notifyd.config import find_config, load_config
from notifyd.errors import ConfigError, ConfigNotWritable

if TYPE_CHECKING:
    from notifyd.config import Config, ServiceConfig

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="List and switch delivery services.")


def _config_file(config: str | None):
    path, _ = find_config(config)
    if path is None:
        raise fail("no config file to edit; create one with `notifyd config init`", 2)
    return path


@app.command("list")
def list_(json: JsonOption = False, config: ConfigOption = None) -> None:
    """List configured services (URLs with their secrets masked); a service a receiver switched off
    (410 Gone) shows as disabled, with why and how to switch it back on."""
    with cli_errors():
        cfg = load_config(config)
        gone = _switched_off(config, cfg)
        rows = [_service_view(s, gone.get(s.name)) for s in cfg.services.values()]
    if json:
        print_json(rows)
        return
    if not rows:
        say("no services configured; add one with `notifyd services add NAME --type apprise --url URL`")
        return
    print_table(None, ["name", "type", "enabled", "events", "priority", "target"],
                [[r["name"], r["type"], "yes" if r["enabled"] else f"no: {r['disabled_reason']}",
                  ", ".join(r["events"]), r["priority"], r["target"]] for r in rows])


def _switched_off(config: str | None, cfg: Any) -> dict[str, str]:
    """Services a receiver switched off (410 Gone), and its answer, from the store (none before it exists)."""
    if cfg.store.url is None and not cfg.store.path.exists():
        return {}
    from notifyd.cli.output import warn
    from notifyd.errors import StoreError

    try:
        with open_store(config) as (_, store):
            return store.services_switched_off()
    except StoreError as exc:
        warn(f"cannot read the store ({exc}): services a receiver switched off (410 Gone) are not shown")
        return {}


def _why_disabled(name: str, enabled: bool, gone: str | None) -> str | None:
    if gone is not None:
        return f"switched off by its receiver: {gone}; `notifyd services enable {name}` switches it back on"
    if not enabled:
        return f"enabled = false in the config; `notifyd services enable {name}` switches it on"
    return None


def _configured_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a service name: the configured ones (none when the config cannot be read)."""
    try:
        names = list(load_config(ctx.params.get("config")).services)
    except Exception:       # completion must never fail loudly
        return []
    return [n for n in names if n.startswith(incomplete)]


NameArgument = Annotated[str, typer.Argument(help="The service's name.", autocompletion=_configured_names)]


@app.command()
def enable(name: NameArgument, json: JsonOption = False, config: ConfigOption = None) -> None:
    """Enable a service (edits the config file in place; a running daemon follows within seconds).

    --json prints {"name", "enabled": true, "gone_cleared"} (whether a receiver's 410 switch-off was cleared).
    """
    from notifyd.operations import enable_service

    with cli_errors():
        path = _config_file(config)
        with open_store(config) as (_, store):
            cleared = enable_service(path, store, name)   # and clear a receiver's 410 switch-off
    if json:
        print_json({"name": name, "enabled": True, "gone_cleared": cleared})
        return
    say(escape(f"service {name} enabled" + (" (its 410 Gone switch-off is cleared)" if cleared else "")))


@app.command()
def disable(name: NameArgument, json: JsonOption = False, config: ConfigOption = None) -> None:
    """Disable a service: no new jobs for it, and its queued jobs end as skipped.

    --json prints {"name", "enabled": false}.
    """
    from notifyd.operations import disable_service

    with cli_errors():
        disable_service(_config_file(config), name)
    if json:
        print_json({"name": name, "enabled": False})
        return
    say(escape(f"service {name} disabled"))


@app.command()
def add(name: Annotated[str, typer.Argument(help="A name for the service, e.g. discord or livingroom-kodi.")],
        type_: Annotated[str, typer.Option("--type", "-t", help=f"One of: {', '.join(CHANNEL_TYPES)}.")],
        url: Annotated[str, typer.Option("--url", help="apprise: any Apprise URL; kodi: http://HOST:8080/jsonrpc; "
                                                       "jellyfin, emby, plex: http://HOST:PORT.")],
        events: Annotated[list[str] | None, typer.Option("--events", "-e",
                          help="Event kinds it receives (repeat, or comma-separate); default per type.")] = None,
        priority: Annotated[int | None, typer.Option("--priority", help="1 runs first, 10 last.")] = None,
        username: Annotated[str | None, typer.Option("--username", help="kodi: the web server user.")] = None,
        password: Annotated[str | None, typer.Option("--password", help="kodi: the web server password.")] = None,
        api_key: Annotated[str | None, typer.Option("--api-key", help="jellyfin, emby: an API key.")] = None,
        token: Annotated[str | None, typer.Option("--token", help="plex: the X-Plex-Token.")] = None,
        path_map: Annotated[list[str] | None, typer.Option("--path-map", help="Refreshers: FROM=TO, the "
                            "sender's folder and the server's (repeat the option).")] = None,
        scan_delay: Annotated[str | None, typer.Option("--scan-delay", help="Refreshers: wait, and collapse "
                              "refreshes of one folder, this long (default 10s).")] = None,
        test_path: Annotated[str | None, typer.Option("--test-path", help="Refreshers: the folder "
                             "`services test` scans (without it, the test only checks the connection).")] = None,
        json: JsonOption = False, config: ConfigOption = None) -> None:
    """Add a service to the config file (keeping its comments).

    --json prints the service as `services list --json` does: {"name", "type", "enabled", "events",
    "priority", "target", "disabled_reason"}.
    """
    from notifyd.config_edit import add_service

    fields: dict[str, Any] = {"type": type_, "url": url}
    for key, value in (("username", username), ("password", password), ("api_key", api_key), ("token", token),
                       ("scan_delay", scan_delay), ("test_path", test_path)):
        if value is not None:
            fields[key] = value
    if path_map:
        fields["path_map"] = _path_map(path_map, "services add", "--path-map")
    if events:
        fields["events"] = _kinds(",".join(events))
    if priority is not None:
        fields["priority"] = priority
    path = _config_file(config)
    try:
        cfg = add_service(path, name, fields, check=_url_check(name))
    except ConfigError as exc:
        raise _named(exc, name, "services add", ADD_OPTIONS) from None
    service = cfg.services[name]
    if json:
        print_json(_service_view(service))
        return
    say(escape(f"service {name} added ({type_}, {describe_target(service)})"))


@app.command()
def test(name: NameArgument,
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Send a test through the queue right now and print this service's exact result.

    Notifications get a test message; refreshers scan their test_path, or, without one, only
    check that the server answers and takes the credentials.
    """
    from notifyd.service_check import run_service_check

    with cli_errors(), open_store(config) as (cfg, store):
        result = run_service_check(store, cfg, name)
    if json:
        print_json(result.job)
    elif result.ok:
        say(f"[green]{name}: ok[/green] ({result.target}) in {result.elapsed:.2f}s")
        if result.detail:
            say(f"  {result.detail}")
    if not result.ok:
        raise fail(f"{name}: failed ({result.target}): {result.error}", 1)


@app.command()
def remove(name: NameArgument, json: JsonOption = False, config: ConfigOption = None) -> None:
    """Remove a service from the config file: its table and the comments between its keys; every
    other comment stays. A running daemon follows within seconds (its queued jobs end as skipped).

    --json prints {"name", "removed": true}.
    """
    from notifyd.config_edit import remove_service

    remove_service(_config_file(config), name)
    if json:
        print_json({"name": name, "removed": True})
        return
    say(escape(f"service {name} removed"))


@app.command("set")
def set_(name: NameArgument,
         assignments: Annotated[list[str], typer.Argument(
             help="KEY=VALUE, one or more: url=…, events=download,upgrade, priority=3, enabled=false, "
                  "path_map=/data/media=/storage/media (comma-separate pairs), scan_delay=30s, username=…, "
                  "password=…, api_key=…, token=…, secret=…, test_path=…, digest=2m, digest_all=true, "
                  "quiet_hours=23:00-07:30, quiet_bypass=failure,warning, attach=true, attach_max=10MiB. "
                  "An empty value (events=) removes "
                  "the key, back to its default.", show_default=False)],
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Change keys of a service in the config file, keeping every comment: a changed key keeps its
    line. Validated as `serve` validates the file; a refused value leaves the file untouched.

    --json prints the service as `services list --json` does.
    """
    from notifyd.config_edit import set_service_fields

    changes = _assignments(assignments)
    path = _config_file(config)
    try:
        cfg = set_service_fields(path, name, changes, check=_url_check(name) if "url" in changes else None)
    except ConfigError as exc:
        raise _named(exc, name, "services set", {}) from None
    if json:
        print_json(_service_view(cfg.services[name]))
        return
    say(escape(f"service {name}: " + ", ".join(f"{k} {'removed' if v is None else 'set'}" for k, v in changes.items())))


# What `services add` calls each key, so a refused value is named by the option that gave it.
ADD_OPTIONS = {"type": "--type", "url": "--url", "events": "--events", "priority": "--priority",
               "username": "--username", "password": "--password", "api_key": "--api-key", "token": "--token",
               "path_map": "--path-map", "scan_delay": "--scan-delay", "test_path": "--test-path"}
# Keys `services set` leaves to the file: a type change is a new service; templates are tables.
_NOT_SETTABLE = {"type": "a service's type cannot change; remove it and add it again",
                 "templates": "templates are tables: edit them in the config file"}
_INTEGER = re.compile(r"^[+-]?\d+$")
# Keys written as true/false, and as comma-separated lists, whatever the service's type.
_FIELDS = [(key, kind) for spec in CHANNEL_TYPES.values() for key, kind in spec.fields.items()]
_BOOLEANS = {"enabled"} | {key for key, kind in _FIELDS if kind == "bool"}
_LISTS = {"events"} | {key for key, kind in _FIELDS if kind == "levels"}


def _assignments(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE arguments as TOML values: numbers for priority, true/false for enabled and the
    other switches, arrays for events, quiet_bypass and path_map, strings otherwise, None (remove
    the key) for an empty value. Anything else is left for the config's own validation to judge,
    so `set` refuses exactly what the file would."""
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise fail(f"services set: expected KEY=VALUE, got {item!r}", 2)
        if key in _NOT_SETTABLE:
            raise fail(f"services set: {key}: {_NOT_SETTABLE[key]}", 2)
        value: Any = raw.strip()
        if value == "":
            value = None
        elif key == "priority" and _INTEGER.match(value):
            value = int(value)
        elif key in _BOOLEANS and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            value = value.lower() in ("true", "yes", "on")
        elif key in _LISTS:
            value = _kinds(value)
        elif key == "path_map":
            value = _path_map(value.split(","), "services set", "path_map")
        changes[key] = value
    return changes


def _kinds(text: str) -> list[str]:
    return [kind.strip() for kind in text.split(",") if kind.strip()]


def _path_map(items: list[str], command: str, label: str) -> list[dict[str, str]]:
    pairs = [item.strip().split("=", 1) for item in items if item.strip()]
    if not pairs or any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise fail(f"{command}: {label}: expected FROM=TO folder pairs such as /data/media=/storage/media", 2)
    return [{"from": a, "to": b} for a, b in pairs]


def _url_check(name: str) -> Callable[[Config], None]:
    """The check `serve` makes of an Apprise URL, run on the edited config before it is written."""
    from notifyd.preflight import check_service_url

    def check(cfg: Config) -> None:
        check_service_url(cfg, cfg.services[name])
    return check


def _named(exc: ConfigError, name: str, command: str, labels: Mapping[str, str]) -> ConfigError:
    """A refused edit named by what was typed (`services set: priority: …`), not by a line of the
    file the user did not write; a problem elsewhere in the file keeps its file, line and key."""
    prefix = f"services.{name}"
    if isinstance(exc, ConfigNotWritable) or exc.key is None or not (exc.key == prefix or
                                                                      exc.key.startswith(prefix + ".")):
        return exc
    key = exc.key[len(prefix) + 1:]
    return ConfigError(exc.reason, file=command, key=labels.get(key, key) if key else name)


def _service_view(service: ServiceConfig, gone: str | None = None) -> dict[str, Any]:
    """One service as `services list --json` shows it; `gone`: why a receiver switched it off, if one did."""
    return {"name": service.name, "type": service.type, "enabled": service.enabled and gone is None,
            "events": service.events_shown, "priority": service.priority, "target": describe_target(service),
            "disabled_reason": _why_disabled(service.name, service.enabled, gone)}
