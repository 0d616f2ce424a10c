"""notifyd.fields: the vocabulary every source and POST /runs read bodies with."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifyd.errors import BadPayload
from notifyd.fields import (
    Fields,
    climbs,
    clip,
    describe,
    json_type,
    non_finite,
    normal_path,
)


def refusal(read, body: dict) -> str:
    with pytest.raises(BadPayload) as info:
        read(Fields(body, "movie"))
    assert (info.value.status, info.value.code) == (422, "invalid_payload")
    return str(info.value)


@pytest.mark.parametrize("value, shown", [
    ("Two Words", "'Two Words'"), ("x" * 50, "'" + "x" * 40 + "…' (50 characters)"), (1e30, "1e+30"),
    (10**30, "a 31-digit number"), (-1, "-1"), (1.5, "1.5"), (float("inf"), "infinity"),
    (float("-inf"), "-infinity"), (float("nan"), "NaN"), (None, "null"), (True, "a boolean"),
    ([], "an array"), ({}, "an object"),
])
def test_describe_shows_what_came_briefly(value, shown) -> None:
    assert describe(value) == shown


def test_the_example_message_of_the_issue() -> None:
    assert refusal(lambda f: f.year("year"), {"year": 1e30}) == (
        "field 'movie.year': expected a whole number from 1800 to 2200 (or 0 for unknown), got 1e+30")


def test_clip_cuts_with_an_ellipsis_within_the_limit() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab…"
    assert clip("a   " + "b" * 10, 5) == "a…"


@pytest.mark.parametrize("path, normal", [
    ("/data//media/./tv/", "/data/media/tv"), ("/", "/"), ("D:\\Media\\\\X\\", "D:\\Media\\X"),
    ("D:/Media//X", "D:/Media/X"), ("C:\\", "C:\\"), ("\\\\nas\\share\\\\tv\\", "\\\\nas\\share\\tv"),
    ("\\\\nas\\share", "\\\\nas\\share"),
])
def test_absolute_paths_are_normalised_in_their_own_style(path, normal) -> None:
    assert normal_path(path) == normal
    assert Fields({"path": path}).path("path") == normal


@pytest.mark.parametrize("path", ["relative/x", "C:relative", "\\\\host", "\\single", "~/media", ".", "x:"])
def test_relative_paths_are_not_absolute(path) -> None:
    assert normal_path(path) is None
    assert refusal(lambda f: f.path("path"), {"path": path}).startswith("field 'movie.path': expected an absolute path")


@pytest.mark.parametrize("path", ["/data/../etc", "../../../etc/passwd", "D:\\Media\\..\\X", "/data/..\\..\\etc",
                                  "\\\\nas\\share\\..\\..\\x", "/data/.."])
def test_climbing_paths_are_refused(path) -> None:
    assert climbs(path)
    assert "that does not climb with '..'" in refusal(lambda f: f.path("path"), {"path": path})


def test_names_that_merely_contain_dots_are_fine() -> None:
    assert Fields({"p": "/data/a..b/...x"}).path("p") == "/data/a..b/...x"
    assert Fields({"p": "Season 01/x..mkv"}).relative_path("p") == "Season 01/x..mkv"


def test_blank_means_not_given_and_null_too() -> None:
    fields = Fields({"a": "", "b": "  ", "c": None})
    assert [fields.path(k) for k in "abcd"] == [None, None, None, None]
    assert [fields.prose(k) for k in "abcd"] == [None, None, None, None]
    assert [fields.label(k) for k in "abcd"] == [None, None, None, None]


@pytest.mark.parametrize("value", [True, "2016", [2016], {"y": 1}, 2016.5, float("inf"), float("nan"), -1, 1799,
                                   2201, 10**400])
def test_whole_numbers_are_refused_outside_their_type_and_range(value) -> None:
    assert refusal(lambda f: f.year("year"), {"year": value}).startswith("field 'movie.year': expected a whole number")


def test_whole_numbers_accept_a_json_float_without_fraction() -> None:
    assert Fields({"y": 2016.0}).year("y") == 2016 and Fields({"y": 0}).year("y") is None


def test_labels_are_refused_past_their_limit_prose_is_cut() -> None:
    assert refusal(lambda f: f.label("q", "a quality name"), {"q": "Q" * 129}).startswith(
        "field 'movie.q': expected a quality name of at most 128 characters on one line, got 'QQQ")
    assert Fields({"t": "T" * 300}).title("t") == "T" * 255 + "…"
    assert Fields({"m": " m " * 3000}).prose("m") is not None


def test_choice_refuses_unhashable_values_by_name() -> None:
    for unit in ([], {}, 1, True):
        assert refusal(lambda f: f.choice("unit", {"second": 1}), {"unit": unit}).startswith(
            "field 'movie.unit': expected one of second, got ")


def test_non_finite_finds_the_path_to_the_first_bad_number() -> None:
    assert non_finite([{"a": [1, 2.5, "x"]}]) is None
    assert non_finite([{"a": [1, {"b": float("nan")}]}]) == (0, "a", 1, "b")
    deep: dict = {"x": float("inf")}
    for _ in range(3000):
        deep = {"d": [deep]}
    assert non_finite([deep]) is not None              # no recursion: depth is the sender's


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                                        max_size=4), max_leaves=20)
readers = st.sampled_from([
    lambda f: f.year("v"), lambda f: f.season("v"), lambda f: f.episode("v"), lambda f: f.size("v"),
    lambda f: f.db_id("v"), lambda f: f.ident("v"), lambda f: f.label("v"), lambda f: f.title("v"),
    lambda f: f.prose("v"), lambda f: f.url("v"), lambda f: f.path("v"), lambda f: f.relative_path("v"),
    lambda f: f.flag("v"), lambda f: f.fraction("v", 0.01), lambda f: f.number("v", 0, 10),
    lambda f: f.date_year("v"), lambda f: f.obj("v"), lambda f: f.objects("v"), lambda f: f.paths("v", 5),
    lambda f: f.json_objects("v"), lambda f: f.choice("v", {"a": 1}),
])


@settings(max_examples=300, deadline=None)
@given(readers, json_values)
def test_every_reader_gives_a_value_or_a_refusal_naming_its_field(read, value) -> None:
    try:
        result = read(Fields({"v": value}, "body"))
    except BadPayload as exc:
        assert re.match(r"^field 'body\.v[\[.'\]]", str(exc)), str(exc)
        return
    if isinstance(result, float):
        assert math.isfinite(result)
    if isinstance(result, Fields | list) or result is None:
        return
    json.dumps(result, allow_nan=False)


@pytest.mark.parametrize("path", ["/etc/passwd", "\\Windows\\x", "C:\\x.mkv", "C:x.mkv", "..\\x.mkv", "a/../../x"])
def test_relative_paths_stay_below_their_folder(path) -> None:
    assert refusal(lambda f: f.relative_path("p"), {"p": path}).startswith(
        "field 'movie.p': expected a relative path such as \"Season 01/file.mkv\"")


@pytest.mark.parametrize(("value", "named"), [
    (None, "null"), (True, "a boolean"), (False, "a boolean"), (0, "a number"), (2.5, "a number"),
    ("", "a string"), ([], "an array"), ({"a": 1}, "an object"), (b"x", "bytes"),
])
def test_each_json_type_is_named_with_its_article(value: Any, named: str) -> None:
    assert json_type(value) == named
