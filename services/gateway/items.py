"""Log items as subscribers see them: their type, stream and id, one-line JSON, and
the check that a subscriber's type globs can match anything at all."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ledgerflow.events.codec import REGISTRY, encode
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import Item, TypeMatcher


def check_types(types: Sequence[str] | None) -> list[str] | None:
    """The type globs, each checked to match some event type (a typo would match none,
    and the subscriber would wait forever for nothing)."""
    patterns = [t.strip() for t in types or [] if t.strip()]
    if not patterns:
        return None
    known = REGISTRY.types()
    for pattern in patterns:
        if not any(TypeMatcher([pattern])(t) for t in known):
            families = sorted({t.split(".", 1)[0] + ".*" for t in known})
            raise InvalidInput(
                f"types: {pattern!r} matches no event type; use a type such as "
                f"'run.metrics_logged' or a glob such as {', '.join(map(repr, families))}",
                field="types",
            )
    return patterns


def item_type(item: Item) -> str:
    return item.event.type if isinstance(item, Recorded) else item.type


def item_stream(item: Item) -> str:
    return item.event.stream if isinstance(item, Recorded) else item.stream


def item_id(item: Item) -> str:
    return item.event.id if isinstance(item, Recorded) else item.id


def item_json(item: Item) -> str:
    """The item as one line of JSON: the event as `codec.encode` writes it, or for a
    stored event that cannot be decoded, its envelope, raw data and the reason."""
    if isinstance(item, Recorded):
        return encode(item.event).decode()
    return json.dumps(
        {
            "id": item.id,
            "type": item.type,
            "stream": item.stream,
            "corrupt": item.reason,
            "data": item.data,
        },
        separators=(",", ":"),
    )
