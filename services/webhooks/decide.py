"""Pure decisions for webhook commands: what is valid, and which event a command becomes.

Nothing here touches a store or the network: the service passes in what it read
(names taken, the current webhook, the event types this build knows).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from urllib.parse import urlsplit

from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.errors import AlreadyExists, InvalidInput
from ledgerflow.events.limits import SLUG_PATTERN
from ledgerflow.events.log import TypeMatcher
from ledgerflow.events.webhook_entities import Webhook
from ledgerflow.events.webhook_keys import signing_key
from ledgerflow.services.secret_box import Sealed

Seal = Callable[[str], Sealed]
"""Seals a checked secret with the server's key (SecretBox.seal)."""

MAX_NAME = 128
MAX_URL = 2048
MAX_DESCRIPTION = 5000
MIN_SECRET, MAX_SECRET = 16, 256
OWN_PREFIX = "webhook."
"""Webhook events carry secrets, so they are never delivered to any webhook."""

_NAME_RE = re.compile(SLUG_PATTERN)
_PATTERN_RE = re.compile(r"[A-Za-z0-9_.*?\[\]!\-]+")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"webhook name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '-' and '.'",
            field="name",
        )
    if len(name) > MAX_NAME:
        raise InvalidInput(
            f"webhook name is {len(name)} characters; the limit is {MAX_NAME}", field="name"
        )
    return name


def check_url(url: object) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"webhook url must be an http(s) URL, got {url!r}", field="url")
    url = url.strip()
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        raise InvalidInput(
            f"webhook url must be one http(s) URL of at most {MAX_URL} characters without spaces",
            field="url",
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(
            f"webhook url {url!r} must start with http:// or https://, not "
            f"{parts.scheme + '://' if parts.scheme else 'nothing'}",
            field="url",
        )
    try:
        host, _port = parts.hostname, parts.port
    except ValueError as e:  # a port that is not a number or out of range
        raise InvalidInput(f"webhook url {url!r}: {e}", field="url") from None
    if not host:
        raise InvalidInput(f"webhook url {url!r} names no host", field="url")
    return url


def check_patterns(patterns: object, known_types: Iterable[str]) -> tuple[str, ...]:
    """Event type globs such as `model.*`; each must match some type this build delivers,
    so a typo (`modle.*`) is refused instead of silently never firing."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, Iterable) or not (listed := list(patterns)):
        raise InvalidInput(
            "events must list at least one event type pattern, e.g. 'model.*'", field="events"
        )
    deliverable = [t for t in known_types if not t.startswith(OWN_PREFIX)]
    checked: list[str] = []
    for pattern in listed:
        if not isinstance(pattern, str) or not _PATTERN_RE.fullmatch(pattern):
            raise InvalidInput(
                f"event type pattern {pattern!r} must be a glob of letters, digits, '_', '.', "
                "'-' and the wildcards '*', '?', '[...]', e.g. 'model.*'",
                field="events",
            )
        if not any(TypeMatcher([pattern])(t) for t in deliverable):
            families = sorted({t.split(".", 1)[0] + ".*" for t in deliverable})
            raise InvalidInput(
                f"event type pattern {pattern!r} matches no event type that webhooks deliver; "
                f"known families: {', '.join(families)} (webhook.* events carry secrets and "
                "are never delivered)",
                field="events",
            )
        if pattern not in checked:
            checked.append(pattern)
    return tuple(checked)


def check_secret(secret: object) -> str:
    if (
        not isinstance(secret, str)
        or not MIN_SECRET <= len(secret) <= MAX_SECRET
        or not secret.isprintable()
        or any(c.isspace() for c in secret)
    ):
        raise InvalidInput(
            f"webhook secret must be {MIN_SECRET}-{MAX_SECRET} printable characters without "
            "spaces (leave it out to have one generated)",
            field="secret",
        )
    signing_key(secret)  # a `whsec_` secret must hold base64
    return secret


def check_description(description: object) -> str:
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"webhook description must be text of at most {MAX_DESCRIPTION} characters",
            field="description",
        )
    return description


def decide_create(
    *,
    webhook_id: str,
    name: object,
    url: object,
    events: object,
    secret: str,
    seal: Seal,
    description: object,
    deliver_after: str | None,
    known_types: Iterable[str],
    taken_names: Collection[str],
) -> w.WebhookCreated:
    name = check_name(name)
    if name in taken_names:
        raise AlreadyExists(f"webhook {name!r} already exists; pick another name or update it")
    url, events = check_url(url), check_patterns(events, known_types)
    sealed = seal(check_secret(secret))
    return w.WebhookCreated(
        id=webhook_id,
        name=name,
        url=url,
        events=events,
        sealed_secret=sealed.ciphertext,
        secret_key_id=sealed.key_id,
        description=check_description(description or ""),
        deliver_after=deliver_after,
    )


def decide_update(
    current: Webhook,
    *,
    url: object = None,
    events: object = None,
    secret: object = None,
    description: object = None,
    active: object = None,
    known_types: Iterable[str],
    seal: Seal,
) -> w.WebhookUpdated | None:
    """The event that brings `current` to the requested state, or None if it is there."""
    if all(v is None for v in (url, events, secret, description, active)):
        raise InvalidInput(
            "nothing to update: give a new url, events, secret, description or active"
        )
    if active is not None and not isinstance(active, bool):
        raise InvalidInput(f"active must be true or false, got {active!r}", field="active")
    new_url = None if url is None else check_url(url)
    new_events = None if events is None else check_patterns(events, known_types)
    new_description = None if description is None else check_description(description)
    # Never shown, so always applied: the caller may be rotating it.
    sealed = None if secret is None else seal(check_secret(secret))
    update = w.WebhookUpdated(
        id=current.id,
        url=None if new_url == current.url else new_url,
        events=None if new_events is None or list(new_events) == current.events else new_events,
        sealed_secret=None if sealed is None else sealed.ciphertext,
        secret_key_id=None if sealed is None else sealed.key_id,
        description=None if new_description == current.description else new_description,
        active=None if active == current.active else active,
    )
    changed = update.model_dump(exclude={"id"}, exclude_none=True)
    return update if changed else None
