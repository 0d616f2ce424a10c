"""`notifyd store`: what the store is (engine, location, schema, rows) and moving it to PostgreSQL."""

from __future__ import annotations

from typing import Annotated

import typer

from notifyd.cli.common import ConfigOption, JsonOption, open_store
from notifyd.cli.output import cli_errors, console, escape, fail, print_json, print_table, say

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Inspect the store, or move it to PostgreSQL.")


@app.command()
def info(json: JsonOption = False, config: ConfigOption = None) -> None:
    """Engine, location (password masked), schema version and row counts.

    --json prints {"engine", "location", "schema_version", "counts": {table: rows}}.
    """
    with cli_errors(), open_store(config) as (_, store):
        found = store.info()
    data = {"engine": found.engine, "location": found.location, "schema_version": found.schema_version,
            "counts": dict(found.counts)}
    if json:
        print_json(data)
        return
    say(f"[bold]{found.engine}[/bold]  {escape(found.location)}  (schema version {found.schema_version})")
    print_table(None, ["table", "rows"], [[t, n] for t, n in found.counts.items()])


@app.command()
def copy(to: Annotated[str, typer.Option("--to", help="The PostgreSQL URL to copy into "
                                         "(postgresql://user:password@host:5432/db); its database must be empty.")],
         json: JsonOption = False, config: ConfigOption = None) -> None:
    """Copy this SQLite store (events, jobs, attempts, runs, service state) into an empty PostgreSQL
    database. Stop the daemon first; the command refuses while one holds the store.

    --json prints {"from", "to" (password masked), "copied": {table: rows}}.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from notifyd.config import ConfigError, load_config, postgres_url
    from notifyd.config import mask_database_url as mask_url
    from notifyd.store.copy import copy_store, rows_to_copy
    from notifyd.store.postgres import PostgresStore
    from notifyd.store.sqlite import SqliteStore

    with cli_errors():
        cfg = load_config(config)
        if cfg.store.url:
            raise fail("this config already uses PostgreSQL ([store] url); store copy moves a SQLite store", 2)
        try:
            postgres_url(to)
        except ValueError as exc:
            raise ConfigError(str(exc), file="--to") from None
        source = SqliteStore(cfg.store.path, synchronous=cfg.store.synchronous)
        target = PostgresStore(to, node_id="store-copy", pool_size=2)
        try:
            totals = rows_to_copy(source)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          transient=True, console=console(stderr=True)) as progress:
                tasks = {table: progress.add_task(table, total=n) for table, n in totals.items()}
                copied = copy_store(source, target, lambda table, n: progress.advance(tasks[table], n))
        finally:
            target.close()
            source.close()
    if json:
        print_json({"from": str(cfg.store.path), "to": mask_url(to), "copied": dict(copied)})
        return
    for table, n in copied.items():
        say(f"{table}: {n} row(s)")
    where = str(cfg.path) if cfg.path else "your config file"
    say(escape(f"copied {cfg.store.path} into {mask_url(to)}.\nNext: in {where}, replace [store] path with "
               f"url = \"{mask_url(to)}\" (with the real password, or set $NOTIFYD_STORE_URL), then start "
               "notifyd serve on each node."))
