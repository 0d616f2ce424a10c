"""Jinja2's immutable sandbox, bounded while it renders: operator-written templates run for every
notification and in `config check`, so none of them may eat the machine.

A render's output is counted as it streams out; it has MAX_CPU_S of its thread's CPU time (loops,
calls, filters and operators look at the clock); no value it makes may be longer than MAX_OUTPUT
(the operations that multiply text or lists are refused before they run); all it makes adds up to
at most MAX_BUILT; macros nest at most MAX_DEPTH deep. Passing a limit raises TemplateLimit, whose
message names the limit. The hooks reach into Jinja's code generator and runtime, so the
dependency is held to Jinja 3.1 in pyproject.toml and the tests render every bomb they know.
"""

from __future__ import annotations

import functools
import re
import threading
import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView
from functools import lru_cache
from typing import Any

from notifyd.units import filesize


class TemplateProblem(Exception):
    """A template that does not compile or cannot render; the message says where and why."""


class TemplateLimit(TemplateProblem):
    """A template stopped while rendering because it passed one of the limits below; the message names it."""


MAX_OUTPUT = 64 * 1024          # a notification longer than this is a mistake, not a message
MAX_BUILT = 16 * MAX_OUTPUT     # characters (and list slots) one render may make in all, values it drops included
MAX_CPU_S = 0.5                 # CPU time of the rendering thread, for one render
MAX_DEPTH = 50                  # macro calls (and recursive loops, and blocks) inside each other
MAX_EXPONENT = 64
_MAX_INT_BITS = MAX_OUTPUT * 33219 // 10000     # an integer of MAX_OUTPUT decimal digits
_LOOK_EVERY_S = 0.002           # wall time between two reads of the thread CPU clock, which costs a system call
_CONTAINERS: tuple[type[Any], ...] = (list, tuple, dict, set, frozenset, MappingView)
_PLAIN = frozenset({bool, float, type(None), types.GeneratorType})       # nothing to measure in these
_END = object()


class _Rendering(threading.local):
    budget: _Budget | None = None


# The render running on this thread: Jinja calls the hooks below without anything of ours in hand.
_rendering = _Rendering()


class _Budget:
    """What one render may still spend: CPU time, characters made, macro depth."""

    __slots__ = ("deadline", "next_look", "built", "steps", "depth")

    def __init__(self) -> None:
        self.deadline = time.thread_time() + MAX_CPU_S
        self.next_look = time.perf_counter() + _LOOK_EVERY_S
        self.built = 0
        self.steps = 0
        self.depth = 0

    def look(self) -> None:
        """Stop once the CPU time is spent. The cheap wall clock says when the CPU clock is worth reading:
        CPU time never runs faster than wall time."""
        now = time.perf_counter()
        if now >= self.next_look:
            self.next_look = now + _LOOK_EVERY_S
            if time.thread_time() > self.deadline:
                raise TemplateLimit(f"template stopped after {MAX_CPU_S:g} s of CPU time (template time limit)")

    def spend(self, size: int) -> None:
        self.built += size
        if self.built > MAX_BUILT:
            raise TemplateLimit(f"template made more than {MAX_BUILT} characters in all (template memory limit)")

    def keep(self, value: Any, what: Any, inputs: tuple[Any, ...] = (), deep: bool = True) -> Any:
        """`value`, just made by `what` from `inputs`, unless it is longer than MAX_OUTPUT and than any of
        them (a filter may hand back as much as it was given); its size is spent unless it is one of them.
        A list is spent with all it holds, counted again each time it holds it (`deep`), unless it comes
        from a filter that only rearranges what it was given, whose new parts were spent as they were made."""
        kind = type(value)                  # exact types first: this runs after every filter and operator
        if kind is str or kind is bytes:
            size = weight = len(value)
        elif kind is list or kind is tuple or kind is dict:
            size, weight = len(value), -1
        elif kind in _PLAIN:
            return value
        elif isinstance(value, (str, bytes)):
            size = weight = len(value)
        elif isinstance(value, _CONTAINERS):
            size, weight = len(value), -1
        elif isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
            raise _too_big(what, "digits")
        else:
            return value
        if size > MAX_OUTPUT and size > _longest(inputs):
            raise _too_big(what, "characters" if weight >= 0 else "items")
        if size > 256 and any(value is given for given in inputs):
            return value                    # handed back, not made (a short one is cheaper to spend than to look for)
        self.spend(weight if weight >= 0 else _size(value, MAX_BUILT - self.built) if deep else size)
        return value


