"""Traffic on the log: replicas record what they served, followers fold it into statistics.

`TrafficRecorder` buffers one replica's `InferenceRecord`s and appends them as
`inference.recorded` batches every `flush_interval_s` (one append per batch and
deployment, never one per request), off the request path.

`TrafficFollower` is the in-process stream processor of the embedded default: it
reads the log's `inference.*` and `feedback.*` events from where it stopped and folds
them into a `TrafficStats`, the same fold the Faust app runs per partition when
distributed.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Generator, Iterator, Sequence
from contextlib import closing

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import LedgerflowError
from ledgerflow.events.log import Checkpoint, EventLog, Item
from ledgerflow.services.analytics.window import TrafficStats
from ledgerflow.services.watchdog import running

logger = logging.getLogger("ledgerflow.deployer")
TRAFFIC_TYPES = (d.InferenceRecorded.TYPE, d.FeedbackRecorded.TYPE)


class TrafficRecorder:
    """Thread-safe and non-blocking for the request path. When the log refuses a batch its
    events are kept and the next flush sends them again as they are, with the same ids, so
    a log that took them before the error (the acknowledgement lost with the connection)
    keeps one copy. What is kept and buffered is bounded by `max_buffered` records, the
    oldest dropped and counted beyond it (a kept event trimmed so becomes a new one)."""

    def __init__(
        self,
        log: EventLog,
        replica: str,
        *,
        flush_interval_s: float = 0.25,
        max_batch: int = 1000,
        max_buffered: int = 100_000,
        actor: str = "model-server",
    ) -> None:
        self.log = log
        self.replica = replica
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.max_buffered = max_buffered
        self.actor = actor
        self.dropped = 0
        self.appended = 0
        self._buffer: dict[str, list[d.InferenceRecord]] = defaultdict(list)
        self._buffered = 0
        self._unsent: list[Event] = []
        self._unsent_records = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, deployment: str, record: d.InferenceRecord) -> None:
        with self._lock:
            if self._buffered + self._unsent_records >= self.max_buffered:
                self._drop_oldest()
            self._buffer[deployment].append(record)
            self._buffered += 1

    def _drop_oldest(self) -> None:
        """One record fewer: the first of the oldest refused event, else the first of the
        longest buffer."""
        self.dropped += 1
        if self._unsent:
            first = self._unsent[0]
            payload = first.data
            if not isinstance(payload, d.InferenceRecorded) or len(payload.records) <= 1:
                del self._unsent[0]
            else:
                rest = d.InferenceRecorded(
                    deployment=payload.deployment, replica=payload.replica,
                    records=payload.records[1:],
                )  # fmt: skip
                self._unsent[0] = Event.of(rest, actor=first.actor)
            self._unsent_records -= 1
            return
        longest = max(self._buffer.values(), key=len)
        del longest[0]
        self._buffered -= 1

    def flush(self) -> int:
        """Append what is buffered; returns how many records went to the log."""
        with self._flush_lock:
            with self._lock:
                taken, self._buffer = self._buffer, defaultdict(list)
                self._buffered = 0
                events, self._unsent = self._unsent, []
                self._unsent_records = 0
            events += [
                Event.of(
                    d.InferenceRecorded(
                        deployment=name, replica=self.replica, records=tuple(chunk)
                    ),
                    actor=self.actor,
                )
                for name, records in taken.items()
                for chunk in _chunks(records, self.max_batch)
            ]
            if not events:
                return 0
            try:
                self.log.append(events)
            except LedgerflowError as e:
                logger.warning("could not record traffic (%s); will retry", e)
                with self._lock:
                    self._unsent = events + self._unsent
                    self._unsent_records = sum(_records(e) for e in self._unsent)
                    while self._buffered + self._unsent_records > self.max_buffered:
                        self._drop_oldest()
                return 0
            sent = sum(_records(e) for e in events)
            self.appended += sent
            return sent

    def start(self) -> TrafficRecorder:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="traffic-recorder", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def alive(self) -> bool:
        """False once the flushing thread died (what is served would go unrecorded)."""
        return running(self._thread, self._stop)

    def close(self) -> None:
        """Stop the timer and flush what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()


def _records(event: Event) -> int:
    data = event.data
    return len(data.records) if isinstance(data, d.InferenceRecorded) else 0


def _chunks(records: Sequence[d.InferenceRecord], size: int) -> Iterator[list[d.InferenceRecord]]:
    for i in range(0, len(records), size):
        yield list(records[i : i + size])


class TrafficFollower:
    """Folds the traffic events of the log into `stats`, up to the head of the log on
    demand (`catch_up`); thread-safe, and each event is folded once."""

    def __init__(self, log: EventLog, stats: TrafficStats | None = None) -> None:
        self.log = log
        self.stats = stats if stats is not None else TrafficStats()
        self.checkpoint = Checkpoint()
        self.lock = threading.Lock()

    def _apply(self, item: Item) -> None:
        with self.lock:
            if not self.checkpoint.includes(item):
                if isinstance(item, Recorded) and isinstance(
                    item.event.data, d.InferenceRecorded | d.FeedbackRecorded
                ):
                    self.stats.apply(item.event.data)
                self.checkpoint = self.checkpoint.advance(item)

    def catch_up(self) -> TrafficFollower:
        """Fold everything on the log now (returns when the head is reached).

        The next catch-up starts past the head seen here, in every partition: the items
        folded only advance the partitions that hold traffic, and starting from those
        alone re-read every other partition from its start each time (on Kafka, the whole
        log of runs and models, every second, in the deployer)."""
        head = self.log.head()
        items = self.log.subscribe(self.checkpoint or None, types=list(TRAFFIC_TYPES), follow=False)
        with closing(_generator(items)) as stream:
            for item in stream:
                self._apply(item)
        with self.lock:  # all up to `head` has been read: nothing before it is left to fold
            self.checkpoint = self.checkpoint.union(head)
        return self


def _generator(items: Iterator[Item]) -> Generator[Item, None, None]:
    yield from items
