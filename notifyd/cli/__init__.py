"""The `notifyd` command: one sub-Typer per group, composed here from a table, so that a command
imports only its own module (`notifyd.cli.lazy`) and `notifyd --help` imports none."""

from __future__ import annotations

from typing import Annotated

import typer

from notifyd import __version__
from notifyd.cli.lazy import LazyCommand, LazyGroup

# The root's commands in the order its --help lists them. Each help is the group's `help=`, or the
# first paragraph of the command's docstring (tests/test_cli_imports.py holds them equal).
COMMANDS = (
    LazyCommand("sources", "notifyd.cli.sources_cmd:sources",
                "Show what to paste into each sender: the URL, the token in the form that sender can send "
                "(in the URL, as a Basic auth password, or an Authorization header), and where it goes in the "
                "sender's settings. Tokens are masked (***) unless --reveal."),
    LazyCommand("serve", "notifyd.cli.commands:serve",
                "Run the daemon: the HTTP listener and the delivery workers. Before binding it runs the checks "
                "of `notifyd config check`."),
    LazyCommand("send", "notifyd.cli.commands:send",
                "Queue a manual notification; the running daemon delivers it within a second."),
    LazyCommand("stats", "notifyd.cli.commands:stats",
                "One screen: jobs by state and service, the last hour, the oldest queued job, dead jobs."),
    LazyCommand("config", "notifyd.cli.config_cmd:app", "Create, validate and show the config."),
    LazyCommand("services", "notifyd.cli.services:app", "List and switch delivery services."),
    LazyCommand("events", "notifyd.cli.events:app", "Inspect received events."),
    LazyCommand("jobs", "notifyd.cli.jobs:app", "Inspect and steer delivery jobs."),
    LazyCommand("runs", "notifyd.cli.runs:app", "Inspect tracked runs."),
    LazyCommand("store", "notifyd.cli.store_cmd:app", "Inspect the store, or move it to PostgreSQL."),
)


class RootGroup(LazyGroup):
    """`notifyd`: the commands of `COMMANDS`, each imported when it is used."""

    table = COMMANDS


# --install-completion / --show-completion: typer's, for bash, zsh, fish and PowerShell.
app = typer.Typer(cls=RootGroup, no_args_is_help=True, rich_markup_mode=None, add_completion=True,
                  help="notifyd: webhooks in, a durable queue, notifications and refreshes out.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"notifyd {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """notifyd: webhooks in, a durable queue, notifications and refreshes out."""


def main() -> None:
    app()
