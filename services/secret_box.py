"""Secrets at rest that the server must read back: sealed with a server key (Fernet).

A webhook's signing secret has to be known again at delivery time, so it cannot be
hashed like a password. It is sealed instead: the log and the views hold a Fernet
token (AES-128-CBC with HMAC-SHA256) and the id of the key that sealed it, never the
secret itself. The key comes from `LEDGERFLOW_SECRET_KEY`, or the file
`LEDGERFLOW_SECRET_KEY_FILE` names, or, on the embedded default, `secret.key` beside
the SQLite event log, generated at first use with 0600 permissions (like an SSH host
key). Rotation: a new key seals; keys listed in `LEDGERFLOW_OLD_SECRET_KEYS` still open
what they sealed, picked by the key id the sealed secret names (so a missing key is
named, rather than every key being tried).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.settings import Settings

KEY_FILE = "secret.key"
KEY_SETTINGS = "LEDGERFLOW_SECRET_KEY (or LEDGERFLOW_SECRET_KEY_FILE)"


def key_id(key: bytes) -> str:
    """A short public name of a key: the start of its SHA-256 (it reveals nothing)."""
    return hashlib.sha256(key.strip()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed secret as events and views carry it."""

    ciphertext: str
    key_id: str


class SecretBox:
    """Seals with the current key; opens with the current key or any old one."""

    def __init__(self, key: bytes | str, old_keys: tuple[bytes | str, ...] = ()) -> None:
        keys = [_key_bytes(k, "the secret key") for k in (key, *old_keys)]
        self._fernets = {key_id(k): Fernet(k) for k in keys}
        self.key_id = key_id(keys[0])

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._fernets)

    def seal(self, secret: str) -> Sealed:
        return Sealed(self._fernets[self.key_id].encrypt(secret.encode()).decode(), self.key_id)

    def open(self, sealed: Sealed, *, what: str) -> str:
        """The secret `sealed` holds; `what` names it in errors ("webhook 'x'")."""
        fernet = self._fernets.get(sealed.key_id)
        if fernet is None:
            raise Unavailable(
                f"{what}'s secret was encrypted with key id {sealed.key_id}, which this server "
                f"does not have (it has {', '.join(self.key_ids)}); set {KEY_SETTINGS} to that "
                "key, or list it in LEDGERFLOW_OLD_SECRET_KEYS"
            )
        try:
            return fernet.decrypt(sealed.ciphertext.encode()).decode()
        except InvalidToken:
            raise Unavailable(
                f"{what}'s secret does not open with key id {sealed.key_id}: the ciphertext "
                "was altered, or a different key has the same id"
            ) from None


def _key_bytes(key: bytes | str, source: str) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    raw = raw.strip()
    try:
        Fernet(raw)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"{source} is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
            "`python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'`",
            field="LEDGERFLOW_SECRET_KEY",
        ) from None
    return raw


def default_key_file(settings: Settings) -> Path | None:
    """Where the embedded default keeps its key: beside the SQLite event log."""
    url = settings.event_log_url
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :]).expanduser().resolve().parent / KEY_FILE


def read_or_create_key(path: Path) -> bytes:
    """The key in `path`, made (0600, exclusively, so two processes agree) if missing."""
    try:
        return _key_bytes(path.read_bytes(), f"the key file {path}")
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return _key_bytes(path.read_bytes(), f"the key file {path}")
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def open_secret_box(settings: Settings) -> SecretBox:
    """The server's box from settings; raises InvalidInput naming what to set."""
    old = tuple(k for k in (settings.old_secret_keys or "").split(",") if k.strip())
    if settings.secret_key:
        return SecretBox(_key_bytes(settings.secret_key, "LEDGERFLOW_SECRET_KEY"), old)
    if settings.secret_key_file:
        given = Path(settings.secret_key_file).expanduser()
        try:
            data = given.read_bytes()
        except OSError as e:
            raise InvalidInput(
                f"LEDGERFLOW_SECRET_KEY_FILE {str(given)!r} cannot be read: {e.strerror}",
                field="LEDGERFLOW_SECRET_KEY_FILE",
            ) from None
        return SecretBox(_key_bytes(data, f"the key file {given}"), old)
    path = default_key_file(settings)
    if path is None:
        raise InvalidInput(
            f"webhook secrets are encrypted with a server key: set {KEY_SETTINGS} to the same "
            "key on every gateway and webhook dispatcher of this log",
            field="LEDGERFLOW_SECRET_KEY",
        )
    return SecretBox(read_or_create_key(path), old)
