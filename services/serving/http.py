"""What the REST fronts share: request ids, JSON responses and the errors they map to."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ledgerflow.services.serving import _json
from ledgerflow.services.serving.request_ids import new_request_id

REQUEST_ID = "x-request-id"
JSON_TYPE = "application/json"


def server_version() -> str:
    """The installed ledgerflow version, as /version and OIP server metadata report it."""
    try:
        return version("ledgerflow")
    except PackageNotFoundError:
        return "unknown"


def request_id(request: Request) -> str:
    """The caller's X-Request-Id, or a fresh one."""
    return request.headers.get(REQUEST_ID) or new_request_id()


def respond(
    body: bytes | str,
    status: int = 200,
    rid: str | None = None,
    media_type: str = JSON_TYPE,
    extra: dict[str, str] | None = None,
) -> Response:
    """A response with the request id and `extra` headers set up front (cheaper than
    setting them one by one on the response afterwards)."""
    headers = {REQUEST_ID: rid} if rid else None
    if extra:
        headers = {**(headers or {}), **extra}
    return Response(body, status_code=status, media_type=media_type, headers=headers)


def json_response(doc: Any, status: int = 200, rid: str | None = None) -> Response:
    return respond(_json.dumps(doc), status, rid)
