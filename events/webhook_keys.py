"""A webhook's secret as the key its deliveries are signed with, and in the form the
Standard Webhooks libraries take (`whsec_` followed by the key in base64).

A secret given in that form (made by a Standard Webhooks tool) is that key; any other
secret is its UTF-8 bytes. Both the sender (services/webhooks/signing.py) and the SDK's
receiving side (`ledgerflow.webhooks`) derive the key here, so they cannot disagree.
"""

from __future__ import annotations

import base64
import binascii

from ledgerflow.events.errors import InvalidInput

STANDARD_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """The HMAC key of `secret`; InvalidInput for a `whsec_` secret that is not base64."""
    if not secret.startswith(STANDARD_PREFIX):
        return secret.encode()
    encoded = secret[len(STANDARD_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise InvalidInput(
            f"a webhook secret starting {STANDARD_PREFIX} is a Standard Webhooks secret: "
            "base64 must follow the prefix",
            field="secret",
        )
    return key


def standard_secret(secret: str) -> str:
    """`secret` as Standard Webhooks libraries take it: `whsec_<base64 of the key>`."""
    if secret.startswith(STANDARD_PREFIX):
        return secret
    return STANDARD_PREFIX + base64.b64encode(signing_key(secret)).decode()
