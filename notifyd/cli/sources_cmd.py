"""`notifyd sources`: what to paste into each sender — the URL, the token in the one form that
sender can send it, and where in the sender's settings it goes.

Worked out from the registry (`SOURCE_TYPES`: each type's `token_form` and `settings`) and the
config, never from a list of names, so a new source type shows up here by being registered. Tokens
are secrets: they are printed as *** unless the operator asks for them with --reveal.
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

import typer

from notifyd.cli.common import ConfigOption, JsonOption
from notifyd.cli.output import cli_errors, escape, fail, print_json, say, warn
from notifyd.config import is_loopback, load_config
from notifyd.sources import SOURCE_TYPES, TokenForm

if TYPE_CHECKING:
    from notifyd.config import Config, ServerConfig

MASK = "***"
ANY_USERNAME = "(any)"          # notifyd reads only the password of Basic auth
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True)
class SourceConnection:
    """One source as a sender must be set up for it; `--json` prints these keys."""

    name: str
    type: str
    sender: str
    builtin: bool               # a built-in type under its own name, or a configured [sources.NAME]
    url: str                    # with ?token=… when the sender carries it in the URL
    token_form: str             # query | basic | bearer
    token_from: str | None      # "source" ([sources.NAME] token), "server" ([server] token), None: no token
    username: str | None        # basic: the sender's Username field
    password: str | None        # basic: its Password field
    authorization: str | None   # bearer: the Authorization header's value
    signed: bool                # the source has a `secret`: bodies must carry a Standard Webhooks signature
    settings: str               # where in the sender's settings the URL goes


def base_url(server: ServerConfig) -> str:
    """Where senders reach this daemon: [server] public_url, else the listening address
    (IPv6 in brackets; an address that listens everywhere is named by this machine's host name)."""
    if server.public_url:
        return server.public_url.rstrip("/")
    if server.host in WILDCARDS:
        server = replace(server, host=socket.gethostname())
    return f"http://{server.listen}"


def connection(name: str, source_type: str, config: Config, *, reveal: bool) -> SourceConnection:
    """How the sender of `name` (a built-in type or a configured source) posts to this daemon."""
    kind = SOURCE_TYPES[source_type]
    named = config.sources.get(name)
    own = named.token if named is not None else None
    token = own or config.server.token
    shown = token if reveal else MASK
    url = f"{base_url(config.server)}/webhooks/{quote(name, safe='')}"
    username = password = authorization = None
    if token is not None:
        if kind.token_form is TokenForm.BASIC:
            username, password = ANY_USERNAME, shown
        elif kind.token_form is TokenForm.BEARER:
            authorization = f"Bearer {shown}"
        else:
            value = quote(token, safe="") if reveal else MASK
            url += ("&" if "?" in url else "?") + f"token={value}"
    return SourceConnection(
        name=name, type=source_type, sender=kind.sender, builtin=named is None, url=url,
        token_form=kind.token_form.value, token_from=None if token is None else "source" if own else "server",
        username=username, password=password, authorization=authorization,
        signed=bool(named is not None and named.secret), settings=kind.settings)


def connections(config: Config, *, reveal: bool) -> list[SourceConnection]:
    """Every built-in source, then every configured one (which the config never lets take a
    built-in's name)."""
    builtins = [connection(name, name, config, reveal=reveal) for name in SOURCE_TYPES]
    named = [connection(name, source.type, config, reveal=reveal) for name, source in config.sources.items()]
    return builtins + named


def sources(name: Annotated[str | None, typer.Argument(help="Only this source (a built-in type or a "
                                                            "configured [sources.NAME]).", show_default=False)] = None,
            reveal: Annotated[bool, typer.Option("--reveal", help="Print the real tokens instead of ***. They "
                                                 "are secrets, printed only because you ask: keep the output out "
                                                 "of logs, tickets and screen shares.")] = False,
            json: JsonOption = False, config: ConfigOption = None) -> None:
    """Show what to paste into each sender: the URL, the token in the form that sender can send
    (in the URL, as a Basic auth password, or an Authorization header), and where it goes in the
    sender's settings. Tokens are masked (***) unless --reveal.

    The URL starts with server.public_url, else the listening address (this machine's host name
    when it listens on every address). --json prints [{"name",
    "type", "sender", "builtin", "url", "token_form", "token_from", "username", "password",
    "authorization", "signed", "settings"}], tokens masked the same way.
    """
    with cli_errors():
        cfg = load_config(config)
    found = connections(cfg, reveal=reveal)
    if name is not None:
        found = [c for c in found if c.name == name]
        if not found:
            configured = ", ".join(cfg.sources) or "none"
            raise fail(f"no source {name!r} (built-in: {', '.join(SOURCE_TYPES)}; configured: {configured})", 1)
    server = cfg.server
    if server.public_url is None and is_loopback(server.host):
        warn(f"server.listen is {server.listen}, a loopback address, and server.public_url is not set: "
             "senders on other machines cannot reach these URLs")
    if json:
        print_json([asdict(c) for c in found])
        return
    for i, shown in enumerate(found):
        if i:
            say("")
        _print(shown)
    if not reveal and any(c.token_from for c in found):
        say(f"[dim]tokens are shown as {MASK}; `notifyd sources --reveal` prints them[/dim]")


def _print(source: SourceConnection) -> None:
    """One source as a short block: a URL cut to fit a table could not be pasted."""
    origin = "built-in" if source.builtin else f"[sources.{source.name}], type {source.type}"
    say(f"[bold]{escape(source.name)}[/bold]  " + escape(f"{source.sender} ({origin})"))
    lines: list[tuple[str, Any]] = [("URL", source.url)]
    if source.username is not None:
        lines += [("Username", source.username), ("Password", source.password)]
    if source.authorization is not None:
        lines.append(("Authorization header", source.authorization))
    if source.signed:
        lines.append(("Signed", "bodies must carry a Standard Webhooks signature made with this source's secret"))
    if source.settings:
        lines.append(("Where", source.settings))
    width = max(len(label) for label, _ in lines) + 1
    for label, value in lines:
        say(f"  {label + ':':<{width}} {escape(value)}")
