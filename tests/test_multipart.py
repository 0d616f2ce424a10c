"""Forms: the parts of a multipart/form-data body, and hostile forms refused at once with a 400
(a header the standard library's parser would spend seconds on, or recurse through), never a 500."""

from __future__ import annotations

import pytest

from notifyd.errors import BadRequest
from notifyd.multipart import MAX_HEADERS, form_parts

FORM = "multipart/form-data; boundary=b"


def form(disposition: bytes = b'form-data; name="payload"', data: bytes = b'{"a": 1}') -> bytes:
    return b"--b\r\nContent-Disposition: " + disposition + b"\r\nContent-Type: application/json\r\n\r\n" + data + \
        b"\r\n--b--\r\n"


def test_a_form_s_parts_are_read() -> None:
    [part] = form_parts(form(), FORM)
    assert (part.name, part.content_type, part.data) == ("payload", "application/json", b'{"a": 1}')


@pytest.mark.parametrize(("raw", "content_type"), [
    (form(), FORM + "; x=" + "(" * 5000),                                   # comments nested in the request's header
    (form(b'form-data; name="payload"; x=' + b"(" * 1900), FORM),            # …within the limit, but past recursion
    (form(b'form-data; name="payload"' + b'; a="x"' * 80_000), FORM),       # parameters the parser reads slowly
    (form(b"form-data; name=" + b"p" * (MAX_HEADERS + 10)), FORM),
], ids=["deep comments in Content-Type", "deep comments in a part", "many parameters", "a long part header"])
def test_hostile_headers_are_a_400(raw: bytes, content_type: str) -> None:
    with pytest.raises(BadRequest):
        form_parts(raw, content_type)
