"""The demo's A/B test on two stand-in models whose accuracies differ widely, so the
analysis must find the winner: one reads every test digit right, the other always
answers 0. Served as registered versions (no bundles), on the embedded backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ledgerflow as lf
from ledgerflow.demo.ab import embedded_backend, run_ab_test
from ledgerflow.demo.models import REGISTERED_MODEL, Splits, Trained, load_digits
from ledgerflow.pyfunc import PythonModel


class Oracle(PythonModel):
    """Knows each test image's label."""

    def __init__(self, images: Any, labels: Any) -> None:
        self.labels = {x.tobytes(): int(y) for x, y in zip(images, labels, strict=True)}

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        x = np.asarray(model_input, dtype=np.float32)
        return np.eye(10, dtype=np.float32)[[self.labels[row.tobytes()] for row in x]]


class Zero(PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        out = np.zeros((len(model_input), 10), dtype=np.float32)
        out[:, 0] = 1.0
        return out


@pytest.fixture(scope="module")
def splits() -> Splits:
    return load_digits()


@pytest.fixture
def models(tracking: Path, splits: Splits) -> None:
    """Version 1 always answers 0; version 2 knows every test image's label."""
    with lf.start_run():
        for name, model in (("zero", Zero()), ("oracle", Oracle(splits.x_test, splits.y_test))):
            lf.pyfunc.log_model(
                name=name, python_model=model, registered_model_name=REGISTERED_MODEL
            )


def trained(version: int, accuracy: float) -> Trained:
    return Trained("python", "run", "uri", 0.0, accuracy, 0.0, version)


def test_a_clearly_better_challenger_wins_after_the_canary_and_takes_the_champion_alias(
    models: None, splits: Splits
) -> None:
    backend = embedded_backend()  # the one the SDK uses for this data directory
    assert backend is not None
    champion, challenger = trained(1, 0.1), trained(2, 1.0)  # zero is the champion here
    ab = run_ab_test(backend, splits, champion, challenger, [], rounds=8, round_requests=300)
    assert ab.requests == 2400
    assert [a.served_as for a in ab.arms] == ["registered version"] * 2
    assert any("step advanced: challenger now at 25%" in line for line in ab.timeline)
    rows = {r["variant"]: r for r in ab.analysis["variants"]}
    assert rows["challenger"]["state"] == "better" and rows["challenger"]["significant"]
    assert rows["challenger"]["value"] > 0.25 > 0.1 > rows["champion"]["value"]
    assert rows["champion"]["n"] + rows["challenger"]["n"] == 2400  # every outcome joined
    assert ab.verdict is not None
    assert (ab.verdict.decision, ab.verdict.winner) == ("promoted", "challenger")
    dep = lf.deployments.get("digits-ab")
    assert dep.baseline == "challenger" and dep.shares()["challenger"] == 1.0
    assert lf.Client().get_model_version_by_alias(REGISTERED_MODEL, "champion").version == 2
