"""`notifyd runs`: tracked runs and how their final notifications went."""

from __future__ import annotations

from typing import Annotated

import typer

from notifyd.cli.common import ConfigOption, JsonOption, LimitOption, open_store
from notifyd.cli.output import cli_errors, print_json, print_table, say

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect tracked runs.")


@app.command("list")
def list_(limit: LimitOption = 50, json: JsonOption = False, config: ConfigOption = None) -> None:
    """List runs, newest first."""
    from notifyd.views import list_runs

    with cli_errors(), open_store(config) as (_, store):
        runs = list_runs(store, limit)
    if json:
        print_json(runs)
        return
    print_table(None, ["id", "name", "status", "progress", "duration", "cost", "delivery"],
                [[r["id"], r["name"], r["status"], r["progress"], r["duration_s"], r["cost_usd"],
                  r["delivery"]["status"]] for r in runs])


@app.command()
def show(run_id: Annotated[str, typer.Argument(help="The run's id.")],
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one run: status, timings, cost, outputs and delivery."""
    from notifyd.views import run_view

    with cli_errors(), open_store(config) as (_, store):
        run = run_view(store, run_id)
    if json:
        print_json(run)
        return
    say(f"[bold]run {run['id']}[/bold]  {run['name'] or ''}")
    say(f"status [bold]{run['status']}[/bold] · progress {run['progress']} · started {run['started_at'] or '-'} · "
        f"finished {run['finished_at'] or '-'}")
    say(f"duration {run['duration_s']} s · cost {run['cost_usd']}")
    if run["error"]:
        say(f"error: {run['error']}")
    delivery = run["delivery"]
    say(f"delivery {delivery['status']} · attempts {delivery['attempts']} · delivered {delivery['delivered_at'] or '-'}"
        + (f" · last error: {delivery['last_error']}" if delivery["last_error"] else ""))
    print_table("jobs", ["id", "service", "state", "attempts", "last error"],
                [[j["id"], j["service"], j["state"], j["attempts"], j["last_error"]] for j in run["jobs"]])
