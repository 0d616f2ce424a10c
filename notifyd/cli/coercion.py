"""Plain command-line values converted without pydantic; anything else exactly as typer converts it.

typer converts each parameter's value through a pydantic TypeAdapter that it builds the first time
the parameter is processed, even for a value left at its default. So every command that runs
imported pydantic and built an adapter per parameter: about a quarter of the CPU that
`notifyd jobs list` took to start. Most of notifyd's values are plain: text, a whole number
within its bounds, a flag, a list of those, or nothing given. `install` gives such a parameter a
converter that returns those itself and hands every other value (out of range, not a number,
signed or padded) to typer's own converter, built then: what typer refuses is refused in typer's
words, what typer would change typer changes. Where typer's internals are not the ones this was
written for, nothing is installed and typer converts everything, as before.
"""

from __future__ import annotations

import re
from typing import Any

_DIGITS = re.compile(r"[0-9]{1,18}")      # a whole number typer would read as the same int
_NOT_PLAIN = object()


class PlainValues:
    """The converter of one parameter whose type is `str`, `int` or `bool`, or a list of one of them."""

    def __init__(self, param: Any, leaf: type, *, many: bool) -> None:
        info = param.type_descriptor.parameter_info
        self._param = param
        self._leaf = leaf
        self._many = many
        self._min, self._max = info.min, info.max
        self._typer: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        """What typer's `RuntimeParam.coerce` returns for this value."""
        multi = param.multiple or param.nargs == -1
        if value is None:
            return () if multi else None
        if self._many and isinstance(value, (list, tuple)):
            items = [self._plain(item) for item in value]
            if all(item is not _NOT_PLAIN for item in items):
                return items
        elif not self._many and not multi:
            plain = self._plain(value)
            if plain is not _NOT_PLAIN:
                return plain
        return self._full().coerce(value, param=param, ctx=ctx)

    def _plain(self, value: Any) -> Any:
        if self._leaf is not int:
            return value if type(value) is self._leaf else _NOT_PLAIN
        if type(value) is int:
            number = value
        elif type(value) is str and _DIGITS.fullmatch(value):
            number = int(value)
        else:
            return _NOT_PLAIN
        if (self._min is not None and number < self._min) or (self._max is not None and number > self._max):
            return _NOT_PLAIN
        return number

    def _full(self) -> Any:
        """typer's own converter, for a value that is not plain (it imports pydantic)."""
        if self._typer is None:
            from typer._coercion import build_runtime_param

            self._typer = build_runtime_param(self._param.type_descriptor)
        return self._typer


def install(command: Any, *, deep: bool = True) -> None:
    """Give each plain parameter of `command` (and, when `deep`, of every command under it) a
    `PlainValues`. The root group is not `deep`: asking for its commands would import them all."""
    try:
        from typer._coercion import build_runtime_param  # noqa: F401  (the fallback must exist)
        from typer._typing import get_args, get_origin
    except ImportError:
        return

    def give(param: Any) -> None:
        leaf, many = _plain_type(param, get_origin, get_args)
        if leaf is not None:
            param._runtime_param = PlainValues(param, leaf, many=many)

    for param in command.params:
        give(param)
    _on_help_option(command, give)
    for sub in getattr(command, "commands", {}).values() if deep else ():
        install(sub)


def _on_help_option(command: Any, give: Any) -> None:
    """click makes a command's --help option when it first parses a command line, apart from the
    others (and typer converts its value too): give it its converter then."""
    make = getattr(command, "get_help_option", None)
    if make is None:
        return

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None:
            give(option)
        return option
    command.get_help_option = get_help_option


def _plain_type(param: Any, get_origin: Any, get_args: Any) -> tuple[type | None, bool]:
    """(str, int or bool, whether a list of it) for a parameter `PlainValues` can convert; (None,
    False) for any other (an enum, a path, a file, a custom parser, or not a typer parameter)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", _NOT_PLAIN) is not None:
        return None, False
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or getattr(descriptor, "file_annotation", None) is not None:
        return None, False
    annotation, many = descriptor.annotation, False
    if get_origin(annotation) is list:
        (annotation,), many = get_args(annotation), True
    if annotation in (str, int, bool):
        return annotation, many
    return None, False
