"""`notifyd jobs`: list, show, retry, cancel, purge."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from notifyd.cli.common import MAX_ID, ConfigOption, JsonOption, LimitOption, open_store, warn_if_unserved
from notifyd.cli.output import cli_errors, fail, print_json, print_table, say
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
    """List delivery jobs, newest first."""
    if state is not None and state not in STATES:
        raise fail(f"--state must be one of: {', '.join(STATES)}", 2)
    with cli_errors(), open_store(config) as (_, store):
        jobs = list_jobs(store, state, service, limit, include_maintenance=all_)
    if json:
        print_json(jobs)
        return
    print_table(None, ["id", "event", "service", "kind", "pri", "state", "attempts", "created", "last error"],
                [[j["id"], j["event_id"], j["service"], j["kind"], j["priority"], j["state"],
                  f"{j['attempts']}/{j['max_attempts']}", j["created_at"], j["last_error"]] for j in jobs])


@app.command()
def show(job_id: Annotated[int, typer.Argument(help="The job's id.", min=1, max=MAX_ID)],
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show one job and every attempt it made."""
    with cli_errors(), open_store(config) as (_, store):
        job = show_job(store, job_id)
    if json:
        print_json(job)
        return
    say(f"[bold]job {job['id']}[/bold]  {job['service']} ({job['kind']}), event {job['event_id']}, "
        f"priority {job['priority']}")
    say(f"state [bold]{job['state']}[/bold] · attempts {job['attempts']}/{job['max_attempts']} · "
        f"run at {job['run_at']} · finished {job['finished_at'] or '-'}")
    if job["last_error"]:
        say(f"last error: {job['last_error']}")
    print_table("attempts", ["n", "started", "finished", "outcome", "error"],
                [[a["n"], a["started_at"], a["finished_at"], a["outcome"], a["error"]] for a in job["attempt_log"]])


@app.command()
def retry(job_ids: Annotated[list[int] | None, typer.Argument(help="Job ids.", min=1, max=MAX_ID)] = None,
          dead: Annotated[bool, typer.Option("--dead", help="Every dead job.")] = False,
          config: ConfigOption = None) -> None:
    """Queue dead (or cancelled) jobs again with a fresh attempt budget."""
    with cli_errors(), open_store(config) as (_, store):
        ids = list(job_ids or []) + (store.dead_ids() if dead else [])
        if not ids:
            raise fail("name job ids, or pass --dead", 2)
        results = store.retry(ids, time.time())
        if any(r == "queued" for r in results.values()):
            warn_if_unserved(store, "the job")
    _report(results, "queued")


@app.command()
def cancel(job_ids: Annotated[list[int], typer.Argument(help="Job ids.", min=1, max=MAX_ID)],
           config: ConfigOption = None) -> None:
    """Cancel queued jobs."""
    with cli_errors(), open_store(config) as (_, store):
        results = store.cancel(job_ids, time.time())
    _report(results, "cancelled")


@app.command()
def purge(older_than: Annotated[str | None, typer.Option(
              "--older-than", help="Every finished job older than this (default: the config's "
                                   "store.keep_succeeded and store.keep_dead).")] = None,
          config: ConfigOption = None) -> None:
    """Delete finished jobs (and their attempts and orphaned events) past their retention."""
    seconds = None
    if older_than is not None:
        try:
            seconds = parse_duration(older_than)
        except ValueError as exc:
            raise fail(f"--older-than: {exc}", 2) from None
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from notifyd.retention import purge_by_retention

    with cli_errors(), open_store(config) as (cfg, store), Progress(
            SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
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
    say(f"purged {total} finished job(s) {rule}")


def _report(results: dict[int, str], good: str) -> None:
    failed = False
    for job_id, result in results.items():
        if result == good:
            say(f"job {job_id}: {result}")
        else:
            failed = True
            say(f"[red]job {job_id}: {result}[/red]")
    if failed:
        raise typer.Exit(1)
