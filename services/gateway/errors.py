"""Ledgerflow errors as HTTP answers: one status per kind of error, one JSON body shape
(`error_code`, `message`, `field`; `kind` and `key` for what is missing or denied)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ledgerflow.events.errors import (
    Conflict,
    InvalidInput,
    LedgerflowError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from ledgerflow.services.gateway.limits import RateLimited, TooLarge
from ledgerflow.services.gateway.route_table import methods_of
from ledgerflow.services.gateway.schemas import ErrorOut

_STATUS: tuple[tuple[type[LedgerflowError], int], ...] = (
    (InvalidInput, 400),
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),  # AlreadyExists included
    (TooLarge, 413),
    (RateLimited, 429),
    (Timeout, 504),
    (Unavailable, 503),
)
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "invalid input; `field` names it"},
    401: {"model": ErrorOut, "description": "no identity, or one that could not be verified"},
    403: {"model": ErrorOut, "description": "the caller lacks the level this needs"},
    404: {"model": ErrorOut, "description": "no such resource"},
    409: {"model": ErrorOut, "description": "conflicts with what is recorded"},
    413: {"model": ErrorOut, "description": "the request body is over the route's limit"},
    429: {"model": ErrorOut, "description": "over the caller's rate; see Retry-After"},
    503: {"model": ErrorOut, "description": "a backing service is unavailable"},
    504: {"model": ErrorOut, "description": "not projected in time"},
}


def status_of(error: LedgerflowError) -> int:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_body(error: LedgerflowError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "error_code": error.code,
        "message": error.message,
        "field": getattr(error, "field", None),
    }
    if isinstance(error, NotFound | PermissionDenied):
        body["kind"], body["key"] = error.kind, error.key
    if isinstance(error, InvalidInput) and error.position is not None:
        body["position"], body["token"] = error.position, error.token
    return body


def error_response(error: LedgerflowError) -> JSONResponse:
    response = JSONResponse(error_body(error), status_code=status_of(error))
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(error.retry_after_s)))
    return response


_PROTOCOL_CODES = {
    400: InvalidInput.code,
    401: Unauthenticated.code,
    403: PermissionDenied.code,
    404: NotFound.code,
    405: "METHOD_NOT_ALLOWED",
    413: TooLarge.code,
}


def protocol_error(status: int, message: str, field: str | None = None) -> JSONResponse:
    """An error HTTP itself raised (a body that is not JSON, no such route, a method the
    route lacks) in the body every other error has."""
    body = {
        "error_code": _PROTOCOL_CODES.get(status, f"HTTP_{status}"),
        "message": message,
        "field": field,
    }
    return JSONResponse(body, status_code=status)


def unrouted(app: FastAPI, request: Request) -> JSONResponse:
    """No route answers `request`: a 405 listing in `Allow` every method the path does
    have, or a 404 when nothing is at the path."""
    path = request.url.path
    allowed = methods_of(app, path)
    if not allowed:
        return protocol_error(404, f"no API route {path}")
    allow = ", ".join(sorted(allowed))
    response = protocol_error(
        405, f"{request.method} is not a method of {path}; it answers {allow}"
    )
    response.headers["Allow"] = allow
    return response
