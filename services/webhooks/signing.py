"""What a delivery request carries so a receiver can trust it.

Two signatures of the same body with the same key (events/webhook_keys.py):
- Ledgerflow's: `X-Ledgerflow-Signature: sha256=<hex HMAC-SHA256 of <timestamp>.<body>>`;
  `ledgerflow.webhooks.verify_signature` is the receiving side (in the SDK, which receivers
  install; both sides are tested together).
- The Standard Webhooks specification's: `webhook-id` (the event's id, the same on every
  attempt, for receivers to drop duplicates), `webhook-timestamp` (unix seconds) and
  `webhook-signature: v1,<base64 HMAC-SHA256 of <id>.<timestamp>.<body>>`, which the
  published `standardwebhooks` libraries verify, in any language, given the secret in its
  `whsec_` form.
Putting the timestamp under both lets receivers refuse replays of old requests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ledgerflow.events.webhook_keys import signing_key

EVENT_ID = "X-Ledgerflow-Event-Id"
EVENT_TYPE = "X-Ledgerflow-Event-Type"
DELIVERY = "X-Ledgerflow-Delivery"
TIMESTAMP = "X-Ledgerflow-Timestamp"
SIGNATURE = "X-Ledgerflow-Signature"
STANDARD_ID = "webhook-id"
STANDARD_TIMESTAMP = "webhook-timestamp"
STANDARD_SIGNATURE = "webhook-signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Ledgerflow-Signature` value: `sha256=<hex digest>`."""
    digest = hmac.new(signing_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value of the Standard Webhooks specification."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


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
        STANDARD_ID: event_id,
        STANDARD_TIMESTAMP: str(timestamp),
        STANDARD_SIGNATURE: standard_signature(secret, event_id, timestamp, body),
    }
