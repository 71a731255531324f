"""`ledgerflow deployments …` on an embedded data directory, through typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import ledgerflow as lf
from ledgerflow.cli.app import app


def test_the_cli_creates_shifts_promotes_and_explains_a_deployment(tracking: Path) -> None:
    c = lf.Client()
    c.create_registered_model("iris")
    for _ in range(2):
        c.create_model_version("iris", "file:///tmp/model")
    c.set_registered_model_alias("iris", "prod", 1)
    runner = CliRunner()
    root = ["--tracking-uri", str(tracking), "deployments"]

    created = runner.invoke(app, [
        *root, "create", "web", "--variant", "a=models:/iris@prod:90",
        "--variant", "b=models:/iris/2:10", "--shadow", "s=models:/iris/2",
        "--canary", "b:10,50", "--step-min-requests", "100",
        "--guardrail", "error_rate<=0.05", "--guardrail", "latency_p99_ms<=1.5x", "--json",
    ])  # fmt: skip
    assert created.exit_code == 0, created.output
    doc = json.loads(created.output)
    assert doc["weights"] == {"a": 90.0, "b": 10.0} and doc["variants"][0]["version"] == 1
    assert doc["plan"]["steps"][0]["min_requests"] == 100
    assert doc["guardrails"][1]["relative"] is True

    shifted = runner.invoke(app, [*root, "traffic", "web", "a=50", "b=50", "-r", "even"])
    assert shifted.exit_code == 0 and "50.0%" in shifted.output
    promoted = runner.invoke(app, [*root, "promote", "web", "b", "--json"])
    assert json.loads(promoted.output)["baseline"] == "b"
    assert c.get_model_version_by_alias("iris", "champion").version == 2

    shown = runner.invoke(app, [*root, "show", "web"])
    assert shown.exit_code == 0
    assert "reason: even" in shown.output and "alias: champion" in shown.output
    listed = runner.invoke(app, [*root, "list", "--json"])
    assert [d["name"] for d in json.loads(listed.output)] == ["web"]

    bad = runner.invoke(app, [*root, "create", "x", "--variant", "a=models:/iris/1:lots"])
    assert bad.exit_code == 2 and "--variant" in bad.output
    missing = runner.invoke(app, [*root, "rollback", "nope"])
    assert missing.exit_code == 1 and "no deployment named 'nope'" in missing.output
    deleted = runner.invoke(app, [*root, "delete", "web", "--json"])
    assert json.loads(deleted.output) == {"deleted": "web"}