def _budget() -> _Budget:
    """The budget of the render running on this thread (a fresh one outside a render)."""
    budget = _rendering.budget
    return budget if budget is not None else _Budget()


def _label(what: Any) -> str:
    if isinstance(what, str):
        return what
    name = getattr(what, "name", None) if type(what).__name__ == "Macro" else None
    return f"macro {name}()" if name else f".{getattr(what, '__name__', 'call')}()"


def _too_big(what: Any, unit: str = "characters") -> TemplateLimit:
    return TemplateLimit(f"template {_label(what)} would make more than {MAX_OUTPUT} {unit} (template size limit)")


def _longest(values: Iterable[Any]) -> int:
    return max((len(v) for v in values if isinstance(v, (str, bytes)) or isinstance(v, _CONTAINERS)), default=0)


def _check_size(size: int, what: Any, *inputs: Any, limit: int = MAX_OUTPUT) -> None:
    """Refuse, before it runs, an operation that would make `size` characters from `inputs`."""
    if size > limit and size > _longest(inputs):
        raise _too_big(what)


def _digits(number: int) -> int:
    return abs(number).bit_length() * 30103 // 100000 + 1 + (number < 0)


def _size(value: Any, limit: int, *, indent: int = 0, pprint: bool = False) -> int:
    """About how many characters str(value) has, and never many fewer, counting a value again each time it
    appears (a list holding one list a thousand times is a thousand lists long); stops once past `limit`,
    holding no more than one iterator per level of nesting meanwhile.
    With `indent`, as json.dumps(indent=...) lays it out; with `pprint`, as pprint.pformat may at most."""
    if type(value) is str:
        return len(value)
    total, levels = 0, [(iter((value,)), 0)]
    while levels and total <= limit:
        entries, margin = levels[-1]
        item: Any = next(entries, _END)
        if item is _END:
            levels.pop()
            continue
        kind = type(item)                   # exact types first: this runs on every list a template makes
        if kind is str:
            total += len(item) + 2
        elif kind is list or kind is tuple:
            total += 2 + (2 + margin) * len(item)
            levels.append((iter(item), margin + indent + pprint))
        elif kind is dict or isinstance(item, Mapping):
            total += 2 + (4 + margin) * len(item)
            widest = 0
            for key in item if total <= limit else ():
                total += _size(key, limit - total)
                widest = max(widest, len(key) + 4 if type(key) is str else 8)
            levels.append((iter(item.values()), margin + indent + widest * pprint))
        elif isinstance(item, _CONTAINERS):
            total += 2 + (2 + margin) * len(item)
            levels.append((iter(item), margin + indent + pprint))
        elif isinstance(item, (str, bytes)):
            total += len(item) + 3
        elif isinstance(item, int):
            total += 5 if isinstance(item, bool) else _digits(item)
        elif isinstance(item, float) or item is None:
            total += len(repr(item))
        else:
            from jinja2 import Undefined

            total += 0 if isinstance(item, Undefined) else 32    # a macro, a loop, a generator: a short name
    return total


def _check_text(value: Any, what: str) -> None:
    """Refuse to turn a value into text that would be over MAX_OUTPUT characters."""
    if not isinstance(value, str) and _size(value, MAX_OUTPUT) > MAX_OUTPUT:
        raise _too_big(what)


def _text(value: Any, what: str) -> str:
    _check_text(value, what)
    return str(value)


def _check_spec_numbers(spec: str, what: str) -> None:
    """A width or precision over MAX_OUTPUT in a format specification."""
    if any(len(number) > 6 or int(number) > MAX_OUTPUT for number in re.findall(r"\d+", spec)):
        raise _too_big(what)


