"""Live events through Redis: one log follower for the whole cluster, read by every gateway.

Election: a gateway becomes the relay's leader by taking a Redis key with an
expiry (`SET NX PX`), renews it every third of the lease, and gives it up on
shutdown. If it dies, the key expires and another gateway takes it within about
one lease. The leader follows the log and publishes each item; every gateway
(the leader too) reads the published items and hands them to its `Hub`.

Why a capped Redis Stream and not pub/sub: pub/sub forgets a message the moment
it is sent, so a gateway whose connection blips, or that pauses for a moment,
loses events without knowing. A stream keeps the entries of the last
`retention_s` (and at most `maxlen` of them): a reader resumes after a blip from
the last entry id it read, and each entry carries a sequence number, so a reader
that still finds a hole (entries trimmed before it got to them) knows, and tells
its subscribers to catch up from the log itself. Trimming by age is what bounds
Redis's memory: a count alone does not, since one entry is a whole event (a
metric batch can be megabytes), and at a steady rate the stream would grow until
it held `maxlen` of them. Where the last leader stopped is a key of its own.

Fencing: publishing is one Lua script that checks the lease is still this
leader's before it appends, bumps the sequence number and records the
published checkpoint, all atomically. A leader that stalled past its lease
(a long GC pause) cannot publish after another has taken over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeAlias, cast

import redis

from ledgerflow.events.codec import decode, encode
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import CorruptEvent, LedgerflowError, Unavailable
from ledgerflow.events.log import Checkpoint, CorruptRecord, EventLog, Item
from ledgerflow.services.watchdog import running

logger = logging.getLogger(__name__)

STREAM_MAXLEN = 100_000
STREAM_RETENTION_S = 60.0
"""How long entries stay: a reader away longer catches up from the log instead."""
READ_BLOCK_MS = 500
READ_COUNT = 500
Entry: TypeAlias = tuple[bytes, dict[bytes, bytes]]
"""A stream entry as redis-py returns it: its id and its fields."""

_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local seq = redis.call('INCR', KEYS[3])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
           'seq', seq, 'part', ARGV[4], 'pos', ARGV[5], 'kind', ARGV[6], 'body', ARGV[7])
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[8])
redis.call('XTRIM', KEYS[2], 'MINID', '~', string.format('%.0f', oldest))
redis.call('SET', KEYS[4], ARGV[3])
return seq
"""
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


