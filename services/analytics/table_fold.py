"""The traffic fold kept in a key-value table: what the Faust worker runs per record.

The table is any `MutableMapping[str, bytes]`: Faust's changelog-backed table in the
worker, a dict in tests. It holds every window aggregate the fold changed (keyed by
`[deployment, variant, window start]`, the compacted past under a `null` start) and, per
partition, the offset of the last record folded (`[partition]`), written after the
record's changes. Records redelivered after a rebalance or restart, from a consumer
offset committed late, are then recognized and skipped instead of being counted twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, MutableMapping

from ledgerflow.events.codec import decode
from ledgerflow.events.deployment_payloads import FeedbackRecorded, InferenceRecorded
from ledgerflow.events.errors import CorruptEvent
from ledgerflow.services.analytics.series import DEFAULT_WINDOW_MS
from ledgerflow.services.analytics.window import DEFAULT_RETENTION_MS, EntryKey, TrafficStats

log = logging.getLogger(__name__)


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
        self.unpublished: set[str] = set()
        """Deployments changed since the publisher last took this set."""
        self._restored: set[str] = set()
        self._applied: dict[int, int] = {}
        self._partition_of: dict[str, int] = {}

    def handle(self, raw: bytes, partition: int, offset: int) -> None:
        """Fold one record of the inference topic and write what changed to the table."""
        if offset <= self.applied_offset(partition):
            log.debug("skipping %s@%s: already folded", partition, offset)
            return
        try:
            payload = decode(raw).data
        except CorruptEvent as e:
            self.corrupt += 1
            log.error("skipping undecodable traffic record %s@%s: %s", partition, offset, e.message)
            payload = None
        if isinstance(payload, InferenceRecorded | FeedbackRecorded):
            self._restore(payload.deployment)
            self._partition_of[payload.deployment] = partition
            self.stats.apply(payload)
            for key, value in self.stats.drain_changes():
                table_key = json.dumps(list(key))
                if value is None:
                    self.table.pop(table_key, None)
                else:
                    self.table[table_key] = json.dumps(value).encode()
            self.unpublished.add(payload.deployment)
        self._applied[partition] = offset
        self.table[json.dumps([partition])] = str(offset).encode()

    def applied_offset(self, partition: int) -> int:
        """The offset of the last record of `partition` folded (-1: none)."""
        applied = self._applied.get(partition)
        if applied is None:
            stored = self.table.get(json.dumps([partition]))
            applied = self._applied[partition] = -1 if stored is None else int(stored)
        return applied

    def keep_partitions(self, mine: Collection[int]) -> None:
        """After a rebalance, forget the deployments of partitions that moved to another
        worker: if they come back, the table (kept by that worker meanwhile) is reloaded.
        Partitions kept keep their fold, join maps and applied offsets."""
        for name, partition in list(self._partition_of.items()):
            if partition not in mine:
                log.info("deployment %r moved to another worker (partition %s)", name, partition)
                self.stats.forget(name)
                self._restored.discard(name)
                self.unpublished.discard(name)
                del self._partition_of[name]
        for partition in [p for p in self._applied if p not in mine]:
            del self._applied[partition]

    def _restore(self, deployment: str) -> None:
        """The first time a deployment is seen, load its windows from the table (filled
        from the changelog when its partition moved here from another worker)."""
        if deployment in self._restored:
            return
        self._restored.add(deployment)
        for raw_key, raw_value in list(self.table.items()):
            key = json.loads(raw_key)
            if len(key) == 3 and key[0] == deployment and raw_value is not None:
                entry: EntryKey = (key[0], key[1], key[2])
                self.stats.restore(entry, json.loads(raw_value))
