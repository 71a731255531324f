"""Which condition drives a run search, on SQLite and PostgreSQL views: the one matching
the fewest rows by the counts on the views' covering (key, value, run_id) indexes,
whichever order the filter's terms are written in, with the same answers either way;
views made before those indexes (and the one on run names) gain them when opened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

import ledgerflow as lf
from ledgerflow.entities import Metric, Param, RunTag
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.projector import search_plan
from ledgerflow.services.projector.filters import And, parse_filter
from ledgerflow.services.projector.search import RUN_SEARCH, estimate

RUNS = 60


@pytest.fixture(params=["sqlite", "postgresql"])
def views_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/views.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def backend(data_dir: Path, views_db: str) -> Iterator[Backend]:
    b = bootstrap(load_settings(tracking_uri=str(data_dir), views_db=views_db))
    yield b
    b.close()


@pytest.fixture
def searched(backend: Backend) -> tuple[lf.Client, str]:
    """60 runs: `kind` is 'common' on all but the first 3 ('rare'), metric `m` is i/60
    (3 runs above 0.95), tag `team` alternates."""
    client = lf.Client(backend=backend)
    exp = client.create_experiment("driver")
    for i in range(RUNS):
        run_id = client.create_run(exp, run_name=f"run-{i:02d}", start_time=i).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric("m", i / RUNS, 0, 0)],
            params=[Param("kind", "rare" if i < 3 else "common")],
            tags=[RunTag("team", ["a", "b"][i % 2])],
        )
    return client, exp


def _driver(backend: Backend, text: str) -> str:
    node = parse_filter(text)
    assert isinstance(node, And)
    with backend.queries.engine.connect() as conn:  # type: ignore[attr-defined]
        counts = estimate(conn, node, RUN_SEARCH)
    chosen = search_plan.choose(search_plan.groups(node), counts)
    assert chosen is not None
    return f"{chosen.entity}.{chosen.key}"


def _names(client: lf.Client, exp: str, text: str) -> list[str]:
    runs = client.search_runs([exp], text, order_by=["metrics.m DESC"])
    return [r.info.run_name for r in runs]


@pytest.mark.parametrize(
    ("terms", "driver"),
    [
        (("params.kind = 'common'", "metrics.m > 0.95"), "metric.m"),
        (("params.kind = 'rare'", "metrics.m > 0.01"), "param.kind"),
        (("tags.team = 'a'", "params.kind = 'rare'"), "param.kind"),
    ],
)
def test_the_condition_matching_fewest_rows_drives_in_either_order(
    backend: Backend, searched: tuple[lf.Client, str], terms: tuple[str, str], driver: str
) -> None:
    client, exp = searched
    forward, backward = " and ".join(terms), " and ".join(reversed(terms))
    assert _driver(backend, forward) == _driver(backend, backward) == driver
    assert _names(client, exp, forward) == _names(client, exp, backward)


def test_answers_are_those_of_the_filter_whatever_drives(
    searched: tuple[lf.Client, str],
) -> None:
    client, exp = searched
    assert _names(client, exp, "params.kind = 'common' and metrics.m > 0.94") == [
        "run-59", "run-58", "run-57",
    ]  # fmt: skip
    both_ends = "metrics.m >= 0.5 and metrics.m < 0.55 and tags.team = 'b'"
    assert _names(client, exp, both_ends) == ["run-31"]
    assert _names(client, exp, "params.kind = 'rare' and params.kind != 'common'") == [
        "run-02", "run-01", "run-00",
    ]  # fmt: skip


def test_views_made_before_the_covering_search_indexes_gain_them(
    data_dir: Path, views_db: str
) -> None:
    b = bootstrap(load_settings(tracking_uri=str(data_dir), views_db=views_db))
    engine = b.queries.engine  # type: ignore[attr-defined]
    old = {
        "params": "params_by_key",
        "tags": "tags_by_key",
        "latest_metrics": "latest_by_key_value",
    }
    with engine.begin() as conn:  # as a release before them left the views
        for table, name in old.items():
            for index in inspect(conn).get_indexes(table):
                conn.exec_driver_sql(f"DROP INDEX {index['name']}")
            conn.exec_driver_sql(f"CREATE INDEX {name} ON {table} (key, value)")
        conn.exec_driver_sql("DROP INDEX runs_by_experiment_name")
    b.close()
    b = bootstrap(load_settings(tracking_uri=str(data_dir), views_db=views_db))
    try:
        with b.queries.engine.connect() as conn:  # type: ignore[attr-defined]
            for table in old:
                [index] = inspect(conn).get_indexes(table)
                assert index["column_names"] == ["key", "value", "run_id"]
            names = {i["name"]: i["column_names"] for i in inspect(conn).get_indexes("runs")}
            assert names["runs_by_experiment_name"] == ["experiment_id", "run_name"]
    finally:
        b.close()
