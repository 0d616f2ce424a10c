"""The status page (design §14): see and steer notifyd from a browser, served by the daemon itself.

Server-rendered HTML (Jinja2, autoescaped) with one small stylesheet and one small script for live
updates, all inside the package: no CDN, no build step, works offline. `server.ui = false` leaves
it out."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from notifyd.ui.actions import actions_of, login_endpoints
from notifyd.ui.pages import HERE, UiDeps, gated, routes_of


def ui_routes(deps: UiDeps) -> list[BaseRoute]:
    """The page, login and action routes, and the stylesheet and script."""
    login_form, login, logout = login_endpoints(deps)
    routes: list[BaseRoute] = [Route(path, gated(deps, handler), methods=["GET"])
                               for path, handler in routes_of(deps).items()]
    routes += [Route(path, endpoint, methods=["POST"]) for path, endpoint in actions_of(deps).items()]
    routes += [Route("/ui/login", login_form, methods=["GET"]), Route("/ui/login", login, methods=["POST"]),
               Route("/ui/logout", logout, methods=["POST"]),
               Mount("/ui/static", StaticFiles(directory=HERE / "static"), name="static")]
    return routes


__all__ = ["UiDeps", "ui_routes"]
