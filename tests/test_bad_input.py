"""A hostile world: a corpus of bad bodies for every source, POST /notify and POST /runs, sent over real HTTP to
one `notifyd serve` process. Each is refused with a 4xx (never a 5xx) whose JSON says `error` and
`detail` (a 422's detail names the field), stores no event, job or run, and leaves /health at 200.
What is accepted can always be read back and delivered."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from notifyd.model import Event, Run, RunStatus
from notifyd.store.sqlite import SqliteStore

from conftest import FIXTURES, Daemon, DaemonFactory, Receiver, cli_json, wait_for, write_config

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SERVICES = """
[runs]
callback_secret = "{secret}"
allow_private_callbacks = true

[services.chat]
type = "apprise"
url = "json://127.0.0.1:{chat}/chat"

[services.library]
type = "jellyfin"
url = "http://127.0.0.1:{library}"
api_key = "jf-key"
scan_delay = "0s"
"""


@dataclass
class World:
    daemon: Daemon
    store: SqliteStore
    chat: Receiver
    library: Receiver
    config: Path
    client: httpx.Client

    def counts(self) -> dict[str, int]:
        counts = self.store.info().counts
        return {table: counts[table] for table in ("events", "jobs", "runs")}


def start_world(tmp: Path) -> Iterator[World]:
    """One daemon with a notifier and a refresher, both at receivers on 127.0.0.1; bodies up to 2 MB."""
    chat, library = Receiver(), Receiver()
    factory = DaemonFactory(tmp)
    config = write_config(tmp / "config.toml",
                          services=SERVICES.format(secret=SECRET, chat=chat.port, library=library.port))
    config.write_text(config.read_text().replace('max_body = "64KB"', 'max_body = "2MB"'))
    daemon = factory.start(config)
    store = SqliteStore(tmp / "notifyd.db")
    client = httpx.Client(base_url=daemon.url, timeout=30)
    try:
        yield World(daemon, store, chat, library, config, client)
    finally:
        client.close()
        store.close()
        daemon.stop()
        factory.cleanup()
        chat.close()
        library.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from start_world(tmp_path_factory.mktemp("bad-input"))


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def setting(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of `body` with the value at a dotted path ("movie.year", "episodes.0.title") replaced."""
    body = copy.deepcopy(body)
    *parents, last = dotted.split(".")
    spot: Any = body
    for step in parents:
        spot = spot[int(step)] if isinstance(spot, list) else spot[step]
    spot[int(last) if isinstance(spot, list) else last] = value
    return body


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def deep(levels: int, leaf: Any = "x") -> Any:
    for _ in range(levels):
        leaf = {"a": [leaf]}
    return leaf


@dataclass(frozen=True)
class Bad:
    """One kind of bad input: where it goes, what is sent, and the field a 422 must name."""

    kind: str
    path: str
    body: Any                          # a dict sent as JSON, or bytes sent as they are
    field_name: str | None = None      # the field a 422's detail names
    statuses: tuple[int, ...] = (422,)
    headers: dict[str, str] = field(default_factory=dict)


def raw(body: dict[str, Any], marker: str, text: str) -> bytes:
    """A JSON body with the string `marker` replaced by raw JSON text (a number Python cannot write)."""
    return json.dumps(body).replace(json.dumps(marker), text).encode()


RADARR, RADARR_HEALTH = fixture("radarr-download"), fixture("radarr-health")
SONARR, LIDARR, READARR = fixture("sonarr-download"), fixture("lidarr-download"), fixture("readarr-download")
RUNNING, SUCCESS = fixture("comfydeploy-run-running"), fixture("comfydeploy-run-success")
GENERIC = {"kind": "backup", "title": "Nightly backup", "body": "3 GB in 4 min", "level": "success",
           "paths": ["/srv/backup"]}
RUN = {"id": "bad-input-run", "name": "Portrait batch", "notify": ["chat"], "context": {"chat_id": "42"},
       "cost_rate": {"amount": 0.002, "unit": "second"}}
UPGRADE = setting(RADARR, "isUpgrade", True)
NON_FINITE = (400, 422)                # refused at decode (400) or by the field (422)
W, R, N = "/webhooks/", "/runs", "/notify"

