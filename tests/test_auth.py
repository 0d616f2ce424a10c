"""notifyd.auth: every way a request may present its token, compared exactly."""

from __future__ import annotations

import base64

import pytest
from starlette.datastructures import Headers, QueryParams

from notifyd.auth import presented_tokens, token_matches


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_bearer():
    assert presented_tokens({"authorization": "Bearer abc123"}, {}) == ["abc123"]


def test_bearer_scheme_is_case_insensitive_and_value_trimmed():
    assert presented_tokens({"authorization": "bearer  abc123 "}, {}) == ["abc123"]
    assert presented_tokens({"authorization": "BEARER abc123"}, {}) == ["abc123"]


def test_basic_takes_the_password_part():
    assert presented_tokens({"authorization": basic("radarr", "s3cret")}, {}) == ["s3cret"]


def test_basic_password_may_hold_colons_and_an_empty_user():
    assert presented_tokens({"authorization": basic("u", "a:b:c")}, {}) == ["a:b:c"]
    assert presented_tokens({"authorization": basic("", "tok")}, {}) == ["tok"]


def test_basic_with_unicode_password():
    assert presented_tokens({"authorization": basic("u", "pässwörd")}, {}) == ["pässwörd"]


@pytest.mark.parametrize("value", ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"\xff\xfe:x").decode()])
def test_undecodable_basic_is_ignored(value):
    assert presented_tokens({"authorization": value}, {}) == []


def test_x_notifyd_token_header():
    assert presented_tokens({"x-notifyd-token": "hdr-token"}, {}) == ["hdr-token"]


def test_query_token():
    assert presented_tokens({}, {"token": "q-token"}) == ["q-token"]


def test_nothing_offered():
    assert presented_tokens({}, {}) == []
    assert presented_tokens({"authorization": "Bearer "}, {"token": ""}) == []
    assert presented_tokens({"authorization": "Digest abc"}, {}) == []


def test_every_way_at_once_in_the_design_order():
    headers = {"authorization": "Bearer one", "x-notifyd-token": "two"}
    assert presented_tokens(headers, {"token": "three"}) == ["one", "two", "three"]


def test_real_request_headers_are_case_insensitive():
    headers = Headers({"Authorization": "Bearer from-bearer", "X-Notifyd-Token": "from-header"})
    query = QueryParams("token=from-query&other=1")
    assert presented_tokens(headers, query) == ["from-bearer", "from-header", "from-query"]


def test_token_matches_one_of_several():
    assert token_matches("right", ["wrong", "right"])
    assert token_matches("right", ["right"])


@pytest.mark.parametrize("offered", [[], ["wrong"], ["Right"], ["righ"], ["right "], ["rightt"], [""]])
def test_token_does_not_match(offered):
    assert not token_matches("right", offered)


def test_token_matches_unicode():
    assert token_matches("tökén", ["tökén"])
    assert not token_matches("tökén", ["token"])


def test_end_to_end_each_way_is_accepted():
    for headers, query in [({"authorization": "Bearer T0k"}, {}), ({"authorization": basic("x", "T0k")}, {}),
                           ({"x-notifyd-token": "T0k"}, {}), ({}, {"token": "T0k"})]:
        assert token_matches("T0k", presented_tokens(headers, query))
        assert not token_matches("other", presented_tokens(headers, query))
