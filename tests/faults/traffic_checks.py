"""What must hold of each deployment's traffic after the faults.

- the statistics the traffic-stats workers published in Redis equal a recount: a fresh
  `TrafficStats` fold of every inference and feedback event on the log, in log order
  (`stats_match`, waited for while the stack converges);
- every inference the load got an answer for is recorded on the log once, or not at all
  only where docs/deployments.md says it may be lost: the replica that answered was
  SIGKILLed before its recorder appended it, i.e. within a flush interval and one
  append (`FLUSH_GRACE_S`) of the answer, or with the broker cut off in between (the
  recorder keeps a refused batch and tries again, but only in its memory);
- nothing is recorded that the load did not ask for, and no request twice;
- every feedback the replica accepted (202) is on the log once; one whose answer was
  lost at most once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ledgerflow.events.deployment_payloads import FeedbackRecorded, InferenceRecorded
from ledgerflow.events.envelope import Recorded
from ledgerflow.services.analytics.aggregates import VariantStats
from ledgerflow.services.analytics.traffic import TRAFFIC_TYPES
from ledgerflow.services.analytics.window import TrafficStats
from tests.faults.invariants import distinct, ops

FLUSH_GRACE_S = 3.0
"""The recorder flushes every 0.25 s; an append to the broker takes up to seconds on a
loaded machine. Records of answers older than this were on their way to the log."""


def recount(events: Iterable[Recorded], deployment: str) -> dict[str, VariantStats]:
    """The deployment's statistics folded afresh from the log's traffic events, each
    record as often as the log holds it (as the workers fold it)."""
    fold = TrafficStats()
    for i in events:
        if i.event.type in TRAFFIC_TYPES:
            fold.apply(i.event.data)  # type: ignore[arg-type]
    return fold.snapshot(deployment)


def stats_diff(got: dict[str, VariantStats], want: dict[str, VariantStats]) -> dict[str, Any]:
    return {
        name: {"redis": got[name].to_dict() if name in got else None,
               "recount": want[name].to_dict() if name in want else None}
        for name in sorted(set(got) | set(want))
        if got.get(name) != want.get(name)
    }  # fmt: skip


@dataclass
class TrafficTally:
    """For the report."""

    deployment: str
    answered: int = 0
    recorded: int = 0
    lost_to_kills: int = 0
    feedback: int = 0
    unknown: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.deployment}: inference: {self.answered} answered, {self.recorded} of them recorded, "
            f"{self.lost_to_kills} lost with a SIGKILLed replica's unflushed batch; "
            f"{self.feedback} feedback accepted; {self.unknown} calls without an answer"
        )


def _lost_excused(at: float, kills: list[float], broker_cuts: list[tuple[float, float]]) -> bool:
    """An answer at `at` may be missing from the log when the replica that gave it was
    killed before it could flush: the first kill after `at` came within FLUSH_GRACE_S,
    or the broker was cut off at some time in between."""
    later = [k for k in kills if k >= at]
    if not later:
        return False
    killed = min(later)
    if killed - at <= FLUSH_GRACE_S:
        return True
    return any(begin <= killed and end >= at for begin, end in broker_cuts)


def check_traffic(
    journal: list[dict[str, Any]],
    events: list[Recorded],
    deployment: str,
    kills: list[float],
    broker_cuts: list[tuple[float, float]],
) -> TrafficTally:
    tally = TrafficTally(deployment)
    problems = tally.problems
    journal = [e for e in journal if e.get("deployment") == deployment]
    records: Counter[str] = Counter()
    feedback: Counter[str] = Counter()
    for i in distinct(events):
        data = i.event.data
        if isinstance(data, InferenceRecorded) and data.deployment == deployment:
            records.update(r.request_id for r in data.records)
        elif isinstance(data, FeedbackRecorded) and data.deployment == deployment:
            feedback[data.request_id] += 1
    asked = {e["rid"] for e in journal if e["op"] in ("answer", "answer?")}
    stray = sorted(set(records) - asked)
    if stray:
        problems.append(f"inference recorded that nobody asked for: {stray[:5]}")
    doubled = sorted(rid for rid, n in records.items() if n > 1)
    if doubled:
        problems.append(
            f"{len(doubled)} inferences recorded more than once: "
            f"{[(rid, records[rid]) for rid in doubled[:5]]}"
        )
    answers = ops(journal, "answer")
    tally.answered = len(answers)
    tally.unknown = len(ops(journal, "answer?")) + len(ops(journal, "feedback?"))
    lost = []
    for e in answers:
        if records[e["rid"]]:
            tally.recorded += 1
        elif _lost_excused(e["time"], kills, broker_cuts):
            tally.lost_to_kills += 1
        else:
            lost.append(e["rid"])
    if lost:
        problems.append(
            f"{len(lost)} answered inferences are not on the log, with no replica killed "
            f"before it could record them: {lost[:10]}"
        )
    accepted = ops(journal, "feedback")
    tally.feedback = len(accepted)
    for e in accepted:
        if feedback[e["rid"]] != 1:
            problems.append(
                f"accepted feedback for {e['rid']}: {feedback[e['rid']]} events on the log"
            )
    for e in ops(journal, "feedback?"):
        if feedback[e["rid"]] > 1:
            problems.append(f"feedback for {e['rid']}: {feedback[e['rid']]} events on the log")
    tally.problems = [f"{deployment}: {p}" for p in problems]
    return tally
