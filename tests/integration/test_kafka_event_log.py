import asyncio
import hashlib
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from ledgerflow.events.chain import StoredEvent
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import InvalidInput, Unavailable
from ledgerflow.events.kafka_log import KafkaEventLog
from ledgerflow.events.log import CorruptRecord, EventLog
from ledgerflow.events.model_payloads import RegisteredModelCreated
from tests.integration.eventlog_contract import EventLogContract, tag_event
from tests.integration.eventlog_tamper_contract import split_document

SESSION = uuid.uuid4().hex[:8]


class TestKafkaEventLog(EventLogContract):
    bootstrap: str

    @pytest.fixture(autouse=True)
    def _broker(self, kafka_bootstrap: str) -> None:
        self.bootstrap = kafka_bootstrap

    def make_log(self, tmp_path: Path) -> EventLog:
        # Tansu's memory engine rejects aiokafka's InitProducerId request, so no idempotence here.
        return KafkaEventLog(
            self.bootstrap, topic_prefix=self.prefix(tmp_path), partitions=3, idempotent=False
        )

    def prefix(self, tmp_path: Path) -> str:
        return f"test-{SESSION}-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:12]}"

    def rewrite(self, log: EventLog, tmp_path: Path, records: list[StoredEvent]) -> EventLog:
        """A copy of the topics under a new prefix, produced record by record with a raw
        producer (Kafka cannot change a record in place: a rewrite is a new topic)."""
        copy = KafkaEventLog(
            self.bootstrap,
            topic_prefix=f"{self.prefix(tmp_path)}-copy-{uuid.uuid4().hex[:8]}",
            partitions=3,
            idempotent=False,
        )

        async def produce() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            await producer.start()
            try:
                for r in records:
                    topic, _, partition = r.partition.rpartition("/")
                    head, _ = split_document(r.document)
                    headers = [(k, str(head[k]).encode()) for k in ("id", "type", "stream")]
                    if r.hash is not None:
                        headers += [("prev", (r.prev or "").encode()), ("hash", r.hash.encode())]
                    await producer.send_and_wait(
                        copy.topics[topic.rsplit(".", 1)[1]], r.document, key=r.stream.encode(),
                        partition=int(partition), headers=headers,
                    )  # fmt: skip
            finally:
                await producer.stop()

        try:
            asyncio.run(produce())
        except BaseException:
            copy.close()
            raise
        return copy

    def test_an_undecodable_record_comes_back_as_a_corrupt_record(self, log: KafkaEventLog) -> None:
        log.append([tag_event("a", 0)])

        async def produce_garbage() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            await producer.start()
            try:
                tp = log.where("run:a")
                await producer.send_and_wait(
                    tp.topic, b"{not json", key=b"run:a", partition=tp.partition,
                    headers=[("id", b"bad-1"), ("type", b"run.tags_set")],
                )  # fmt: skip
            finally:
                await producer.stop()

        asyncio.run(produce_garbage())
        log.append([tag_event("a", 1)])
        items = list(log.read())
        assert isinstance(items[1], CorruptRecord)
        assert items[1].id == "bad-1" and "undecodable" in items[1].reason
        assert items[1].stream == "run:a"
        assert not isinstance(items[2], CorruptRecord)

    def test_a_new_handle_knows_the_ids_already_in_the_log(
        self, log: KafkaEventLog, tmp_path: Path
    ) -> None:
        ev = tag_event("a", 1)
        first = log.append([ev])
        other = self.reopen(tmp_path)
        try:
            again = other.append([ev])
            assert (again[0].partition, again[0].position) == (
                first[0].partition,
                first[0].position,
            )
        finally:
            other.close()
        assert len(list(log.read())) == 1

    def test_streams_go_to_their_category_topic_and_spread_over_partitions(
        self, log: KafkaEventLog
    ) -> None:
        recorded = log.append(
            [tag_event(f"r{i}", i) for i in range(30)]
            + [Event.of(RegisteredModelCreated(name=f"m{i}")) for i in range(6)]
        )
        runs = {r.partition for r in recorded if r.event.stream.startswith("run:")}
        models = {r.partition for r in recorded if r.event.stream.startswith("model:")}
        assert all(p.startswith(log.topics["runs"] + "/") for p in runs) and len(runs) == 3
        assert len(models) == 1 and models.pop().startswith(log.topics["registry"] + "/")
        again = log.append([tag_event("r7", 99)])[0]
        assert again.partition == next(r.partition for r in recorded if r.event.stream == "run:r7")

    def test_a_topic_keeps_the_partition_count_it_was_created_with(
        self, log: KafkaEventLog, tmp_path: Path
    ) -> None:
        other = KafkaEventLog(
            self.bootstrap, topic_prefix=self.prefix(tmp_path), partitions=5, idempotent=False
        )
        try:
            assert other.partitions == log.partitions
            assert other.where("run:x") == log.where("run:x")
        finally:
            other.close()

    def test_a_bare_sqlite_position_is_refused_with_a_reason(self, log: KafkaEventLog) -> None:
        with pytest.raises(InvalidInput, match="partitions this log does not have"):
            list(log.read(after=5))

    def test_zero_partitions_is_refused_with_a_reason(self) -> None:
        with pytest.raises(InvalidInput, match="partitions=0"):
            KafkaEventLog(self.bootstrap, partitions=0)

    def test_work_the_client_library_cancels_is_unavailable_not_a_cancelled_error(
        self, log: KafkaEventLog
    ) -> None:
        """aiokafka may end a call cancelled (stopping a consumer whose connection was cut,
        say): callers catch the adapter's errors, and a CancelledError from here killed the
        deployer during a broker outage."""

        async def cancelled_inside() -> None:
            raise asyncio.CancelledError()

        with pytest.raises(Unavailable, match="closing a Kafka follower was cancelled"):
            log.run(cancelled_inside(), "closing a Kafka follower")
