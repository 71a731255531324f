"""The app's routes as they are served: every API route with its full path (through
included routers), which route template a request's path goes to, and `Gated` routers
that turn requests outside their prefixes away at once."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute, APIRouter
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, NoMatchFound, compile_path
from starlette.types import Receive, Scope, Send


class Gated(APIRouter):
    """A router whose routes all sit under `prefixes` (full paths, as requests have them).

    FastAPI (>= 0.160) keeps included routers as such and, for each request, tries the
    routes of every included router in turn, twice; with ~150 MLflow routes after the
    native ones that was over a millisecond a request. A `Gated` router answers "no match"
    for a path outside its prefixes with one string test."""

    def __init__(self, prefixes: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefixes = prefixes
        self._version: tuple[int, int] | None = None

    def _get_routes_version(self, seen: set[int] | None = None) -> int:
        """FastAPI (>= 0.160) sums the route versions of the whole router tree on every
        request, to know its cached route lists are current: it walked our ~500 routes
        per request. A gated router's routes are all in place before it serves, so its
        sum is kept while its own version stands."""
        found = self._version
        if found is None or found[0] != self._routes_version:
            total: int = super()._get_routes_version(seen)
            found = self._version = (self._routes_version, total)
        return found[1]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not get_route_path(scope).startswith(self.prefixes):
            return Match.NONE, {}
        found: tuple[Match, Scope] = super().matches(scope)
        return found


@dataclass(frozen=True)
class Fixed:
    """One endpoint of a `FixedPaths` table: a request's `scope["route"]`, whose `path`
    the request metrics label it with."""

    method: str
    path: str
    endpoint: Callable[[Request], Awaitable[Response]]


class FixedPaths(BaseRoute):
    """Endpoints at fixed paths (no path parameters), found with one dict lookup.

    For an RPC-style API such as MLflow's (~120 fixed paths under two prefixes), where
    FastAPI matched each request against the routes in turn, twice, then solved each
    endpoint's dependencies: `experiments/get` took 0.41-0.44 ms of CPU in the app, 0.22
    from this table. An endpoint takes the request and answers a response; it finds what
    it needs itself. A request for a known path with another method is not matched here,
    so the routes after this table answer it as they would."""

    def __init__(self) -> None:
        self._table: dict[tuple[str, str], Fixed] = {}

    def add(self, fixed: Fixed) -> None:
        if "{" in fixed.path:
            raise ValueError(f"{fixed.path} has path parameters: not a fixed path")
        key = (fixed.method, fixed.path)
        if key in self._table:
            raise ValueError(f"{fixed.method} {fixed.path} is served twice")
        self._table[key] = fixed

    def __iter__(self) -> Iterator[Fixed]:
        return iter(self._table.values())

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            method = "GET" if scope["method"] == "HEAD" else scope["method"]  # as routes do
            found = self._table.get((method, get_route_path(scope)))
            if found is not None:
                return Match.FULL, {"route": found}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        fixed: Fixed = scope["route"]
        response = await fixed.endpoint(Request(scope, receive))
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)


def fixed_paths(app: FastAPI) -> Iterator[Fixed]:
    """Every endpoint of the app's `FixedPaths` tables."""
    for route in app.router.routes:
        if isinstance(route, FixedPaths):
            yield from route


def api_routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) of every API route, through included routers."""
    try:  # FastAPI >= 0.160 keeps included routers as such
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older ones copy their routes into the app's
        for route in app.routes:
            if isinstance(route, APIRoute):
                yield route.path, route
        return
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            yield ctx.path or route.path, route


def _templates(app: FastAPI) -> list[tuple[re.Pattern[str], frozenset[str], str]]:
    """(regex, methods, template) of every API route; made once per app."""
    found: list[tuple[re.Pattern[str], frozenset[str], str]] | None = getattr(
        app.state, "route_templates", None
    )
    if found is None:
        found = [  # the fixed paths first, as they are served: before any route
            (compile_path(f.path)[0], frozenset((f.method,)), f.path) for f in fixed_paths(app)
        ]
        found += [
            (compile_path(path)[0], frozenset(route.methods or ()), path)
            for path, route in api_routes(app)
        ]
        app.state.route_templates = found
    return found


def route_of(app: FastAPI, method: str, path: str) -> str:
    """The template of the API route `method path` goes to ("" when none does)."""
    for regex, methods, template in _templates(app):
        if method in methods and regex.match(path):
            return template
    return ""


CATCH_ALL = "/{path:path}"
"""The web UI's route for every path nobody else answers: not a resource of the API."""


def methods_of(app: FastAPI, path: str) -> frozenset[str]:
    """The methods of the resource at `path` (the `Allow` of a 405): those of the routes
    whose template names it most exactly, as the API document lists them; empty when no
    route but the UI's catch-all matches it."""
    matching = [
        (template.count("{"), methods)
        for regex, methods, template in _templates(app)
        if template != CATCH_ALL and regex.match(path)
    ]
    if not matching:
        return frozenset()
    fewest = min(params for params, _ in matching)  # /experiments/by-name, not /{id}
    return frozenset(m for params, methods in matching if params == fewest for m in methods)
