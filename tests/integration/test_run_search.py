"""Searching runs on the embedded default: the filter language (and/or, parentheses, IN,
LIKE/ILIKE, IS NULL), ordering, paging with a cursor, and the fluent `search_runs`.

Every test here only reads, so the population of 25 runs is logged once for the module
and each test's `tracking` and `client` (tests/conftest.py) point at its data directory.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import ledgerflow as lf
from ledgerflow.entities import Metric, Param, RunTag
from ledgerflow.events.settings import load_settings
from ledgerflow.exceptions import InvalidInput, NotFound
from ledgerflow.services.bootstrap import bootstrap

Population = tuple[Path, str, list[str]]  # data directory, experiment id, run ids


@pytest.fixture(scope="module")
def logged_population(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Population]:
    """25 runs with a spread of params, metrics and tags."""
    data_dir = tmp_path_factory.mktemp("search") / "data"
    backend = bootstrap(load_settings(tracking_uri=str(data_dir)))
    client = lf.Client(backend=backend)
    try:
        exp = client.create_experiment("search")
        ids = []
        for i in range(25):
            run = client.create_run(exp, run_name=f"run-{i:02d}", start_time=1000 + i)
            params = [Param("lr", "0.01" if i % 2 else "0.1"), Param("opt", ["adam", "sgd"][i % 2])]
            tags = [RunTag("team", ["cv", "nlp", "CV"][i % 3])]
            metrics = [Metric("acc", i / 25, 0, 0)] if i % 5 else []
            client.log_batch(run.info.run_id, metrics=metrics, params=params, tags=tags)
            if i % 4 == 0:
                client.set_terminated(run.info.run_id, "FAILED")
            ids.append(run.info.run_id)
    finally:
        backend.close()
    yield data_dir, exp, ids


@pytest.fixture
def data_dir(logged_population: Population) -> Path:
    """conftest's `tracking` (and so `client`) work on the one logged population."""
    return logged_population[0]


@pytest.fixture
def client(tracking: Path) -> lf.Client:
    return lf.Client()


@pytest.fixture
def population(logged_population: Population, tracking: Path) -> tuple[str, list[str]]:
    """The experiment id and run ids of the population, with the fluent API on it."""
    return logged_population[1], logged_population[2]


def _names(runs):
    return [r.info.run_name for r in runs]


def _row(i: int) -> dict:
    """What the population fixture stored for run i, to compute expected answers."""
    return {
        "lr": "0.01" if i % 2 else "0.1",
        "opt": ["adam", "sgd"][i % 2],
        "team": ["cv", "nlp", "CV"][i % 3],
        "acc": i / 25 if i % 5 else None,
        "status": "FAILED" if i % 4 == 0 else "RUNNING",
        "start": 1000 + i,
        "name": f"run-{i:02d}",
    }


def _expected(pred) -> set[str]:
    return {_row(i)["name"] for i in range(25) if pred(_row(i))}


@pytest.mark.parametrize(
    ("text", "pred"),
    [
        (
            "params.lr = '0.1' and (tags.team = 'nlp' or metrics.acc >= 0.9)",
            lambda r: r["lr"] == "0.1" and (r["team"] == "nlp" or (r["acc"] or 0) >= 0.9),
        ),
        (
            "metrics.acc > 0.8 or params.opt = 'adam' and tags.team = 'nlp'",
            lambda r: (r["acc"] or 0) > 0.8 or (r["opt"] == "adam" and r["team"] == "nlp"),
        ),
        (
            "(metrics.acc > 0.8 or params.opt = 'adam') and tags.team = 'nlp'",
            lambda r: ((r["acc"] or 0) > 0.8 or r["opt"] == "adam") and r["team"] == "nlp",
        ),
        ("tags.team IN ('nlp', 'CV')", lambda r: r["team"] in ("nlp", "CV")),
        ("tags.team NOT IN ('nlp', 'CV')", lambda r: r["team"] not in ("nlp", "CV")),
        ("tags.team LIKE 'c%'", lambda r: r["team"] == "cv"),
        ("tags.team ILIKE 'c%'", lambda r: r["team"] in ("cv", "CV")),
        ("metrics.acc IS NULL", lambda r: r["acc"] is None),
        (
            "metrics.acc IS NOT NULL and metrics.acc < 0.2",
            lambda r: r["acc"] is not None and r["acc"] < 0.2,
        ),
        ("status = 'FAILED'", lambda r: r["status"] == "FAILED"),
        (
            "params.opt = 'adam' and metrics.acc > 0.3 and tags.team != 'cv' "
            "and metrics.acc IS NOT NULL and metrics.nothing IS NULL",
            lambda r: r["opt"] == "adam" and (r["acc"] or 0) > 0.3 and r["team"] != "cv",
        ),
        (
            "tags.team IN ('cv', 'CV') and params.lr LIKE '0.0%' and not metrics.acc < 0.5",
            lambda r: (
                r["team"] in ("cv", "CV")
                and r["lr"] == "0.01"
                and not (r["acc"] is not None and r["acc"] < 0.5)
            ),
        ),
        ("attributes.status != 'FAILED'", lambda r: r["status"] != "FAILED"),
        (
            "attributes.run_name LIKE 'run-1%' and not params.opt = 'sgd'",
            lambda r: r["name"].startswith("run-1") and r["opt"] != "sgd",
        ),
        ("start_time > 1020", lambda r: r["start"] > 1020),
        ("end_time IS NULL", lambda r: r["status"] == "RUNNING"),
        ("metrics.acc != 0.4", lambda r: r["acc"] is not None and r["acc"] != 0.4),
        # past 64 bits: compared as a float, not an OverflowError binding it
        ("metrics.acc < 12345678901234567890", lambda r: r["acc"] is not None),
        ("start_time < 99999999999999999999", lambda r: True),
    ],
)
def test_search_supports_or_parentheses_in_like_ilike_and_is_null(population, client, text, pred):
    exp, _ = population
    assert set(_names(client.search_runs([exp], text))) == _expected(pred)