CORPUS = [
    # Radarr: the media object
    Bad("year 10^30 as a float", W + "radarr", setting(RADARR, "movie.year", 1e30), "movie.year"),
    Bad("year 10^30 as an integer", W + "radarr", setting(RADARR, "movie.year", 10**30), "movie.year"),
    Bad("year as a string", W + "radarr", setting(RADARR, "movie.year", "2016"), "movie.year"),
    Bad("negative year", W + "radarr", setting(RADARR, "movie.year", -5), "movie.year"),
    Bad("year with a fraction", W + "radarr", setting(RADARR, "movie.year", 2016.5), "movie.year"),
    Bad("tmdb id past 32 bits", W + "radarr", setting(RADARR, "movie.tmdbId", 2**40), "movie.tmdbId"),
    Bad("tmdb id as a string", W + "radarr", setting(RADARR, "movie.tmdbId", "329865"), "movie.tmdbId"),
    Bad("imdb id as an array", W + "radarr", setting(RADARR, "movie.imdbId", ["tt2543164"]), "movie.imdbId"),
    Bad("imdb id with spaces", W + "radarr", setting(RADARR, "movie.imdbId", "tt 254 3164"), "movie.imdbId"),
    Bad("climbing folderPath", W + "radarr", setting(RADARR, "movie.folderPath", "../../../etc/passwd"),
        "movie.folderPath"),
    Bad("folderPath climbing inside", W + "radarr",
        setting(RADARR, "movie.folderPath", "/data/media/../../../etc"), "movie.folderPath"),
    Bad("Windows folderPath climbing", W + "radarr",
        setting(RADARR, "movie.folderPath", "D:\\Media\\..\\..\\Windows"), "movie.folderPath"),
    Bad("relative folderPath", W + "radarr", setting(RADARR, "movie.folderPath", "movies/Arrival (2016)"),
        "movie.folderPath"),
    Bad("drive-relative folderPath", W + "radarr", setting(RADARR, "movie.folderPath", "D:Movies"),
        "movie.folderPath"),
    Bad("folderPath as a number", W + "radarr", setting(RADARR, "movie.folderPath", 5), "movie.folderPath"),
    Bad("folderPath of 5000 characters", W + "radarr", setting(RADARR, "movie.folderPath", "/d/" + "x" * 5000),
        "movie.folderPath"),
    Bad("folderPath with a newline", W + "radarr", setting(RADARR, "movie.folderPath", "/data/a\nb"),
        "movie.folderPath"),
    Bad("older sender's movie path climbing", W + "radarr",
        setting(without(RADARR, "movie") | {"movie": {"title": "Heat", "path": "/m/../../etc"}}, "eventType", "Download"),
        "movie.path"),
    Bad("movie as a string", W + "radarr", setting(RADARR, "movie", "Arrival"), "movie"),
    Bad("movie as an array", W + "radarr", setting(RADARR, "movie", []), "movie"),
    Bad("movie missing", W + "radarr", without(RADARR, "movie"), "movie"),
    Bad("title as an object", W + "radarr", setting(RADARR, "movie.title", {"en": "Arrival"}), "movie.title"),
    Bad("title as nested garbage", W + "radarr", setting(RADARR, "movie.title", deep(30)), "movie.title"),
    Bad("overview as a number", W + "radarr", setting(RADARR, "movie.overview", 42), "movie.overview"),
    # Radarr: files and release
    Bad("negative size", W + "radarr", setting(RADARR, "movieFile.size", -1), "movieFile.size"),
    Bad("size with a fraction", W + "radarr", setting(RADARR, "movieFile.size", 1.5), "movieFile.size"),
    Bad("size past 2^53", W + "radarr", setting(RADARR, "movieFile.size", 2**64), "movieFile.size"),
    Bad("size as text", W + "radarr", setting(RADARR, "release.size", "25 GB"), "release.size"),
    Bad("quality name of 500 characters", W + "radarr", setting(RADARR, "movieFile.quality", "Q" * 500),
        "movieFile.quality"),
    Bad("quality as a number", W + "radarr", setting(RADARR, "movieFile.quality", 2160), "movieFile.quality"),
    Bad("quality on two lines", W + "radarr", setting(RADARR, "release.quality", "Bluray\n2160p"),
        "release.quality"),
    Bad("indexer as an object", W + "radarr", setting(RADARR, "release.indexer", {"name": "x"}), "release.indexer"),
    Bad("release group as an array", W + "radarr", setting(RADARR, "movieFile.releaseGroup", ["GRP"]),
        "movieFile.releaseGroup"),
    Bad("movieFile as an array", W + "radarr", setting(RADARR, "movieFile", [1]), "movieFile"),
    Bad("isUpgrade as text", W + "radarr", setting(RADARR, "isUpgrade", "true"), "isUpgrade"),
    Bad("deletedFiles as a string", W + "radarr", setting(UPGRADE, "deletedFiles", "old.mkv"), "deletedFiles"),
    Bad("deletedFiles of numbers", W + "radarr", setting(UPGRADE, "deletedFiles", [5]), "deletedFiles[0]"),
    Bad("replaced file path relative", W + "radarr", setting(UPGRADE, "deletedFiles", [{"path": "../x.mkv"}]),
        "deletedFiles[0].path"),
    # Radarr: the envelope
    Bad("eventType as a number", W + "radarr", setting(RADARR, "eventType", 5), "eventType"),
    Bad("eventType missing", W + "radarr", without(RADARR, "eventType"), "eventType"),
    Bad("eventType with spaces", W + "radarr", setting(RADARR, "eventType", "Drop Table"), "eventType"),
    Bad("eventType of 100 letters", W + "radarr", setting(RADARR, "eventType", "D" * 100), "eventType"),
    Bad("instance name of 1000 characters", W + "radarr", setting(RADARR, "instanceName", "x" * 1000),
        "instanceName"),
    Bad("application URL not http", W + "radarr", setting(RADARR, "applicationUrl", "javascript:alert(1)"),
        "applicationUrl"),
    Bad("download client as an array", W + "radarr", setting(RADARR, "downloadClient", ["SABnzbd"]),
        "downloadClient"),
    Bad("health level unknown", W + "radarr", setting(RADARR_HEALTH, "level", "catastrophic"), "level"),
    Bad("health level number out of range", W + "radarr", setting(RADARR_HEALTH, "level", 99), "level"),
    Bad("health level unhashable", W + "radarr", setting(RADARR_HEALTH, "level", ["warning"]), "level"),
    Bad("wiki URL as a number", W + "radarr", setting(RADARR_HEALTH, "wikiUrl", 7), "wikiUrl"),
    Bad("health message as an array", W + "radarr", setting(RADARR_HEALTH, "message", ["a"]), "message"),
    Bad("new version as an object", W + "radarr", {"eventType": "ApplicationUpdate", "newVersion": {"v": 5}},
        "newVersion"),
    # Sonarr
    Bad("episode 10^400", W + "sonarr", setting(SONARR, "episodes.0.episodeNumber", 10**400),
        "episodes[0].episodeNumber"),
    Bad("negative season", W + "sonarr", setting(SONARR, "episodes.0.seasonNumber", -1), "episodes[0].seasonNumber"),
    Bad("season as text", W + "sonarr", setting(SONARR, "episodes.0.seasonNumber", "2"), "episodes[0].seasonNumber"),
    Bad("episode number missing", W + "sonarr", setting(SONARR, "episodes", [{"seasonNumber": 2}]),
        "episodes[0].episodeNumber"),
    Bad("episodes as a string", W + "sonarr", setting(SONARR, "episodes", "S02E03"), "episodes"),
    Bad("episodes as an object", W + "sonarr", setting(SONARR, "episodes", {"0": SONARR["episodes"][0]}),
        "episodes"),
    Bad("episodes of arrays", W + "sonarr", setting(SONARR, "episodes", [[2, 3]]), "episodes[0]"),
    Bad("2000 episodes", W + "sonarr", setting(SONARR, "episodes", [{"seasonNumber": 1, "episodeNumber": 1}] * 2000),
        "episodes"),
    Bad("climbing series path", W + "sonarr", setting(SONARR, "series.path", "../../tv"), "series.path"),
    Bad("relative series path", W + "sonarr", setting(SONARR, "series.path", "tv/Severance"), "series.path"),
    Bad("series year 10^30", W + "sonarr", setting(SONARR, "series.year", 10**30), "series.year"),
    Bad("negative tvdb id", W + "sonarr", setting(SONARR, "series.tvdbId", -3), "series.tvdbId"),
    Bad("climbing episode file path", W + "sonarr",
        setting(SONARR, "episodeFile.relativePath", "../../../../etc/passwd"), "episodeFile.relativePath"),
    Bad("absolute episode file path", W + "sonarr", setting(SONARR, "episodeFile.relativePath", "/etc/cron.d/x"),
        "episodeFile.relativePath"),
    Bad("Windows climbing episode file", W + "sonarr",
        setting(SONARR, "episodeFile.relativePath", "Season 02\\..\\..\\..\\x.mkv"), "episodeFile.relativePath"),
    Bad("episodeFile as a string", W + "sonarr", setting(SONARR, "episodeFile", "Season 02/x.mkv"), "episodeFile"),
    Bad("episodeFiles as an object", W + "sonarr", setting(SONARR, "episodeFiles", {"a": 1}), "episodeFiles"),
    Bad("series missing", W + "sonarr", without(SONARR, "series"), "series"),
    # Lidarr
    Bad("climbing artist path", W + "lidarr", setting(LIDARR, "artist.path", "/music/../../../root"), "artist.path"),
    Bad("drive-relative artist path", W + "lidarr", setting(LIDARR, "artist.path", "C:relative"), "artist.path"),
    Bad("MusicBrainz id with spaces", W + "lidarr", setting(LIDARR, "artist.mbId", "a b c"), "artist.mbId"),
    Bad("release date not a date", W + "lidarr", setting(LIDARR, "album.releaseDate", "someday"),
        "album.releaseDate"),
    Bad("release date as a number", W + "lidarr", setting(LIDARR, "album.releaseDate", 1997), "album.releaseDate"),
    Bad("track file negative size", W + "lidarr", setting(LIDARR, "trackFiles.0.size", -1), "trackFiles[0].size"),
    Bad("track files of numbers", W + "lidarr", setting(LIDARR, "trackFiles", [1, 2]), "trackFiles[0]"),
    Bad("artist missing", W + "lidarr", without(LIDARR, "artist"), "artist"),
    # Readarr
    Bad("climbing author path", W + "readarr", setting(READARR, "author.path", "books/../.."), "author.path"),
    Bad("author as an array", W + "readarr", setting(READARR, "author", ["Le Guin"]), "author"),
    Bad("ISBN as a number", W + "readarr", setting(READARR, "book.edition.isbn13", 9780061054884),
        "book.edition.isbn13"),
    Bad("book file quality as an object", W + "readarr", setting(READARR, "bookFiles.0.quality", {}),
        "bookFiles[0].quality"),
    Bad("31 February", W + "readarr", setting(READARR, "book.releaseDate", "1974-02-31T00:00:00Z"),
        "book.releaseDate"),
    # ComfyDeploy
    Bad("webhook run id as a number", W + "comfydeploy", setting(RUNNING, "run_id", 123), "run_id"),
    Bad("run id of 201 characters", W + "comfydeploy", setting(RUNNING, "run_id", "r" * 201), "run_id"),
    Bad("run id climbing", W + "comfydeploy", setting(RUNNING, "run_id", "../../etc"), "run_id"),
    Bad("status unknown", W + "comfydeploy", setting(RUNNING, "status", "exploded"), "status"),
    Bad("status as an array", W + "comfydeploy", setting(RUNNING, "status", ["success"]), "status"),
    Bad("progress 45 on a 0-1 scale", W + "comfydeploy", setting(RUNNING, "progress", 45), "progress"),
    Bad("negative progress", W + "comfydeploy", setting(RUNNING, "progress", -1), "progress"),
    Bad("progress as text", W + "comfydeploy", setting(RUNNING, "progress", "half"), "progress"),
    Bad("progress 10^30", W + "comfydeploy", setting(RUNNING, "progress", 1e30), "progress"),
    Bad("live status as an object", W + "comfydeploy", setting(RUNNING, "live_status", {"m": "x"}), "live_status"),
    Bad("outputs as a string", W + "comfydeploy", setting(SUCCESS, "outputs", "x"), "outputs"),
    Bad("outputs of numbers", W + "comfydeploy", setting(SUCCESS, "outputs", [1]), "outputs[0]"),
    Bad("outputs as an object", W + "comfydeploy", setting(SUCCESS, "outputs", {"url": "https://a.example/x"}),
        "outputs"),
    Bad("event type other", W + "comfydeploy", setting(RUNNING, "event_type", "run.deleted"), "event_type"),
    # generic
    Bad("title as a number", W + "generic", setting(GENERIC, "title", 5), "title"),
    Bad("title as an array", W + "generic", setting(GENERIC, "title", ["a"]), "title"),
    Bad("body as an object", W + "generic", setting(GENERIC, "body", {"text": "y"}), "body"),
    Bad("level unknown", W + "generic", setting(GENERIC, "level", "debug"), "level"),
    Bad("kind of two words", W + "generic", setting(GENERIC, "kind", "two words"), "kind"),
    Bad("kind of 65 letters", W + "generic", setting(GENERIC, "kind", "k" * 65), "kind"),
    Bad("paths as a string", W + "generic", setting(GENERIC, "paths", "/srv"), "paths"),
    Bad("climbing paths", W + "generic", setting(GENERIC, "paths", ["../../../etc/passwd"]), "paths[0]"),
    Bad("relative paths", W + "generic", setting(GENERIC, "paths", ["relative/dir"]), "paths[0]"),
    Bad("paths with a number", W + "generic", setting(GENERIC, "paths", ["/srv", 5]), "paths[1]"),
    Bad("paths of objects", W + "generic", setting(GENERIC, "paths", [{"p": "/srv"}]), "paths[0]"),
    Bad("101 paths", W + "generic", setting(GENERIC, "paths", [f"/srv/{i}" for i in range(101)]), "paths"),
    Bad("nothing to say", W + "generic", {"kind": "backup", "title": "  ", "body": ""}, "title"),
    # POST /notify
    Bad("message with nothing to say", N, {"title": " ", "body": ""}, "title"),
    Bad("message title as a number", N, {"title": 5}, "title"),
    Bad("message body as an object", N, {"body": {"text": "y"}}, "body"),
    Bad("message level unknown", N, {"title": "x", "level": "critical"}, "level"),
    Bad("message to unknown services", N, {"title": "x", "services": ["nosuch", "other"]}, "services"),
    Bad("message services as a string", N, {"title": "x", "services": "chat"}, "services"),
    Bad("message services of numbers", N, {"title": "x", "services": [5]}, "services[0]"),
    Bad("message services empty", N, {"title": "x", "services": []}, "services"),
    Bad("message with a stray key", N, {"title": "x", "kind": "backup"}, "kind"),
    Bad("message not JSON", N, b"{title: x}", None, (400,)),
    # POST /runs
    Bad("cost unit an empty array", R, setting(RUN, "cost_rate.unit", []), "cost_rate.unit"),
    Bad("cost unit an empty object", R, setting(RUN, "cost_rate.unit", {}), "cost_rate.unit"),
    Bad("cost unit unknown", R, setting(RUN, "cost_rate.unit", "fortnight"), "cost_rate.unit"),
    Bad("cost amount as text", R, setting(RUN, "cost_rate.amount", "1"), "cost_rate.amount"),
    Bad("cost amount negative", R, setting(RUN, "cost_rate.amount", -1), "cost_rate.amount"),
    Bad("cost amount 10^30", R, setting(RUN, "cost_rate.amount", 1e30), "cost_rate.amount"),
    Bad("cost amount 10^400", R, setting(RUN, "cost_rate.amount", 10**400), "cost_rate.amount"),
    Bad("cost rate as an array", R, setting(RUN, "cost_rate", [0.5, "second"]), "cost_rate"),
    Bad("cost rate with a stray key", R, setting(RUN, "cost_rate.per", "second"), "cost_rate.per"),
    Bad("run id with a space", R, setting(RUN, "id", "has space"), "id"),
    Bad("registered run id as a number", R, setting(RUN, "id", 5), "id"),
    Bad("run name as a number", R, setting(RUN, "name", 7), "name"),
    Bad("run name of 5000 characters", R, setting(RUN, "name", "n" * 5000), "name"),
    Bad("notify as a string", R, setting(RUN, "notify", "chat"), "notify"),
    Bad("notify an unknown service", R, setting(RUN, "notify", ["nosuch"]), "notify[0]"),
    Bad("notify with a number", R, setting(RUN, "notify", [1]), "notify[0]"),
    Bad("context as an array", R, setting(RUN, "context", []), "context"),
    Bad("context value an object", R, setting(RUN, "context", {"chat_id": {"id": 1}}), "context.chat_id"),
    Bad("context value 10^30", R, setting(RUN, "context", {"chat_id": 10**30}), "context.chat_id"),
    Bad("context key not a placeholder", R, setting(RUN, "context", {"chat id": "1"}), "context.chat id"),
    Bad("callback URL as a number", R, setting(RUN, "callback_url", 5), "callback_url"),
    Bad("callback URL not http", R, setting(RUN, "callback_url", "ftp://127.0.0.1/x"), "callback_url"),
    Bad("callback URL of 5000 characters", R, setting(RUN, "callback_url", "http://127.0.0.1/" + "x" * 5000),
        "callback_url"),
    Bad("an unknown key", R, setting(RUN, "notfy", ["chat"]), "notfy"),
    # numbers that overflow to infinity, written as JSON text
    Bad("year 1e999", W + "radarr", raw(setting(RADARR, "movie.year", "@@"), "@@", "1e999"), "movie.year",
        NON_FINITE),
    Bad("episode -1e999", W + "sonarr", raw(setting(SONARR, "episodes.0.episodeNumber", "@@"), "@@", "-1e999"),
        "episodes[0].episodeNumber", NON_FINITE),
    Bad("size 1e999", W + "lidarr", raw(setting(LIDARR, "trackFiles.0.size", "@@"), "@@", "1e999"),
        "trackFiles[0].size", NON_FINITE),
    Bad("outputs holding 1e999", W + "comfydeploy",
        raw(setting(SUCCESS, "outputs.0.data.seed", "@@"), "@@", "1e999"), "outputs[0].data.seed", NON_FINITE),
    Bad("progress 1e999", W + "comfydeploy", raw(setting(RUNNING, "progress", "@@"), "@@", "1e999"), "progress",
        NON_FINITE),
    Bad("generic path 1e999", W + "generic", raw(setting(GENERIC, "paths", ["@@"]), "@@", "1e999"), "paths[0]",
        NON_FINITE),
    Bad("cost amount 1e999", R, raw(setting(RUN, "cost_rate.amount", "@@"), "@@", "1e999"), "cost_rate.amount",
        NON_FINITE),
    Bad("context value -1e999", R, raw(setting(RUN, "context", {"chat_id": "@@"}), "@@", "-1e999"),
        "context.chat_id", NON_FINITE),
    # bodies that are not objects of JSON at all
    Bad("nested past the depth limit", W + "generic", json.dumps(deep(100)).encode(), None, (400,)),
    Bad("an array, not an object", W + "radarr", b"[1, 2]", None, (400,)),
    Bad("not JSON", W + "comfydeploy", b"{run_id: r1}", None, (400,)),
    Bad("NaN literal", R, b'{"cost_rate": {"amount": NaN}}', None, (400,)),
    Bad("form-encoded", W + "sonarr", b"eventType=Download", None, (415,),
        headers={"content-type": "application/x-www-form-urlencoded"}),
]


