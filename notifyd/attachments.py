"""Pictures sent with a message (design §15 "Attachments"): which ones an event offers, and getting them.

An event offers pictures in its media, taken in this order:

- media["thumbnail"]: a picture carried in the event itself, {"content_type", "data": base64} (Plex's);
- media["poster_url"]: an *arr event's poster (notifyd.sources.arr);
- a tracked run's output images: the URLs of media["output_urls"] that ComfyDeploy lists under an
  output's "images", or whose file name is a picture's (.png, .jpg, .jpeg, .gif, .webp).

A URL is fetched only over http(s) and through the callbacks' SSRF guard (`notifyd.ssrf`, with the
same switch, `[runs] allow_private_callbacks`): every hop of a redirect is checked again and the
connection goes to the address just checked. All fetches share one time budget (the worker's
timeout) and one byte budget (`attach_max`), read as a stream that stops at what is left; at most
PICTURES_MAX are kept. A picture is kept only if the server calls it JPEG, PNG, GIF or WebP *and*
its bytes begin like one; the bytes decide the type it is sent as.

A picture that cannot be had is never an error: it becomes a `Missed` with a reason (refused
address, too big, not an image, HTTP status, timeout), and the message goes without it.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from notifyd.errors import NotifydError
from notifyd.ssrf import CallbackRefused, Resolver, default_resolve, pinned_request_args
from notifyd.units import filesize, size_text

PICTURES_MAX = 4                    # pictures one message carries
DEFAULT_BUDGET = 10 * 1024 * 1024   # attach_max: bytes of pictures one message carries in all
REDIRECTS_MAX = 3                   # hops followed for one picture, each one checked by the guard
SNIFF_BYTES = 12                    # enough of the start to tell the four types apart
# The types kept, by the extension a file of that type is sent with.
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
# What servers call them in a Content-Type (some still say image/jpg, image/pjpeg or image/x-png).
SAID_TYPES = {"image/jpeg": "image/jpeg", "image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg",
              "image/png": "image/png", "image/x-png": "image/png", "image/gif": "image/gif",
              "image/webp": "image/webp"}
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
ACCEPT = "image/jpeg, image/png, image/gif, image/webp"
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
NAME_MAX = 80


class PictureUnusable(NotifydError):
    """A picture that will not be attached; `reason` says why, with no secret in it."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Picture:
    """A picture to attach: a file name with its type's extension, its type by its bytes, the bytes."""

    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Missed:
    """A picture left out: where it was to come from (no query, no credentials) and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class Pictures:
    """What a message carries, and what it goes without."""

    found: tuple[Picture, ...] = ()
    missed: tuple[Missed, ...] = ()

    def detail(self) -> dict[str, Any]:
        """For the attempt's detail: each attached picture's name and size, each one left out."""
        return {"attachments": [{"name": p.name, "bytes": len(p.data)} for p in self.found],
                "attachment_errors": [str(m) for m in self.missed]}


@dataclass(frozen=True)
class Offer:
    """One picture an event offers: fetched from `url`, or carried `inline`; `role` names it."""

    role: str                               # "thumbnail", "poster" or "output"
    url: str | None = None
    inline: Any = None

    @property
    def source(self) -> str:
        return shown_url(self.url) if self.url else self.role


def offers(media: Iterable[Mapping[str, Any]]) -> list[Offer]:
    """The pictures these events' media offer, in order (each event's thumbnail, poster, output
    images), each URL once."""
    found: list[Offer] = []
    seen: set[str] = set()

    def add(offer: Offer) -> None:
        if offer.url is None or offer.url not in seen:
            found.append(offer)
            if offer.url is not None:
                seen.add(offer.url)

    for one in media:
        if one.get("thumbnail") is not None:
            add(Offer("thumbnail", inline=one["thumbnail"]))
        poster = one.get("poster_url")
        if isinstance(poster, str) and poster:
            add(Offer("poster", url=poster))
        for url in output_images(one):
            add(Offer("output", url=url))
    return found


def output_images(media: Mapping[str, Any]) -> list[str]:
    """A run's output URLs that are pictures: listed under an output's "images", or named like one."""
    given = media.get("output_urls")
    urls = [u for u in given if isinstance(u, str)] if isinstance(given, list) else []
    listed: set[str] = set()
    for output in media.get("outputs") or []:
        data = output.get("data") if isinstance(output, Mapping) else None
        images = data.get("images") if isinstance(data, Mapping) else None
        for image in images if isinstance(images, list) else []:
            if isinstance(image, Mapping) and isinstance(image.get("url"), str):
                listed.add(image["url"])
    return [u for u in urls if u in listed or urlsplit(u).path.lower().endswith(PICTURE_SUFFIXES)]


def gather(media: Iterable[Mapping[str, Any]], *, budget: int = DEFAULT_BUDGET, allow_private: bool = False,
           timeout: float = 15.0, limit: int = PICTURES_MAX, resolve: Resolver = default_resolve,
           transport: httpx.BaseTransport | None = None,
           clock: Callable[[], float] = time.monotonic) -> Pictures:
    """The pictures these events offer: at most `limit`, at most `budget` bytes in all, every fetch
    done within `timeout` seconds in all. Never raises for a picture: each one that cannot be had
    is a Missed."""
    wanted = offers(media)
    if not wanted:
        return Pictures()
    deadline = clock() + timeout
    found: list[Picture] = []
    missed: list[Missed] = []
    names: set[str] = set()
    client: httpx.Client | None = None
    try:
        for offer in wanted:
            if len(found) == limit:
                break
            room = budget - sum(len(p.data) for p in found)
            try:
                if room <= 0:
                    raise PictureUnusable(f"attach_max ({size_text(budget)}) already used up")
                if offer.url is None:
                    data, content_type = inline_picture(offer.inline, room, budget)
                else:
                    if clock() >= deadline:
                        raise PictureUnusable(f"no time left (every picture is fetched within {timeout:g}s)")
                    client = client or httpx.Client(follow_redirects=False, transport=transport,
                                                    headers={"user-agent": "notifyd", "accept": ACCEPT})
                    data, content_type = fetch_picture(client, offer.url, room=room, budget=budget,
                                                       deadline=deadline, allow_private=allow_private,
                                                       resolve=resolve, clock=clock)
            except PictureUnusable as exc:
                missed.append(Missed(offer.source, exc.reason))
                continue
            found.append(Picture(_unique(file_name(offer, content_type), names), content_type, data))
    finally:
        if client is not None:
            client.close()
    return Pictures(tuple(found), tuple(missed))


def inline_picture(value: Any, room: int, budget: int) -> tuple[bytes, str]:
    """The bytes and type of a picture carried in the event: {"content_type", "data": base64}."""
    if not isinstance(value, Mapping) or not isinstance(value.get("data"), str):
        raise PictureUnusable('expected {"content_type", "data": base64}')
    said = value.get("content_type")
    if not isinstance(said, str) or _said_type(said) is None:
        raise PictureUnusable(f"not an image (content type {_quoted(said)})")
    if len(value["data"]) * 3 // 4 > room + 2:
        raise PictureUnusable(_too_big(room, budget))
    try:
        data = base64.b64decode(value["data"], validate=True)
    except (binascii.Error, ValueError):
        raise PictureUnusable("its data is not base64") from None
    if len(data) > room:
        raise PictureUnusable(_too_big(room, budget))
    return data, sniff(data)


def fetch_picture(client: httpx.Client, url: str, *, room: int, budget: int, deadline: float,
                  allow_private: bool, resolve: Resolver = default_resolve,
                  clock: Callable[[], float] = time.monotonic) -> tuple[bytes, str]:
    """GET one picture through the SSRF guard, following up to REDIRECTS_MAX redirects (each hop
    checked again), reading at most `room` bytes before `deadline`; its bytes and type, or
    PictureUnusable."""
    for _ in range(REDIRECTS_MAX + 1):
        try:
            pinned, host_header, extensions = pinned_request_args(url, allow_private, resolve)
        except CallbackRefused as exc:
            raise PictureUnusable(exc.reason) from None
        left = deadline - clock()
        if left <= 0:
            raise PictureUnusable("timed out")
        try:
            # Asked for as it is: a compressed body could inflate far past `room` within one chunk.
            with client.stream("GET", pinned, headers={**host_header, "Accept-Encoding": "identity"},
                               extensions=extensions,
                               timeout=httpx.Timeout(left, connect=min(left, 10.0))) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers["location"])
                    continue
                return _read(response, room=room, budget=budget, deadline=deadline, clock=clock)
        except httpx.TimeoutException:
            raise PictureUnusable("timed out") from None
        except httpx.HTTPError as exc:
            raise PictureUnusable(f"cannot fetch it ({type(exc).__name__})") from None
    raise PictureUnusable(f"more than {REDIRECTS_MAX} redirects")


def _read(response: httpx.Response, *, room: int, budget: int, deadline: float,
          clock: Callable[[], float]) -> tuple[bytes, str]:
    """The body of a 2xx answer that says it is a picture, read until `room` bytes or `deadline`."""
    if not 200 <= response.status_code < 300:
        raise PictureUnusable(f"HTTP {response.status_code}")
    said = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if _said_type(said) is None:
        raise PictureUnusable(f"not an image (Content-Type {_quoted(said or None)})")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise PictureUnusable(f"sent compressed ({_quoted(encoding[:20])}) though asked for it as it is")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > room:
        raise PictureUnusable(_too_big(room, budget, int(length)))
    data = bytearray()
    for chunk in response.iter_raw():
        data += chunk
        if len(data) > room:
            raise PictureUnusable(_too_big(room, budget))
        if len(data) >= SNIFF_BYTES and len(data) - len(chunk) < SNIFF_BYTES:
            sniff(bytes(data))                  # a page that calls itself an image is dropped at once
        if clock() > deadline:
            raise PictureUnusable("timed out")
    return bytes(data), sniff(bytes(data))


def sniff(data: bytes) -> str:
    """The picture type by its first bytes (JPEG, PNG, GIF, WebP), or PictureUnusable."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise PictureUnusable("not an image (its bytes are not JPEG, PNG, GIF or WebP)")


