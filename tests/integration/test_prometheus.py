"""The dashboards and alert rules against a real Prometheus scraping real Ledgerflow
processes: `ledgerflow server` (gateway, projector, webhook dispatcher, deployer and the
deployment's variants in one registry), a `ledgerflow serve --deployment` replica and a
standalone `ledgerflow projector --metrics-port`. Every PromQL expression of
deploy/grafana/dashboards/*.json and deploy/prometheus/alerts.yml must return at least one
series, so no dashboard or alert names a metric or label that no process exposes; and
`promtool` checks and unit-tests the rules.

Needs Debian's `prometheus` package (scripts/ensure-prometheus.sh, which scripts/test.sh
runs, installs it).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import ledgerflow as lf
from tests.conftest import PYTHON, ROOT, free_port, python_env
from tests.e2e.test_deployment_replicas import deployment, routes
from tests.e2e.test_serve_process import serving_all
from tests.integration.gateway_fixture import GatewayProcess
from tests.integration.webhook_receiver import Receiver

pytestmark = pytest.mark.slow
__all__ = ["deployment"]  # the fixture, imported

DEPLOY = ROOT / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
SCRAPE_S = 1


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run scripts/ensure-prometheus.sh (as root it installs "
            "Debian's `prometheus` package; scripts/test.sh runs it)"
        )
    return path


# -- the expressions ------------------------------------------------------------------------


def dashboard_queries(doc: Any) -> Iterator[str]:
    """Every panel target's `expr` and every template variable's query, wherever nested."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "expr" and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, dict) and "query" in value:
                yield value["query"]
            else:
                yield from dashboard_queries(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from dashboard_queries(item)


LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.+),\s*\w+\)\s*$", re.S)
THRESHOLD = re.compile(r"^(?P<signal>.+?)\s*(?:==|!=|>=|<=|>|<)\s*[-+]?[\d.e]+\s*$", re.S)


def as_promql(query: str) -> str:
    """A dashboard query Prometheus can run: `label_values(selector, label)` is the
    selector; Grafana's `$__rate_interval` a minute; a template variable (`$model`) matches
    anything (they only appear inside `=~` matchers)."""
    m = LABEL_VALUES.match(query)
    query = m["selector"] if m else query
    return re.sub(r"\$\w+", ".*", query.replace("$__rate_interval", "1m"))


def alert_signal(expr: str) -> str:
    """An alert's `<signal> <comparison> <threshold>` without the comparison: a healthy
    system fires nothing, but the signal must exist."""
    m = THRESHOLD.match(expr)
    assert m is not None, f"alert expression is not `<signal> <op> <threshold>`: {expr}"
    return m["signal"]


def expressions() -> dict[str, str]:
    """PromQL to evaluate, by where it comes from."""
    found: dict[str, str] = {}
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        for i, query in enumerate(dashboard_queries(doc)):
            found[f"{path.name}#{i}: {query}"] = as_promql(query)
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alerts.yml {rule['alert']}"] = alert_signal(rule["expr"])
    return found


def test_every_dashboard_and_alert_has_expressions_to_check() -> None:
    assert len(DASHBOARDS) == 4
    found = expressions()
    assert sum(k.startswith("alerts.yml") for k in found) >= 10
    assert as_promql('label_values(x{model=~"$model"}, version)') == 'x{model=~".*"}'
    assert alert_signal("max(a) by (b) > 0") == "max(a) by (b)"


# -- promtool ---------------------------------------------------------------------------


def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    promtool = _tool("promtool")
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        done = subprocess.run(
            [promtool, *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


# -- against real processes ---------------------------------------------------------------


def _hostport(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


def _start_prometheus(tmp: Path, jobs: dict[str, list[str]]) -> tuple[subprocess.Popen[bytes], str]:
    config = {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in jobs.items()
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def _query(url: str, promql: str) -> list[Any]:
    r = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10)
    body = r.json()
    if body.get("status") != "success":
        raise AssertionError(f"{promql}: {body.get('error')}")
    result: list[Any] = body["data"]["result"]
    return result


def _wait(what: str, ok: Any, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s; prometheus log:\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


def test_every_dashboard_and_alert_expression_returns_series_from_real_processes(
    deployment: Path, tmp_path: Path
) -> None:
    _tool("prometheus")
    receiver = Receiver().up()
    hook = lf.Client().create_webhook("metrics-hook", receiver.url, ["model.*"])
    receiver.secret = hook.secret
    server = GatewayProcess(deployment, tmp_path / "server.log", command="server").launch()
    projector_port = free_port()
    projector = subprocess.Popen(
        [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(deployment), "projector",
         "--metrics-port", str(projector_port)],
        stdout=(tmp_path / "projector.log").open("wb"), stderr=subprocess.STDOUT,
        env=python_env(),
    )  # fmt: skip
    prometheus: subprocess.Popen[bytes] | None = None
    try:
        replica = (tmp_path / "replica.log", ("--deployment", "ab"))
        with serving_all(deployment, replica) as (replica_url,):
            server.wait_ready()
            deadline = time.monotonic() + 60
            while httpx.get(f"{server.url}/deployments/ab/ready").status_code != 200:
                assert time.monotonic() < deadline, server.output()
                time.sleep(0.1)
            for url in (server.url, replica_url):  # traffic for both variants
                routes(url, [f"user-{i}" for i in range(20)])
            httpx.post(f"{server.url}/deployments/ab/invocations", json={"inputs": "bad"})
            httpx.get(f"{server.url}/api/v1/experiments/search")
            lf.Client().set_registered_model_tag("clf", "watched", "yes")  # for the webhook

            prometheus, url = _start_prometheus(
                tmp_path,
                {
                    "ledgerflow-gateway": [_hostport(server.url)],
                    "ledgerflow-serving": [_hostport(server.url), _hostport(replica_url)],
                    "ledgerflow-projector": [f"127.0.0.1:{projector_port}"],
                },
            )
            log = tmp_path / "prometheus.log"

            def all_up() -> bool:
                try:
                    up = _query(url, 'up{job=~"ledgerflow-.*"}')
                except (httpx.TransportError, ValueError):
                    return False
                return len(up) == 4 and all(s["value"][1] == "1" for s in up)

            _wait("every target scraped and up", all_up, 30, log)
            # rate() over `1m` needs two samples of each series
            _wait(
                "two scrapes of the serving series",
                lambda: _query(url, "count_over_time(ledgerflow_serving_requests_total[1m]) >= 2"),
                30,
                log,
            )
            # a series a process makes on its first event (a deployer decision) needs two
            # scrapes after that before increase() answers: ask again for a while
            deadline = time.monotonic() + 30
            while True:
                empty = [
                    f"{where}\n    evaluated: {promql}"
                    for where, promql in expressions().items()
                    if not _query(url, promql)
                ]
                if not empty or time.monotonic() > deadline:
                    break
                time.sleep(SCRAPE_S)
            assert not empty, "expressions with no series:\n" + "\n".join(empty)
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(15)
        projector.terminate()
        projector.wait(15)
        server.stop()
        receiver.down()
