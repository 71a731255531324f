"""The traffic recorder batches records per deployment and never loses them to a log outage
(within its bound); `agree` compares a shadow's answer with the one returned."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import Unavailable
from ledgerflow.services.analytics.traffic import TrafficRecorder
from ledgerflow.services.serving.deployment import agree


class FlakyLog:
    """Appends into a list, an event id once (as every log does); refuses while `down`;
    with `ack_lost`, appends and then fails (the answer lost with the connection)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down = False
        self.ack_lost = False

    def append(self, events: Sequence[Event]) -> Sequence[Recorded]:
        if self.down:
            raise Unavailable("the log is away")
        seen = {e.id for e in self.events}
        self.events.extend(e for e in events if e.id not in seen)
        if self.ack_lost:
            raise Unavailable("the connection dropped before the answer")
        return [Recorded(position=i, event=e) for i, e in enumerate(events)]


def record(n: int, variant: str = "a") -> d.InferenceRecord:
    return d.InferenceRecord(request_id=f"q{n}", variant=variant, time=n, latency_ms=1.0)


def test_records_go_out_as_one_batch_per_deployment_in_chunks_of_max_batch() -> None:
    log = FlakyLog()
    recorder = TrafficRecorder(log, "r1", max_batch=4)  # type: ignore[arg-type]
    for i in range(10):
        recorder.record("web", record(i))
    recorder.record("api", record(99))
    assert recorder.flush() == 11
    batches = [(e.stream, len(e.data.records)) for e in log.events]  # type: ignore[attr-defined]
    assert batches == [
        ("traffic:web", 4),
        ("traffic:web", 4),
        ("traffic:web", 2),
        ("traffic:api", 1),
    ]
    assert recorder.flush() == 0


def test_a_log_outage_keeps_records_in_order_and_drops_only_beyond_the_bound() -> None:
    log = FlakyLog()
    recorder = TrafficRecorder(log, "r1", max_buffered=5)  # type: ignore[arg-type]
    log.down = True
    for i in range(4):
        recorder.record("web", record(i))
    assert recorder.flush() == 0
    for i in range(4, 7):
        recorder.record("web", record(i))
    log.down = False
    assert recorder.flush() == 5 and recorder.dropped == 2
    ids = [r.request_id for e in log.events for r in e.data.records]  # type: ignore[attr-defined]
    assert ids == ["q2", "q3", "q4", "q5", "q6"]  # the oldest went first


def test_a_batch_whose_answer_was_lost_is_sent_again_as_it_was_and_stored_once() -> None:
    """The fault suite's "nothing doubled": a broker cut between storing a batch and
    answering must not make the retry a second copy of its records."""
    log = FlakyLog()
    recorder = TrafficRecorder(log, "r1")  # type: ignore[arg-type]
    recorder.record("web", record(1))
    log.ack_lost = True
    assert recorder.flush() == 0  # stored, but the recorder cannot know
    log.ack_lost = False
    recorder.record("web", record(2))
    assert recorder.flush() == 2 and recorder.flush() == 0
    ids = [r.request_id for e in log.events for r in e.data.records]  # type: ignore[attr-defined]
    assert ids == ["q1", "q2"]


def test_answers_agree_when_labels_match_or_numbers_are_within_tolerance() -> None:
    assert agree(np.array([1, 2, 3]), [1, 2, 3])
    assert not agree(np.array([1, 2, 3]), [1, 2, 4])
    assert agree(np.array([[0.5, 0.25]]), np.array([[0.50000001, 0.25]]))
    assert not agree(np.array([[0.5, 0.25]]), np.array([[0.6, 0.25]]))
    assert not agree(np.array([1, 2]), np.array([[1, 2]]))  # shapes differ
    assert agree(["cat", "dog"], ["cat", "dog"]) and not agree(["cat"], ["dog"])
