"""The run search's page query written as SQL text (services/projector/search_sql.py)
answers as the SQLAlchemy one (search.compile_filter, search.search_page) does: the same
runs for any filter under any plan the estimates can choose, and the same pages in the
same order with the same tokens for any order, on SQLite (random filters) and PostgreSQL
(random filters too, fewer)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, and_, select

import ledgerflow as lf
from ledgerflow.entities import Metric, Param, RunTag
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.projector import search_plan
from ledgerflow.services.projector.filters import And, Comparison, Node, Not, Or, OrderKey
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.projector.search import RUN_SEARCH, compile_filter, search_page
from ledgerflow.services.projector.search_sql import search_page_sql, where_sql
from ledgerflow.services.projector.sql import fetch_all
from ledgerflow.services.projector.tables import RUNS as R

RUNS = 40
ODD = 'a"b\\c {"x": 1} \u00e9\u2028\x01 \U0001f600'  # JSON's escapes, non-ASCII, a control
Store = tuple[Engine, str]  # the views' engine, the experiment id


@contextmanager
def _filled(data_dir: Path, views_db: str | None) -> Iterator[Store]:
    """40 runs: param p in a/b/A/c (missing on every 7th), q in v0..v4; metric m in
    [0, 1) (NaN on every 6th, missing on every 9th), n; tag t in x/y/X (missing on every
    5th); every 4th run FAILED, every 10th deleted."""
    backend = bootstrap(load_settings(tracking_uri=str(data_dir), views_db=views_db))
    client = lf.Client(backend=backend)
    exp = client.create_experiment("sql")
    for i in range(RUNS):
        run_id = client.create_run(exp, run_name=f"run-{i:02d}", start_time=1000 + i).info.run_id
        params = [Param("q", f"v{i % 5}")] + ([Param("p", "abAc"[i % 4])] if i % 7 else [])
        params += [Param("odd", ODD)] if i % 8 == 1 else []
        metrics = [Metric("n", (i * 7 % 11) / 10, 0, 0)]
        if i % 9:
            metrics.append(Metric("m", math.nan if i % 6 == 0 else i / RUNS, 0, 0))
        tags = [RunTag("t", "xyX"[i % 3])] if i % 5 else []
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        if i % 4 == 0:
            client.set_terminated(run_id, "FAILED", end_time=5000 + i)
        if i % 10 == 3:
            client.delete_run(run_id)
    try:
        yield backend.queries.engine, exp
    finally:
        backend.close()


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with _filled(tmp_path_factory.mktemp("search-sql") / "data", None) as store:
        yield store


@pytest.fixture(scope="module")
def postgres_store(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: str
) -> Iterator[Store]:
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"lf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_server).set(drivername="postgresql+psycopg", database=name)
    views = url.render_as_string(hide_password=False)
    try:
        with _filled(tmp_path_factory.mktemp("search-sql-pg") / "data", views) as store:
            yield store
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_VALUES = {
    # ints too: the parser makes every metric value a float, but a NaN beside an int in
    # an IN list once made SQLAlchemy bind the list as integers on PostgreSQL
    "metric": st.sampled_from([0, 1, 0.25, 0.5, 0.9, 1.0, -1.0, math.nan, math.inf, -math.inf]),
    "param": st.sampled_from(["a", "b", "A", "v1", "v3", "zz"]),
    "tag": st.sampled_from(["x", "y", "X", "q"]),
}
_PATTERNS = st.sampled_from(["a%", "%A", "_", "v%", "x", "X%", "%", "run-1%", "RUN-0_"])
_KEYS = {"metric": ["m", "n", "none"], "param": ["p", "q", "none"], "tag": ["t", "none"]}
_NUMBER_OPS = ["=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN", "IS NULL", "IS NOT NULL"]
_TEXT_OPS = _NUMBER_OPS + ["LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"]


@st.composite
def _comparisons(draw: st.DrawFn) -> Comparison:
    entity = draw(st.sampled_from(["metric", "param", "tag", "attribute"]))
    if entity == "attribute":
        key = draw(st.sampled_from(["status", "start_time", "end_time", "run_name"]))
        if key == "status":
            values: st.SearchStrategy[object] = st.sampled_from(["RUNNING", "FAILED"])
            ops = ["=", "!=", "IN", "NOT IN"]
        elif key == "run_name":
            values, ops = st.sampled_from(["run-01", "run-3", "zz"]), _TEXT_OPS
        else:
            values, ops = st.integers(990, 5050), _NUMBER_OPS
    else:
        key, values = draw(st.sampled_from(_KEYS[entity])), _VALUES[entity]
        ops = _NUMBER_OPS if entity == "metric" else _TEXT_OPS
    op = draw(st.sampled_from(ops))
    if op in ("IS NULL", "IS NOT NULL"):
        return Comparison(entity, key, op, None)
    if op in ("IN", "NOT IN"):
        return Comparison(entity, key, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    if "LIKE" in op:
        return Comparison(entity, key, op, draw(_PATTERNS))
    return Comparison(entity, key, op, draw(values))


def _trees() -> st.SearchStrategy[Node]:
    def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        groups = st.lists(children, min_size=2, max_size=4).map(tuple)
        return st.one_of(groups.map(And), groups.map(And), groups.map(Or), children.map(Not))

    return st.recursive(_comparisons(), extend, max_leaves=8)


def _same_runs(store: Store, node: Node, data: st.DataObject) -> None:
    engine, _ = store
    todo = search_plan.choices(node)
    estimates = data.draw(
        st.one_of(st.none(), st.fixed_dictionaries({g: st.integers(0, 40) for g in todo}))
    )
    with engine.connect() as conn:
        old = {r for (r,) in conn.execute(select(R.c.run_id).where(
            compile_filter(node, RUN_SEARCH, estimates)))}  # fmt: skip
        found = where_sql(
            node, RUN_SEARCH, estimates, native_ilike=conn.dialect.name == "postgresql"
        )
        assert found is not None
        text, values = found
        new = {r for (r,) in fetch_all(conn, f"SELECT runs.run_id FROM runs WHERE {text}", values)}
    assert new == old, (node, estimates, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=_trees(), data=st.data())
def test_any_filter_finds_the_runs_sqlalchemy_finds_on_sqlite(
    sqlite_store: Store, node: Node, data: st.DataObject
) -> None:
    _same_runs(sqlite_store, node, data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=_trees(), data=st.data())
def test_any_filter_finds_the_runs_sqlalchemy_finds_on_postgresql(
    postgres_store: Store, node: Node, data: st.DataObject
) -> None:
    _same_runs(postgres_store, node, data)


ORDERS: list[tuple[OrderKey, ...]] = [
    (),
    (OrderKey("metric", "m", True),),
    (OrderKey("metric", "m"), OrderKey("attribute", "run_name", True)),
    (OrderKey("param", "p"), OrderKey("tag", "t", True)),
    (OrderKey("attribute", "end_time", True),),
    (OrderKey("metric", "none"), OrderKey("attribute", "start_time")),
]


@pytest.mark.parametrize("which", ["sqlite_store", "postgres_store"])
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: " ".join(map(str, o)) or "default")
@pytest.mark.parametrize("text", [None, "metrics.m > 0.2 and params.p != 'b'", "tags.t LIKE 'x%'"])
def test_pages_are_the_same_rows_in_the_same_order_with_the_same_tokens(
    request: pytest.FixtureRequest, which: str, order: tuple[OrderKey, ...], text: str | None
) -> None:
    from ledgerflow.services.projector.filters import parse_filter

    engine, exp = request.getfixturevalue(which)
    node = parse_filter(text)
    query = ("pages", text, order)
    where = and_(R.c.experiment_id == exp, R.c.lifecycle_stage == "active",
                 compile_filter(node, RUN_SEARCH))  # fmt: skip
    conditions = [("runs.experiment_id = ?", (exp,)), ("runs.lifecycle_stage = ?", ("active",))]
    with engine.connect() as conn:
        found = where_sql(node, RUN_SEARCH, native_ilike=conn.dialect.name == "postgresql")
        conditions += [found] if found else []
        old_token = new_token = None
        pages = 0
        while True:
            old = search_page(conn, RUN_SEARCH, where, order, limit=4, page_token=old_token,
                              query=query, columns=(R.c.run_name,))  # fmt: skip
            new = search_page_sql(conn, RUN_SEARCH, conditions, order, limit=4,
                                  page_token=new_token, query=query, columns=("run_name",))  # fmt: skip
            assert (new.owners, new.rows, new.token) == (old.owners, old.rows, old.token)
            pages += 1
            old_token = new_token = old.token
            if old.token is None:
                break
    assert pages > 1 or text is not None


@pytest.mark.parametrize("which", ["sqlite_store", "postgres_store"])
def test_a_page_carries_each_runs_params_tags_and_metrics_as_stored(
    request: pytest.FixtureRequest, which: str
) -> None:
    engine, exp = request.getfixturevalue(which)
    runs = Queries(engine).search_runs([exp], run_view_type="ALL", max_results=RUNS)
    assert len(runs) == RUNS
    with engine.connect() as conn:
        for run in runs:
            rid = (run.info.run_id,)
            for table, got in (("params", run.data.params), ("tags", run.data.tags)):
                sql = f"SELECT key, value FROM {table} WHERE run_id = ?"
                assert got == dict(fetch_all(conn, sql, rid))
            sql = "SELECT key, value FROM latest_metrics WHERE run_id = ?"
            stored = {k: math.nan if v is None else v for k, v in fetch_all(conn, sql, rid)}
            assert run.data.metrics.keys() == stored.keys()
            for k, v in stored.items():
                assert run.data.metrics[k] == v or (
                    math.isnan(v) and math.isnan(run.data.metrics[k])
                )
    assert sum(r.data.params.get("odd") == ODD for r in runs) == 5


@pytest.mark.parametrize("which", ["sqlite_store", "postgres_store"])
def test_an_in_list_of_an_integer_and_nan_is_bound_as_written(
    request: pytest.FixtureRequest, which: str
) -> None:
    engine, _ = request.getfixturevalue(which)
    node = And(
        (
            Comparison("metric", "n", "IN", (0, math.nan, math.inf)),  # 0 on runs 0, 11, 22, 33
            Comparison("metric", "n", ">=", 0),
        )
    )
    with engine.connect() as conn:
        found = where_sql(node, RUN_SEARCH, native_ilike=conn.dialect.name == "postgresql")
        assert found is not None
        text, values = found
        rows = fetch_all(conn, f"SELECT runs.run_name FROM runs WHERE {text}", values)
        compiled = select(R.c.run_name).where(compile_filter(node, RUN_SEARCH))
        old = [name for (name,) in conn.execute(compiled)]  # SQLAlchemy's binds
    assert sorted(name for (name,) in rows) == ["run-00", "run-11", "run-22", "run-33"]
    assert sorted(old) == ["run-00", "run-11", "run-22", "run-33"]
