"""The field vocabulary: one reader per kind of value a webhook or a run registration carries,
each checking type and range and naming the dotted field when it refuses.

The sources and POST /runs read bodies only through `Fields`, so a year, a size, a folder path or
a quality name means the same thing, within the same bounds, wherever it appears. A refusal is
a BadPayload (422) whose detail names the field, says what was expected and shows what came:
"field 'movie.year': expected a whole number from 1800 to 2200 (or 0 for unknown), got 1e+30".

One rule for every optional field: absent or null (and, for text, blank) means "not given"; a
value that is given but of the wrong type or out of range is refused, never silently dropped.
Names, labels and ids over their bound are refused (past it they are no longer names); prose
(titles, messages, overviews) over its bound is cut with "…", because it still says something
and what is accepted must fit a notification. Numbers are finite; paths are absolute, never
climb, and come back normalised in their own separator style.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any, TypeVar

from notifyd.errors import BadPayload

# Text that reaches a notification. Discord caps an embed title at 256 characters and a
# description at 4,096, Telegram a message at 4,096, and templates.MAX_OUTPUT (64 KiB) is all a
# render may make: a title of 256 and a message of 4,000 fit the tightest common channel whole,
# leave room for a template's own words, and keep every default template far below MAX_OUTPUT.
TITLE_MAX = 256
TEXT_MAX = 4000
LABEL_MAX = 128                 # a quality, release group, indexer, download client or instance name
IDENT_MAX = 64                  # an IMDb, MusicBrainz, Goodreads, ISBN or ASIN id
URL_MAX = 4096
PATH_MAX = 4096                 # Linux's PATH_MAX
ITEMS_MAX = 1000                # episodes, files, outputs: a whole series' pack fits
YEARS = (1800, 2200)            # 0 is the senders' "unknown"
SEASONS = (0, 9999)             # 0 holds specials; daily shows number their seasons by year
EPISODES = (0, 99999)
SIZE_MAX = 2**53 - 1            # bytes (8 PiB): the largest whole number every JSON reader keeps exact
DB_ID_MAX = 2**31 - 1           # TMDb, TVDB, TVmaze ids: 32-bit ints in the senders' own databases
SAFE_INTEGER = 2**53 - 1
RUN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")         # a tracked run's id, from POST /runs or a status webhook
RUN_ID_RULE = "a run id of 1 to 200 letters, digits, '_', '.', ':' or '-'"
ELLIPSIS = "…"
ROW_ID = re.compile(r"[0-9]{1,18}", re.ASCII)          # an event or job id in a path: ASCII digits, fits a BIGINT

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_URL = re.compile(r"^https?://[^/?#]", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_DRIVE = re.compile(r"^([A-Za-z]:)[\\/]")
_DRIVE_RELATIVE = re.compile(r"^[A-Za-z]:")           # C:file.mkv is relative to a drive, not to a folder
_UNC = re.compile(r"^\\\\([^\\/]+)[\\/]([^\\/]+)(?:[\\/]|$)")
_SEPARATORS = re.compile(r"[\\/]+")
MISSING = "nothing (the field is missing)"
ABSOLUTE = "an absolute path (/…, X:\\… or \\\\host\\share\\…)"

T = TypeVar("T")


def json_type(value: Any) -> str:
    """The JSON type of a decoded value, with its article, for a 422's reason."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def describe(value: Any) -> str:
    """What a sender put in a field, short enough for a 422: 'Two Words', 1e+30, null, an array."""
    if isinstance(value, str):
        if len(value) <= 40:
            return repr(value)
        return f"{value[:40] + ELLIPSIS!r} ({len(value)} characters)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return json_type(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "infinity" if value > 0 else "-infinity"
        return repr(value)
    if -10**21 < value < 10**21:
        return str(value)
    try:
        return f"a {len(str(abs(value)))}-digit number"
    except ValueError:                  # past Python's int-to-text limit
        return "a number of thousands of digits"


def _plain(number: float) -> str:
    """A bound as people write it: 1000000, not 1e+06."""
    return str(int(number)) if float(number).is_integer() else repr(number)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when it was cut."""
    if len(text) <= limit:
        return text
    return text[:limit - 1].rstrip() + ELLIPSIS


def in_range(value: Any, low: float, high: float) -> bool:
    """Whether a JSON number lies in [low, high]; a huge int is compared without float overflow."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return low <= value <= high


def normal_path(text: str) -> str | None:
    """An absolute path with duplicate separators and `.` parts collapsed, in its own style
    (POSIX /…, Windows X:\\… or UNC \\\\host\\share\\…); None when it is not absolute."""
    if text.startswith("/"):
        parts = [p for p in text.split("/") if p not in ("", ".")]
        return "/" + "/".join(parts)
    drive, unc = _DRIVE.match(text), _UNC.match(text)
    if drive:
        sep = "\\" if "\\" in text else "/"
        parts = [p for p in _SEPARATORS.split(text[len(drive.group(1)):]) if p not in ("", ".")]
        return drive.group(1) + sep + sep.join(parts)
    if unc:
        parts = [p for p in _SEPARATORS.split(text[2:]) if p not in ("", ".")]
        return "\\\\" + "\\".join(parts)
    return None


