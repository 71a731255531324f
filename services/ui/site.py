"""Serving the built web UI at `/`, next to the API.

The app is built from `ui/` (Vite) into `static/` beside this module and ships in the
wheel as package data: running it needs no Node.js and nothing from the internet. Hashed
files under `/assets/` are cached for a year; every other path that is not the API's
answers `index.html`, so a shared deep link (`/runs/ID/metrics`) opens its page. With auth
on, the page answers 401 with `WWW-Authenticate: Basic realm="ledgerflow"` until the browser
sends credentials: the browser then asks for a user and password (an API token works as
user `token`) and sends them with every fetch and event stream of the page.

A browser reuses Basic credentials only for paths at or below the one that asked for them
(RFC 7617's protection space): signed in at `/models/fraud`, it would not send them to
`/api/v1/...`. So a deep link opened without credentials is sent to `/signin?next=...`,
whose challenge covers the whole site, and from there back to the page.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ledgerflow.events.errors import LedgerflowError, Unauthenticated
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import identify
from ledgerflow.services.gateway.errors import error_response, unrouted

STATIC = Path(__file__).parent / "static"
INDEX = "index.html"
ASSET_CACHE = "public, max-age=31536000, immutable"
"""Vite names each asset by its content's hash: a new build makes new names."""
REALM = 'Basic realm="ledgerflow"'
NOT_BUILT = (
    "<!doctype html><title>Ledgerflow</title><h1>The web UI is not built</h1>"
    "<p>Build it with <code>scripts/bootstrap-venv.sh</code>, or <code>npm ci &amp;&amp; "
    "npm run build</code> in <code>ui/</code>; the REST API is at <a href='/docs'>/docs</a>.</p>"
)


def built(static: Path = STATIC) -> bool:
    return (static / INDEX).is_file()


def _file_in(static: Path, path: str) -> Path | None:
    """The file `path` names inside `static`, never outside it."""
    root = static.resolve()
    candidate = (root / path).resolve()
    if candidate.is_relative_to(root) and candidate.is_file():
        return candidate
    return None


async def _refused(backend: Backend, request: Request) -> Response | None:
    """With auth on, a 401 asking the browser for credentials unless it sent valid ones."""
    if not backend.settings.auth:
        return None
    try:
        await run_in_threadpool(identify, backend, request.headers.get("authorization"))
    except Unauthenticated as e:
        return HTMLResponse(
            f"<!doctype html><title>Sign in</title><p>{html.escape(e.message)}</p>",
            status_code=401,
            headers={"WWW-Authenticate": REALM},
        )
    except LedgerflowError as e:
        return error_response(e)
    return None


SIGNIN = "signin"
_RUN_PAGE = re.compile(r"runs/([0-9A-Za-z_-]+)(?:/[a-z]+)?/?")


def _first_request(path: str) -> str | None:
    """The API request a deep-linked page makes first, for the browser to start while the
    application script loads (`Link: rel=preload`; the page's identical fetch takes the
    answer): a run's pages all begin with the run."""
    found = _RUN_PAGE.fullmatch(path)
    return None if found is None else f"/api/v1/runs/{found.group(1)}"


def _local(target: str | None) -> str:
    """`target` if it is a path on this site, else `/`: /signin never sends a browser
    elsewhere (an open redirect would make a phishing link look like ours)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def mount(app: FastAPI, backend: Backend, *, static: Path = STATIC) -> None:
    """Serve the UI from `static` at `/` on `app`. Call it after every other route is added:
    its catch-all answers the paths nobody else does."""

    @app.get("/assets/{path:path}", include_in_schema=False)
    async def asset(path: str, request: Request) -> Response:
        refused = await _refused(backend, request)
        if refused is not None:
            return refused
        found = _file_in(static / "assets", path)
        if found is None:
            return Response("no such asset", status_code=404, media_type="text/plain")
        return FileResponse(found, headers={"Cache-Control": ASSET_CACHE})

    @app.get("/" + SIGNIN, include_in_schema=False)
    async def signin(request: Request) -> Response:
        refused = await _refused(backend, request)
        if refused is not None:
            return refused
        return RedirectResponse(_local(request.query_params.get("next")), status_code=303)

    @app.get("/{path:path}", include_in_schema=False)
    async def page(path: str, request: Request) -> Response:
        if path == "api" or path.startswith("api/"):  # a 405 where the path has routes
            return unrouted(app, request)
        refused = await _refused(backend, request)
        if refused is not None:
            if "/" not in path.strip("/") or refused.status_code != 401:
                return refused
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/{SIGNIN}?next={quote(here, safe='')}", status_code=303)
        if not built(static):
            return HTMLResponse(NOT_BUILT, status_code=503)
        found = _file_in(static, path) if path else None
        if found is not None and found.name != INDEX:
            return FileResponse(found)
        headers = {"Cache-Control": "no-cache"}
        first = _first_request(path)
        if first is not None:
            headers["Link"] = f"<{first}>; rel=preload; as=fetch; crossorigin=anonymous"
        return FileResponse(static / INDEX, headers=headers)
