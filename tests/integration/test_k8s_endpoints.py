"""deploy/k8s against the real servers and tools: every path a probe or Prometheus asks
is answered by the server on that port (the gateway's app over a real backend, a model
server's app, the standalone /metrics endpoint of the projector, deployer, webhook
dispatcher and traffic-stats workers); kubectl's kustomize, where installed, renders what
tests/kustomize.py renders; promtool accepts the Kubernetes scrape config.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.app import create_app as gateway_app
from ledgerflow.services.metrics import exposition
from ledgerflow.services.serving.app import create_app as serving_app
from tests.conftest import ROOT
from tests.integration.test_serving_health import Echo
from tests.k8s_manifests import K8S, OVERLAYS, Endpoint, endpoints, rendered
from tests.kustomize import build

ASKED = [e for overlay in OVERLAYS for e in endpoints(rendered(overlay))]


def _paths(server: str) -> dict[str, set[str]]:
    """path -> who asks it, of every endpoint on `server`."""
    found: dict[str, set[str]] = {}
    for e in ASKED:
        if e.server == server:
            found.setdefault(e.path, set()).add(e.asked_by)
    assert found, f"no probe or scrape asks the {server} server"
    return found


async def _get(app: Any, paths: set[str]) -> dict[str, int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pod") as http:
        return {path: (await http.get(path)).status_code for path in paths}


def test_the_gateway_answers_its_probes_and_prometheus(backend: Backend) -> None:
    paths = _paths("gateway")
    answers = asyncio.run(_get(gateway_app(backend), set(paths)))
    assert answers == dict.fromkeys(paths, 200)


def test_a_replica_is_ready_once_its_models_are_warm_and_live_before() -> None:
    from ledgerflow.services.serving.repository import ModelRepository

    paths = _paths("serve")
    repository = ModelRepository()
    app = serving_app(repository)
    before = asyncio.run(_get(app, set(paths)))
    for path, askers in paths.items():
        assert before[path] == (503 if askers == {"readinessProbe"} else 200), (path, before)

    async def warm() -> dict[str, int]:
        await repository.add("m", Echo()).warm()
        return await _get(app, set(paths))

    assert asyncio.run(warm()) == dict.fromkeys(paths, 200)


def test_the_metrics_port_of_every_worker_answers_its_probes_and_prometheus() -> None:
    paths = _paths("metrics")
    server = exposition.serve("127.0.0.1", 0, exposition.registry())
    try:
        port = server.server_address[1]
        answers = {p: httpx.get(f"http://127.0.0.1:{port}{p}").status_code for p in paths}
    finally:
        server.shutdown()
    assert answers == dict.fromkeys(paths, 200)


def test_every_endpoint_is_on_a_server_these_tests_ask() -> None:
    unknown: list[Endpoint] = [e for e in ASKED if e.server not in ("gateway", "serve", "metrics")]
    assert not unknown


# -- the tools ---------------------------------------------------------------------------------


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_kustomize_renders_what_the_tests_check(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: tests/kustomize.py's rendering is not cross-checked")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    theirs = {_key(o): o for o in yaml.safe_load_all(out.stdout) if o}
    ours = {_key(o): o for o in build(K8S / "overlays" / overlay)}
    assert theirs.keys() == ours.keys()
    for key, obj in ours.items():
        assert theirs[key] == obj, key


@pytest.fixture
def promtool() -> Iterator[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: run scripts/ensure-prometheus.sh (as root it installs "
            "Debian's `prometheus` package; scripts/test.sh runs it)"
        )
    yield path


def test_promtool_accepts_the_kubernetes_scrape_config(promtool: str, tmp_path: Path) -> None:
    """Debian's Prometheus is built without Kubernetes discovery, so promtool checks the
    rest (relabeling rules, regular expressions, the rule file) with the discovery swapped
    for a static target; the discovery block's shape is checked by the unit test."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/kubernetes.yml").read_text())
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")
        job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
    config["rule_files"] = [str(ROOT / "deploy/prometheus" / f) for f in config["rule_files"]]
    path = tmp_path / "kubernetes.yml"
    path.write_text(yaml.safe_dump(config))
    subprocess.run([promtool, "check", "config", str(path)], check=True, timeout=60)
