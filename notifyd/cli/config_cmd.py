"""`notifyd config`: init, check, show (secrets masked)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from notifyd.channels import describe_target
from notifyd.cli.common import ConfigOption
from notifyd.cli.output import cli_errors, fail, say
from notifyd.config import (
    SECRET_KEYS,
    Config,
    default_config_path,
    default_state_path,
    load_config,
    locate_key,
    mask_database_url,
)
from notifyd.errors import ConfigError
from notifyd.units import format_duration

app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="Create, validate and show the config.")


@app.command()
def init(path: Annotated[Path | None, typer.Argument(help="Where to write (default: "
                                                             "$XDG_CONFIG_HOME/notifyd/config.toml).")] = None,
         force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False) -> None:
    """Write a commented starter config."""
    target = path or default_config_path()
    if target.exists() and not force:
        raise fail(f"{target} exists; pass --force to overwrite it", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    from notifyd.config.starter import starter_config

    target.write_text(starter_config(target.absolute()), "utf-8")
    say(f"wrote {target} (its store: {default_state_path(None, target.absolute())})")


@app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the config; exit 2 with file, line and key when something is wrong."""
    with cli_errors():
        cfg = load_config(config)
        for service in cfg.services.values():
            if describe_target(service).endswith("(invalid)"):
                key = f"services.{service.name}.url"
                text = cfg.path.read_text(encoding="utf-8") if cfg.path else ""
                raise ConfigError("no Apprise plugin accepts this URL", file=str(cfg.path), key=key,
                                  line=locate_key(text, key))
    say(f"{cfg.path or 'defaults (no config file)'}: ok, {len(cfg.services)} service(s)")


@app.command()
def show(config: ConfigOption = None) -> None:
    """Print the effective config (defaults filled in) with every secret masked."""
    import tomli_w

    with cli_errors():
        cfg = load_config(config)
        text = tomli_w.dumps(masked(cfg))
    say(f"# {cfg.path or 'no config file: built-in defaults'}")
    typer.echo(text)


def masked(cfg: Config) -> dict[str, Any]:
    """The config as plain TOML data, secrets replaced by *** and URLs in their privacy form."""
    server: dict[str, Any] = {"listen": cfg.server.listen, "max_body": cfg.server.max_body,
                              "dedupe_window": format_duration(cfg.server.dedupe_window),
                              "header_timeout": format_duration(cfg.server.header_timeout),
                              "body_timeout": format_duration(cfg.server.body_timeout),
                              "idle_timeout": format_duration(cfg.server.idle_timeout),
                              "max_connections": cfg.server.max_connections,
                              "auth_failures": cfg.server.auth_failures, "ui": cfg.server.ui}
    if cfg.server.token:
        server["token"] = "***"
    data: dict[str, Any] = {
        "server": server,
        "store": {**({"url": mask_database_url(cfg.store.url)} if cfg.store.url else {"path": str(cfg.store.path)}),
                  "synchronous": cfg.store.synchronous,
                  "keep_succeeded": format_duration(cfg.store.keep_succeeded),
                  "keep_dead": format_duration(cfg.store.keep_dead)},
        "worker": {"threads": cfg.worker.threads, "max_attempts": cfg.worker.max_attempts,
                   "backoff": [format_duration(s) for s in cfg.worker.backoff],
                   "timeout": format_duration(cfg.worker.timeout),
                   "lease": format_duration(cfg.worker.lease)},
    }
    if cfg.sources:
        data["sources"] = {n: {"type": s.type, **({"token": "***"} if s.token else {})}
                           for n, s in cfg.sources.items()}
    if cfg.services:
        services = {}
        for name, s in cfg.services.items():
            entry: dict[str, Any] = {"type": s.type, "enabled": s.enabled, "priority": s.priority}
            if s.events is not None:
                entry["events"] = list(s.events)
            for key, value in s.options.items():
                entry[key] = "***" if key in SECRET_KEYS else value
            if "url" in s.options:
                entry["url"] = describe_target(s)
            services[name] = entry
        data["services"] = services
    return data
