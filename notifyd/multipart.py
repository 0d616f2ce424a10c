"""Bodies that are not bare JSON: a multipart/form-data form (RFC 7578, as Plex posts its webhooks)
taken apart, and `Unwrapped`, what a source's envelope held for the listener to decode.

The form is parsed by the standard library's email parser (email.policy.HTTP), given the request's
own Content-Type, so no form library is needed. Every malformation (no boundary, a boundary that
never starts or never closes, a part without headers, parts nested in parts, too many parts) is a
BadRequest (400) that says what is wrong; the body was already bounded by server.max_body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email import errors as email_errors
from typing import Any

from notifyd.errors import BadRequest

FORM = "multipart/form-data"
_NESTED = re.compile(rb"^content-type:[ \t]*(?:multipart|message)/", re.IGNORECASE | re.MULTILINE)
MAX_PARTS = 16                  # a webhook form carries a payload and a picture; a form of hundreds is no webhook
# The parser reads line by line in Python: 1 MiB of line breaks costs it seconds. A poster of 256 KiB
# holds about 4,000 byte values that break lines; a form of many times that is no webhook's.
MAX_LINE_BREAKS = 20_000
# The parser reads header parameters in time that grows faster than their count, and recurses on
# nested comments: a webhook's Content-Type and part headers fit in far less than this.
MAX_HEADERS = 2048
_MALFORMED = (email_errors.NoBoundaryInMultipartDefect, email_errors.StartBoundaryNotFoundDefect,
              email_errors.CloseBoundaryNotFoundDefect, email_errors.MultipartInvariantViolationDefect,
              email_errors.MissingHeaderBodySeparatorDefect, email_errors.InvalidMultipartContentTransferEncodingDefect)


@dataclass(frozen=True)
class Unwrapped:
    """The JSON document a sender's body carried, with the Content-Type to judge it by (the
    listener's one JSON decoder does), and media that came beside it for the event (a Plex
    poster). A sender that posts bare JSON is its own document."""

    document: bytes
    content_type: str | None = "application/json"
    media: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FormPart:
    """One part of a form: its Content-Disposition name and filename, its declared Content-Type
    (text/plain when it declares none, as RFC 7578 says), the charset it declares, and its bytes."""

    name: str
    filename: str | None
    content_type: str
    charset: str | None
    data: bytes


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header, lower-cased, without parameters ("" when none)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def form_parts(raw: bytes, content_type: str) -> list[FormPart]:
    """The parts of a multipart/form-data body, in order, or BadRequest saying what is malformed."""
    try:
        return _form_parts(raw, content_type)
    except RecursionError:      # the parser recurses per nested part and per nested comment in a header
        raise BadRequest("the multipart body nests too deeply (parts, or comments in a header)") from None


def _form_parts(raw: bytes, content_type: str) -> list[FormPart]:
    if len(content_type) > MAX_HEADERS:
        raise BadRequest(f"the Content-Type header is {len(content_type)} characters; a form's needs far fewer "
                         f"(the limit is {MAX_HEADERS})")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    # Checked before parsing, which would spend seconds on a body of forms nested thousands deep or
    # of a million lines; a form of thousands of parts is no webhook either.
    if raw.count(b"\n") + raw.count(b"\r") > MAX_LINE_BREAKS:
        raise BadRequest(f"the multipart body breaks into more than {MAX_LINE_BREAKS} lines; a webhook's form "
                         f"(its payload and a picture) has far fewer")
    if _NESTED.search(raw):
        raise BadRequest("a part of the multipart body is itself multipart (or a message); a form's parts "
                         "hold data")
    boundary = _boundary(head)
    if boundary and raw.count(b"--" + boundary) > MAX_PARTS + 1:
        raise BadRequest(f"the multipart body has more than {MAX_PARTS} parts")
    if boundary:
        _check_part_headers(raw, boundary)
    message = _parser().parsebytes(head + raw)
    _check(message.defects, "the multipart body")
    if not message.is_multipart():
        raise BadRequest("the multipart body holds no parts")
    parts = []
    for index, part in enumerate(message.iter_parts()):
        if index >= MAX_PARTS:
            raise BadRequest(f"the multipart body has more than {MAX_PARTS} parts")
        where = f"part {index + 1} of the multipart body"
        _check(part.defects, where)
        data = part.get_payload(decode=True)
        parts.append(FormPart(name=str(part.get_param("name", "", header="content-disposition") or ""),
                              filename=part.get_filename(), content_type=part.get_content_type(),
                              charset=part.get_content_charset(),
                              data=data if isinstance(data, bytes) else b""))
    return parts


def _check_part_headers(raw: bytes, boundary: bytes) -> None:
    """BadRequest when a part's headers (from its boundary to the blank line) pass MAX_HEADERS bytes."""
    start = raw.find(b"--" + boundary)
    while start != -1:
        ends = [end for end in (raw.find(b"\r\n\r\n", start), raw.find(b"\n\n", start)) if end != -1]
        end = min(ends) if ends else len(raw)
        if end - start > MAX_HEADERS:
            raise BadRequest(f"a part's headers in the multipart body pass {MAX_HEADERS} bytes; a form's "
                             "name, filename and type need far fewer")
        start = raw.find(b"--" + boundary, end)


def _parser() -> Any:
    """The standard library's email parser, imported when a form first comes: every `notifyd`
    command imports this module (the source registry), and the parser costs it milliseconds."""
    import email.parser
    import email.policy

    return email.parser.BytesParser(policy=email.policy.HTTP)


def _boundary(head: bytes) -> bytes | None:
    """The boundary a Content-Type names, as bytes; None when it names none."""
    parsed = _parser().parsebytes(head, headersonly=True)
    boundary = parsed.get_boundary()
    return boundary.encode("latin-1", "replace") if boundary else None


def _check(defects: list[Any], where: str) -> None:
    for defect in defects:
        if isinstance(defect, _MALFORMED):
            raise BadRequest(f"{where} is malformed: {_words(defect)}")


_SAID = {email_errors.NoBoundaryInMultipartDefect: "its Content-Type names no boundary",
         email_errors.StartBoundaryNotFoundDefect: "the boundary its Content-Type names never starts a part",
         email_errors.CloseBoundaryNotFoundDefect: "the closing boundary is missing (a cut-off body?)",
         email_errors.MissingHeaderBodySeparatorDefect: "its headers run into its data (no blank line)"}


def _words(defect: Any) -> str:
    """A defect as a person reads it: ours, the parser's own sentence, else its class name in words."""
    for kind, said in _SAID.items():
        if isinstance(defect, kind):
            return said
    text = str(defect).strip()
    if text:
        return text[:120]
    name = type(defect).__name__.removesuffix("Defect")
    return "".join(" " + c.lower() if c.isupper() else c for c in name).strip()