def shown_url(url: str) -> str:
    """A URL as a log line or a detail may show it: host and file name, without credentials, query
    or the rest of the path (a signed link's signature, a token in a path)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an invalid URL)"
    segments = [s for s in parts.path.split("/") if s]
    path = "" if not segments else f"/{segments[-1]}" if len(segments) == 1 else f"/…/{segments[-1]}"
    return f"{host}{port}{path}"[:200] or "(an invalid URL)"


def file_name(offer: Offer, content_type: str) -> str:
    """The attachment's file name: the URL's file name (or the role) with its type's extension."""
    stem = offer.role
    if offer.url and offer.role == "output":
        last = urlsplit(offer.url).path.rstrip("/").rsplit("/", 1)[-1]
        base = last.rsplit(".", 1)[0] if "." in last else last
        stem = _UNSAFE_NAME.sub("_", base).strip(".")[:NAME_MAX] or offer.role
    return stem + EXTENSIONS[content_type]


def _unique(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}{dot}{ext}"
    taken.add(candidate)
    return candidate


def _said_type(value: str) -> str | None:
    return SAID_TYPES.get(value.split(";", 1)[0].strip().lower())


def _quoted(value: Any) -> str:
    return "missing" if not value else repr(str(value)[:60])


def _too_big(room: int, budget: int, size: int | None = None) -> str:
    what = f"too big ({filesize(size)})" if size else "too big"
    return f"{what}: {filesize(room)} left of attach_max ({size_text(budget)})"
