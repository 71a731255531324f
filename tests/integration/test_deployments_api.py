"""The A/B rollout API through a real gateway: the REST routes' statuses and errors, and
the SDK over a gateway URL answering as embedded mode does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import ledgerflow as lf
from ledgerflow.events import model_commands as mc
from ledgerflow.events.errors import LedgerflowError
from ledgerflow.services.deployments.state import Deployment, DeploymentChange
from tests.integration.gateway_fixture import GatewayThread

A = {"name": "a", "model": "m", "version": 1, "weight": 90}
B = {"name": "b", "model": "m", "version": 2, "weight": 10}
PLAN = {"candidate": "b", "steps": [{"weight": 20}, {"weight": 60}]}


def registered(c: lf.Client) -> None:
    c.create_registered_model("m")
    for _ in range(2):
        c.create_model_version("m", "file:///tmp/model")


def normal(value: Any) -> Any:
    """An answer without the clocks that differ between two logs."""
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, Deployment):
        doc = value.to_dict()
        for key in ("created", "updated", "step_started", "traffic_since"):
            doc[key] = doc[key] is not None
        return doc
    if isinstance(value, DeploymentChange):
        return (value.seq, value.type, value.actor, value.summary)
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude={"time"})
    return value


def exercise(c: lf.Client) -> list[Any]:
    out: list[Any] = []

    def record(call: Callable[[], Any]) -> None:
        try:
            out.append(normal(call()))
        except LedgerflowError as e:
            out.append((type(e).__name__, getattr(e, "field", None), e.message))

    registered(c)
    record(lambda: c.create_deployment("web", [A, B], guardrails=[{"metric": "error_rate",
                                                                   "threshold": 0.1}]))  # fmt: skip
    record(lambda: c.create_deployment("web", [A]))
    record(lambda: c.create_deployment("bad", [A, {**B, "version": 9}]))
    record(lambda: c.create_deployment("bad", [{**A, "weight": -1}]))
    record(lambda: c.set_deployment_traffic("web", {"a": 50, "b": 50}))
    record(lambda: c.set_deployment_traffic("web", {"zz": 1}))
    record(lambda: c.add_deployment_variant("web", {"name": "s", "model": "m", "version": 2,
                                                    "shadow": True}))  # fmt: skip
    record(lambda: c.set_deployment_plan("web", PLAN))
    record(lambda: c.set_deployment_plan("web", {**PLAN, "candidate": "a"}))
    record(lambda: c.set_deployment_guardrails("web", [{"metric": "latency_p99_ms",
                                                        "threshold": 1.5, "relative": True}]))  # fmt: skip
    record(lambda: c.pause_deployment("web", "look"))
    record(lambda: c.resume_deployment("web"))
    record(lambda: c.record_deployment_feedback("web", "r1", 1, variant="b"))
    record(lambda: c.record_deployment_feedback("web", "r1", 0.5))
    record(lambda: c.rollback_deployment("web", "bad numbers"))
    record(lambda: c.remove_deployment_variant("web", "s"))
    record(lambda: c.remove_deployment_variant("web", "a"))
    record(lambda: c.promote_deployment("web", "b"))
    record(lambda: c.get_model_version_by_alias("m", "champion").version)
    record(lambda: c.get_deployment("web"))
    record(lambda: c.get_deployment("absent"))
    record(lambda: c.get_deployment_history("web", 3))
    record(c.list_deployments)
    record(lambda: c.delete_deployment("web"))
    record(lambda: c.delete_deployment("web"))
    record(c.list_deployments)
    return out


def test_deployment_commands_over_the_gateway_answer_as_embedded_mode_does(
    remote: GatewayThread,
    tmp_path: Path,
) -> None:
    over_gateway = exercise(lf.Client())
    in_process = exercise(lf.Client(str(tmp_path / "embedded")))
    assert over_gateway == in_process
    assert over_gateway[1][0] == "AlreadyExists"
    assert [e[1] for e in (over_gateway[2], over_gateway[3], over_gateway[5])] == [
        "variants[1]", "variants[0].weight", "weights.zz",
    ]  # fmt: skip
    assert over_gateway[18] == 2  # the alias moved with the promotion
    assert over_gateway[20][0] == "NotFound" and over_gateway[-2][0] == "NotFound"
    assert over_gateway[-1] == []


def test_the_rest_routes_answer_with_statuses_and_named_fields(
    gateway: GatewayThread,
) -> None:
    api = f"{gateway.url}/api/v1"
    with httpx.Client(base_url=api, headers={"X-Ledgerflow-Actor": "user:rest"}) as http:
        backend = gateway.backend
        assert backend is not None
        backend.registry.execute(mc.CreateRegisteredModel(name="m2"), actor="t")
        for _ in range(2):
            version = mc.CreateModelVersion(name="m2", source="file:///tmp/x")
            backend.registry.execute(version, actor="t")
        v = [{"name": "a", "model": "m2", "version": 1, "weight": 1},
             {"name": "b", "model": "m2", "version": 2}]  # fmt: skip

        r = http.post("/deployments", json={"name": "web", "variants": v})
        assert r.status_code == 201 and r.json()["weights"] == {"a": 1.0, "b": 0.0}
        bad = http.post("/deployments", json={"name": "x", "variants": [{**v[0], "version": 0}]})
        assert bad.status_code == 400 and bad.json()["field"] == "variants[0].version"
        unknown = http.post("/deployments", json={"name": "x", "variants": v, "colour": 1})
        assert unknown.status_code == 400 and unknown.json()["field"] == "colour"
        assert http.post("/deployments", json={"name": "web", "variants": v}).status_code == 409
        missing = http.get("/deployments/nope")
        assert missing.status_code == 404 and missing.json()["kind"] == "deployment"

        r = http.put("/deployments/web/traffic", json={"weights": {"a": 1, "b": 1}})
        assert r.status_code == 200 and r.json()["weights"] == {"a": 1.0, "b": 1.0}
        r = http.put("/deployments/web/plan", json={"plan": {"candidate": "b",
                                                             "steps": [{"weight": 5}]}})  # fmt: skip
        assert r.json()["step"] == 0 and r.json()["weights"] == {"a": 95.0, "b": 5.0}
        assert http.put("/deployments/web/plan", json={"plan": None}).json()["plan"] is None
        r = http.put("/deployments/web/guardrails", json={"guardrails": [{"metric": "x y"}]})
        assert r.status_code == 400 and r.json()["field"] == "guardrails[0].threshold"
        assert http.post("/deployments/web/pause").json()["status"] == "paused"
        assert http.post("/deployments/web/resume").json()["status"] == "active"
        r = http.post("/deployments/web/variants", json={"name": "c", "model": "m2", "version": 3})
        assert r.status_code == 400 and r.json()["field"] == "variant"
        assert http.delete("/deployments/web/variants/zz").status_code == 404
        assert http.delete("/deployments/web/variants/a").status_code == 409

        fb = http.post("/deployments/web/feedback", json={"request_id": "q", "converted": True})
        assert fb.status_code == 202 and fb.json()["value"] == 1.0
        fb = http.post("/deployments/web/feedback", json={"request_id": "q"})
        assert fb.status_code == 400 and fb.json()["field"] == "value"
        fb = http.post("/deployments/web/feedback", json={"request_id": "q", "value": 3})
        assert fb.status_code == 400 and "kind='reward'" in fb.json()["message"]
        fb = http.post("/deployments/web/feedback",
                       json={"request_id": "q", "value": 3, "kind": "reward"})  # fmt: skip
        assert fb.status_code == 202

        r = http.post("/deployments/web/promote", json={"variant": "b"})
        assert r.status_code == 200 and r.json()["baseline"] == "b"
        aliases = backend.registry.queries.get_registered_model("m2").aliases
        assert aliases == {"champion": 2}
        assert http.post("/deployments/web/rollback", json={"reason": "x"}).status_code == 200
        history = http.get("/deployments/web/history", params={"limit": 2}).json()
        assert [h["type"] for h in history] == ["deployment.resumed", "deployment.promoted"]
        assert history[-1]["actor"] == "user:rest" and history[-1]["summary"]["alias"] == "champion"
        assert http.get("/deployments/web/history", params={"limit": 0}).status_code == 400
        assert [d["name"] for d in http.get("/deployments").json()] == ["web"]
        assert http.delete("/deployments/web").status_code == 204
        assert http.delete("/deployments/web").status_code == 404
        assert http.get("/deployments").json() == []


@pytest.mark.parametrize("kind", ["conversion", "reward"])
def test_lf_deployments_feedback_picks_the_kind_from_the_value(kind: str, tracking: Path) -> None:
    registered(lf.Client())
    lf.deployments.create("web", [A, B])
    value = 1 if kind == "conversion" else 2.5
    assert lf.deployments.feedback("web", "r", value).kind == kind
    assert lf.deployments.feedback("web", "r", converted=False).value == 0.0
    with pytest.raises(LedgerflowError, match="one of them"):
        lf.deployments.feedback("web", "r")
    assert lf.deployments.get("web").serving == ("a", "b")
    assert [x.type for x in lf.deployments.history("web")] == ["deployment.created"]
