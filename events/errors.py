"""The error hierarchy every layer raises and every adapter translates into.

One root, a few children that carry the fields a caller needs to act on the
error. Messages say what is wrong and what to do about it.
"""

from __future__ import annotations


class LedgerflowError(Exception):
    """Root of every error Ledgerflow raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
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
        self.field = field
        self.position = position
        self.token = token


class NotFound(LedgerflowError):
    """The named resource does not exist (or no longer does)."""

    code = "RESOURCE_DOES_NOT_EXIST"

    def __init__(self, message: str, *, kind: str = "", key: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.key = key


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
        self.key = key
        self.needs = needs
