"""The demo's A/B test without serving anything: its simulated users and its decision."""

from __future__ import annotations

from typing import Any

import numpy as np

from ledgerflow.demo.ab import Arm, judge
from ledgerflow.demo.traffic import Simulator

ARMS = [Arm("champion", 1, "keras", "ONNX bundle"), Arm("challenger", 2, "pytorch", "ONNX bundle")]


def analysis(state: str, significant: bool, p: float | None, more: int = 0) -> dict[str, Any]:
    row = {"variant": "challenger", "state": state, "significant": significant,
           "adjusted_p_value": p, "more_needed": more}  # fmt: skip
    base = {"variant": "champion", "state": "baseline", "significant": False,
            "adjusted_p_value": None, "more_needed": 0}  # fmt: skip
    return {"alpha": 0.05, "mde": 0.027, "variants": [base, row]}


def test_a_seeded_simulator_repeats_its_requests_and_converts_only_on_right_answers() -> None:
    labels = np.arange(10)
    first, again = (Simulator(labels, users=5, seed=3).requests(200) for _ in range(2))
    assert first == again
    assert {r.user for r in first} <= {f"user-{i}" for i in range(5)}
    certain = Simulator(labels, if_right=1.0, if_wrong=0.0)
    for request in certain.requests(50):
        label = int(labels[request.image])
        assert certain.converted(request, label)
        assert not certain.converted(request, (label + 1) % 10)


def test_a_significantly_better_challenger_is_promoted_and_takes_the_champion_alias() -> None:
    verdict = judge(analysis("better", True, 0.001), ARMS, tripped=False)
    assert (verdict.decision, verdict.winner) == ("promoted", "challenger")
    assert "digits-cnn@champion moves to version 2" in verdict.text


def test_a_significantly_worse_challenger_leaves_the_champion_promoted_where_it_was() -> None:
    verdict = judge(analysis("worse", True, 0.002), ARMS, tripped=False)
    assert (verdict.decision, verdict.winner) == ("promoted", "champion")
    assert "stays on version 1" in verdict.text


def test_without_significance_or_after_a_guardrail_no_winner_is_promoted() -> None:
    unsure = judge(analysis("not_enough_data", False, 0.4, more=1500), ARMS, tripped=False)
    assert (unsure.decision, unsure.winner) == ("inconclusive", None)
    assert "not enough evidence" in unsure.text and "about 1500 more requests" in unsure.text
    tripped = judge(analysis("better", True, 0.001), ARMS, tripped=True)
    assert (tripped.decision, tripped.winner) == ("rolled_back", None)
