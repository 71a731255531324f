"""The identity remote mode presents to a gateway started with `--auth`.

From the settings (parsed at the edge; MLflow's variable names are read as fallbacks):
`LEDGERFLOW_TRACKING_TOKEN` is sent as `Authorization: Bearer <token>` (an API token from
`ledgerflow tokens create`, or an OIDC access token); otherwise
`LEDGERFLOW_TRACKING_USERNAME` and `LEDGERFLOW_TRACKING_PASSWORD` as HTTP Basic. A token
wins when both are set: it is the narrower, revocable credential.

The secret lives only in the header this builds; `repr` and every message name where the
credential came from, never its value.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import httpx

from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow.events.settings import Settings

TOKEN_SOURCE = "LEDGERFLOW_TRACKING_TOKEN (or MLFLOW_TRACKING_TOKEN)"  # noqa: S105 - a name
BASIC_SOURCE = "LEDGERFLOW_TRACKING_USERNAME / _PASSWORD (or MLFLOW_TRACKING_USERNAME / _PASSWORD)"
HOW_TO_SIGN_IN = (
    "set LEDGERFLOW_TRACKING_TOKEN to an API token (an admin makes one with `ledgerflow "
    "tokens create --user NAME`), or LEDGERFLOW_TRACKING_USERNAME and "
    "LEDGERFLOW_TRACKING_PASSWORD (MLflow's MLFLOW_TRACKING_* names work too)"
)


@dataclass(frozen=True)
class Credentials(httpx.Auth):
    """An `Authorization` header for every request to one gateway (an httpx auth flow, so
    it is added where the request is sent and never sits in a client's default headers)."""

    scheme: Literal["Bearer", "Basic"]
    user: str | None
    """The user of Basic credentials (not secret); None for a token."""
    header: str = field(repr=False)

    @property
    def source(self) -> str:
        """Where the credential came from, for messages."""
        return TOKEN_SOURCE if self.scheme == "Bearer" else BASIC_SOURCE

    def describe(self) -> str:
        return (
            f"the token in {TOKEN_SOURCE}"
            if self.scheme == "Bearer"
            else f"user {self.user!r} from {BASIC_SOURCE}"
        )

    def fingerprint(self) -> str:
        """A digest that tells two credentials apart without revealing either."""
        return hashlib.sha256(self.header.encode()).hexdigest()[:16]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header
        yield request


def credentials_from(settings: Settings) -> Credentials | None:
    """The credentials the settings name, or None (a gateway without auth needs none)."""
    token = (settings.tracking_token or "").strip()
    if token:
        return Credentials("Bearer", None, f"Bearer {token}")
    user, password = settings.tracking_username, settings.tracking_password
    if not user and not password:
        return None
    if not user or not password:
        missing = "USERNAME" if not user else "PASSWORD"
        raise InvalidInput(
            f"HTTP Basic credentials need both LEDGERFLOW_TRACKING_USERNAME and "
            f"LEDGERFLOW_TRACKING_PASSWORD; LEDGERFLOW_TRACKING_{missing} is not set",
            field=f"LEDGERFLOW_TRACKING_{missing}",
        )
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return Credentials("Basic", user, f"Basic {pair}")


def fingerprint(settings: Settings) -> str:
    """Tells apart the identities of two settings for one gateway ('' without any), so a
    process keeps one remote backend per identity."""
    found = credentials_from(settings)
    return "" if found is None else found.fingerprint()
