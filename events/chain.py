"""The hash chain that makes the log tamper-evident (docs/security.md).

Every event carries `hash = SHA-256(prev, document)`: `document` is the event as one
canonical JSON document (the envelope, then `data` exactly as stored), `prev` is the
hash of the event before it in its stream, or `GENESIS` for a stream's first chained
event. The appender computes both while it holds the log's order (SQLite: inside the
append transaction; Kafka: under the handle's lock, after catching the partition up),
so nothing outside the log is trusted to supply them. `ledgerflow.events.verify` walks
what adapters store (`StoredEvent`) and names the first event that breaks the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote
from typing import NamedTuple

GENESIS = ""
"""The `prev` of a stream's first chained event (and of the first after an unhashed one)."""

_DOMAIN = b"ledgerflow.chain.v1\n"


def document(
    id: str,
    type: str,
    stream: str,
    time: int,
    v: int,
    actor: str,
    trace: str | None,
    data: bytes,
) -> bytes:
    """The event as one JSON document: what the Kafka log stores, and what a SQLite row
    is put back into before it is hashed. Equal to `json.dumps` of the envelope (ASCII,
    compact) with the payload's stored JSON as `data`; built by hand because it is
    hashed once per event on every append and every verify.

    Raises TypeError or ValueError for a field of the wrong type (a row no appender
    wrote), never returns a document that two different facts share.
    """
    head = (
        f'{{"id":{_quote(id)},"type":{_quote(type)},"stream":{_quote(stream)},'
        f'"time":{time:d},"v":{v:d},"actor":{_quote(actor)},'
        f'"trace":{"null" if trace is None else _quote(trace)},"data":'
    )
    return head.encode() + data + b"}"


def link(prev: str, doc: bytes) -> hashlib._Hash:
    """The hash object of an event whose predecessor in its stream has hash `prev`."""
    h = hashlib.sha256(_DOMAIN + prev.encode() + b"\n")
    h.update(doc)  # not concatenated: a metric batch's document is tens of KB
    return h


def chain_hash(prev: str, doc: bytes) -> str:
    """`link` as the hex string stored with the event."""
    return link(prev, doc).hexdigest()


class StoredEvent(NamedTuple):
    """One record as a log stores it, undecoded: what `verify` walks.

    `prev` and `hash` are None for an event written before events carried a hash.
    """

    partition: str
    position: int
    id: str
    stream: str
    document: bytes
    prev: str | None
    hash: str | None


@dataclass
class StoredLog:
    """What a log hands the verifier: its records, partition by partition (each in its
    order), and the facts about the log that decide what a break means."""

    events: Iterator[StoredEvent]
    forks: bool = False
    """True where several appenders can chain onto the same predecessor at once (Kafka:
    two gateways appending to one stream race; neither can see the other's record in
    time). False where appends are serialized (SQLite), so a stream never forks and a
    second successor is an insertion."""
    trimmed: Mapping[str, int] = field(default_factory=dict)
    """Partitions whose beginning is gone (Kafka retention), with where each starts now:
    a stream's first event seen there may name a predecessor that was deleted."""
