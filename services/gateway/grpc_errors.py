"""Ledgerflow errors as gRPC statuses: one status code per kind of error, the message as
the details, and the error's code (and its field, resume token, or the resource it is
about) in the trailing metadata, so a client can raise what the embedded mode raises."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import grpc
from sqlalchemy.exc import OperationalError

from ledgerflow.events.errors import (
    AlreadyExists,
    Conflict,
    CorruptEvent,
    InvalidInput,
    LedgerflowError,
    NotFound,
    PermissionDenied,
    Timeout,
    Unauthenticated,
    Unavailable,
)
from ledgerflow.services.gateway.command_registry import UnknownCommand
from ledgerflow.services.gateway.hub import SubscriberTooSlow
from ledgerflow.services.gateway.limits import RateLimited
from ledgerflow.services.projector.database import unavailable

logger = logging.getLogger("ledgerflow.services.gateway.grpc_server")
S = TypeVar("S")
Q = TypeVar("Q")
R = TypeVar("R")


class TooManySubscribers(Unavailable):
    """This gateway holds as many live subscriptions as it allows."""

    code = "TOO_MANY_SUBSCRIBERS"


_STATUS: tuple[tuple[type[LedgerflowError], grpc.StatusCode], ...] = (
    (SubscriberTooSlow, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (TooManySubscribers, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (RateLimited, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (UnknownCommand, grpc.StatusCode.UNIMPLEMENTED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (Timeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (CorruptEvent, grpc.StatusCode.DATA_LOSS),
)


def status_of(error: LedgerflowError) -> grpc.StatusCode:
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return grpc.StatusCode.INTERNAL


def abort(context: Any, error: LedgerflowError, extra: Iterable[tuple[str, str]] = ()) -> None:
    """End the call with `error`'s status (raises, as `context.abort` does)."""
    metadata = [("ledgerflow-error-code", error.code), *extra]
    field = getattr(error, "field", None)
    if field:
        metadata.append(("ledgerflow-field", str(field)))
    token = getattr(error, "token", None)
    if token is not None:
        metadata.append(("ledgerflow-resume-token", str(token)))
    if isinstance(error, NotFound | PermissionDenied) and error.kind:
        metadata += [("ledgerflow-kind", error.kind), ("ledgerflow-key", error.key)]
    if isinstance(error, PermissionDenied) and error.needs:
        metadata.append(("ledgerflow-needs", error.needs))
    if isinstance(error, RateLimited):
        metadata.append(("retry-after", str(max(1, math.ceil(error.retry_after_s)))))
    context.set_trailing_metadata(tuple(metadata))
    context.abort(status_of(error), error.message)


def internal(context: Any, name: str) -> None:
    logger.exception("gRPC %s failed", name)
    context.abort(grpc.StatusCode.INTERNAL, f"{name} failed inside the gateway; see its log")


def unary(fn: Callable[..., R]) -> Callable[..., R]:
    """A method whose errors leave as statuses (a views database that went away as
    UNAVAILABLE, an unexpected error as INTERNAL, logged)."""

    @functools.wraps(fn)
    def handler(*args: Any) -> R:
        context = args[2]
        try:
            return fn(*args)
        except LedgerflowError as e:
            abort(context, e)
        except OperationalError as e:
            abort(context, unavailable(e))
        except Exception:
            internal(context, fn.__name__)
        raise AssertionError("unreachable: context.abort raises")

    return handler


def streaming(fn: Callable[..., Iterator[R]]) -> Callable[..., Iterator[R]]:
    """As `unary`, for a server-streaming method."""

    @functools.wraps(fn)
    def handler(*args: Any) -> Iterator[R]:
        context = args[2]
        try:
            yield from fn(*args)
        except LedgerflowError as e:
            abort(context, e)
        except OperationalError as e:
            abort(context, unavailable(e))
        except Exception:
            internal(context, fn.__name__)

    return handler
