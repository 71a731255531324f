"""The errors the SDK raises; catch `LedgerflowError` for all of them."""

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

__all__ = [
    "AlreadyExists",
    "Conflict",
    "CorruptEvent",
    "InvalidInput",
    "LedgerflowError",
    "NotFound",
    "PermissionDenied",
    "Timeout",
    "Unauthenticated",
    "Unavailable",
]
