"""Live events for a gateway's subscribers: one log follower, fanned out to many.

A gateway may hold thousands of subscriptions (gRPC `Subscribe`, Server-Sent
Events, the read cache's invalidator). Following the log once per subscriber
would multiply the load on SQLite or Kafka by that number, so a `Hub` follows
it once and copies each new item into every subscriber's bounded inbox (a
`Feed`). With a Redis URL the follower runs once per *cluster* instead: see
`ledgerflow.services.gateway.follower` and `relay`.

A subscriber that starts from an older position first reads the log itself
(the live feed only has what happens from now on), then joins the feed. The
hand-over has no gap and no duplicate: the subscriber attaches its feed, reads
the log once more up to its head (everything dispatched before the attach is
at or below that head), then takes live items, skipping those its checkpoint
already includes.

A subscriber that does not keep up (its inbox fills) is disconnected with
`SubscriberTooSlow`, which carries the token to resume from; the others never
wait for it and memory stays bounded. If the hub itself loses live items (Redis
trimmed entries it had not read), it tells every subscriber to catch up from
the log again rather than let a gap through.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.log import After, Checkpoint, EventLog, Item, TypeMatcher
from ledgerflow.services.gateway.follower import LogFollower, Source
from ledgerflow.services.gateway.items import check_types, item_type

QUEUE_SIZE = 10_000
"""Live items a subscriber may have pending before it counts as too slow."""
REPLAY_BATCH = 500


class SubscriberTooSlow(Unavailable):
    """The subscriber fell too far behind the live events and was disconnected."""

    code = "SUBSCRIBER_TOO_SLOW"

    def __init__(self, message: str, *, token: str) -> None:
        super().__init__(message)
        self.token = token


class Delivery(NamedTuple):
    """An item handed to a subscriber, with the subscriber's checkpoint just after it."""

    item: Item
    checkpoint: Checkpoint

    @property
    def token(self) -> str:
        """What the subscriber passes as `after` to resume right after this item."""
        return self.checkpoint.encode()

    @property
    def type(self) -> str:
        return item_type(self.item)


class _Signal(enum.Enum):
    OVERFLOW = "overflow"  # the inbox filled up: the subscriber is too slow
    RESYNC = "resync"  # the hub lost live items: read the log again
    CLOSED = "closed"


class Feed:
    """One subscriber's bounded inbox of live items; the hub never blocks on it."""

    def __init__(self, size: int) -> None:
        self._items: deque[Item] = deque()
        self._size = size
        self._cond = threading.Condition()
        self.signal: _Signal | None = None

    def put(self, item: Item) -> bool:
        """Queue `item`; False once the feed takes no more (full, resynced or closed)."""
        with self._cond:
            if self.signal is not None:
                return False
            if len(self._items) >= self._size:
                self.signal = _Signal.OVERFLOW
                self._cond.notify()
                return False
            self._items.append(item)
            self._cond.notify()
            return True

    def end(self, signal: _Signal) -> None:
        with self._cond:
            if self.signal is None or signal is _Signal.CLOSED:
                self.signal = signal
            self._cond.notify()

    def get(self, timeout: float) -> Item | _Signal | None:
        """The next item; the signal once the items before it are taken; None on timeout."""
        with self._cond:
            if not self._items and self.signal is None:
                self._cond.wait(timeout)
            if self.signal is _Signal.CLOSED:
                return _Signal.CLOSED
            if self._items:
                return self._items.popleft()
            return self.signal


