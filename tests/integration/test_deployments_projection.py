"""Property: any sequence of deployment commands, projected into the views (the SQL
handlers, traffic events mixed in) or folded in memory, gives the same deployment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete
from sqlalchemy.pool import StaticPool

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import LedgerflowError
from ledgerflow.events.payloads import Payload
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.deployments import decide
from ledgerflow.services.deployments.state import Deployment, apply, fold
from ledgerflow.services.projector.deployment_queries import DeploymentQueries
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.tables import METADATA

NAMES = ["a", "b", "c", "s"]
GUARD = d.Guardrail(metric="error_rate", threshold=0.05)


def command(state: Deployment | None, op: int, x: int, y: int) -> list[Payload]:
    """One command chosen by `op`, with arguments drawn from `x` and `y`."""
    name = NAMES[x % 4]
    if state is None or state.status == "deleted" or op == 0:
        variants = [{"name": "a", "model": "m", "version": 1, "weight": 1 + x}]
        if y % 2:
            variants.append({"name": "b", "model": "m", "version": 2, "weight": y})
        return decide.create(state, name="web", variants=variants)
    if op == 1:
        spec = {"name": name, "model": "m", "version": 1 + y % 3, "weight": y, "shadow": x > 8}
        return decide.add_variant(state, spec)
    if op == 2:
        return decide.remove_variant(state, name, "r")
    if op == 3:
        return decide.set_traffic(
            state, {v.name: (x * (i + 1) + y) % 7 for i, v in enumerate(state.arms)}
        )
    if op == 4:
        steps = [{"weight": (10 * (i + 1) + y) % 101} for i in range(1 + x % 3)]
        return decide.set_plan(state, {"candidate": name, "steps": steps})
    if op == 5:
        return decide.advance_step(state, x, float(y))
    if op == 6:
        return decide.trip(state, name, GUARD, 0.5, 0.05, None, 10 + y)
    if op == 7:
        return decide.rollback(state, "r")
    if op == 8:
        return decide.promote(state, name, "champion")
    if op == 9:
        return decide.pause(state, "p") if x % 2 else decide.resume(state)
    if op == 10:
        return decide.set_guardrails(state, [GUARD] if x % 2 else [])
    if op == 11:
        return decide.set_plan(state, None)
    return decide.delete(state)


@pytest.fixture(scope="module")
def projector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Projector]:
    """A real projector on an in-memory view database; its log stays empty, as the
    examples hand their events to `apply_all` directly."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    log = SQLiteEventLog(str(tmp_path_factory.mktemp("log") / "events.db"))
    yield Projector(log, engine)
    log.close()
    engine.dispose()


def project(projector: Projector, items: list[Recorded]) -> Deployment | None:
    with projector.engine.begin() as conn:
        for table in reversed(METADATA.sorted_tables):
            conn.execute(delete(table))
        projector.apply_all(conn, items)
    assert projector.dead_letter_count() == 0
    return DeploymentQueries(projector.engine).find("web")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12)), max_size=25))
def test_projecting_commands_gives_the_state_folding_gives(
    projector: Projector, script: list[tuple[int, int, int]]
) -> None:
    state: Deployment | None = None
    items: list[Recorded] = []
    folded: list[tuple[Payload, int]] = []
    for i, (op, x, y) in enumerate(script):
        try:
            payloads = command(state, op, x, y)
        except LedgerflowError:
            continue  # a refused command appends nothing
        for p in payloads:
            t = 1000 * (i + 1) + len(items)
            state = apply(state, p, t)  # a decided event always folds
            folded.append((p, t))
            ev = Event(type=p.TYPE, stream=p.stream(), data=p, time=t, actor="t")
            items.append(Recorded(len(items), ev))
        traffic = d.FeedbackRecorded(deployment="web", request_id=f"r{i}", value=1, time=i)
        items.append(Recorded(len(items), Event.of(traffic)))
    assert fold(folded) == state
    assert project(projector, items) == state
