"""notifyd.attachments and `attach = true`: which pictures an event offers, fetching them from a real
image server on 127.0.0.1 through the SSRF guard (types, sizes, redirects, refusals), the Apprise
channel handing them over, and end to end through a running daemon: a ComfyDeploy run's output
image and a Radarr poster reach a json:// receiver as attachments; a picture the guard refuses or
attach_max leaves out never stops the message."""

from __future__ import annotations

import base64
import gzip
import json
import random
import struct
import tempfile
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from notifyd.attachments import (
    DEFAULT_BUDGET,
    Pictures,
    PictureUnusable,
    gather,
    offers,
    output_images,
    shown_url,
    sniff,
)
from notifyd.channels.apprise_channel import AppriseChannel
from notifyd.config import ServiceConfig
from notifyd.model import Delivery, Event, StoredEvent
from notifyd.units import filesize

from arr_bodies import arr_body
from conftest import FIXTURES, Receiver, free_port, wait_for
from sender_world import World, services_config, start_world

JPEG = (FIXTURES / "pictures" / "poster.jpg").read_bytes()
SIGNATURE = "X-Amz-Signature=0f3a9c1d7e5b2a4c6e8f0a1b3c5d7e9f"      # a signed link's secret part


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, seed: int = 0) -> bytes:
    """A real RGB PNG of random pixels (random, so that it does not compress below its size)."""
    rnd = random.Random(seed)
    raw = b"".join(b"\x00" + rnd.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


SMALL_PNG = png(4, 4)
BIG_PNG = png(40, 40, seed=1)               # about 4.9 KB: over attach_max = "1KiB"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"


@dataclass
class Route:
    body: bytes
    content_type: str = "image/png"
    status: int = 200
    length: bool = True                     # send Content-Length (else the body ends when the connection does)
    location: str | None = None
    encoding: str | None = None             # a Content-Encoding header, sent whatever was asked for


class ImageServer:
    """An HTTP server on 127.0.0.1 that serves `routes` by path (any query) and records each GET's path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        self.asked_encoding: list[str | None] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.hits.append(path)
                route = server.routes.get(path, Route(b"not here", "text/plain", 404))
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                if route.location:
                    self.send_header("Location", route.location)
                if route.encoding:
                    self.send_header("Content-Encoding", route.encoding)
                with server._lock:
                    server.asked_encoding.append(self.headers.get("Accept-Encoding"))
                if route.length:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                try:
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass                    # the reader stopped: the picture was too big

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def fetched(self, path: str) -> int:
        with self._lock:
            return self.hits.count(path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.routes.update({
        "/small.png": Route(SMALL_PNG),
        "/big.png": Route(BIG_PNG),
        "/streamed.png": Route(BIG_PNG, length=False),
        "/poster.jpg": Route(JPEG, "image/jpeg"),
        "/says-jpg.jpg": Route(JPEG, "image/jpg; charset=binary"),
        "/anim.gif": Route(GIF, "image/gif"),
        "/pic.webp": Route(WEBP, "image/webp"),
        "/page.png": Route(b"<!doctype html><title>Sign in</title>", "text/html; charset=utf-8"),
        "/lie.png": Route(b"<!doctype html><title>Sign in</title>" * 10, "image/png"),
        "/moved.png": Route(b"", "text/plain", 302, location="/small.png"),
        "/to-metadata.png": Route(b"", "text/plain", 302, location="http://169.254.169.254/latest/meta-data/"),
        "/loop.png": Route(b"", "text/plain", 302, location="/loop.png"),
        "/gone.png": Route(b"gone", "text/plain", 404),
        # 10 MiB of zeros in 10 KiB: inflated, one network chunk would pass attach_max at once.
        "/bomb.png": Route(gzip.compress(b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024)), encoding="gzip"),
    })
    yield server
    server.close()


def media_with(*, poster: str | None = None, outputs: list[str] = (), images_listed: bool = True,
               thumbnail: Any = None) -> dict[str, Any]:
    media: dict[str, Any] = {"level": "success"}
    if poster:
        media["poster_url"] = poster
    if outputs:
        key = "images" if images_listed else "files"
        media["outputs"] = [{"data": {key: [{"url": u} for u in outputs]}}]
        media["output_urls"] = list(outputs)
    if thumbnail is not None:
        media["thumbnail"] = thumbnail
    return media


def get(images: ImageServer, media: dict[str, Any], **kwargs: Any) -> Pictures:
    kwargs.setdefault("allow_private", True)        # the image server is on loopback
    kwargs.setdefault("timeout", 5.0)
    return gather([media], **kwargs)


# -- which pictures an event offers -------------------------------------------------------------------

def test_an_event_offers_its_thumbnail_then_its_poster_then_its_output_images() -> None:
    media = media_with(poster="https://image.tmdb.org/t/p/original/x.jpg",
                       outputs=["https://cdn.example.com/runs/1/a.png"], thumbnail={"content_type": "image/png"})
    assert [(o.role, o.url) for o in offers([media])] == [
        ("thumbnail", None), ("poster", "https://image.tmdb.org/t/p/original/x.jpg"),
        ("output", "https://cdn.example.com/runs/1/a.png")]
    assert offers([{"level": "info"}]) == []


def test_output_images_are_those_listed_as_images_or_named_like_a_picture() -> None:
    media = {"output_urls": ["https://c.example.com/x/ComfyUI_00001_.PNG", "https://c.example.com/x/turntable.mp4",
                             "https://c.example.com/x/get?id=7", "https://c.example.com/x/notes.txt",
                             "https://c.example.com/x/preview.webp?sig=1"],
             "outputs": [{"data": {"images": [{"url": "https://c.example.com/x/get?id=7"}],
                                   "gifs": [{"url": "https://c.example.com/x/turntable.mp4"}]}}]}
    assert output_images(media) == ["https://c.example.com/x/ComfyUI_00001_.PNG", "https://c.example.com/x/get?id=7",
                                    "https://c.example.com/x/preview.webp?sig=1"]


def test_a_digest_offers_each_events_pictures_each_url_once() -> None:
    one, two = media_with(poster="https://i.example.com/a.jpg"), media_with(poster="https://i.example.com/b.jpg")
    assert [o.url for o in offers([one, two, one])] == ["https://i.example.com/a.jpg", "https://i.example.com/b.jpg"]


def test_sniff_knows_the_four_types_by_their_bytes() -> None:
    assert [sniff(b) for b in (JPEG, SMALL_PNG, GIF, WEBP)] == ["image/jpeg", "image/png", "image/gif", "image/webp"]
    for not_one in (b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"RIFF\x00\x00\x00\x00WAVEfmt ", b"", b"\xff\xd8"):
        with pytest.raises(PictureUnusable, match="not JPEG, PNG, GIF or WebP"):
            sniff(not_one)


def test_a_url_is_shown_without_credentials_query_or_the_middle_of_its_path() -> None:
    assert shown_url(f"https://user:pw@cdn.example.com:8443/a/b/token123/c.png?{SIGNATURE}") == \
        "cdn.example.com:8443/…/c.png"
    assert shown_url("http://h.example.com/p.jpg") == "h.example.com/p.jpg"
    assert shown_url("http://h.example.com") == "h.example.com"


# -- fetching -----------------------------------------------------------------------------------------

def test_an_output_image_is_fetched_whole_and_named_after_its_file(images: ImageServer) -> None:
    pictures = get(images, media_with(outputs=[images.url("/small.png")]))
    assert [(p.name, p.content_type, p.data) for p in pictures.found] == [("small.png", "image/png", SMALL_PNG)]
    assert pictures.missed == ()
    assert pictures.detail() == {"attachments": [{"name": "small.png", "bytes": len(SMALL_PNG)}],
                                 "attachment_errors": []}


def test_a_poster_jpeg_gif_and_webp_are_kept_as_what_their_bytes_are(images: ImageServer) -> None:
    pictures = get(images, media_with(poster=images.url("/says-jpg.jpg"),
                                      outputs=[images.url("/anim.gif"), images.url("/pic.webp")]))
    assert [(p.name, p.content_type) for p in pictures.found] == [
        ("poster.jpg", "image/jpeg"), ("anim.gif", "image/gif"), ("pic.webp", "image/webp")]
    assert pictures.found[0].data == JPEG


def test_a_page_is_not_a_picture_whatever_it_is_called(images: ImageServer) -> None:
    pictures = get(images, media_with(outputs=[images.url("/page.png"), images.url("/lie.png"),
                                               images.url("/small.png")]))
    assert [p.name for p in pictures.found] == ["small.png"]
    assert [str(m) for m in pictures.missed] == [
        f"127.0.0.1:{images.port}/page.png: not an image (Content-Type 'text/html')",
        f"127.0.0.1:{images.port}/lie.png: not an image (its bytes are not JPEG, PNG, GIF or WebP)"]


def test_a_picture_is_asked_for_as_it_is_and_a_compressed_one_is_refused_unread(images: ImageServer) -> None:
    pictures = get(images, media_with(outputs=[images.url("/bomb.png"), images.url("/small.png")]))
    assert [p.name for p in pictures.found] == ["small.png"]
    assert [str(m) for m in pictures.missed] == [
        f"127.0.0.1:{images.port}/bomb.png: sent compressed ('gzip') though asked for it as it is"]
    assert set(images.asked_encoding) == {"identity"}


@pytest.mark.parametrize("path", ["/big.png", "/streamed.png"])
def test_a_picture_over_what_is_left_of_attach_max_is_left_out(images: ImageServer, path: str) -> None:
    pictures = get(images, media_with(outputs=[images.url(path)]), budget=1024)
    assert pictures.found == ()
    (missed,) = pictures.missed
    assert missed.reason.startswith("too big") and "left of attach_max (1KiB)" in missed.reason


def test_attach_max_is_for_all_the_pictures_of_a_message(images: ImageServer) -> None:
    budget = len(JPEG) + len(SMALL_PNG) // 2
    pictures = get(images, media_with(poster=images.url("/poster.jpg"), outputs=[images.url("/small.png")]),
                   budget=budget)
    assert [p.name for p in pictures.found] == ["poster.jpg"]
    assert "too big" in pictures.missed[0].reason


def test_at_most_four_pictures(images: ImageServer) -> None:
    urls = [images.url("/small.png") + f"?n={n}" for n in range(6)]
    pictures = get(images, media_with(outputs=urls))
    assert [p.name for p in pictures.found] == ["small.png", "small-2.png", "small-3.png", "small-4.png"]
    assert pictures.missed == ()


def test_a_redirect_is_followed_and_checked_again(images: ImageServer) -> None:
    assert [p.data for p in get(images, media_with(outputs=[images.url("/moved.png")])).found] == [SMALL_PNG]
    refused = get(images, media_with(outputs=[images.url("/to-metadata.png"), images.url("/loop.png")]))
    assert refused.found == ()
    assert [m.reason for m in refused.missed] == ["169.254.169.254 is a cloud metadata address",
                                                  "more than 3 redirects"]


def test_loopback_is_refused_unless_private_addresses_are_allowed(images: ImageServer) -> None:
    before = images.fetched("/poster.jpg")
    pictures = get(images, media_with(poster=images.url(f"/poster.jpg?{SIGNATURE}")), allow_private=False)
    assert pictures.found == ()
    assert [str(m) for m in pictures.missed] == [
        f"127.0.0.1:{images.port}/poster.jpg: 127.0.0.1 is a loopback address "
        "(set [runs] allow_private_callbacks = true to allow it)"]
    assert images.fetched("/poster.jpg") == before          # never asked


@pytest.mark.parametrize(("url", "reason"), [
    ("file:///etc/passwd", "only http and https are allowed"),
    ("ftp://127.0.0.1/x.png", "only http and https are allowed"),
    ("http://user:pw@127.0.0.1/x.png", "a user name or password in the URL is not allowed"),
    ("http://no-such-host.invalid/x.png", "cannot resolve no-such-host.invalid"),
])
def test_what_the_guard_refuses_is_never_fetched(images: ImageServer, url: str, reason: str) -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise OSError("no resolver in this test")

    pictures = get(images, media_with(outputs=[url]), resolve=no_dns)
    assert pictures.found == () and reason in pictures.missed[0].reason


def test_an_http_error_or_a_closed_port_is_a_missed_picture(images: ImageServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}/x.png"
    pictures = get(images, media_with(outputs=[images.url("/gone.png"), closed]))
    assert [m.reason for m in pictures.missed] == ["HTTP 404", "cannot fetch it (ConnectError)"]


def test_no_fetch_starts_once_the_time_for_pictures_is_spent(images: ImageServer) -> None:
    ticks = iter([0.0, 10.0, 10.0, 10.0])
    before = images.fetched("/small.png")
    pictures = get(images, media_with(outputs=[images.url("/small.png")]), timeout=5.0, clock=lambda: next(ticks))
    assert pictures.found == () and pictures.missed[0].reason == "no time left (every picture is fetched within 5s)"
    assert images.fetched("/small.png") == before


def test_a_thumbnail_carried_in_the_event_is_used_as_it_is() -> None:
    good = {"content_type": "image/png", "data": base64.b64encode(SMALL_PNG).decode()}
    pictures = gather([media_with(thumbnail=good)])
    assert [(p.name, p.data) for p in pictures.found] == [("thumbnail.png", SMALL_PNG)]
    for bad, reason in [({"content_type": "image/png", "data": "%%%"}, "its data is not base64"),
                        ({"content_type": "text/html", "data": good["data"]}, "not an image (content type 'text/html')"),
                        ({"content_type": "image/png", "data": base64.b64encode(b"<html>").decode()}, "its bytes are not"),
                        ("a string", 'expected {"content_type", "data": base64}')]:
        (missed,) = gather([media_with(thumbnail=bad)]).missed
        assert missed.source == "thumbnail" and reason in missed.reason
    assert "too big" in gather([media_with(thumbnail=good)], budget=10).missed[0].reason


# -- the Apprise channel ------------------------------------------------------------------------------

def stored(media: dict[str, Any]) -> StoredEvent:
    return StoredEvent(1, 0.0, Event(source="comfy", source_type="comfydeploy", kind="run.completed",
                                     title="Portrait batch: completed", media=media))


def deliver(url: str, media: dict[str, Any], *, allow_private: bool = True, **options: Any) -> dict[str, Any]:
    service = ServiceConfig(name="pics", type="apprise", options={"url": url, **options})
    event = stored(media)
    delivery = Delivery(job_id=7, service="pics", kind="notify", data={}, load_event=lambda: event,
                        allow_private=allow_private)
    return json.loads(AppriseChannel(service, 5.0).deliver(delivery))


def test_the_channel_sends_pictures_as_attachments_only_with_attach_true(images: ImageServer,
                                                                        receiver: Receiver) -> None:
    media = media_with(outputs=[images.url("/small.png")])
    detail = deliver(receiver.json_url, media, attach=True)
    (body,) = receiver.bodies()
    assert [(a["filename"], a["mimetype"], base64.b64decode(a["base64"])) for a in body["attachments"]] == [
        ("small.png", "image/png", SMALL_PNG)]
    assert detail["status"] == "SUCCESS"
    assert (detail["attachments"], detail["attachment_errors"]) == ([{"name": "small.png", "bytes": len(SMALL_PNG)}], [])

    before = images.fetched("/small.png")
    detail = deliver(receiver.json_url, media)                  # attach is off by default
    assert receiver.bodies()[1]["attachments"] == [] and "attachments" not in detail
    assert images.fetched("/small.png") == before


def test_the_channel_sends_the_message_without_a_picture_it_cannot_have(images: ImageServer,
                                                                         receiver: Receiver) -> None:
    detail = deliver(receiver.json_url, media_with(outputs=[images.url("/big.png")]), attach=True, attach_max=1024)
    assert receiver.bodies()[0]["attachments"] == [] and receiver.bodies()[0]["title"]
    assert detail["status"] == "SUCCESS" and detail["attachments"] == []
    assert detail["attachment_errors"] == [f"127.0.0.1:{images.port}/big.png: too big ({filesize(len(BIG_PNG))}): "
                                           "1 KiB left of attach_max (1KiB)"]


def test_a_plugin_that_reads_a_file_gets_one_and_it_is_gone_afterwards(images: ImageServer, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """form:// opens each attachment by its path: it gets a file in a private folder, removed once sent."""
    received: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append(self.rfile.read(int(self.headers["content-length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    try:
        detail = deliver(f"form://127.0.0.1:{server.server_address[1]}/hook",
                         media_with(poster=images.url("/poster.jpg")), attach=True)
    finally:
        server.shutdown()
        server.server_close()
    assert detail["status"] == "SUCCESS" and detail["attachments"] == [{"name": "poster.jpg", "bytes": len(JPEG)}]
    assert JPEG in received[0] and b'filename="poster.jpg"' in received[0]
    assert list(tmp_path.iterdir()) == []


def test_a_service_that_takes_no_attachments_fetches_nothing(images: ImageServer) -> None:
    service = ServiceConfig(name="pics", type="apprise", options={"url": "kodi://127.0.0.1:9/", "attach": True})
    channel = AppriseChannel(service, 5.0)
    event = stored(media_with(outputs=[images.url("/small.png")]))
    before = images.fetched("/small.png")
    with channel._attachments(Delivery(job_id=1, service="pics", kind="notify", data={}, load_event=lambda: event,
                                       allow_private=True), channel._apprise) as (attach, detail):
        assert attach is None and detail["attachment_errors"] == ["this Apprise service takes no attachments"]
    assert images.fetched("/small.png") == before


def test_attach_max_defaults_to_10_mib() -> None:
    on = AppriseChannel(ServiceConfig(name="p", type="apprise", options={"url": "json://x/y", "attach": True}), 5.0)
    off = AppriseChannel(ServiceConfig(name="p", type="apprise", options={"url": "json://x/y"}), 5.0)
    assert (on.attach_max, off.attach_max) == (DEFAULT_BUDGET, 0) and DEFAULT_BUDGET == 10 * 1024 * 1024


# -- end to end ---------------------------------------------------------------------------------------

@dataclass
class PictureWorld(World):
    """A running daemon with the image server its events' pictures come from."""

    images: ImageServer

    def detail(self, job_id: int) -> dict[str, Any]:
        """The detail of the job's attempt, once it has one that ended."""
        ended = wait_for(lambda: [a for a in self.store.job_attempts(job_id) if a.outcome],
                         message=f"job {job_id}'s attempt")
        assert ended[-1].outcome == "succeeded", ended[-1]
        return json.loads(ended[-1].detail)


SERVICES = """
[runs]
allow_private_callbacks = {private}

[services.pics]
type = "apprise"
url = "json://127.0.0.1:{port}/pics"
events = ["download"]
attach = true

[services.small]
type = "apprise"
url = "json://127.0.0.1:{port}/small"
events = ["never"]
attach = true
attach_max = "1KiB"
"""


@contextmanager
def started(tmp: Path, images: ImageServer, *, private: bool) -> Iterator[PictureWorld]:
    """A daemon with two picture-sending services on one json:// receiver: `pics` (attach_max at
    its 10 MiB default; it also takes *arr downloads) and `small` (attach_max = "1KiB")."""
    with start_world(tmp, services_config(SERVICES, private=str(private).lower())) as world:
        yield PictureWorld(world.daemon, world.receiver, world.store, images)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, images: ImageServer) -> Iterator[PictureWorld]:
    images.routes.update({"/runs/ComfyUI_00001_.png": Route(SMALL_PNG), "/runs/preview_00001.gif": Route(GIF, "image/gif"),
                          "/runs/turntable_00001.mp4": Route(b"\x00\x00\x00\x18ftypmp42", "video/mp4"),
                          "/runs/large_00001.png": Route(BIG_PNG)})
    with started(tmp_path_factory.mktemp("attach"), images, private=True) as world:
        yield world


def finish_run(world: PictureWorld, run_id: str, service: str, image: str = "ComfyUI_00001_.png") -> int:
    """Register a run that notifies `service`, post ComfyDeploy's final body for it with its outputs
    on the image server (the image under `image`), and return the notification's job id."""
    assert world.daemon.post("/runs", {"id": run_id, "name": "Portrait batch", "notify": [service]}).status_code == 201
    body = json.loads((FIXTURES / "comfydeploy" / "success.json").read_text())
    body["run_id"] = run_id
    for output in body["outputs"]:
        output["run_id"] = run_id
        for item in [i for kind in ("images", "files", "gifs") for i in output["data"].get(kind, [])]:
            name = image if item["filename"] == "ComfyUI_00001_.png" else item["filename"]
            item["url"] = world.images.url(f"/runs/{name}?{SIGNATURE}")
    answer = world.daemon.post("/webhooks/comfydeploy", body)
    assert answer.status_code == 202, answer.text
    (job,) = [j for j in answer.json()["jobs"] if j["service"] == service]
    return int(job["id"])


def attachments(message: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    return [(a["filename"], a["mimetype"], base64.b64decode(a["base64"])) for a in message["attachments"]]


def test_a_finished_run_sends_its_output_images_as_attachments(world: PictureWorld) -> None:
    job_id = finish_run(world, "attach-run-1", "pics")
    (message,) = wait_for(lambda: world.messages("/pics"), message="the run's message")
    assert message["title"] == "Portrait batch: completed"
    assert attachments(message) == [("ComfyUI_00001_.png", "image/png", SMALL_PNG),
                                    ("preview_00001.gif", "image/gif", GIF)]
    assert world.images.fetched("/runs/turntable_00001.mp4") == 0          # a video is not a picture
    detail = world.detail(job_id)
    assert detail["attachments"] == [{"name": "ComfyUI_00001_.png", "bytes": len(SMALL_PNG)},
                                     {"name": "preview_00001.gif", "bytes": len(GIF)}]
    assert detail["attachment_errors"] == []


def test_a_picture_over_attach_max_is_left_out_and_the_message_still_goes(world: PictureWorld) -> None:
    job_id = finish_run(world, "attach-run-2", "small", image="large_00001.png")
    (message,) = wait_for(lambda: world.messages("/small"), message="the run's message")
    assert message["title"] == "Portrait batch: completed"
    assert attachments(message) == [("preview_00001.gif", "image/gif", GIF)]       # it fits in what is left
    detail = world.detail(job_id)
    (error,) = detail["attachment_errors"]
    assert error.startswith(f"127.0.0.1:{world.images.port}/…/large_00001.png: too big")
    assert SIGNATURE not in error and SIGNATURE not in world.daemon.log()
    assert "picture 127.0.0.1" in world.daemon.log() and "large_00001.png not attached: too big" in world.daemon.log()


def test_a_radarr_download_sends_the_movies_poster(world: PictureWorld) -> None:
    body = arr_body("radarr", "Download")
    (poster,) = [i for i in body["movie"]["images"] if i["coverType"] == "poster"]
    poster["remoteUrl"] = world.images.url("/poster.jpg")
    answer = world.daemon.post("/webhooks/radarr", body)
    assert answer.status_code == 202 and [j["service"] for j in answer.json()["jobs"]] == ["pics"], answer.text
    (message,) = wait_for(lambda: [m for m in world.messages("/pics") if m["title"].startswith("Arrival")],
                          message="the download's message")
    assert attachments(message) == [("poster.jpg", "image/jpeg", JPEG)]
    assert world.detail(answer.json()["jobs"][0]["id"])["attachments"] == [{"name": "poster.jpg", "bytes": len(JPEG)}]


def test_without_private_addresses_a_loopback_picture_is_not_fetched_and_the_message_goes(
        tmp_path: Path, images: ImageServer) -> None:
    images.routes["/runs/ComfyUI_00001_.png"] = Route(SMALL_PNG)
    before = images.fetched("/runs/ComfyUI_00001_.png")
    with started(tmp_path, images, private=False) as world:
        job_id = finish_run(world, "attach-run-3", "pics")
        (message,) = wait_for(lambda: world.messages("/pics"), message="the run's message")
        assert message["title"] == "Portrait batch: completed" and message["attachments"] == []
        detail = world.detail(job_id)
        assert detail["attachments"] == [] and len(detail["attachment_errors"]) == 2
        assert detail["attachment_errors"][0] == (
            f"127.0.0.1:{images.port}/…/ComfyUI_00001_.png: 127.0.0.1 is a loopback address "
            "(set [runs] allow_private_callbacks = true to allow it)")
        log = world.daemon.log()
    assert images.fetched("/runs/ComfyUI_00001_.png") == before
    assert log.count("ComfyUI_00001_.png not attached") == 1 and SIGNATURE not in log
