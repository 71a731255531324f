"""Receiving Ledgerflow webhooks: check that a request really came from your dispatcher.

    from ledgerflow.webhooks import verify_signature, WebhookSignatureError

    try:
        verify_signature(SECRET, request.headers, raw_body)
    except WebhookSignatureError as e:
        return 400, str(e)
    event = json.loads(raw_body)

Pure standard library: receivers can install Ledgerflow and import this without
any backend. The signature is HMAC-SHA256 over `<timestamp>.<raw body>`, sent
as `X-Ledgerflow-Signature: sha256=<hex>` with `X-Ledgerflow-Timestamp` (unix
seconds); see docs/webhooks.md for doing it by hand in another language.

Every delivery is also signed per the Standard Webhooks specification, so a receiver in
any language can use its published library instead, given `standard_secret(secret)`
(the `whsec_...` form):

    from standardwebhooks import Webhook
    event = Webhook(standard_secret(SECRET)).verify(raw_body, request.headers)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.webhook_keys import signing_key, standard_secret

TIMESTAMP_HEADER = "X-Ledgerflow-Timestamp"
SIGNATURE_HEADER = "X-Ledgerflow-Signature"
EVENT_ID_HEADER = "X-Ledgerflow-Event-Id"
EVENT_TYPE_HEADER = "X-Ledgerflow-Event-Type"
DELIVERY_HEADER = "X-Ledgerflow-Delivery"

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_ID_HEADER",
    "EVENT_TYPE_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSignatureError",
    "standard_secret",
    "verify_signature",
]


class WebhookSignatureError(InvalidInput):
    """The request is not a fresh, authentic delivery: answer it with 400 and drop it."""


class _Headers(Protocol):
    """Anything with `.items()`: a dict, http.server's headers, Flask's or Starlette's."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


def verify_signature(
    secret: str | Sequence[str],
    headers: _Headers,
    body: bytes | str,
    tolerance_s: float = 300,
    *,
    now: float | None = None,
) -> None:
    """Raise WebhookSignatureError unless `body` was signed with `secret` less than
    `tolerance_s` seconds ago (either way in time, for clocks a little apart).

    Pass the raw body bytes as received, before any JSON parsing. Give several
    secrets while rotating one: the request is accepted if any of them signed it.
    Header names are matched case-insensitively.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        raise InvalidInput("verify_signature needs the webhook's secret (a non-empty string)")
    found = {str(k).lower(): str(v) for k, v in headers.items()}
    raw_ts = found.get(TIMESTAMP_HEADER.lower())
    raw_sig = found.get(SIGNATURE_HEADER.lower())
    if raw_ts is None or raw_sig is None:
        missing = TIMESTAMP_HEADER if raw_ts is None else SIGNATURE_HEADER
        raise WebhookSignatureError(
            f"the request has no {missing} header; it did not come from a Ledgerflow webhook"
        )
    try:
        timestamp = int(raw_ts.strip())
    except ValueError:
        raise WebhookSignatureError(
            f"{TIMESTAMP_HEADER} must be unix seconds, got {raw_ts!r}"
        ) from None
    age = (time.time() if now is None else now) - timestamp
    if abs(age) > tolerance_s:
        when = f"{age:.0f} s old" if age > 0 else f"{-age:.0f} s in the future"
        raise WebhookSignatureError(
            f"the request's timestamp is {when}, outside the {tolerance_s:g} s tolerance: "
            "a replayed request, or clocks out of sync"
        )
    payload = f"{timestamp}.".encode() + (body.encode() if isinstance(body, str) else body)
    expected = [
        "sha256=" + hmac.new(signing_key(s), payload, hashlib.sha256).hexdigest() for s in secrets
    ]
    given = [part.strip() for part in raw_sig.split(",")]
    if not any(hmac.compare_digest(g, e) for g in given for e in expected):
        raise WebhookSignatureError(
            f"{SIGNATURE_HEADER} does not match: a wrong secret, or the body was changed "
            "(verify the raw bytes as received, before parsing them)"
        )
