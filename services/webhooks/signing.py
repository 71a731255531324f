"""What a delivery request carries so a receiver can trust it.

The signature is HMAC-SHA256 over `<timestamp>.<body>` with the webhook's
secret; putting the timestamp under the signature lets receivers refuse replays
of old requests. `ledgerflow.webhooks.verify_signature` is the receiving side
(it lives in the SDK, which receivers install; both sides are tested together).
"""

from __future__ import annotations

import hashlib
import hmac

EVENT_ID = "X-Ledgerflow-Event-Id"
EVENT_TYPE = "X-Ledgerflow-Event-Type"
DELIVERY = "X-Ledgerflow-Delivery"
TIMESTAMP = "X-Ledgerflow-Timestamp"
SIGNATURE = "X-Ledgerflow-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Ledgerflow-Signature` value: `sha256=<hex digest>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def headers(
    *, secret: str, event_id: str, event_type: str, delivery_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "Ledgerflow-Webhooks/1",
        EVENT_ID: event_id,
        EVENT_TYPE: event_type,
        DELIVERY: delivery_id,
        TIMESTAMP: str(timestamp),
        SIGNATURE: signature(secret, timestamp, body),
    }
