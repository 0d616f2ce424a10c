"""The two ASGI apps bench_daemon.py runs beside notifyd, each under its own uvicorn process.

``bare``: the design §12 baseline for ingest, a Starlette endpoint on the same route as
notifyd's (``/webhooks/{source}``) that reads the body and answers 202, storing nothing.

``sink``: the receiver deliveries go to. It answers every POST with 200 and notes, per request,
``time.monotonic()`` at arrival and the number N of a ``seq N`` marker in the delivered text
(the ``body`` of the ``webhook`` channel's payload, the ``message`` of Apprise's ``json://``).
``GET /arrivals`` returns them all, ``GET /count`` how many. CLOCK_MONOTONIC is one clock for
every process on the machine, so the benchmark can subtract its own send times from these.
"""

from __future__ import annotations

import json
import re
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def accept(request: Request) -> Response:
    await request.body()
    return JSONResponse({"status": "accepted"}, status_code=202)


bare = Starlette(routes=[Route("/webhooks/{source}", accept, methods=["POST"])])

_SEQ = re.compile(r"\bseq (\d+)\b")
_arrivals: list[tuple[float, int | None]] = []


def marker(raw: bytes) -> int | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    text = body.get("body", body.get("message")) if isinstance(body, dict) else None
    found = _SEQ.search(text) if isinstance(text, str) else None
    return int(found.group(1)) if found else None


async def receive(request: Request) -> Response:
    at = time.monotonic()
    _arrivals.append((at, marker(await request.body())))
    return Response(b"{}", media_type="application/json")


async def arrivals(request: Request) -> Response:
    return JSONResponse([list(a) for a in _arrivals])


async def count(request: Request) -> Response:
    return JSONResponse(len(_arrivals))


sink = Starlette(routes=[Route("/arrivals", arrivals, methods=["GET"]),
                         Route("/count", count, methods=["GET"]),
                         Route("/{path:path}", receive, methods=["POST"])])
