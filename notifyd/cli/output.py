"""Everything the CLI prints: tables for people, JSON with stable keys for scripts, and errors.

This is the CLI's one edge for failures: `NotifydGroup.main` runs every command and turns whatever
escapes it (notifyd's errors, the operating system's, a usage mistake, a bug) into exactly one
`error: …` line on stderr and an exit code: 0 ok, 1 an operation failed, 2 usage or config error.
No traceback reaches the terminal (NOTIFYD_DEBUG=1 shows an unexpected one). With --json the same
holds: errors are that one plain line on stderr, and stdout carries only JSON.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import typer
from typer.core import TyperGroup

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
STATE_STYLE = {"queued": "cyan", "running": "yellow", "succeeded": "green", "dead": "bold red",
               "cancelled": "dim", "skipped": "dim", "sent": "green", "failed": "bold red", "pending": "cyan"}
PROG = "notifyd"
COLUMN_GAP = 2          # spaces between table columns
SHRINK_FLOOR = 8        # a cut cell keeps at least this many characters (with its …)


def console(stderr: bool = False, soft_wrap: bool = True):
    """Messages soft-wrap (a `file:line: key` error stays one greppable line); tables size to the terminal."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=soft_wrap)


def print_json(value: Any) -> None:
    from notifyd import strict_json

    sys.stdout.write(strict_json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], *,
                empty: str | None = None) -> None:
    """A borderless table that fits the terminal: every row one line; when it is too wide, the
    longest columns are cut first (ending in …), short ones (ids, states, times) only as a last
    resort. No rows prints `empty` (one line) instead of a header with nothing under it."""
    from rich.table import Table

    out = console(soft_wrap=False)
    if not rows:
        if empty is not None:
            say(empty)
        return
    rows = [[None if cell is None else _one_line(str(cell)) for cell in row] for row in rows]   # a row, one line
    texts = [["-" if cell is None else cell for cell in row] for row in rows]
    widths = fit_widths([max([len(c), *(_cell_len(row[i]) for row in texts)]) for i, c in enumerate(columns)],
                        out.width - COLUMN_GAP * (len(columns) - 1))
    if title:
        say(f"[bold]{_escape(title)}[/bold]")
    table = Table(box=None, header_style="bold", show_edge=False, pad_edge=False,
                  padding=(0, COLUMN_GAP // 2), expand=False)
    for column, width in zip(columns, widths, strict=True):
        table.add_column(column, width=width, no_wrap=True, overflow="ellipsis")
    for row in rows:
        table.add_row(*[styled(c) for c in row])
    out.print(table)


def fit_widths(natural: Sequence[int], room: int) -> list[int]:
    """Column widths that add up to at most `room`: wide columns are capped at one common width
    (the widest shrinks first), then, if that is not enough, every column is."""
    widths = list(natural)
    for floor, candidates in ((SHRINK_FLOOR, [i for i, w in enumerate(widths) if w > SHRINK_FLOOR]),
                              (1, list(range(len(widths))))):
        excess = sum(widths) - room
        if excess <= 0:
            break
        fixed = sum(w for i, w in enumerate(widths) if i not in candidates)
        cap = max(max((widths[i] for i in candidates), default=floor), floor)
        while cap > floor and fixed + sum(min(widths[i], cap) for i in candidates) > room:
            cap -= 1
        for i in candidates:
            widths[i] = min(widths[i], cap)
    return widths


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return cell_len(text)


def styled(value: Any) -> str:
    if value is None:
        return "[dim]-[/dim]"
    text = _escape(str(value))
    style = STATE_STYLE.get(str(value))
    return f"[{style}]{text}[/{style}]" if style else text


def ago(iso: str | None, now: float | None = None) -> str | None:
    """An ISO 8601 UTC time as a short age for a table cell: "45s ago", "3m ago", "2h ago", "5d ago"
    ("in 30s" for a time to come). The exact time is in --json and in `show`."""
    if not iso:
        return None
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return iso
    seconds = (datetime.now(UTC).timestamp() if now is None else now) - then
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            amount = f"{int(span // size)}{unit}"
            break
    else:
        amount = f"{int(span)}s"
    return f"{amount} ago" if seconds >= 0 else f"in {amount}"


def say(message: str) -> None:
    console().print(message)


def warn(message: str) -> None:
    """One line on stderr about something that worked but will surprise (never a failure)."""
    console(stderr=True).print(f"[yellow]warning:[/yellow] {_escape(_one_line(message))}")


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print `error: message` as one line on stderr; returns the Exit to raise."""
    console(stderr=True).print(f"[bold red]error:[/bold red] {_escape(_one_line(message))}")
    return typer.Exit(code)


def answer(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code for a failure: 2 for what the user must fix in the command
    or the config, 1 for an operation that failed."""
    from notifyd.errors import ConfigError, ConfigNotWritable, NotifydError

    if isinstance(exc, ConfigNotWritable):
        return str(exc), EXIT_FAILED
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, NotifydError):
        return str(exc), EXIT_FAILED
    if _is_click_error(exc):
        return _usage_line(exc), int(getattr(exc, "exit_code", EXIT_USAGE))
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_FAILED
    return (f"unexpected {type(exc).__name__}: {exc} (a bug in notifyd; NOTIFYD_DEBUG=1 shows the traceback)",
            EXIT_FAILED)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Answer notifyd's and the system's errors right here; `NotifydGroup` answers the rest alike."""
    from notifyd.errors import NotifydError

    try:
        yield
    except (NotifydError, OSError) as exc:
        raise fail(*answer(exc)) from None


class NotifydGroup(TyperGroup):
    """The root command: runs a command line and answers every failure through `answer`."""

    _quiet_logs = False     # a command line run standalone: its command speaks only in its own lines

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name or PROG, complete_var, standalone_mode, windows_expand_args, **extra)
        self._quiet_logs = True
        try:
            code = super().main(args, PROG, complete_var, False, windows_expand_args, **extra)
        except Exception as exc:        # SystemExit and KeyboardInterrupt keep their own meaning
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()              # type: ignore[attr-defined]   # `notifyd jobs`: the group's help
                sys.exit(EXIT_USAGE)
            from notifyd.errors import NotifydError

            if os.environ.get("NOTIFYD_DEBUG") and not isinstance(exc, NotifydError) and not _is_click_error(exc):
                raise
            message, status = answer(exc)
            fail(message, status)
            sys.exit(status)
        sys.exit(code if isinstance(code, int) else EXIT_OK)

    def invoke(self, ctx: Any) -> Any:
        if self._quiet_logs:
            _quiet_libraries()      # here, not in `main`: `--help` and `--version` import no logging
        return super().invoke(ctx)


def _quiet_libraries() -> None:
    """A command speaks only in its own lines: a library's log record (a connection pool's retry,
    say) is dropped rather than printed by logging's last-resort handler. `serve` sets up logging
    for itself, replacing this."""
    import logging

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())


def _is_click_error(exc: BaseException) -> bool:
    """click's own exceptions (typer vendors click, so they are recognised by shape)."""
    return callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _usage_line(exc: BaseException) -> str:
    """A usage error as `jobs list: Invalid value for '--limit': … (see `notifyd jobs list --help`)`."""
    message = exc.format_message()      # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", "") or PROG
    where = path.removeprefix(PROG).strip()
    hint = f" (see `{path} --help`)" if ctx is not None else ""
    return f"{where + ': ' if where else ''}{message}{hint}"


def _one_line(message: str) -> str:
    return re.sub(r"\s*[\r\n]\s*", " ", message.strip()).replace("\t", " ")


def escape(value: Any) -> str:
    """A value shown inside a `say` message: its brackets are text, not markup."""
    from rich.markup import escape as escape_markup

    return escape_markup(str(value))


_escape = escape
