"""`IN` and `NOT IN` lists that name NaN, in run and logged-model searches, on SQLite and
PostgreSQL: NaN metric points are stored as NULL, so `metrics.x IN (1, NaN)` finds what
`metrics.x = 1 OR metrics.x = NaN` finds, and an integer beside NaN binds as a float (it
once made PostgreSQL fail the search with "integer out of range")."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow.entities import Metric
from ledgerflow.events import logged_model_commands as lc
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap

ACTOR = "tester"
VALUES = {"one": 1.0, "half": 0.5, "nan": math.nan}  # and "none", which logs no acc
SAME = [
    ("metrics.acc IN (1, NaN)", "metrics.acc = 1 OR metrics.acc = NaN"),
    ("metrics.acc IN (NaN)", "metrics.acc = NaN"),
    ("metrics.acc IN (NaN, 0.5, 1)", "metrics.acc IS NOT NULL"),
    ("metrics.acc NOT IN (1, NaN)", "metrics.acc != 1 AND metrics.acc != NaN"),
    ("metrics.acc NOT IN (NaN)", "metrics.acc != NaN"),
    ("metrics.acc IN (1, 0.5)", "metrics.acc >= 0.5"),
]
EXPECTED = {
    "metrics.acc IN (1, NaN)": {"one", "nan"},
    "metrics.acc IN (NaN)": {"nan"},
    "metrics.acc NOT IN (1, NaN)": {"half"},
    "metrics.acc NOT IN (NaN)": {"one", "half"},
}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    views = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    b = bootstrap(load_settings(tracking_uri=str(tmp_path / "data"), views_db=views))
    yield b
    b.close()


def test_run_searches_with_nan_in_a_list_find_what_the_comparisons_find(backend: Backend) -> None:
    client = lf.Client(backend=backend)
    exp = client.create_experiment("nan-lists")
    for name, value in [*VALUES.items(), ("none", None)]:
        run_id = client.create_run(exp, run_name=name).info.run_id
        if value is not None:
            client.log_batch(run_id, metrics=[Metric("acc", value, 0, 0)])

    def names(text: str) -> set[str]:
        return {r.info.run_name for r in client.search_runs([exp], text)}

    for listed, spelled in SAME:
        assert names(listed) == names(spelled), listed
    for text, expected in EXPECTED.items():
        assert names(text) == expected, text


def test_logged_model_searches_with_nan_in_a_list_find_what_the_comparisons_find(
    backend: Backend,
) -> None:
    exp = backend.tracking.get_or_create_experiment("nan-lists", actor=ACTOR).experiment_id
    models = backend.logged_models
    for name, value in [*VALUES.items(), ("none", None)]:
        model = models.execute(lc.CreateLoggedModel(experiment_id=exp, name=name), actor=ACTOR)
        if value is not None:
            point = ("acc", value, 0, 0)
            models.execute(
                lc.LogLoggedModelMetrics(
                    experiment_id=exp, model_id=model.model_id, points=[point]
                ),
                actor=ACTOR,
            )

    def names(text: str) -> set[str]:
        return {m.name for m in models.queries.search([exp], text)}

    for listed, spelled in SAME:
        assert names(listed) == names(spelled), listed
    for text, expected in EXPECTED.items():
        assert names(text) == expected, text
