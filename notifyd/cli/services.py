"""`notifyd services`: list, add, enable, disable — edits keep the config file's comments."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from notifyd.channels import CHANNEL_TYPES, describe_target
from notifyd.cli.common import ConfigOption, JsonOption, open_store
from notifyd.cli.output import cli_errors, fail, print_json, print_table, say
from notifyd.config import find_config, load_config

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="List and switch delivery services.")


def _config_file(config: str | None):
    path, _ = find_config(config)
    if path is None:
        raise fail("no config file to edit; create one with `notifyd config init`", 2)
    return path


@app.command("list")
def list_(json: JsonOption = False, config: ConfigOption = None) -> None:
    """List configured services (URLs with their secrets masked)."""
    with cli_errors():
        cfg = load_config(config)
        rows: list[dict[str, Any]] = [{"name": s.name, "type": s.type, "enabled": s.enabled,
                 "events": list(s.events) if s.events is not None else ["(all but test)"],
                 "priority": s.priority, "target": describe_target(s)} for s in cfg.services.values()]
    if json:
        print_json(rows)
        return
    if not rows:
        say("no services configured; add one with `notifyd services add NAME --type apprise --url URL`")
        return
    print_table(None, ["name", "type", "enabled", "events", "priority", "target"],
                [[r["name"], r["type"], "yes" if r["enabled"] else "no", ", ".join(r["events"]), r["priority"],
                  r["target"]] for r in rows])


@app.command()
def enable(name: Annotated[str, typer.Argument(help="The service's name.")], config: ConfigOption = None) -> None:
    """Enable a service (edits the config file in place; a running daemon follows within seconds)."""
    from notifyd.operations import enable_service

    with cli_errors():
        path = _config_file(config)
        with open_store(config) as (_, store):
            cleared = enable_service(path, store, name)   # and clear a receiver's 410 switch-off
    say(f"service {name} enabled" + (" (its 410 Gone switch-off is cleared)" if cleared else ""))


@app.command()
def disable(name: Annotated[str, typer.Argument(help="The service's name.")], config: ConfigOption = None) -> None:
    """Disable a service: no new jobs for it, and its queued jobs end as skipped."""
    from notifyd.operations import disable_service

    with cli_errors():
        disable_service(_config_file(config), name)
    say(f"service {name} disabled")


@app.command()
def add(name: Annotated[str, typer.Argument(help="A name for the service, e.g. discord or livingroom-kodi.")],
        type_: Annotated[str, typer.Option("--type", "-t", help=f"One of: {', '.join(CHANNEL_TYPES)}.")],
        url: Annotated[str, typer.Option("--url", help="apprise: any Apprise URL; kodi: http://HOST:8080/jsonrpc; "
                                                       "jellyfin, emby, plex: http://HOST:PORT.")],
        events: Annotated[list[str] | None, typer.Option("--events", "-e",
                          help="Event kinds it receives (repeat, or comma-separate); default per type.")] = None,
        priority: Annotated[int | None, typer.Option("--priority", min=1, max=10,
                                                        help="1 runs first, 10 last.")] = None,
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
        config: ConfigOption = None) -> None:
    """Add a service to the config file (keeping its comments)."""
    from notifyd.config import ServiceConfig
    from notifyd.config_edit import add_service

    if type_ == "apprise" and "://" in url:
        probe = ServiceConfig(name=name, type=type_, options={"url": url})
        if describe_target(probe).endswith("(invalid)"):
            raise fail("--url: no apprise plugin accepts this URL (see the Apprise wiki for URL forms)", 2)
    fields: dict = {"type": type_, "url": url}
    for key, value in (("username", username), ("password", password), ("api_key", api_key), ("token", token),
                       ("scan_delay", scan_delay), ("test_path", test_path)):
        if value is not None:
            fields[key] = value
    if path_map:
        pairs = [item.split("=", 1) for item in path_map]
        if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
            raise fail("--path-map takes FROM=TO, e.g. /data/media=/storage/media", 2)
        fields["path_map"] = [{"from": a, "to": b} for a, b in pairs]
    if events:
        fields["events"] = [e for item in events for e in item.split(",") if e]
    if priority is not None:
        fields["priority"] = priority
    with cli_errors():
        cfg = add_service(_config_file(config), name, fields)
        target = describe_target(cfg.services[name])
    say(f"service {name} added ({type_}, {target})")


@app.command()
def test(name: Annotated[str, typer.Argument(help="The service's name.")],
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
    else:
        say(f"[bold red]{name}: failed[/bold red] ({result.target}): {result.error}")
    if not result.ok:
        raise typer.Exit(1)