def test_the_corpus_holds_at_least_sixty_kinds_across_every_source_and_runs() -> None:
    assert len({bad.kind for bad in CORPUS}) == len(CORPUS) >= 60
    targets = {bad.path for bad in CORPUS}
    assert targets == {W + s for s in ("radarr", "sonarr", "lidarr", "readarr", "comfydeploy", "generic")} | {R, N}


def send(world: World, bad: Bad) -> httpx.Response:
    if isinstance(bad.body, bytes):
        headers = {"content-type": "application/json", **bad.headers}
        return world.client.post(bad.path, content=bad.body, headers=headers)
    return world.client.post(bad.path, json=bad.body)


@pytest.mark.parametrize("bad", CORPUS, ids=[bad.kind for bad in CORPUS])
def test_bad_input_is_refused_with_a_4xx_naming_the_field_and_stores_nothing(world: World, bad: Bad) -> None:
    before = world.counts()
    answer = send(world, bad)
    assert answer.status_code in bad.statuses, (answer.status_code, answer.text[:300])
    error = answer.json()
    assert set(error) == {"error", "detail"} and error["error"] and error["detail"].strip()
    if answer.status_code == 422:
        assert error["error"] == "invalid_payload"
        assert bad.field_name is not None and error["detail"].startswith(f"field '{bad.field_name}"), error["detail"]
        assert len(error["detail"]) < 600               # the detail quotes what came, briefly
    assert world.counts() == before, "garbage must not become an event, a job or a run"
    assert world.client.get("/health").status_code == 200