def test_search_orders_by_metrics_with_missing_values_last(population, client):
    exp, _ = population
    runs = client.search_runs([exp], order_by=["metrics.acc DESC"])
    accs = [r.data.metrics.get("acc") for r in runs]
    present = [a for a in accs if a is not None]
    assert present == sorted(present, reverse=True)
    assert accs[len(present) :] == [None] * (25 - len(present))


def test_paging_with_the_cursor_visits_every_run_once_in_order(population, client):
    exp, ids = population
    for order in (None, ["metrics.acc DESC"], ["params.opt", "attributes.run_name DESC"]):
        seen, token = [], None
        while True:
            page = client.search_runs([exp], order_by=order, max_results=7, page_token=token)
            seen.extend(r.info.run_id for r in page)
            token = page.token
            if not token:
                break
        everything = [r.info.run_id for r in client.search_runs([exp], order_by=order)]
        assert seen == everything and sorted(seen) == sorted(ids)


def test_a_cursor_from_another_search_is_refused(population, client):
    exp, _ = population
    page = client.search_runs([exp], max_results=5)
    with pytest.raises(InvalidInput, match="different search"):
        client.search_runs([exp], "params.lr = '0.1'", max_results=5, page_token=page.token)
    with pytest.raises(InvalidInput, match="page_token"):
        client.search_runs([exp], max_results=5, page_token="garbage!")


def test_a_cursor_edited_by_hand_is_refused_not_sent_to_sql(population, client):
    exp, _ = population
    token = client.search_runs([exp], max_results=5).token
    doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for values in ([[1]] * len(doc["v"]), [2**64] * len(doc["v"]), ["\ud800"] * len(doc["v"])):
        raw = json.dumps({**doc, "v": values}).encode()
        forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        with pytest.raises(InvalidInput, match="page_token"):
            client.search_runs([exp], max_results=5, page_token=forged)


def test_a_malformed_filter_names_the_position(population, client):
    exp, _ = population
    with pytest.raises(InvalidInput, match="position"):
        client.search_runs([exp], "metrics.acc >")
    with pytest.raises(InvalidInput, match="quot|string"):
        client.search_runs([exp], "params.lr = 0.1")
    with pytest.raises(InvalidInput, match="not valid Unicode"):  # a JSON body's "\ud800"
        client.search_runs([exp], "params.lr = '\ud800'")


def test_fluent_search_runs_returns_a_dataframe_or_a_list(population):
    exp, _ = population
    lf.set_experiment(experiment_id=exp)
    df = lf.search_runs(filter_string="params.lr = '0.1'", order_by=["attributes.run_name"])
    assert isinstance(df, pd.DataFrame)
    assert list(df["tags.mlflow.runName"]) == [f"run-{i:02d}" for i in range(0, 25, 2)]
    assert {"run_id", "status", "start_time", "params.lr", "metrics.acc"} <= set(df.columns)
    runs = lf.search_runs(output_format="list", max_results=3)
    assert len(runs) == 3 and hasattr(runs[0], "info")


def test_experiments_are_named_by_id_or_name_and_a_token_serves_either(population, client):
    exp, ids = population
    by_id = client.search_runs([exp], max_results=10)
    by_name = client.search_runs("search", max_results=10)
    assert [r.info.run_id for r in by_name] == [r.info.run_id for r in by_id]
    rest = client.search_runs([exp], max_results=100, page_token=by_name.token)
    assert len(by_name) + len(rest) == len(ids)
    with pytest.raises(NotFound, match="no experiment with id or name 'nope'"):
        client.search_runs([exp, "nope"])
