"""Commands imported when they are used: `notifyd jobs list` imports the jobs module and what it
needs, never the daemon, the channels or every other command's module.

typer builds a command line by importing every module that declares a command and reading every
command's signature, so `notifyd --help` alone used to import the config's validation, the store
and the sources. Here the root group holds a table of `LazyCommand`s instead: a name, where the
command lives and the help text the root's `--help` lists. A command is built, exactly as
`app.add_typer(...)` / `app.command(...)` would build it, the first time something asks for it by
name; the root's `--help` reads the table and builds nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperCommand

from notifyd.cli.output import NotifydGroup


@dataclass(frozen=True)
class LazyCommand:
    """A command of the root group: `target` is "module:attribute", a sub-Typer (a group such as
    `jobs`) or a function (a command such as `serve`); `help` is what the root's `--help` shortens
    into its one line, so it must be the group's help or the first paragraph of the function's
    docstring (a test compares the two)."""

    name: str
    target: str
    help: str

    def load(self) -> Any:
        """The command as typer builds it, with plain parameter values converted without pydantic."""
        from notifyd.cli.coercion import install

        module_name, _, attribute = self.target.partition(":")
        found = getattr(importlib.import_module(module_name), attribute)
        # A holder with the root's settings (rich_markup_mode=None, typer's defaults otherwise),
        # which typer passes down to the commands it builds, as it did when they were registered
        # on the root itself.
        holder = typer.Typer(rich_markup_mode=None, add_completion=False)
        holder.callback()(_no_options)
        if isinstance(found, typer.Typer):
            holder.add_typer(found, name=self.name)
        else:
            holder.command(self.name)(found)
        command = typer.main.get_command(holder).commands[self.name]    # type: ignore[attr-defined]
        install(command)
        return command


def _no_options() -> None:
    """The holder's callback: it makes typer build a group, whatever the holder holds."""


class LazyCommands(MutableMapping[str, Any]):
    """A group's commands by name, in the table's order, each built when first looked up."""

    def __init__(self, table: Sequence[LazyCommand], built: Mapping[str, Any]) -> None:
        self._table = {entry.name: entry for entry in table}
        self._built = dict(built)
        self._order = [*self._built, *(name for name in self._table if name not in self._built)]

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            self._built[name] = self._table[name].load()
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        if name not in self._order:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._order.remove(name)
        self._built.pop(name, None)
        self._table.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def for_help(self) -> dict[str, Any]:
        """Every command for a help listing: the built ones, and a stand-in carrying the table's help
        text for the others (click shortens either into the same line)."""
        return {name: self._built[name] if name in self._built else TyperCommand(name=name, help=self._table[name].help)
                for name in self._order}


class LazyGroup(NotifydGroup):
    """The root group: its commands come from `table`, each imported when it is used."""

    table: Sequence[LazyCommand] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.table, self.commands)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from notifyd.cli.coercion import install

        install(self, deep=False)       # the root's own options (--version, the completion ones)
        return super().main(*args, **kwargs)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)      # the names only: typer's own would build every command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with self._listing():
            super().format_commands(ctx, formatter)

    @contextmanager
    def _listing(self) -> Iterator[None]:
        """typer's help listing, over the table's help texts rather than imported commands."""
        commands = self.commands
        if not isinstance(commands, LazyCommands):
            yield
            return
        self.commands = commands.for_help()
        try:
            yield
        finally:
            self.commands = commands
