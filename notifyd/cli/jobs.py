"""`notifyd jobs`: list, show, retry, cancel, purge."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from notifyd.cli.common import MAX_ID, ConfigOption, JsonOption, LimitOption, open_store, warn_if_unserved
from notifyd.cli.output import ago, cli_errors, escape, fail, print_json, print_table, say
from notifyd.model import JobState
from notifyd.units import format_duration, parse_duration
from notifyd.views import list_jobs, show_job

STATES = tuple(str(s) for s in JobState)

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect and steer delivery jobs.")


@app.command("list")
def list_(state: Annotated[str | None, typer.Option("--state", help=f"One of: {', '.join(STATES)}.")] = None,
          service: Annotated[str | None, typer.Option("--service", help="Only this service's jobs.")] = None,
          all_: Annotated[bool, typer.Option("--all", help="Include maintenance jobs (retention).")] = False,
          limit: LimitOption = 50, json: JsonOption = False, config: ConfigOption = None) -> None:
    """List delivery jobs, newest first.

    --json prints [{"id", "event_id", "service", "kind", "priority", "state", "attempts",
    "max_attempts", "run_at", "created_at", "finished_at", "last_error", "delivery"}].
    """
    if state is not None and state not in STATES:
        raise fail(f"--state must be one of: {', '.join(STATES)}", 2)
    with cli_errors(), open_store(config) as (_, store):
        jobs = list_jobs(store, state, service, limit, include_maintenance=all_)
    if json:
        print_json(jobs)
        return
    print_table(None, ["id", "event", "service", "kind", "pri", "state", "tries", "created", "last error"],
                [[j["id"], j["event_id"], j["service"], j["kind"], j["priority"], _state(j),
                  f"{j['attempts']}/{j['max_attempts']}", ago(j["created_at"]), j["last_error"]] for j in jobs],
                empty="no jobs match")


def _state(job: dict) -> str:
    """A queued job that waits (a retry, a digest's window, quiet hours) says until when: "queued, due in 8h"."""
    due = ago(job["run_at"]) if job["state"] == JobState.QUEUED else None
    return f"{job['state']}, due {due}" if due and due.startswith("in ") else str(job["state"])


@app.command()
def show(job_id: Annotated[int, typer.Argument(help="The job's id.", min=1, max=MAX_ID)],
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one job and every attempt it made.

    --json prints the job of `jobs list --json` with "attempt_log": [{"n", "started_at",
    "finished_at", "outcome", "error", "detail", "node"}].
    """
    with cli_errors(), open_store(config) as (_, store):
        job = show_job(store, job_id)
    if json:
        print_json(job)
        return
    say(f"[bold]job {job['id']}[/bold]  {escape(job['service'])} ({job['kind']}), event {job['event_id']}, "
        f"priority {job['priority']}")
    say(f"state [bold]{job['state']}[/bold] · attempts {job['attempts']}/{job['max_attempts']} · "
        f"run at {job['run_at']} · finished {job['finished_at'] or '-'}")
    if job["last_error"]:
        say(f"last error: {escape(job['last_error'])}")
    print_table("attempts", ["n", "started", "finished", "outcome", "error"],
                [[a["n"], ago(a["started_at"]), ago(a["finished_at"]), a["outcome"], a["error"]]
                 for a in job["attempt_log"]], empty="no attempts yet")


@app.command()
def retry(job_ids: Annotated[list[int] | None, typer.Argument(help="Job ids.", min=1, max=MAX_ID)] = None,
          dead: Annotated[bool, typer.Option("--dead", help="Every dead job.")] = False,
          json: JsonOption = False, config: ConfigOption = None) -> None:
    """Queue dead (or cancelled) jobs again with a fresh attempt budget.

    --json prints [{"id", "ok", "state", "error"}] per job; any job not queued again is exit 1.
    """
    if not job_ids and not dead:
        raise fail("name job ids, or pass --dead", 2)
    with cli_errors(), open_store(config) as (_, store):
        ids = list(job_ids or []) + (store.dead_ids() if dead else [])
        results = store.retry(ids, time.time()) if ids else {}
        if any(r == "queued" for r in results.values()):
            warn_if_unserved(store, "the job")
    if not ids and not json:
        say("no dead jobs to retry")
    _report(results, "queued", json)


@app.command()
def cancel(job_ids: Annotated[list[int], typer.Argument(help="Job ids.", min=1, max=MAX_ID)],
           json: JsonOption = False, config: ConfigOption = None) -> None:
    """Cancel queued jobs.

    --json prints [{"id", "ok", "state", "error"}] per job; any job not cancelled is exit 1.
    """
    with cli_errors(), open_store(config) as (_, store):
        results = store.cancel(job_ids, time.time())
    _report(results, "cancelled", json)


@app.command()
def purge(older_than: Annotated[str | None, typer.Option(
              "--older-than", help="Every finished job older than this (default: the config's "
                                   "store.keep_succeeded and store.keep_dead).")] = None,
          json: JsonOption = False, config: ConfigOption = None) -> None:
    """Delete finished jobs (and their attempts and orphaned events) past their retention.

    --json prints {"purged": N, "rule": "…"} (the rule in words).
    """
    seconds = None
    if older_than is not None:
        try:
            seconds = parse_duration(older_than)
        except ValueError as exc:
            raise fail(f"--older-than: {exc}", 2) from None
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from notifyd.cli.output import console
    from notifyd.retention import purge_by_retention

    with cli_errors(), open_store(config) as (cfg, store), Progress(
            SpinnerColumn(), TextColumn("{task.description}"), transient=True,
            console=console(stderr=True)) as progress:
        task = progress.add_task("purging…", total=None)
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            progress.update(task, description=f"purged {done[0]} jobs…")

        if seconds is None:
            total = purge_by_retention(store, cfg.store.keep_succeeded, cfg.store.keep_dead, time.time(),
                                       progress=step)
            rule = (f"past retention (succeeded {format_duration(cfg.store.keep_succeeded)}, "
                    f"dead {format_duration(cfg.store.keep_dead)})")
        else:
            total = store.purge(time.time() - seconds, progress=step)
            rule = f"older than {older_than}"
    if json:
        print_json({"purged": total, "rule": rule})
    else:
        say(f"purged {total} finished job(s) {rule}")


def _report(results: dict[int, str], good: str, json: bool) -> None:
    """What became of each job: done on stdout, each refusal one error line on stderr (exit 1)."""
    refused = {job_id: f"no job {job_id}" if result == "not found" else f"job {job_id} {result}"
               for job_id, result in results.items() if result != good}
    if json:
        print_json([{"id": job_id, "ok": job_id not in refused, "state": None if job_id in refused else good,
                     "error": refused.get(job_id)} for job_id in results])
    else:
        for job_id in results:
            if job_id not in refused:
                say(f"job {job_id}: {good}")
    exit_ = None
    for error in refused.values():
        exit_ = fail(error, 1)
    if exit_ is not None:
        raise exit_
