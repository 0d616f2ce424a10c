"""Everything the CLI prints: rich tables for people, JSON with stable keys for scripts, errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer

from notifyd import strict_json
from notifyd.errors import AlreadyRunning, ConfigError, NotFound, NotifydError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STATE_STYLE = {"queued": "cyan", "running": "yellow", "succeeded": "green", "dead": "bold red",
               "cancelled": "dim", "skipped": "dim", "sent": "green", "failed": "bold red", "pending": "cyan"}


def console(stderr: bool = False, soft_wrap: bool = True):
    """Messages soft-wrap (a `file:line: key` error stays one greppable line); tables size to the terminal."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap)


def print_json(value: Any) -> None:
    sys.stdout.write(strict_json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, header_style="bold", title_justify="left", expand=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[styled(c) for c in row])
    console(soft_wrap=False).print(table)


def styled(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return "[dim]-[/dim]"
    text = escape(str(value))
    style = STATE_STYLE.get(str(value))
    return f"[{style}]{text}[/{style}]" if style else text


def say(message: str) -> None:
    console().print(message)


def warn(message: str) -> None:
    """One line on stderr about something that worked but will surprise (never a failure)."""
    from rich.markup import escape

    console(stderr=True).print(f"[yellow]warning:[/yellow] {escape(message)}")


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    from rich.markup import escape

    console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}")
    return typer.Exit(code)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn notifyd's errors into a readable line and the right exit code (the CLI's one edge)."""
    try:
        yield
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except (NotFound, AlreadyRunning) as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    except NotifydError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
