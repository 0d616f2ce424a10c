"""The top-level commands that are not a group: `serve`, `send` and `stats` (the table in
`notifyd.cli` names each, and imports this module only when one of them runs)."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer

from notifyd.cli.common import ConfigOption, JsonOption, open_store, warn_if_unserved
from notifyd.cli.output import ago, cli_errors, fail, print_json, print_table, say


class LogFormat(StrEnum):
    """How `serve` writes its log lines."""

    TEXT = "text"
    JSON = "json"


class LogLevel(StrEnum):
    """The least severe log line `serve` writes."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def serve(config: ConfigOption = None,
          listen: Annotated[str | None, typer.Option("--listen", help="HOST:PORT, overriding server.listen.")] = None,
          threads: Annotated[int | None, typer.Option("--threads", min=1, max=64,
                                                         help="Worker threads, overriding worker.threads.")] = None,
          log_format: Annotated[LogFormat, typer.Option("--log-format", help="text or json.")] = LogFormat.TEXT,
          log_level: Annotated[LogLevel, typer.Option(
              "--log-level", help="The least severe line to log. httpx's line per request and other "
                                  "libraries' chatter show only at debug.")] = LogLevel.INFO,
          watch: Annotated[bool, typer.Option("--watch/--no-watch", help="Reload the config when its file "
                                              "changes (SIGHUP always reloads).")] = True) -> None:
    """Run the daemon: the HTTP listener and the delivery workers. Before binding it runs the checks
    of `notifyd config check`."""
    from notifyd.daemon import ServeOptions
    from notifyd.daemon import serve as run_daemon

    with cli_errors():
        code = run_daemon(ServeOptions(config=config, listen=listen, threads=threads, log_format=log_format.value,
                                       log_level=log_level.value, watch=watch))
    raise typer.Exit(code)


def send(body: Annotated[str, typer.Argument(help="The message text.")],
         title: Annotated[str | None, typer.Option("--title", help="A title.")] = None,
         service: Annotated[list[str] | None, typer.Option("--service", "-s",
                            help="Only these services (repeat the option); default: every enabled service.")] = None,
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Queue a manual notification; the running daemon delivers it within a second.

    --json prints {"event_id", "kind", "jobs": [{"id", "service"}], "duplicate": false}, the shape
    of a webhook's answer. No enabled service taking it is exit 1.
    """
    from notifyd.ingest import record_event
    from notifyd.manual import CLI_SOURCE, ManualMessage, manual_event, service_problem

    if not body.strip():
        raise fail("the message is empty", 2)
    with cli_errors(), open_store(config) as (cfg, store):
        problem = service_problem(cfg, service or [])
        if problem is not None:
            raise fail(problem, 1)
        event = manual_event(ManualMessage(title=title or "", body=body), source=CLI_SOURCE)
        with store.transaction() as tx:
            result = record_event(tx, event, cfg, time.time(), only=service or None)
        if result.jobs:
            warn_if_unserved(store, "the message")
    jobs_ = [{"id": j.id, "service": j.service} for j in result.jobs]
    if json:
        print_json({"event_id": result.event_id, "kind": result.kind, "jobs": jobs_, "duplicate": False})
    if not jobs_:
        raise fail(f"event {result.event_id} recorded, but no enabled service takes it", 1)
    if json:
        return
    say(f"event {result.event_id} queued: " + ", ".join(f"job {j['id']} → {j['service']}" for j in jobs_))


def stats(json: JsonOption = False, config: ConfigOption = None) -> None:
    """One screen: jobs by state and service, the last hour, the oldest queued job, dead jobs.

    --json: {"jobs": {state: n}, "services": {name: {state: n}}, "queue": {"queued", "running",
    "dead", "oldest_queued_s"}, "last_hour": {"events", "jobs_finished"}, "events_total",
    "dead_recent": [job]}.
    """
    from notifyd.views import stats as read_stats

    with cli_errors(), open_store(config) as (_, store):
        data = read_stats(store, time.time())
    if json:
        print_json(data)
        return
    queue = data["queue"]
    oldest = queue["oldest_queued_s"]
    say(f"[bold]queue[/bold]  queued {queue['queued']} · running {queue['running']} · dead {queue['dead']} · "
        f"oldest due {'-' if oldest is None else f'{oldest:.0f}s'}")
    hour = data["last_hour"]
    finished = hour["jobs_finished"]
    say(f"[bold]last hour[/bold]  {hour['events']} events · {finished.get('succeeded', 0)} sent · "
        f"{finished.get('dead', 0)} dead")
    states = ("queued", "running", "succeeded", "dead", "cancelled", "skipped")
    print_table("by service", ["service", *states],
                [[name, *[counts.get(s, 0) for s in states]] for name, counts in data["services"].items()],
                empty="no jobs yet")
    print_table("dead jobs needing attention (`notifyd jobs retry ID`)", ["id", "service", "finished", "error"],
                [[j["id"], j["service"], ago(j["finished_at"]), j["last_error"]] for j in data["dead_recent"]])
