"""`lf.Client().audit(...)` embedded and against a gateway, and `ledgerflow audit`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from typer.testing import CliRunner

import ledgerflow as lf
from ledgerflow.cli.app import app
from ledgerflow.entities import AuditEntry
from ledgerflow.events.permissions import user_of
from tests.integration.gateway_fixture import GatewayThread


def moved_alias(c: lf.Client) -> None:
    c.create_registered_model("digits-cnn")
    for _ in range(3):
        c.create_model_version("digits-cnn", "file:///tmp/model")
    for version in (1, 2, 3):
        c.set_registered_model_alias("digits-cnn", "champion", version)


def test_the_client_reads_the_trail_embedded(tracking: Path) -> None:
    c = lf.Client()
    moved_alias(c)
    with lf.start_run(experiment_id=c.create_experiment("e")):
        lf.log_metric("loss", 0.5)
    moves = c.audit(entity="model:digits-cnn", type="model.alias_*", since="1h")
    assert all(isinstance(e, AuditEntry) for e in moves)
    assert [(e.before, e.after) for e in moves][:2] == [
        ({"aliases.champion": 2}, {"aliases.champion": 3}),
        ({"aliases.champion": 1}, {"aliases.champion": 2}),
    ]
    assert moves.token is None
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    assert c.audit(since=tomorrow) == []
    (metrics,) = c.audit(type="run.metrics_logged")
    assert metrics.detail is not None and metrics.detail["keys"] == ["loss"]
    page = c.audit(max_results=2)
    assert len(page) == 2 and page.token is not None
    assert c.audit(max_results=2, page_token=page.token)[0].time <= page[-1].time


def test_the_client_reads_the_trail_through_a_gateway_as_embedded(
    remote: GatewayThread,
) -> None:
    c = lf.Client()
    moved_alias(c)
    over_http = c.audit(entity="model:digits-cnn", max_results=1000)
    assert remote.backend is not None
    assert list(over_http) == list(lf.Client(backend=remote.backend).audit(
        entity="model:digits-cnn", max_results=1000
    ))  # fmt: skip
    assert over_http[0].type == "model.alias_set"
    assert over_http[0].actor == user_of(c._actor)  # the user, without `user:`


def test_the_cli_prints_who_changed_what_before_and_after(tracking: Path) -> None:
    c = lf.Client()
    moved_alias(c)
    runner = CliRunner()
    root = ["--tracking-uri", str(tracking), "audit"]
    shown = runner.invoke(app, [*root, "--entity", "model:digits-cnn", "--since", "2d"])
    assert shown.exit_code == 0, shown.output
    assert "aliases.champion: 2 → 3" in shown.output
    assert "aliases.champion: (none) → 1" in shown.output
    doc = json.loads(
        runner.invoke(app, [*root, "-t", "model.alias_set", "-n", "2", "--json"]).output
    )
    assert [e["after"] for e in doc["entries"]] == [
        {"aliases.champion": 3},
        {"aliases.champion": 2},
    ]
    assert doc["next_page_token"]
    today = dt.date.today().isoformat()
    later = runner.invoke(app, [*root, "--since", today, "--type", "deployment.*"])
    assert later.exit_code == 0 and "no audit entries match" in later.output
    bad = runner.invoke(app, [*root, "--since", "last tuesday"])
    assert bad.exit_code == 1 and "since 'last tuesday' is not a time" in bad.output
