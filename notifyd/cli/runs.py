"""`notifyd runs`: tracked runs and how their final notifications went."""

from __future__ import annotations

from typing import Annotated

import typer

from notifyd.cli.common import ConfigOption, JsonOption, LimitOption, open_store
from notifyd.cli.output import cli_errors, escape, print_json, print_table, say

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect tracked runs.")


@app.command("list")
def list_(limit: LimitOption = 50, json: JsonOption = False, config: ConfigOption = None) -> None:
    """List runs, newest first.

    --json prints [run], each as `runs show --json` does.
    """
    from notifyd.views import list_runs

    with cli_errors(), open_store(config) as (_, store):
        runs = list_runs(store, limit)
    if json:
        print_json(runs)
        return
    print_table(None, ["id", "name", "status", "progress", "duration", "cost", "delivery"],
                [[r["id"], r["name"], r["status"], r["progress"], _seconds(r["duration_s"]), _dollars(r["cost_usd"]),
                  r["delivery"]["status"]] for r in runs], empty="no runs")


@app.command()
def show(run_id: Annotated[str, typer.Argument(help="The run's id.")],
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one run: status, timings, cost, outputs and delivery.

    --json prints {"id", "name", "status", "progress", "live_status", "created_at", "started_at",
    "finished_at", "duration_s", "cost_usd", "outputs", "error", "notify", "callback_url",
    "registered", "delivery": {"status", "delivered_at", "attempts", "last_error", …}, "jobs"}.
    """
    from notifyd.views import run_view

    with cli_errors(), open_store(config) as (_, store):
        run = run_view(store, run_id)
    if json:
        print_json(run)
        return
    say(f"[bold]run {escape(run['id'])}[/bold]  {escape(run['name'] or '')}")
    say(f"status [bold]{escape(run['status'])}[/bold] · progress {_or_dash(run['progress'])} · "
        f"started {run['started_at'] or '-'} · finished {run['finished_at'] or '-'}")
    say(f"duration {_seconds(run['duration_s']) or '-'} · cost {_dollars(run['cost_usd']) or '-'}")
    if run["error"]:
        say(f"error: {escape(run['error'])}")
    delivery = run["delivery"]
    say(escape(f"delivery {delivery['status']} · attempts {delivery['attempts']} · "
               f"delivered {delivery['delivered_at'] or '-'}"
               + (f" · last error: {delivery['last_error']}" if delivery["last_error"] else "")))
    print_table("jobs", ["id", "service", "state", "attempts", "last error"],
                [[j["id"], j["service"], j["state"], j["attempts"], j["last_error"]] for j in run["jobs"]],
                empty="no jobs yet (a run notifies once it ends)")


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}s"


def _dollars(value: float | None) -> str | None:
    return None if value is None else f"${value:.4f}"


def _or_dash(value: object) -> str:
    return "-" if value is None else escape(value)