class Hub:
    """Fans one follower's live events out to any number of subscriptions.

    Without `redis_url` the follower is a thread of this process reading the log.
    With it, one hub in the cluster (elected through a Redis lease) follows the log
    and publishes to Redis, and every hub reads from there.
    """

    def __init__(
        self,
        log: EventLog,
        *,
        redis_url: str | None = None,
        prefix: str = "ledgerflow:",
        queue_size: int = QUEUE_SIZE,
        lease_s: float = 10.0,
    ) -> None:
        if queue_size < 1:
            raise InvalidInput(f"queue_size={queue_size}: need at least 1", field="queue_size")
        self.log = log
        self.redis_url = redis_url
        self.prefix = prefix
        self.queue_size = queue_size
        self.lease_s = lease_s
        self._feeds: set[Feed] = set()
        self._internal: set[Feed] = set()  # of `_feeds`, the gateway's own subscriptions
        self._lock = threading.Lock()
        self._closed = False
        self._source: Source | None = None

    def start(self) -> Hub:
        if self._source is not None:
            return self
        if self.redis_url:
            from ledgerflow.services.gateway.relay import RedisRelay

            self._source = RedisRelay(
                self.log,
                self.redis_url,
                prefix=self.prefix,
                dispatch=self._dispatch,
                resync=self._resync,
                lease_s=self.lease_s,
            )
        else:
            self._source = LogFollower(self.log, self._dispatch)
        self._source.start()
        return self

    @property
    def closed(self) -> bool:
        return self._closed

    def alive(self) -> bool:
        """False once the thread that feeds subscribers died (not closed on purpose)."""
        return self._closed or self._source is None or self._source.alive()

    @property
    def source(self) -> Source | None:
        return self._source

    @property
    def subscribers(self) -> int:
        """How many subscriptions of clients (SSE and gRPC streams) are attached to the live
        feed right now; the gateway's own (`internal`, the read cache's) are not counted."""
        with self._lock:
            return len(self._feeds) - len(self._internal)

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        queue_size: int | None = None,
        internal: bool = False,
    ) -> Subscription:
        """Replay the log after `after` (from the start when None, only new events for
        "latest"), then follow it; `types` are globs such as `run.*`. `queue_size`
        overrides the hub's bound on this subscriber's pending live events. An `internal`
        subscription (the gateway's own) is not counted in `subscribers`."""
        if self._closed:
            raise Unavailable("the event hub is closed; the gateway is shutting down")
        if self._source is None:
            raise Unavailable("the event hub is not started; call Hub.start() first")
        patterns = check_types(types)
        head = self.log.head()
        start = head if after == "latest" else Checkpoint.coerce(after)
        _check_start(start, head)
        size = queue_size if queue_size is not None else self.queue_size
        if size < 1:
            raise InvalidInput(f"queue_size={size}: need at least 1", field="queue_size")
        return Subscription(self, start, patterns, size, internal=internal)

    def close(self) -> None:
        """Stop following and end every subscription (their consumers see them closed)."""
        self._closed = True
        if self._source is not None:
            self._source.close()
        with self._lock:
            feeds, self._feeds = self._feeds, set()
            self._internal = set()
        for feed in feeds:
            feed.end(_Signal.CLOSED)

    # -- what subscriptions and sources call --------------------------------------

    def _attach(self, size: int, internal: bool = False) -> Feed:
        feed = Feed(size)
        with self._lock:
            if self._closed:
                feed.end(_Signal.CLOSED)
            else:
                self._feeds.add(feed)
                if internal:
                    self._internal.add(feed)
        return feed

    def _detach(self, feed: Feed) -> None:
        with self._lock:
            self._feeds.discard(feed)
            self._internal.discard(feed)

    def _dispatch(self, item: Item) -> None:
        # Under the lock, so a feed attached "before" an item surely gets it.
        with self._lock:
            dropped = [feed for feed in self._feeds if not feed.put(item)]
            self._feeds.difference_update(dropped)
            self._internal.difference_update(dropped)

    def _resync(self) -> None:
        with self._lock:
            feeds, self._feeds = self._feeds, set()
            self._internal = set()
        for feed in feeds:
            feed.end(_Signal.RESYNC)