def connect(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client for `url`, checked with a ping so a wrong URL fails here, clearly."""
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, protocol=2
        )
        client.ping()
    except (redis.RedisError, ValueError) as e:
        raise Unavailable(
            f"cannot reach Redis at {_redact(url)} (LEDGERFLOW_REDIS_URL): {e}; "
            "is it running, and is the URL redis://HOST:PORT[/DB]?"
        ) from None
    return client


class RedisRelay:
    """A `Hub` source: elects the cluster's one log follower and reads what it publishes."""

    def __init__(
        self,
        log: EventLog,
        url: str,
        *,
        prefix: str,
        dispatch: Callable[[Item], None],
        resync: Callable[[], None],
        lease_s: float = 10.0,
        maxlen: int = STREAM_MAXLEN,
        retention_s: float = STREAM_RETENTION_S,
    ) -> None:
        self._log = log
        self._dispatch = dispatch
        self._resync = resync
        self.lease_s = lease_s
        self.maxlen = maxlen
        self.retention_ms = int(retention_s * 1000)
        self.keys = {
            name: f"{prefix}hub:{name}" for name in ("lease", "stream", "seq", "published")
        }
        self._r = connect(url)
        # Blocking reads hold their connection for READ_BLOCK_MS: their own client.
        self._reader = connect(url, timeout_s=READ_BLOCK_MS / 1000 + 5)
        self._publish = self._r.register_script(_PUBLISH)
        self._renew = self._r.register_script(_RENEW)
        self._release = self._r.register_script(_RELEASE)
        self._token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._term_stop = threading.Event()
        self.leading = threading.Event()
        self._threads = [
            threading.Thread(target=self._elect, name="event-relay-leader", daemon=True),
            threading.Thread(target=self._read, name="event-relay-reader", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def alive(self) -> bool:
        return all(running(t, self._stop) for t in self._threads)

    def close(self) -> None:
        self._stop.set()
        self._term_stop.set()
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(timeout=10)
        self._r.close()
        self._reader.close()

    # -- leading --------------------------------------------------------------------

    def _elect(self) -> None:
        while not self._stop.is_set():
            try:
                lease_ms = int(self.lease_s * 1000)
                if self._r.set(self.keys["lease"], self._token, nx=True, px=lease_ms):
                    self._lead()
            except (redis.RedisError, LedgerflowError) as e:
                logger.warning("event relay: leading failed (%s); standing again", e)
            self._stop.wait(self.lease_s / 3)

    def _lead(self) -> None:
        stop = self._term_stop = threading.Event()
        if self._stop.is_set():  # closed while the lease was being taken
            stop.set()
        keeper = threading.Thread(
            target=self._keep_lease, args=(stop,), name="event-relay-lease", daemon=True
        )
        keeper.start()
        self.leading.set()
        logger.info("event relay: this gateway now follows the log for the cluster")
        try:
            after = self._resume_point()
            for item in self._log.subscribe(after=after, stop=stop):
                after = after.advance(item)
                if not self._publish_item(item, after):
                    logger.warning("event relay: lost the lease; another gateway leads now")
                    return
        finally:
            self.leading.clear()
            stop.set()
            keeper.join()
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                self._release(keys=[self.keys["lease"]], args=[self._token])

    def _resume_point(self) -> Checkpoint:
        """Where the previous leader stopped, so no event goes unpublished between terms."""
        head = self._log.head()
        raw = self._r.get(self.keys["published"])
        if raw is None:
            return head  # the first leader: subscribers read older events from the log
        published = Checkpoint.parse(text(raw))
        if not head.covers(published):
            logger.warning(
                "event relay: published checkpoint %s is past the log head %s (was the log "
                "reset?); publishing from the head",
                published.encode(),
                head.encode(),
            )
            return head
        return published

    def _publish_item(self, item: Item, after: Checkpoint) -> bool:
        if isinstance(item, Recorded):
            kind, body = "e", encode(item.event)
        else:
            kind = "c"
            body = json.dumps(
                {"id": item.id, "type": item.type, "stream": item.stream, "data": item.data,
                 "reason": item.reason}
            ).encode()  # fmt: skip
        keys = [self.keys[k] for k in ("lease", "stream", "seq", "published")]
        args: list[str | int | bytes] = [
            self._token, self.maxlen, after.encode(), item.partition, item.position, kind, body,
            self.retention_ms,
        ]  # fmt: skip
        return bool(self._publish(keys=keys, args=args))

    def _keep_lease(self, stop: threading.Event) -> None:
        lease_ms = int(self.lease_s * 1000)
        while not stop.wait(self.lease_s / 3):
            try:
                renewed = self._renew(keys=[self.keys["lease"]], args=[self._token, lease_ms])
            except redis.RedisError as e:
                logger.warning("event relay: renewing the lease failed (%s)", e)
                renewed = 0
            if not renewed:
                stop.set()  # the follower stops; publishing was fenced anyway

    # -- reading --------------------------------------------------------------------

    def _read(self) -> None:
        last_id, last_seq = self._tail()
        while not self._stop.is_set():
            try:
                reply = self._reader.xread(
                    {self.keys["stream"]: last_id}, count=READ_COUNT, block=READ_BLOCK_MS
                )
            except redis.RedisError as e:
                logger.warning("event relay: reading from Redis failed (%s); retrying", e)
                self._stop.wait(1.0)
                continue
            for _stream, entries in cast(list[tuple[bytes, list[Entry]]], reply or []):
                for entry_id, fields in entries:
                    seq = int(fields[b"seq"])
                    if last_seq is not None and seq != last_seq + 1:
                        logger.warning(
                            "event relay: entries %s..%s are gone from Redis; subscribers "
                            "catch up from the log",
                            last_seq + 1,
                            seq - 1,
                        )
                        self._resync()
                    last_id, last_seq = entry_id, seq
                    self._dispatch(_decode(fields))

    def _tail(self) -> tuple[bytes | str, int | None]:
        """The newest entry's id and sequence number: this reader starts after it."""
        while not self._stop.is_set():
            try:
                newest = self._reader.xrevrange(self.keys["stream"], count=1)
            except redis.RedisError as e:
                logger.warning("event relay: Redis did not answer (%s); retrying", e)
                self._stop.wait(1.0)
                continue
            if not newest:
                return "0-0", None
            entry_id, fields = cast(list[Entry], newest)[0]
            return entry_id, int(fields[b"seq"])
        return "0-0", None


def text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode()


def _decode(fields: dict[bytes, bytes]) -> Item:
    partition = fields[b"part"].decode()
    position = int(fields[b"pos"])
    body = fields[b"body"]
    if fields[b"kind"] == b"c":
        doc: dict[str, Any] = json.loads(body)
        return CorruptRecord(
            position, doc["id"], doc["type"], doc["stream"], doc["data"], doc["reason"], partition
        )
    try:
        return Recorded(position, decode(body), partition)
    except CorruptEvent as e:  # e.g. a type a newer leader knows and this gateway does not
        doc = json.loads(body)
        return CorruptRecord(
            position,
            str(doc.get("id", "")),
            str(doc.get("type", "")),
            str(doc.get("stream", "")),
            json.dumps(doc.get("data")),
            e.message,
            partition,
        )


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