def test_the_good_bodies_the_corpus_is_made_from_are_accepted_and_readable(world: World) -> None:
    """The controls: without their one bad value, the same bodies are taken and can be read back."""
    for path, body in ((W + "radarr", RADARR), (W + "radarr", RADARR_HEALTH), (W + "sonarr", SONARR),
                       (W + "lidarr", LIDARR), (W + "readarr", READARR), (W + "comfydeploy", RUNNING),
                       (W + "generic", GENERIC), (W + "radarr", UPGRADE),
                       (N, {"title": "Control", "body": "x", "level": "success", "services": ["chat"]})):
        answer = world.client.post(path, json=body)
        assert answer.status_code == 202, (path, answer.text)
        shown = world.client.get(f"/events/{answer.json()['event_id']}")
        assert shown.status_code == 200 and shown.json()["id"] == answer.json()["event_id"]
    registered = world.client.post(R, json=RUN)
    assert registered.status_code == 201, registered.text
    assert world.client.get(f"/runs/{RUN['id']}").json()["status"] == "queued"


def test_a_900_kib_title_is_cut_at_ingest_and_then_delivered(world: World) -> None:
    answer = world.client.post(W + "generic", json={"kind": "huge", "title": "T" * 900 * 1024,
                                                    "body": "B" * 100_000})
    assert answer.status_code == 202, answer.text[:300]
    event = world.client.get(f"/events/{answer.json()['event_id']}").json()
    assert len(event["title"]) == 256 and event["title"].endswith("…")
    assert len(event["body"]) == 4000 and event["body"].endswith("…")
    sent = wait_for(lambda: [b for b in world.chat.bodies() if isinstance(b, dict) and b.get("title", "")[:3] == "TTT"],
                    message="the notification of the huge title")
    assert len(sent[0]["title"]) <= 256 and sent[0]["message"].startswith("BBB")
    wait_for(lambda: world.client.get(f"/events/{event['id']}").json()["jobs"][0]["delivery"] == "sent",
             message="the job marked sent")