def path_separator(path: str) -> str:
    """The separator a path is written with: a backslash for a Windows (X:\\…) or UNC (\\\\host\\…)
    path that uses it, else "/" (POSIX, X:/…, and URLs such as smb://host/share)."""
    if path.startswith("\\\\") or (_DRIVE_RELATIVE.match(path) and "\\" in path):
        return "\\"
    return "/"


def climbs(text: str) -> bool:
    """Whether a path has a `..` part, by either separator (a POSIX server may map it to Windows)."""
    return ".." in text and ".." in _SEPARATORS.split(text)


class Fields:
    """A JSON object whose values are read with type and range checks; refusals name the dotted field."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def name(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.prefix}[{key}]"
        shown = key if len(key) <= 40 else key[:40] + ELLIPSIS
        return f"{self.prefix}.{shown}" if self.prefix else shown

    def refuse(self, key: str, expected: str, value: Any = None, *, got: str | None = None) -> BadPayload:
        """The 422 for `key`: what was expected, and what came instead."""
        if got is None:
            got = describe(value) if key in self.data else MISSING
        return BadPayload(f"field {self.name(key)!r}: expected {expected}, got {got}")

    def given(self, key: str, expected: str, required: bool = False) -> Any:
        """The value, or None when absent or null (refused then if `required`)."""
        value = self.data.get(key)
        if value is None and required:
            raise self.refuse(key, expected, None)
        return value

    def only(self, keys: Iterable[str]) -> None:
        """Refuse any key not among `keys` (for bodies whose every key is ours, not a sender's)."""
        allowed = list(keys)
        for key in self.data:
            if key not in allowed:
                raise BadPayload(f"field {self.name(key)!r}: not a field here (expected only "
                                 f"{', '.join(allowed)})")

    # -- text ---------------------------------------------------------------------------------

    def _string(self, key: str, expected: str, required: bool) -> str | None:
        value = self.given(key, expected, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.refuse(key, expected, value)
        return value

    def prose(self, key: str, limit: int = TEXT_MAX, *, required: bool = False) -> str | None:
        """Free text (a message, an overview), stripped and cut to `limit`; None when blank."""
        value = self._string(key, "a string", required)
        text = value.strip() if value is not None else ""
        if not text and required:
            raise self.refuse(key, "a non-empty string", value)
        return clip(text, limit) or None

    def title(self, key: str, *, required: bool = False) -> str | None:
        """A name that becomes part of a title (a movie, an episode, an artist), cut to TITLE_MAX."""
        return self.prose(key, TITLE_MAX, required=required)

    def label(self, key: str, what: str = "a name", limit: int = LABEL_MAX, *,
              required: bool = False) -> str | None:
        """A short one-line name (a quality, an instance); refused over `limit` or with control characters."""
        expected = f"{what} of at most {limit} characters on one line"
        value = self._string(key, expected, required)
        text = value.strip() if value is not None else ""
        if len(text) > limit or _CONTROL.search(text):
            raise self.refuse(key, expected, value)
        if not text and required:
            raise self.refuse(key, expected, value)
        return text or None

    def ident(self, key: str, what: str = "an id") -> str | None:
        """An external id (IMDb, MusicBrainz, ISBN…): up to IDENT_MAX characters without spaces."""
        expected = f"{what} of at most {IDENT_MAX} characters without spaces"
        value = self._string(key, expected, False)
        text = value.strip() if value is not None else ""
        if len(text) > IDENT_MAX or _SPACE_OR_CONTROL.search(text):
            raise self.refuse(key, expected, value)
        return text or None

    def pattern(self, key: str, regex: re.Pattern[str], what: str, *, required: bool = False) -> str | None:
        """A string that must match `regex` whole (taken as sent, not stripped)."""
        value = self._string(key, what, required)
        if value is None:
            return None
        if not regex.fullmatch(value):
            raise self.refuse(key, what, value)
        return value

    def run_id(self, key: str, *, required: bool = False) -> str | None:
        """A tracked run's id: the same alphabet whether a client registers it or a sender reports on it."""
        return self.pattern(key, RUN_ID, RUN_ID_RULE, required=required)

    def url(self, key: str, what: str = "an http or https URL") -> str | None:
        """An http(s) URL of at most URL_MAX characters, without spaces; None when blank."""
        expected = f"{what} of at most {URL_MAX} characters"
        value = self._string(key, expected, False)
        text = value.strip() if value is not None else ""
        if not text:
            return None
        if len(text) > URL_MAX or _SPACE_OR_CONTROL.search(text) or not _URL.match(text):
            raise self.refuse(key, expected, value)
        return text

    def choice(self, key: str, options: Mapping[str, T], what: str | None = None, *,
               fold_case: bool = False, required: bool = False) -> T | None:
        """One of `options`' keys (stripped, optionally case-folded), mapped to its value."""
        expected = what or f"one of {', '.join(options)}"
        value = self.given(key, expected, required)
        if value is None:
            return None
        if isinstance(value, str):
            word = value.strip().lower() if fold_case else value.strip()
            if word in options:
                return options[word]
        raise self.refuse(key, expected, value)

    # -- numbers ------------------------------------------------------------------------------

    def flag(self, key: str) -> bool:
        """true or false; False when absent or null."""
        value = self.given(key, "true or false")
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.refuse(key, "true or false", value)
        return value

    def whole(self, key: str, low: int, high: int, what: str = "a whole number", *,
              unknown: int | None = None, required: bool = False) -> int | None:
        """A whole number in [low, high] (or `unknown`, the sender's "I do not know"); a JSON 3.0 counts."""
        expected = f"{what} from {low} to {high}" + (f" (or {unknown} for unknown)" if unknown is not None else "")
        value = self.given(key, expected, required)
        if value is None:
            return None
        number = int(value) if isinstance(value, float) and math.isfinite(value) and value.is_integer() else value
        if isinstance(number, bool) or not isinstance(number, int) or not (low <= number <= high or number == unknown):
            raise self.refuse(key, expected, value)
        return number

    def year(self, key: str) -> int | None:
        """A year from YEARS; 0 (the senders' unknown) reads as None."""
        year = self.whole(key, *YEARS, unknown=0)
        return year or None

    def season(self, key: str, *, required: bool = False) -> int | None:
        return self.whole(key, *SEASONS, "a season number", required=required)

    def episode(self, key: str, *, required: bool = False) -> int | None:
        return self.whole(key, *EPISODES, "an episode number", required=required)

    def size(self, key: str) -> int | None:
        return self.whole(key, 0, SIZE_MAX, "a size in bytes")

    def db_id(self, key: str) -> int | None:
        return self.whole(key, 0, DB_ID_MAX, "a numeric id")

    def number(self, key: str, low: float, high: float, *, required: bool = False) -> float | None:
        """A finite number in [low, high], as a float."""
        expected = f"a number from {_plain(low)} to {_plain(high)}"
        value = self.given(key, expected, required)
        if value is None:
            return None
        if not in_range(value, low, high):
            raise self.refuse(key, expected, value)
        return float(value)

    def fraction(self, key: str, tolerance: float = 0.0) -> float | None:
        """A number from 0 to 1; one at most `tolerance` outside is rounding and is clamped."""
        expected = "a number from 0 to 1"
        value = self.given(key, expected)
        if value is None:
            return None
        if not in_range(value, -tolerance, 1 + tolerance):
            raise self.refuse(key, expected, value)
        return min(max(float(value), 0.0), 1.0)

    def date_year(self, key: str) -> int | None:
        """The year of an ISO 8601 date ("1997-05-21", "1997-05-21T00:00:00Z"); None for none or 0001."""
        expected = 'a date such as "1997-05-21"'
        value = self._string(key, expected, False)
        text = value.strip() if value is not None else ""
        if not text:
            return None
        match = _DATE.match(text)
        try:
            day = date(int(match.group(1)), int(match.group(2)), int(match.group(3))) if match else None
        except ValueError:
            day = None
        if day is None:
            raise self.refuse(key, expected, value)
        return day.year if day.year > 1 else None         # 0001-01-01 is .NET's "no date"

    # -- paths --------------------------------------------------------------------------------

    def _path_text(self, key: str | int, value: Any, expected: str) -> str:
        if not isinstance(value, str):
            raise self._refuse_any(key, expected, value)
        if len(value) > PATH_MAX or _CONTROL.search(value):
            raise self._refuse_any(key, f"{expected} of at most {PATH_MAX} characters on one line", value)
        if climbs(value):
            raise self._refuse_any(key, f"{expected} that does not climb with '..'", value)
        return value

    def _refuse_any(self, key: str | int, expected: str, value: Any) -> BadPayload:
        return BadPayload(f"field {self.name(key)!r}: expected {expected}, got {describe(value)}")

    def absolute_path(self, key: str | int, value: Any) -> str:
        """A path from a body, normalised; refused when relative, climbing or absurd."""
        text = self._path_text(key, value, ABSOLUTE)
        path = normal_path(text)
        if path is None:
            raise self._refuse_any(key, ABSOLUTE, value)
        return path

    def path(self, key: str) -> str | None:
        """An absolute folder or file path; None when absent, null or blank."""
        value = self.given(key, ABSOLUTE)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.absolute_path(key, value)

    def relative_path(self, key: str) -> str | None:
        """A path below a folder the body names (a file's relativePath): not absolute, never climbing."""
        expected = "a relative path such as \"Season 01/file.mkv\""
        value = self.given(key, expected)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = self._path_text(key, value, expected)
        if normal_path(text) is not None or text.startswith("\\") or _DRIVE_RELATIVE.match(text):
            raise self.refuse(key, expected, value)
        return text

    # -- containers ---------------------------------------------------------------------------

    def obj(self, key: str, *, required: bool = False) -> Fields | None:
        value = self.given(key, "an object", required)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise self.refuse(key, "an object", value)
        return Fields(value, self.name(key))

    def _array(self, key: str, expected: str, required: bool, limit: int) -> list[Any] | None:
        value = self.given(key, expected, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.refuse(key, expected, value)
        if len(value) > limit:
            raise self.refuse(key, expected, got=f"an array of {len(value)} items")
        return value

    def objects(self, key: str, *, required: bool = False, limit: int = ITEMS_MAX) -> list[Fields] | None:
        """An array of at most `limit` objects, or None when absent or null."""
        value = self._array(key, f"an array of at most {limit} objects", required, limit)
        if value is None:
            return None
        inner = Fields({}, self.name(key))
        items = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise inner._refuse_any(i, "an object", item)
            items.append(Fields(item, inner.name(i)))
        return items

    def first(self, one: str, many: str) -> Fields | None:
        """The `one` object, else the first of the `many` array: senders use either (both are checked)."""
        single, listed = self.obj(one), self.objects(many) or []
        return single or next(iter(listed), None)

    def each(self, one: str, many: str) -> list[Fields]:
        """The `one` object alone, else every object of the `many` array (both are checked)."""
        single, listed = self.obj(one), self.objects(many) or []
        return [single] if single else listed

    def items(self, key: str, read: Callable[[Fields, int, Any], T], expected: str,
              limit: int = ITEMS_MAX) -> list[T]:
        """Each item of an array read by `read(fields of the array, index, item)`; [] when absent or null."""
        value = self._array(key, f"{expected} (at most {limit})", False, limit)
        inner = Fields({}, self.name(key))
        return [read(inner, i, item) for i, item in enumerate(value or [])]

    def paths(self, key: str, limit: int) -> list[str]:
        """An array of absolute paths, normalised; [] when absent or null."""
        return self.items(key, lambda inner, i, item: inner.absolute_path(i, item), "an array of absolute paths",
                          limit)

    def texts(self, key: str, limit: int = TEXT_MAX) -> list[str]:
        """An array of free texts (messages), each stripped and cut to `limit`, blank ones left out;
        [] when absent or null."""
        def read(inner: Fields, i: int, item: Any) -> str:
            if not isinstance(item, str):
                raise inner._refuse_any(i, "a string", item)
            return clip(item.strip(), limit)
        return [text for text in self.items(key, read, "an array of strings") if text]

    def json_objects(self, key: str, limit: int = ITEMS_MAX) -> list[Mapping[str, Any]]:
        """An array of objects kept as sent (a sender's own data), every number in them finite."""
        value = self._array(key, f"an array of at most {limit} objects", False, limit)
        inner = Fields({}, self.name(key))
        for i, item in enumerate(value or []):
            if not isinstance(item, Mapping):
                raise inner._refuse_any(i, "an object", item)
        bad = non_finite(value or [])
        if bad is not None:
            where = self.name(key)
            for step in bad:
                where = Fields({}, where).name(step)
            raise BadPayload(f"field {where!r}: expected a finite number, got {describe(_at(value or [], bad))}")
        return list(value or [])


def non_finite(value: Any) -> tuple[str | int, ...] | None:
    """The path (keys and indexes) to the first NaN or infinity in a JSON value, or None."""
    stack: list[Any] = [value]
    found = False
    while stack:                       # a stack, not recursion: depth is the sender's to choose
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                found = True
                break
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    if not found:
        return None
    return _path_to_non_finite(value)


def _path_to_non_finite(value: Any) -> tuple[str | int, ...]:
    # Only when one was found: paths cost a tuple per value, which the common case never pays.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return path
        if isinstance(item, Mapping):
            stack.extend((inner, (*path, str(k))) for k, inner in item.items())
        elif isinstance(item, list):
            stack.extend((inner, (*path, i)) for i, inner in enumerate(item))
    return ()


def _at(value: Any, path: Sequence[str | int]) -> Any:
    for step in path:
        value = value[step]
    return value


def put_given(media: dict[str, Any], key: str, value: Any) -> None:
    """Keep a value in an event's media when the body gave one (a field read as None was absent)."""
    if value is not None:
        media[key] = value
