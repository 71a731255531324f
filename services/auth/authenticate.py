"""Authentication: an `Authorization` header to a `Principal`, or `Unauthenticated`.

Three kinds of credential:

- `Basic user:password` for users with passwords (as MLflow's basic-auth app), or
  `Basic token:<API token>` (what a browser's sign-in prompt can send, for the web UI);
- `Bearer lf_…`, an API token: looked up by its SHA-256, refused when revoked, expired or
  its user is gone;
- `Bearer <JWT>` from the configured OIDC issuer: signature (the issuer's JWKS, from a
  URL or a file), issuer, audience and expiry checked by PyJWT; the user and groups come
  from claims. An OIDC user needs no record here: grants name them like anyone else.

What was verified is kept until the auth views change (their generation, one
primary-key read per request), so a revocation, a deletion or a new password takes effect
on the next request, while a busy client does not pay an argon2 verification or three
lookups per call. Expiry is checked on every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ledgerflow.events.errors import Unauthenticated
from ledgerflow.events.settings import Settings
from ledgerflow.services.auth import credentials
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.auth.queries import AuthQueries
from ledgerflow.services.auth.throttle import LoginThrottle

_CACHE_SIZE = 10_000
TOKEN_USER = "token"  # noqa: S105 - the user name under which Basic credentials carry a token


class _Verified:
    """A bounded map from a credential's digest to what it verified as, emptied whenever the
    auth views' generation changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation: tuple[str, int] | None = None
        self._items: OrderedDict[str, tuple[Principal, int | None]] = OrderedDict()

    def get(self, generation: tuple[str, int], key: str) -> tuple[Principal, int | None] | None:
        with self._lock:
            if generation != self._generation:
                self._generation = generation
                self._items.clear()
                return None
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(
        self, generation: tuple[str, int], key: str, value: tuple[Principal, int | None]
    ) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._items[key] = value
            if len(self._items) > _CACHE_SIZE:
                self._items.popitem(last=False)