def test_library_refreshes_get_normalised_paths_in_their_own_style(world: World) -> None:
    folders = {"/data//media/movies/./Arrival (2016)/": "/data/media/movies/Arrival (2016)",
               "D:\\Media\\\\Movies\\Heat (1995)\\": "D:\\Media\\Movies\\Heat (1995)",
               "\\\\nas\\media\\\\movies\\Cats (2019)": "\\\\nas\\media\\movies\\Cats (2019)"}
    for given, normal in folders.items():
        answer = world.client.post(W + "radarr", json=setting(RADARR, "movie.folderPath", given))
        assert answer.status_code == 202, answer.text
        assert world.client.get(f"/events/{answer.json()['event_id']}").json()["paths"] == [normal]
    wanted = set(folders.values())
    wait_for(lambda: wanted <= {u["Path"] for b in world.library.bodies() if isinstance(b, dict)
                                for u in b.get("Updates", [])}, message="the three library refreshes")


def test_rows_stored_by_an_older_version_with_infinity_and_nan_still_read(world: World) -> None:
    """Before this version, 1e999 reached the store; such rows must still be shown, as null."""
    old = Run(id="older-version-run", status=RunStatus.COMPLETED, created_at=1, updated_at=2, started_at=1,
              finished_at=2, name="old", progress=float("nan"), cost_amount=float("inf"), cost_unit="second",
              outputs=({"data": {"seed": float("inf"), "images": [{"url": "https://a.example/1.png"}]}},))
    event = Event(source="comfydeploy", source_type="comfydeploy", kind="run.completed", title="old",
                  media={"run_id": old.id, "status": "completed", "progress": float("nan"),
                         "outputs": [{"seed": float("-inf")}]}, payload='{"seed": 1e999}')
    with world.store.transaction() as tx:
        tx.run_for_update(old.id, create=old)
        event_id = tx.insert_event(event, 3.0, None)
        tx.save_run(replace(old, final_event_id=event_id))
    run = world.client.get(f"/runs/{old.id}")
    assert run.status_code == 200, run.text
    shown = run.json()
    assert shown["progress"] is None and shown["cost_usd"] is None and shown["outputs"][0]["data"]["seed"] is None
    assert world.client.get(f"/events/{event_id}").status_code == 200
    assert any(r["id"] == old.id for r in cli_json("runs", "list", config=world.config, env=world.daemon.env))


def test_the_daemon_logged_no_internal_error(world: World) -> None:
    log = world.daemon.log()
    assert "Traceback" not in log and "internal error" not in log and "unexpected error" not in log
    assert world.client.get("/health").json()["status"] == "ok"
