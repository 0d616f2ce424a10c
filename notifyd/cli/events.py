"""`notifyd events`: list and show received events."""

from __future__ import annotations

from typing import Annotated

import typer

from notifyd.cli.common import MAX_ID, ConfigOption, JsonOption, LimitOption, open_store
from notifyd.cli.output import ago, cli_errors, escape, print_json, print_table, say
from notifyd.views import list_events, show_event

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect received events.")


@app.command("list")
def list_(source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
          kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
          limit: LimitOption = 50, json: JsonOption = False, config: ConfigOption = None) -> None:
    """List events, newest first, with how their deliveries went.

    --json prints [{"id", "source", "source_type", "kind", "title", "body", "paths", "received_at",
    "jobs": [{"id", "service", "state", "attempts", "delivery", "last_error"}], "skipped_services"}].
    """
    with cli_errors(), open_store(config) as (_, store):
        events = list_events(store, source, kind, limit)
    if json:
        print_json(events)
        return
    print_table(None, ["id", "received", "source", "kind", "title", "deliveries"],
                [[e["id"], ago(e["received_at"]), e["source"], e["kind"], e["title"],
                  ", ".join(f"{j['service']}:{j['delivery']}" for j in e["jobs"]) or None] for e in events],
                empty="no events match")


@app.command()
def show(event_id: Annotated[int, typer.Argument(help="The event's id.", min=1, max=MAX_ID)],
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one event and each job's delivery status.

    --json prints one event of `events list --json`.
    """
    with cli_errors(), open_store(config) as (_, store):
        event = show_event(store, event_id)
    if json:
        print_json(event)
        return
    say(f"[bold]event {event['id']}[/bold]  " + escape(f"{event['source']} ({event['source_type']}) · "
                                                       f"{event['kind']} · {event['received_at']}"))
    if event["title"]:
        say(f"title: {escape(event['title'])}")
    if event["paths"]:
        say(f"paths: {escape(', '.join(event['paths']))}")
    print_table("jobs", ["id", "service", "state", "attempts", "delivery", "last error"],
                [[j["id"], j["service"], j["state"], j["attempts"], j["delivery"], j["last_error"]]
                 for j in event["jobs"]], empty="no jobs for this event")
    if event["skipped_services"]:
        for skipped in event["skipped_services"]:
            say(escape(f"no job for {skipped['service']}: {skipped['reason']}"))
