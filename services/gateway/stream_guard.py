"""Keeping an open event stream (SSE, gRPC `Subscribe`) honest about who reads it.

A stream is authenticated when it opens, but it may stay open for days. With auth on,
its credential is checked again at most every `ttl_s` (1 s) while events flow and also
while the stream is idle, so within about a second of a token being revoked or expiring,
a user being deleted or losing their password, or the caller's admin flag or groups
changing, the stream ends with a final message that says why (SSE: a
`subscription.ended` message; gRPC: the call ends UNAUTHENTICATED or PERMISSION_DENIED).
A removed grant needs no ending: which events are shown is asked per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledgerflow.events.errors import PermissionDenied, RateLimited, Unauthenticated
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend

TTL_S = 1.0


class StreamGuard:
    def __init__(
        self,
        backend: Backend,
        principal: Principal,
        authorization: str | None,
        *,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._principal = principal
        self._authorization = authorization
        self.ttl_s = ttl_s
        self._clock = clock
        self._checked = clock()
        self.active = backend.settings.auth

    def due(self) -> bool:
        """Whether the credential should be checked again now."""
        return self.active and self._clock() - self._checked >= self.ttl_s

    def check(self) -> None:
        """Raise if the stream's credential no longer verifies (Unauthenticated) or now
        verifies as someone with other rights (PermissionDenied). Blocking: it may read
        the auth views (and, for a password never verified here, run argon2)."""
        if not self.active:
            return
        self._checked = self._clock()
        try:
            now = self._backend.authenticator.authenticate(self._authorization)
        except Unauthenticated as e:
            raise Unauthenticated(
                f"the subscription ended: its credentials are no longer accepted ({e.message}); "
                "subscribe again with valid credentials"
            ) from None
        except RateLimited:  # someone is guessing this user's password: not a verdict
            return
        was = self._principal
        if (now.user, now.admin, set(now.groups)) != (was.user, was.admin, set(was.groups)):
            raise PermissionDenied(
                f"the subscription ended: {was.user}'s admin flag or groups changed since it "
                "began; subscribe again to be shown what they allow now"
            )
