"""The error hierarchy every layer raises and every adapter translates into.

One root, a few children that carry the fields a caller needs to act on the
error. Messages say what is wrong and what to do about it.
"""

from __future__ import annotations

from typing import overload


@overload
def _utf8_safe(text: str) -> str: ...
@overload
def _utf8_safe(text: None) -> None: ...
def _utf8_safe(text: str | None) -> str | None:
    """`text` with each lone surrogate as '?' (same length, so a `position` still points
    at it): an error that quotes a caller's text, where a JSON body spelled "\\ud800",
    must still encode as UTF-8 to reach them or a dead-letter store."""
    if not isinstance(text, str):  # None, or what a careless caller passed
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode()
    return text


class LedgerflowError(Exception):
    """Root of every error Ledgerflow raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        message = _utf8_safe(message)
        super().__init__(message)
        self.message = message


class InvalidInput(LedgerflowError):
    """The caller passed something that cannot be accepted; nothing was stored. For text
    in a language (a search filter), `position` is the 0-based character offset of the
    error in `field` and `token` the text found there, so a UI can underline it."""

    code = "INVALID_PARAMETER_VALUE"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        position: int | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(message)
        self.field = _utf8_safe(field)
        self.position = position
        self.token = _utf8_safe(token)


class NotFound(LedgerflowError):
    """The named resource does not exist (or no longer does)."""

    code = "RESOURCE_DOES_NOT_EXIST"

    def __init__(self, message: str, *, kind: str = "", key: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.key = _utf8_safe(key)


class Conflict(LedgerflowError):
    """The request contradicts what is already recorded (e.g. a param changed)."""

    code = "INVALID_STATE"


class AlreadyExists(Conflict):
    """A resource with that unique name is already there."""

    code = "RESOURCE_ALREADY_EXISTS"


class Unavailable(LedgerflowError):
    """A backing service could not be reached or did not answer in time."""

    code = "TEMPORARILY_UNAVAILABLE"


class Timeout(Unavailable):
    """A wait (e.g. for the projector to apply an event) ran out."""

    code = "DEADLINE_EXCEEDED"


class RateLimited(LedgerflowError):
    """Over a rate (a caller's writes, failed sign-ins): come back after `retry_after_s`."""

    code = "REQUEST_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class CorruptEvent(LedgerflowError):
    """An event on the log cannot be decoded, has an unknown type or an invalid payload."""

    code = "CORRUPT_EVENT"


class Unauthenticated(LedgerflowError):
    """No identity, or one that could not be verified (wrong password, unknown, expired or
    revoked token, a JWT from the wrong issuer)."""

    code = "UNAUTHENTICATED"


class PermissionDenied(LedgerflowError):
    """The caller is known but lacks the level the action needs on that resource."""

    code = "PERMISSION_DENIED"

    def __init__(self, message: str, *, kind: str = "", key: str = "", needs: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.key = _utf8_safe(key)
        self.needs = needs