class Subscription:
    """One subscriber's view: the log from its start point on, filtered by type.

    Pull with `next(timeout)`; one consumer thread at a time. `close()` may be called
    from any thread (a disconnect callback) and wakes a waiting `next`.
    """

    def __init__(
        self,
        hub: Hub,
        start: Checkpoint,
        types: Sequence[str] | None,
        queue_size: int,
        *,
        internal: bool = False,
    ) -> None:
        self._hub = hub
        self._size = queue_size
        self._internal = internal
        self._seen = start
        self._match = TypeMatcher(types)
        self._stop = threading.Event()
        self._wait = 1.0
        self._feed: Feed | None = None
        self._items = self._run()

    @property
    def checkpoint(self) -> Checkpoint:
        """Everything up to here has been delivered or skipped as not matching."""
        return self._seen

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    def next(self, timeout: float = 1.0) -> Delivery | None:
        """The next matching item, or None after at most about `timeout` seconds without
        one (sooner when only other types went by, so `checkpoint` moves), or once closed.
        Raises SubscriberTooSlow if the live feed left this subscriber behind."""
        if self._stop.is_set():
            return None
        self._wait = max(timeout, 0.0)
        try:
            item = next(self._items)
        except StopIteration:
            self._stop.set()
            return None
        except BaseException:
            self._stop.set()
            raise
        return None if item is None else Delivery(item, self._seen)

    def __iter__(self) -> Iterator[Delivery]:
        while not self._stop.is_set():
            got = self.next(1.0)
            if got is not None:
                yield got

    def close(self) -> None:
        self._stop.set()
        feed = self._feed
        if feed is not None:
            feed.end(_Signal.CLOSED)

    def _wanted(self, item: Item) -> bool:
        return self._match(item_type(item))

    def _take(self, item: Item) -> bool:
        """Advance past `item`; True if it is new and matches."""
        if self._seen.includes(item):
            return False
        self._seen = self._seen.advance(item)
        return self._wanted(item)

    def _run(self) -> Iterator[Item | None]:
        """Yields matching items, and None whenever a wait of `self._wait` passes."""
        while not self._stop.is_set():
            yield from self._replay()  # the history, however long, before any feed exists
            if self._stop.is_set():
                return
            feed = self._feed = self._hub._attach(self._size, self._internal)
            try:
                yield from self._replay()  # what was appended while attaching
                if feed.signal is _Signal.OVERFLOW:
                    continue  # that tail outran the inbox: catch up from the log again
                moved = False  # skipped items since the last yield: report progress soon
                while not self._stop.is_set():
                    got = feed.get(0.0 if moved else self._wait)
                    if got is None:
                        moved = False
                        yield None
                    elif got is _Signal.CLOSED:
                        return
                    elif got is _Signal.RESYNC:
                        break
                    elif got is _Signal.OVERFLOW:
                        raise SubscriberTooSlow(
                            f"this subscriber fell more than {self._size} events "
                            "behind the live feed and was disconnected so others are not held "
                            f"up; resume with after={self._seen.encode()!r}",
                            token=self._seen.encode(),
                        )
                    elif self._take(got):
                        moved = False
                        yield got
                    else:
                        moved = True
            finally:
                self._feed = None
                self._hub._detach(feed)

    def _replay(self) -> Iterator[Item | None]:
        """Read the log itself from this subscriber's checkpoint up to its head."""
        deadline = time.monotonic() + self._wait
        while not self._stop.is_set():
            batch = list(self._hub.log.read(self._seen, limit=REPLAY_BATCH))
            if not batch:
                return
            for item in batch:
                if self._stop.is_set():
                    return
                if self._take(item):
                    yield item
                    deadline = time.monotonic() + self._wait
            if time.monotonic() > deadline:
                yield None  # long stretches of other types: let the consumer look up
                deadline = time.monotonic() + self._wait


def _check_start(start: Checkpoint, head: Checkpoint) -> None:
    """A token past the log's head would silently skip every event up to it."""
    beyond = {p: o for p, o in start.partitions().items() if o > max(head.get(p) or 0, 0)}
    if beyond:
        raise InvalidInput(
            f"after={start.encode()!r} is past the end of this event log (its head is "
            f"{head.encode() or 'empty'!r}): the token comes from another log, or this "
            "one was reset; subscribe without it to start from the beginning",
            field="after",
        )
