"""`notifyd config`: init (mode 0600), check (what `serve` checks before it starts), show (secrets masked)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from notifyd.cli.common import ConfigOption, JsonOption
from notifyd.cli.output import escape, fail, print_json, say
from notifyd.config import default_config_path, default_state_path, load_config, mask_database_url

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Create, validate and show the config.")


@app.command()
def init(path: Annotated[Path | None, typer.Argument(help="Where to write (default: "
                                                             "$XDG_CONFIG_HOME/notifyd/config.toml).")] = None,
         force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
         json: JsonOption = False) -> None:
    """Write a commented starter config, readable by its owner only (mode 0600: it will hold tokens).

    --json prints {"file", "store", "mode": "0600"}.
    """
    target = path or default_config_path()
    if target.exists() and not force:
        raise fail(f"{target} exists; pass --force to overwrite it", 1)
    from notifyd.config.starter import starter_config
    from notifyd.config_edit import write_config_file

    write_config_file(target, starter_config(target.absolute()), mode=0o600)
    store = default_state_path(None, target.absolute())
    if json:
        print_json({"file": str(target), "store": str(store), "mode": "0600"})
        return
    say(escape(f"wrote {target} (its store: {store})"))


@app.command()
def check(json: JsonOption = False, config: ConfigOption = None) -> None:
    """Validate the config and make every check `serve` makes before it starts: a token for a
    public listen address, Apprise URLs a plugin accepts, templates, paths, and a store that can be
    reached and written. Exit 2 with file, line and key when the config is wrong; exit 1 when the
    store cannot be used.

    --json prints {"file" (null with no config file), "ok": true, "services": N, "store": {"engine",
    "location"}}.
    """
    from notifyd.preflight import check_config, check_store

    cfg = load_config(config)
    check_config(cfg)
    check_store(cfg.store)
    engine, location = ("postgresql", mask_database_url(cfg.store.url)) if cfg.store.url else \
        ("sqlite", str(cfg.store.path))
    if json:
        print_json({"file": str(cfg.path) if cfg.path else None, "ok": True, "services": len(cfg.services),
                    "store": {"engine": engine, "location": location}})
        return
    say(escape(f"{cfg.path or 'defaults (no config file)'}: ok, {len(cfg.services)} service(s), "
               f"store {engine} {location}"))


@app.command()
def show(json: JsonOption = False, config: ConfigOption = None) -> None:
    """Print the effective config: every section, defaults filled in, as a file that loads again
    (`notifyd config show > copy.toml` passes `config check`). Secrets are masked: *** for tokens
    and passwords, 0 and x in place of a URL's credentials or a whsec_ secret, each marked `# masked`.

    --json prints {"file" (null with no config file), "config": {"server", "store", "worker", "runs",
    "sources", "services"}} with the same masking.
    """
    from notifyd.config.render import effective_config, effective_toml, plain

    cfg = load_config(config)
    if json:
        print_json({"file": str(cfg.path) if cfg.path else None, "config": plain(effective_config(cfg))})
        return
    sys.stdout.write(effective_toml(cfg))