def _percent_size(fmt: str, args: Any) -> int:
    """At least how long `fmt % args` is: its text, and each conversion at its width, precision or value.
    Read as CPython's PyUnicode_Format reads it (nested parentheses in keys, `*` widths from the args)."""
    mapping = args if isinstance(args, Mapping) else None
    values = iter(args if isinstance(args, tuple) else (args,))
    size, i, end = 0, 0, len(fmt)

    def number(at: int) -> tuple[int, int]:
        if at < end and fmt[at] == "*":
            taken = next(values, 0)
            return (taken if isinstance(taken, int) else 0), at + 1
        start = at
        while at < end and fmt[at] in "0123456789":
            at += 1
        digits = fmt[start:at]
        return (MAX_OUTPUT + 1 if len(digits) > 6 else int(digits or 0)), at

    while (j := fmt.find("%", i)) >= 0:
        size += j - i
        i, key = j + 1, None
        if i < end and fmt[i] == "(":
            depth, start = 1, i + 1
            i = start
            while depth and i < end:
                depth += (fmt[i] == "(") - (fmt[i] == ")")
                i += 1
            key = fmt[start:i - 1]
        while i < end and fmt[i] in "-+ #0":
            i += 1
        width, i = number(i)
        precision = None
        if i < end and fmt[i] == ".":
            precision, i = number(i + 1)
        if i < end and fmt[i] in "hlL":
            i += 1
        kind, i = fmt[i:i + 1], i + 1
        if kind == "%":
            size += 1
            continue
        value = mapping.get(key) if key is not None and mapping is not None else next(values, None)
        if width > MAX_OUTPUT or (precision or 0) > MAX_OUTPUT and kind in "diouxXeEfFgG":
            return max(width, precision or 0)
        if kind in ("s", "r", "a"):
            shown = _size(value, MAX_OUTPUT)
            shown = shown if precision is None else min(shown, precision)
        elif kind in ("d", "i", "u", "o", "x", "X"):
            shown = max(_digits(value) if isinstance(value, int) else 1, precision or 0)
        elif kind in ("e", "E", "f", "F"):
            shown = 6 if precision is None else precision
        else:
            shown = 1
        size += max(width, shown)
    return size + end - i


def _check_percent(fmt: Any, args: Any, what: str) -> None:
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    _check_size(_percent_size(text, args), what, fmt, *(args if isinstance(args, tuple) else (args,)))


# Checks run before a filter: the filter's own parameters (after what Jinja passes itself), refusing
# what would be too long once made.

