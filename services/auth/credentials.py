"""Secrets at rest: passwords hashed with argon2id, API tokens as SHA-256 of 256 random bits.

Nothing here keeps a secret: hashes are what the log and views store. A password is
checked by argon2 (constant time); a token is found by its hash's unique index.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "lf_"  # noqa: S105 - a marker that makes a leaked token easy to grep for
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `stored_hash` was made from (False for no hash)."""
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh API token: `lf_` and 43 url-safe characters (256 random bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored for a token: its hex SHA-256 (a token has too much entropy to need
    a slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()
