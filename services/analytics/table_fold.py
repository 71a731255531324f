"""The traffic fold kept in a key-value table: what the Faust worker runs per record.

The table is any `MutableMapping[str, bytes]`: Faust's changelog-backed table in the
worker, a dict in tests. It holds everything the fold knows, per source partition `p`
(keys are JSON lists):

- `[p, "window", deployment, variant, start]`: a window's aggregate (`start` null for
  the compacted past);
- `[p, "request", deployment, request id]`: the feedback join's entry for a request
  (its variant, the metrics counted, feedback waiting for it; `join.py`);
- `[p, "journal"]`: the offset of the last record folded and every entry it changed.

Exactly once, by construction: for each record the journal is written first, then the
entries it lists. A changelog keeps one partition's writes in order, so whatever prefix
of them survives a stop, a crash or a short recovery holds, with the last journal, all
the writes of every record up to the journal's and only those: `take` lays the
journal's entries over the table, and the fold resumes at the record after the
journal's offset. What `handle` is given again at or before that offset is skipped.
Nothing depends on which consumer offsets were committed.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Collection, MutableMapping
from typing import Any

from ledgerflow.events.codec import decode
from ledgerflow.events.deployment_payloads import FeedbackRecorded, InferenceRecorded
from ledgerflow.events.errors import CorruptEvent
from ledgerflow.services.analytics.series import DEFAULT_WINDOW_MS
from ledgerflow.services.analytics.window import DEFAULT_RETENTION_MS, TrafficStats

log = logging.getLogger(__name__)
Change = tuple[str, Any]
"""(table key, JSON value or None when the entry is gone)."""


def journal_key(partition: int) -> str:
    return _key([partition, "journal"])


class TableFold:
    def __init__(
        self,
        table: MutableMapping[str, bytes],
        *,
        window_ms: int = DEFAULT_WINDOW_MS,
        retention_ms: int = DEFAULT_RETENTION_MS,
    ) -> None:
        self.table = table
        self.stats = TrafficStats(window_ms=window_ms, retention_ms=retention_ms)
        self.corrupt = 0
        """Records that could not be decoded (logged with their offset and reason)."""
        self.skipped = 0
        """Records given again at or before the last folded one (redelivered), passed over."""
        self.unpublished: set[str] = set()
        """Deployments changed since the publisher last took this set."""
        self.changed: defaultdict[str, set[int | None]] = defaultdict(set)
        """Per deployment in `unpublished`, the starts of the windows that changed (None:
        the compacted past), so the publisher rewrites only their chunks."""
        self.reloaded: set[str] = set()
        """Deployments (re)built from the table or forgotten since the publisher last took
        this set: published whole next time."""
        self._applied: dict[int, int] = {}
        """Partitions taken: the offset of the last record folded (-1: none)."""
        self._redo: dict[int, list[Change]] = {}
        """Per partition taken, journal entries the table lacks (a cut-off write)."""
        self._partition_of: dict[str, int] = {}

    def take(self, partitions: Collection[int]) -> dict[int, int]:
        """Fold `partitions` from here on, loading those not held yet from the table;
        returns the offset each must be consumed from (the record after the last folded)."""
        new = sorted(p for p in partitions if p not in self._applied)
        if new:
            self._load(new)
        return {p: self._applied[p] + 1 for p in partitions}

    def keep_partitions(self, mine: Collection[int]) -> None:
        """After a rebalance, forget the partitions that moved to another worker, with
        their deployments: if they come back, they are loaded from the table again."""
        for name, partition in list(self._partition_of.items()):
            if partition not in mine:
                log.info("deployment %r moved to another worker (partition %s)", name, partition)
                self.stats.forget(name)
                self.unpublished.discard(name)
                self.changed.pop(name, None)
                self.reloaded.add(name)
                del self._partition_of[name]
        for partition in [p for p in self._applied if p not in mine]:
            del self._applied[partition]
            self._redo.pop(partition, None)

    def expects(self, partition: int) -> int:
        """The offset of the record of `partition` to fold next."""
        return self.take([partition])[partition]

    def applied_offset(self, partition: int) -> int:
        """The offset of the last record of `partition` folded (-1: none)."""
        return self.expects(partition) - 1

    def handle(self, raw: bytes, partition: int, offset: int) -> None:
        """Fold one record of the inference topic and write what changed to the table."""
        applied = self.applied_offset(partition)
        if offset <= applied:
            log.debug("skipping %s@%s: already folded", partition, offset)
            self.skipped += 1
            return
        if applied >= 0 and offset > applied + 1:
            log.warning(
                "partition %s: records %s..%s were not folded", partition, applied + 1, offset - 1
            )
        redo = self._redo.pop(partition, [])
        if redo:  # before the next journal replaces the one that lists them
            self._write(redo)
        try:
            payload = decode(raw).data
        except CorruptEvent as e:
            self.corrupt += 1
            log.error("skipping undecodable traffic record %s@%s: %s", partition, offset, e.message)
            payload = None
        changes: list[Change] = []
        if isinstance(payload, InferenceRecorded | FeedbackRecorded):
            self._partition_of[payload.deployment] = partition
            self.stats.apply(payload)
            changes = self._drain(partition)
            self.unpublished.add(payload.deployment)
        self.table[journal_key(partition)] = _encode({"offset": offset, "changes": changes})
        self._write(changes)
        self._applied[partition] = offset

    def take_unpublished(self) -> tuple[set[str], dict[str, set[int | None]], set[str]]:
        """For the publisher: the deployments changed since it last took them, their
        changed window starts, and those to publish whole; all three start empty again."""
        taken = (self.unpublished, dict(self.changed), self.reloaded)
        self.unpublished, self.reloaded = set(), set()
        self.changed.clear()
        return taken

    def _drain(self, partition: int) -> list[Change]:
        drained = self.stats.drain_changes()
        for (name, _, start), _ in drained:
            self.changed[name].add(start)
        changes: list[Change] = [
            (_key([partition, "window", *key]), value) for key, value in drained
        ]
        changes += [
            (_key([partition, "request", name, rid]), value)
            for name, rid, value in self.stats.drain_requests()
        ]
        return changes

    def _write(self, changes: list[Change]) -> None:
        for key, value in changes:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = _encode(value)

    def _load(self, partitions: list[int]) -> None:
        """Rebuild the fold of `partitions` from the table in one pass over it, with each
        partition's journal laid over what the table holds."""
        entries: dict[int, dict[str, Any]] = {p: {} for p in partitions}
        for raw_key, raw_value in list(self.table.items()):
            key = json.loads(raw_key)
            if key[0] in entries and key[1] != "journal" and raw_value is not None:
                entries[key[0]][raw_key] = json.loads(raw_value)
        for p in partitions:
            raw = self.table.get(journal_key(p))
            journal: dict[str, Any] = {"offset": -1, "changes": []}
            if raw is not None:
                journal = json.loads(raw)
            redo: list[Change] = []
            for key, value in journal["changes"]:
                if entries[p].get(key) != value:
                    redo.append((key, value))
                    entries[p].pop(key, None)
                    if value is not None:
                        entries[p][key] = value
            self._restore(p, entries[p])
            self._applied[p] = int(journal["offset"])
            self._redo[p] = redo
            if redo:
                log.info(
                    "partition %s: %d writes of record %s to redo", p, len(redo), journal["offset"]
                )

    def _restore(self, partition: int, entries: dict[str, Any]) -> None:
        requests: defaultdict[str, list[tuple[str, Any]]] = defaultdict(list)
        for raw_key, value in entries.items():
            key = json.loads(raw_key)
            name = key[2]
            if key[1] == "window":
                self.stats.restore((name, key[3], key[4]), value)
            elif key[1] == "request":
                requests[name].append((key[3], value))
            self._partition_of[name] = partition
            self.unpublished.add(name)
            self.reloaded.add(name)
        for name, found in requests.items():
            self.stats.restore_requests(name, found)


def _key(parts: list[Any]) -> str:
    return json.dumps(parts, separators=(",", ":"))


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