class Authenticator:
    def __init__(
        self,
        queries: AuthQueries,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queries = queries
        self.settings = settings
        self._clock = clock
        self._verified = _Verified()
        self.throttle = LoginThrottle(
            settings.auth_failures_per_user, settings.auth_failures_per_client
        )
        self._oidc = OidcVerifier(settings) if settings.oidc_issuer else None

    def authenticate(self, authorization: str | None, client: str | None = None) -> Principal:
        """Who `authorization` says the caller is. A credential not verified before is
        verified only if its user name and the caller's address `client` have not failed
        too often lately (`RateLimited` otherwise: see `throttle`)."""
        if not authorization or not authorization.strip():
            raise Unauthenticated(
                "this server requires an identity: send Authorization: Bearer <token> "
                "(LEDGERFLOW_TRACKING_TOKEN) or Basic credentials "
                "(LEDGERFLOW_TRACKING_USERNAME / _PASSWORD)"
            )
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        scheme = scheme.lower()
        if scheme not in ("basic", "bearer") or not value:
            raise Unauthenticated("Authorization must be `Basic <base64>` or `Bearer <token>`")
        generation = self.queries.generation()
        key = hashlib.sha256(authorization.strip().encode()).hexdigest()
        hit = self._verified.get(generation, key)
        if hit is None:
            user = _basic_user(value) if scheme == "basic" else None
            self.throttle.check(user, client)
            try:
                hit = self._verify(scheme, value)
            except Unauthenticated:
                self.throttle.failed(user, client)
                raise
            self._verified.put(generation, key, hit)
        principal, expires = hit
        if expires is not None and self._clock() * 1000 >= expires:
            raise Unauthenticated("this token has expired: create a new one")
        return principal

    def cached(self, authorization: str | None) -> Principal | None:
        """What `authorization` verified as, if that is still known and unexpired; None
        means `authenticate` must verify it. For callers on an event loop, which verify
        off the loop (argon2 takes tens of milliseconds) only when this misses."""
        if not authorization or not authorization.strip():
            return None
        key = hashlib.sha256(authorization.strip().encode()).hexdigest()
        hit = self._verified.get(self.queries.generation(), key)
        if hit is None or (hit[1] is not None and self._clock() * 1000 >= hit[1]):
            return None
        return hit[0]

    def _verify(self, scheme: str, value: str) -> tuple[Principal, int | None]:
        if scheme == "basic":
            token = _basic_token(value)
            return self._token(token) if token else (self._password(value), None)
        if value.startswith(credentials.TOKEN_PREFIX) or self._oidc is None:
            return self._token(value)
        principal, expires = self._oidc.verify(value)
        creds = self.queries.credentials(principal.user)
        if creds is not None:  # a user record here adds its admin flag and groups
            groups = tuple(dict.fromkeys((*principal.groups, *creds.groups)))
            principal = Principal(principal.user, creds.admin, groups, method="oidc")
        return principal, expires

    def _password(self, value: str) -> Principal:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("Basic credentials must be base64 of user:password") from None
        creds = self.queries.credentials(user) if sep else None
        if creds is None or not credentials.password_matches(creds.password_hash, password):
            raise Unauthenticated("wrong user name or password")
        return Principal(creds.name, creds.admin, creds.groups, method="password")

    def _token(self, token: str) -> tuple[Principal, int | None]:
        stored = self.queries.token_by_hash(credentials.token_hash(token))
        if stored is None:
            raise Unauthenticated("unknown token")
        if stored.revoked:
            raise Unauthenticated(f"token {stored.id} was revoked")
        creds = self.queries.credentials(stored.user)
        if creds is None:
            raise Unauthenticated(f"token {stored.id} belongs to a user who no longer exists")
        principal = Principal(creds.name, creds.admin, creds.groups, stored.id, "token")
        return principal, stored.expires


def _basic_user(value: str) -> str | None:
    """The user name of a Basic credential (None if it is malformed)."""
    try:
        return base64.b64decode(value, validate=True).decode().partition(":")[0][:200]
    except (binascii.Error, UnicodeDecodeError):
        return None


def _basic_token(value: str) -> str | None:
    """An API token sent as Basic credentials `token:<lf_…>`: what a browser's sign-in
    prompt (the web UI) can send, as it cannot send a Bearer header. None otherwise."""
    try:
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (
        password if user == TOKEN_USER and password.startswith(credentials.TOKEN_PREFIX) else None
    )


class OidcVerifier:
    """Bearer JWTs from one issuer, checked with PyJWT against the issuer's JWKS."""

    def __init__(self, settings: Settings) -> None:
        import jwt

        if not settings.oidc_jwks:
            raise Unauthenticated("LEDGERFLOW_OIDC_ISSUER needs LEDGERFLOW_OIDC_JWKS (URL or file)")
        self._jwt = jwt
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.user_claim = settings.oidc_user_claim
        self.groups_claim = settings.oidc_groups_claim
        source = settings.oidc_jwks
        if source.startswith(("http://", "https://")):
            self._client: Any = jwt.PyJWKClient(source, cache_keys=True)
            self._keys: Any = None
        else:
            with open(source, encoding="utf-8") as f:
                self._keys = jwt.PyJWKSet.from_json(f.read())
            self._client = None

    def _key(self, token: str) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = self._jwt.get_unverified_header(token).get("kid")
        for key in self._keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise Unauthenticated(f"no key {kid!r} in the issuer's JWKS")

    def verify(self, token: str) -> tuple[Principal, int | None]:
        jwt = self._jwt
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as e:
            raise Unauthenticated(f"the bearer JWT was refused: {e}") from None
        user = claims.get(self.user_claim) or claims.get("sub")
        if not isinstance(user, str) or not user:
            raise Unauthenticated(f"the JWT names no user (claim {self.user_claim!r} or sub)")
        groups = claims.get(self.groups_claim) or ()
        if isinstance(groups, str):
            groups = (groups,)
        principal = Principal(user, False, tuple(str(g) for g in groups), method="oidc")
        return principal, int(claims["exp"]) * 1000
