"""`notifyd services`: list, add, enable, disable — edits keep the config file's comments."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from notifyd.channels import CHANNEL_TYPES, describe_target
from notifyd.cli.common import ConfigOption, JsonOption
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
        rows = [{"name": s.name, "type": s.type, "enabled": s.enabled,
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
    from notifyd.config_edit import set_service_enabled

    with cli_errors():
        set_service_enabled(_config_file(config), name, True)
    say(f"service {name} enabled")


@app.command()
def disable(name: Annotated[str, typer.Argument(help="The service's name.")], config: ConfigOption = None) -> None:
    """Disable a service: no new jobs for it, and its queued jobs end as skipped."""
    from notifyd.config_edit import set_service_enabled

    with cli_errors():
        set_service_enabled(_config_file(config), name, False)
    say(f"service {name} disabled")


@app.command()
def add(name: Annotated[str, typer.Argument(help="A name for the service, e.g. discord.")],
        type_: Annotated[str, typer.Option("--type", "-t", help=f"One of: {', '.join(CHANNEL_TYPES)}.")],
        url: Annotated[str, typer.Option("--url", help="The service's URL (for apprise: any Apprise URL).")],
        events: Annotated[Optional[list[str]], typer.Option("--events", "-e",
                          help="Event kinds it receives (repeat the option); default all but test.")] = None,
        priority: Annotated[Optional[int], typer.Option("--priority", min=1, max=10)] = None,
        config: ConfigOption = None) -> None:
    """Add a service to the config file (keeping its comments)."""
    fields: dict = {"type": type_, "url": url}
    if events:
        fields["events"] = [e for item in events for e in item.split(",") if e]
    if priority is not None:
        fields["priority"] = priority
    from notifyd.config import ServiceConfig
    from notifyd.config_edit import add_service

    if type_ in CHANNEL_TYPES and "://" in url:
        probe = ServiceConfig(name=name, type=type_, options={"url": url})
        if describe_target(probe).endswith("(invalid)"):
            raise fail(f"--url: no {type_} plugin accepts this URL (see the Apprise wiki for URL forms)", 2)
    with cli_errors():
        cfg = add_service(_config_file(config), name, fields)
        target = describe_target(cfg.services[name])
    say(f"service {name} added ({type_}, {target})")