def _check_replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
    s, old, new = _text(s, "|replace"), _text(old, "|replace"), _text(new, "|replace")
    times = s.count(old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    _check_size(len(s) + times * (len(new) - len(old)), "|replace", s)


def _check_center(value: Any, width: Any = 80) -> None:
    if isinstance(width, int):
        _check_size(width, "|center", value)


def _check_indent(s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> None:
    text = _text(s, "|indent")
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _check_size(len(text) + (text.count("\n") + 1) * max(pad, 0), "|indent", text)


def _check_wordwrap(s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None,
                    break_on_hyphens: Any = True) -> None:
    text = _text(s, "|wordwrap")
    wrap = "\n" if wrapstring is None else _text(wrapstring, "|wordwrap")
    ink = sum(map(len, text.split()))      # characters that are not white space
    if break_long_words and isinstance(width, int) and width > 0:
        lines = -(-ink // width)            # at least: no line holds more than `width`
        _check_size(ink + max(lines - 1, 0) * len(wrap), "|wordwrap", text)
    # at most: every line holds something, or is one of the text's own
    _check_size(len(text) + (ink + text.count("\n") + 1) * len(wrap), "|wordwrap", text, limit=MAX_BUILT)


def _check_truncate(s: Any, length: Any = 255, killwords: Any = False, end: Any = "...", leeway: Any = None) -> None:
    _check_text(end, "|truncate")


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_percent(_text(value, "|format"), kwargs or args, "|format")


def _check_batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
    if fill_with is not None and isinstance(linecount, int) and linecount > MAX_OUTPUT:
        raise _too_big("|batch", "items")


def _check_slice(value: Any, slices: Any, fill_with: Any = None) -> None:
    if isinstance(slices, int) and slices > MAX_OUTPUT:
        raise _too_big("|slice", "items")


def _check_round(value: Any, precision: Any = 0, method: Any = "common") -> None:
    if isinstance(precision, int) and abs(precision) > MAX_OUTPUT:
        raise _too_big("|round", "digits")


def _check_urlize(value: Any, trim_url_limit: Any = None, nofollow: Any = False, target: Any = None,
                  rel: Any = None, extra_schemes: Any = None) -> None:
    text = _text(value, "|urlize")
    extra = len(_text(target or "", "|urlize")) + len(_text(rel or "", "|urlize")) + 64
    links = text.count(".") + text.count("@") + text.count(":")
    _check_size(len(text) * 2 + links * extra, "|urlize", text, limit=MAX_BUILT)


def _check_pprint(value: Any) -> None:
    _check_text(value, "|pprint")
    if _size(value, MAX_BUILT, pprint=True) > MAX_BUILT:
        raise _too_big("|pprint")


def _check_tojson(value: Any, indent: Any = None) -> None:
    step = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    if _size(value, MAX_OUTPUT, indent=max(step, 0)) > MAX_OUTPUT:
        raise _too_big("|tojson")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "replace": _check_replace, "center": _check_center, "indent": _check_indent, "wordwrap": _check_wordwrap,
    "truncate": _check_truncate, "format": _check_format, "batch": _check_batch, "slice": _check_slice,
    "round": _check_round, "urlize": _check_urlize, "pprint": _check_pprint, "tojson": _check_tojson,
}
# Filters whose result may hold one value many times (fill_with): spent with all they hold, like literals.
_REPEATING_FILTERS = frozenset({"batch", "slice"})
# Filters that turn their value into text first: a list holding one long text many times is refused.
_TEXT_FILTERS = frozenset({"capitalize", "center", "e", "escape", "forceescape", "indent", "lower", "safe",
                           "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "wordcount",
                           "wordwrap", "xmlattr"})


# Checks run before a method of a text (or bytes, or number) is called from a template, given what to call
# it in an error, the text and the arguments; a check may hand back other arguments (join's, read once).

def _check_pad(what: str, text: Any, width: Any, *fill: Any) -> None:
    if isinstance(width, int):
        _check_size(width, what, text)


def _check_expandtabs(what: str, text: Any, tabsize: Any = 8) -> None:
    if isinstance(tabsize, int):
        _check_size(len(text) + text.count("\t" if isinstance(text, str) else b"\t") * tabsize, what, text)


def _check_str_replace(what: str, text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(old, type(text)) and isinstance(new, type(text)):
        times = text.count(old)
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        _check_size(len(text) + times * (len(new) - len(old)), what, text)


def _check_translate(what: str, text: Any, table: Any, *delete: Any) -> None:
    entries = table.values() if isinstance(table, Mapping) else table if isinstance(table, (list, tuple)) else ()
    widest = max((len(e) for e in entries if isinstance(e, (str, bytes))), default=1)
    _check_size(len(text) * widest, what, text)


def _check_join(what: str, text: Any, iterable: Any) -> tuple[Any, ...]:
    parts, size = [], 0
    for part in iterable:
        size += len(part) + len(text) if isinstance(part, (str, bytes)) else 0
        _check_size(size, what)
        parts.append(part)
    return (parts,)


def _check_codec(what: str, text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> None:
    import codecs

    # CPython's punycode (which IDNA uses) is pure Python and quadratic in the length of the text.
    if isinstance(encoding, str) and len(text) > 1000 and codecs.lookup(encoding).name in ("punycode", "idna"):
        raise TemplateLimit(f"template {what} of more than 1000 characters in {encoding} takes too long "
                            "(template time limit)")


def _check_to_bytes(what: str, number: Any, length: Any = 1, *args: Any, **kwargs: Any) -> None:
    if isinstance(length, int):
        _check_size(length, what)


_METHOD_CHECKS: dict[str, Callable[..., Any]] = {
    "center": _check_pad, "ljust": _check_pad, "rjust": _check_pad, "zfill": _check_pad,
    "expandtabs": _check_expandtabs, "replace": _check_str_replace, "translate": _check_translate,
    "join": _check_join, "encode": _check_codec, "decode": _check_codec, "to_bytes": _check_to_bytes,
}


def _loop(iterable: Any) -> Iterator[Any]:
    """A loop's items; every 16th step looks at the clock (an empty loop must stop in time too)."""
    budget = _budget()
    for item in iterable:
        budget.steps += 1
        if not budget.steps & 15:
            budget.look()
        yield item


def _made(value: Any) -> Any:
    """A list, tuple or dict a template just wrote, spent like any value it makes."""
    return _budget().keep(value, "a list, tuple or dict")


def _finalize(eval_ctx: Any, value: Any) -> Any:
    """Each `{{ value }}` on its way out: spent, and refused when its text would be over the output limit.
    (It takes the eval context only so that Jinja never runs it on constants while compiling.)"""
    budget = _budget()
    if type(value) is str:                  # the common case, kept cheap: loops look at the clock themselves
        budget.built += len(value)
        if budget.built > MAX_BUILT:
            budget.spend(0)
    else:
        budget.look()
        size = _size(value, MAX_OUTPUT)
        if size > MAX_OUTPUT:
            raise TemplateLimit(f"template output is over the limit of {MAX_OUTPUT} characters (template output limit)")
        budget.spend(size)
    return value


def _guarded(name: str, func: Any) -> Any:
    """A Jinja filter that looks at the clock, runs its check first, and keeps what it returns."""
    what = f"|{name}"
    check = _FILTER_CHECKS.get(name)
    text_value = name in _TEXT_FILTERS
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0      # the context, eval context or environment
    deep = name in _REPEATING_FILTERS

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.look()
        given = args[skip:]
        if text_value and given:
            _check_text(given[0], what)
        if check is not None:
            check(*given, **kwargs)
        return budget.keep(func(*args, **kwargs), what, given, deep)

    @functools.wraps(func)
    def kept(*args: Any, **kwargs: Any) -> Any:            # the same, for a filter with nothing to check first
        budget = _budget()
        budget.look()
        return budget.keep(func(*args, **kwargs), what, args[skip:], deep)
    return guarded if check is not None or text_value else kept


def _timed(func: Any) -> Any:
    """A Jinja test that looks at the clock (select and reject run one per item)."""
    @functools.wraps(func)
    def timed(*args: Any, **kwargs: Any) -> Any:
        _budget().look()
        return func(*args, **kwargs)
    return timed


# Filters for what the compiled template routes through the budget, named so no template can write them
# (a filter name is made of identifiers and dots).
LOOP, CONCAT, MADE = "(loop)", "(~)", "(made)"


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import ChainableUndefined, nodes, pass_environment, pass_eval_context
    from jinja2.compiler import CodeGenerator
    from jinja2.exceptions import SecurityError
    from jinja2.filters import make_attrgetter
    from jinja2.runtime import BlockReference, LoopContext, Macro, markup_join, str_join
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
    from jinja2.visitor import NodeTransformer
    from markupsafe import EscapeFormatter, Markup

    class Bounds(NodeTransformer):
        """Routes every loop, every `~` and every list, tuple or dict that is not all literals through a filter
        no template can name, so each loop step and each value made counts against the budget."""

        literal = (nodes.Const, nodes.List, nodes.Tuple, nodes.Dict, nodes.Pair)

        def __init__(self, environment) -> None:
            self.environment = environment
            self.loops = 0

        def through(self, name: str, node, *args):
            wrapped = nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)
            wrapped.set_environment(self.environment)
            return wrapped

        def visit_For(self, node):
            self.loops += 1
            node = self.generic_visit(node)
            self.loops -= 1
            node.iter = self.through(LOOP, node.iter)
            return node

        def visit_TemplateData(self, node):
            # A loop's own text goes out through finalize too, so a macro that repeats it is spent.
            if not self.loops:
                return node
            text = nodes.MarkSafeIfAutoescape(nodes.Const(node.data, lineno=node.lineno), lineno=node.lineno)
            text.set_environment(self.environment)
            return text

        def visit_Concat(self, node: nodes.Concat):
            self.generic_visit(node)
            return self.through(CONCAT, *node.nodes)

        def made(self, node):
            if all(isinstance(part, self.literal) for part in node.find_all(nodes.Node)):
                return node                 # as long as the template's own text
            return self.through(MADE, self.generic_visit(node))

        visit_List = visit_Dict = made

        def visit_Tuple(self, node):
            return self.made(node) if node.ctx == "load" else self.generic_visit(node)

    class BoundedCodeGenerator(CodeGenerator):
        def visit_Template(self, node, frame=None) -> None:
            super().visit_Template(Bounds(self.environment).visit(node), frame)

    class LimitedFormatter(SandboxedFormatter):
        """str.format in the sandbox, refusing widths and values that make a text over the limit."""

        made = 0

        def convert_field(self, value: Any, conversion: str | None) -> Any:
            if conversion is not None:
                _check_text(value, ".format()")
            return super().convert_field(value, conversion)

        def format_field(self, value: Any, format_spec: str) -> Any:
            _budget().look()
            _check_text(value, ".format()")
            _check_spec_numbers(format_spec, ".format()")
            text = super().format_field(value, format_spec)
            self.made += len(text)
            _check_size(self.made, ".format()")
            return text

    class LimitedEscapeFormatter(LimitedFormatter, EscapeFormatter):
        pass

    class LimitedSandbox(ImmutableSandboxedEnvironment):
        """The immutable sandbox, with every operation that can make a value long bounded (see the module
        docstring), and Jinja's own loops, concatenation and buffers routed through the render's budget."""

        intercepted_binops = frozenset({"*", "**", "+", "%"})
        code_generator_class = BoundedCodeGenerator

        def unsafe_undefined(self, obj, attribute):
            # Refuse at once (the config load reports it) rather than render an empty string.
            raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} is not allowed")

        def call_binop(self, context, operator, left, right):
            budget = _budget()
            budget.look()
            if operator == "**" and isinstance(right, (int, float)):
                if abs(right) > MAX_EXPONENT:
                    raise TemplateLimit(f"template exponent {right} is over the limit of {MAX_EXPONENT} "
                                        "(template size limit)")
                if isinstance(left, int) and right > 0 and _digits(left) * right > MAX_OUTPUT:
                    raise _too_big("'**'", "digits")
            elif operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                        _check_size(len(seq) * times, "'*'", seq)
                if isinstance(left, int) and isinstance(right, int) and \
                        _digits(left) + _digits(right) > MAX_OUTPUT + 1:
                    raise _too_big("'*'", "digits")
            elif operator == "+":
                if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
                    _check_size(len(left) + len(right), "'+'", left, right)
            elif operator == "%" and isinstance(left, (str, bytes)):
                _check_percent(left, right, "'%'")
            return budget.keep(super().call_binop(context, operator, left, right), f"'{operator}'", (left, right))

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (the names Jinja's own hook uses)
            budget = _budget()
            budget.look()
            if not __self.is_safe_callable(__obj):
                raise SecurityError(f"{__obj!r} is not safely callable")
            if isinstance(__obj, (Macro, LoopContext, BlockReference)):
                if isinstance(__obj, LoopContext) and args:            # a recursive loop's next level
                    args = (_loop(args[0]), *args[1:])
                budget.depth += 1
                try:
                    if budget.depth > MAX_DEPTH:
                        raise TemplateLimit(f"template macro calls nest more than {MAX_DEPTH} deep "
                                            "(template depth limit)")
                    return budget.keep(__context.call(__obj, *args, **kwargs), __obj)
                finally:
                    budget.depth -= 1
            owner = getattr(__obj, "__self__", None)
            if isinstance(__obj, types.BuiltinMethodType) and isinstance(owner, (str, bytes, int)):
                check = _METHOD_CHECKS.get(__obj.__name__)
                if check is not None:
                    args = check(f".{__obj.__name__}()", owner, *args, **kwargs) or args
            return budget.keep(__context.call(__obj, *args, **kwargs), __obj, (owner, *args, *kwargs.values()))

        def concat(self, parts: Iterable[str]) -> str:
            """What a macro, a call block, a filter block or `{% set %}` block wrote, joined."""
            parts = list(parts)
            if sum(map(len, parts)) > MAX_OUTPUT:
                raise TemplateLimit(f"template output is over the limit of {MAX_OUTPUT} characters "
                                    "(template output limit)")
            text = "".join(parts)
            _budget().spend(len(text))
            return text

        def wrap_str_format(self, value):
            # Jinja's own wrapper, with the limited formatter: str.format and format_map.
            if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or \
                    value.__name__ not in ("format", "format_map") or not isinstance(value.__self__, str):
                return None
            text = value.__self__
            is_format_map = value.__name__ == "format_map"

            def wrapper(*args: Any, **kwargs: Any) -> str:
                if is_format_map:
                    if kwargs or len(args) != 1:
                        raise TypeError("format_map() takes exactly one argument and no keywords")
                    kwargs, args = args[0], ()
                formatter = LimitedEscapeFormatter(self, escape=text.escape) if isinstance(text, Markup) \
                    else LimitedFormatter(self)
                return type(text)(formatter.vformat(text, args, kwargs))
            return functools.update_wrapper(wrapper, value)

    # A field an event lacks renders as nothing, even through attributes (health.message). Nothing is
    # evaluated while compiling (no optimizer; a finalize that takes the eval context is never run on
    # constants): `'x'|center(60000)` written a thousand times must not make its text before the budget exists.
    env = LimitedSandbox(autoescape=False, undefined=ChainableUndefined, finalize=pass_eval_context(_finalize),
                         optimized=False)
    env.globals.clear()                       # nothing but the event's own fields
    env.filters["filesize"] = filesize
    join, total = env.filters["join"], env.filters["sum"]

    @pass_eval_context
    def join_limited(eval_ctx, value, d="", attribute=None):
        """|join, reading its items one by one and refusing once their text passes the limit."""
        if attribute is not None:
            value = map(make_attrgetter(eval_ctx.environment, attribute), value)
        separator = _text(d, "|join")
        size, items = 0, []
        for item in value:
            size += (len(item) if type(item) is str else _size(item, MAX_OUTPUT)) + len(separator)
            if size > MAX_OUTPUT + len(separator):
                raise _too_big("|join")
            items.append(item)
        return join(eval_ctx, items, separator)

    @pass_environment
    def sum_limited(environment, iterable, attribute=None, start=0):
        """|sum; adding up lists (start=[]) is refused once the list would pass the limit, and done in one go."""
        if attribute is not None:
            iterable = map(make_attrgetter(environment, attribute), iterable)
        values = list(_loop(iterable))
        if not isinstance(start, (list, tuple)):
            return total(environment, values, start=start)
        if sum(len(v) if isinstance(v, (list, tuple)) else 0 for v in values) + len(start) > MAX_OUTPUT:
            raise _too_big("|sum", "items")
        for v in values:
            if not isinstance(v, type(start)):
                raise TypeError(f'can only concatenate {type(start).__name__} (not "{type(v).__name__}") '
                                f"to {type(start).__name__}")
        return type(start)(item for v in (start, *values) for item in v)

    env.filters.update(join=join_limited, sum=sum_limited)
    env.filters.update({name: _guarded(name, func) for name, func in env.filters.items()})
    env.tests.update({name: _timed(func) for name, func in env.tests.items()})

    @pass_eval_context
    def joined(eval_ctx, *pieces):
        """`a ~ b`: refused before it is made when the pieces' text passes the limit."""
        _check_size(sum(_size(piece, MAX_OUTPUT) for piece in pieces), "'~'", *pieces)
        return _budget().keep((markup_join if eval_ctx.autoescape else str_join)(pieces), "'~'", pieces)

    env.filters.update({LOOP: _loop, CONCAT: joined, MADE: _made})
    return env


@lru_cache(maxsize=512)
def _compile(source: str):
    from jinja2 import TemplateSyntaxError

    try:
        return _environment().from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"template syntax error on its line {exc.lineno}: {exc.message}") from None
    except Exception as exc:                  # Jinja evaluates constants while it compiles
        raise TemplateProblem(f"template cannot compile: {type(exc).__name__}") from None


def _render(template, context: dict[str, Any], budget: _Budget) -> str:
    """Render within `budget`, stopping at MAX_OUTPUT characters as the output streams out."""
    parts, size = [], 0
    _rendering.budget = budget
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateLimit(f"template output is over the limit of {MAX_OUTPUT} characters "
                                    "(template output limit)")
            parts.append(chunk)
        return "".join(parts)
    finally:
        _rendering.budget = None


def render_bounded(sources: Iterable[str], context: dict[str, Any]) -> list[str]:
    """Compile and render each template source in `context`, all of them within one budget."""
    budget = _Budget()
    try:
        return [_render(_compile(source), context, budget) for source in sources]
    except TemplateProblem:
        raise
    except RecursionError:
        raise TemplateLimit("template calls itself too deep (template depth limit)") from None
    except Exception as exc:
        raise TemplateProblem(f"template cannot render: {type(exc).__name__}: {exc}") from None
