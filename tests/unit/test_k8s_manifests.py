"""deploy/k8s agrees with Kubernetes and with the code, without a cluster.

Each overlay is rendered (tests/kustomize.py; kubectl's kustomize must render the same,
tests/integration/test_k8s_endpoints.py) and then:

- every object is valid against Kubernetes' own schemas, strictly (unknown fields fail),
  as the `kubernetes-validate` package bundles them, for the oldest Kubernetes we support
  and the newest it knows; the RayCluster, a KubeRay custom resource it has no schema for,
  against tests/schemas/raycluster-v1.schema.json and its pod templates against
  Kubernetes' PodTemplate schema;
- every Ledgerflow command line is parsed by the CLI, every environment loads as settings,
  every reference (ConfigMap, Secret and its keys, claim, Service port, autoscaler target)
  resolves, the ports a command opens are the ports its pod declares, and probes and
  Prometheus annotations name the server on that port (the paths themselves are requested
  of the real servers in tests/integration/test_k8s_endpoints.py).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from ledgerflow.services.secret_box import open_secret_box
from ledgerflow.workers.runtime import runtime_for
from tests.conftest import ROOT
from tests.deploy_checks import WHEEL_SOURCES, copied, hosts_named, load_env, parse_command
from tests.k8s_manifests import (
    IMAGES,
    K8S,
    OVERLAYS,
    Container,
    endpoints,
    find,
    image_name,
    ours,
    pod_templates,
    rendered,
)
from tests.kustomize import Unsupported, build

OLDEST_KUBERNETES = "1.29"  # docs/deploy.md says so
KUBERNETES = (OLDEST_KUBERNETES, latest_version())
RAYCLUSTER_SCHEMA = json.loads((ROOT / "tests/schemas/raycluster-v1.schema.json").read_text())
DOCS = (ROOT / "docs" / "deploy.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SECRET = "ledgerflow-secrets"
# Variables other than settings, each for a reason the code gives.
OTHER_ENV = {
    "TMPDIR": "the bundle runner's scratch folders (services/bundles/files.py: tempfile), "
    "on the volume the Ray workers mount at the same path",
}

Obj = dict[str, Any]


def _kubernetes_section() -> str:
    start = DOCS.index("## Kubernetes")
    end = DOCS.find("\n## ", start + 1)
    return DOCS[start : end if end != -1 else None]


def _documented_secret_keys() -> set[str]:
    """The keys docs/deploy.md tells operators to put in the production Secret."""
    return set(re.findall(r"--from-literal=(\w+)=", _kubernetes_section()))


def _dev_secret() -> dict[str, str]:
    secret = find(rendered("dev"), "Secret", SECRET)
    assert secret is not None, f"the dev overlay defines no Secret {SECRET}"
    return dict(secret["stringData"])


def _environment(objects: tuple[Obj, ...], c: Container, stand_in: bool = True) -> dict[str, str]:
    """What the container's process sees. The production Secret is made by hand: the dev
    Secret's values stand in for it (its keys are the documented ones, checked below), or,
    without `stand_in`, its values are left out."""
    env: dict[str, str] = {}
    for source in c.spec.get("envFrom", []):
        if "configMapRef" in source:
            config = find(objects, "ConfigMap", source["configMapRef"]["name"])
            assert config is not None, f"{c.where}: no ConfigMap {source['configMapRef']}"
            env.update(config["data"])
        else:
            name = source["secretRef"]["name"]
            secret = find(objects, "Secret", name)
            assert secret is not None or name == SECRET, f"{c.where}: no Secret {name}"
            if secret is not None:
                env.update(secret["stringData"])
            elif stand_in:
                env.update(_dev_secret())
    for var in c.spec.get("env", []):
        assert "value" in var, f"{c.where}: {var['name']} is not a plain value"
        env[var["name"]] = var["value"]
    return env


# -- the renderer -----------------------------------------------------------------------------


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(Unsupported, match="commonLabels"):
        build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "patches:\n  - target: {kind: Deployment, name: x}\n    patch: '{spec: {}}'\n"
    )
    with pytest.raises(Unsupported, match="JSON 6902"):
        build(tmp_path)


def test_a_patch_for_an_object_that_is_not_there_fails(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{K8S / 'base'}]\npatches:\n  - target: {{kind: Deployment, name: gatewy}}\n"
        "    patch: '[{op: remove, path: /spec}]'\n"
    )
    with pytest.raises(ValueError, match="no Deployment 'gatewy'"):
        build(tmp_path)


# -- Kubernetes' schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    errors = []
    for obj in rendered(overlay):
        if obj["kind"] == "RayCluster":
            continue  # a custom resource: below
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {e.message}")
    assert not errors, "\n".join(errors)


def test_the_ray_cluster_is_a_valid_kuberay_resource() -> None:
    cluster = find(rendered("production"), "RayCluster", "ledgerflow-ray")
    assert cluster is not None
    jsonschema.validate(cluster, RAYCLUSTER_SCHEMA)
    for where, template in pod_templates((cluster,)):
        podtemplate = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                       "template": template}  # fmt: skip
        for version in KUBERNETES:
            kubernetes_validate.validate(podtemplate, version, strict=True)
        # KubeRay runs Ray in the first container
        assert image_name(template["spec"]["containers"][0]["image"]) == "ledgerflow-ray", where
    for group in cluster["spec"]["workerGroupSpecs"]:
        assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]


def test_the_ray_cluster_runs_the_ray_version_of_its_image() -> None:
    dockerfile = IMAGES["ledgerflow-ray"].read_text()
    version = re.search(r"^ARG RAY_VERSION=(\S+)$", dockerfile, re.M)
    assert version is not None
    assert "FROM rayproject/ray:${RAY_VERSION}-py311" in dockerfile
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.11,<3.12")  # -py311
    assert re.search(r'pip install "\.\[distributed,bundles[^"]*\]" "ray\[[^"]*\]==\$\{RAY_VERSION\}"',
                     dockerfile)  # fmt: skip
    for overlay in OVERLAYS:
        cluster = find(rendered(overlay), "RayCluster", "ledgerflow-ray")
        if cluster is not None:
            assert cluster["spec"]["rayVersion"] == version.group(1)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_our_pods_run_as_the_user_their_image_makes(overlay: str) -> None:
    users = {
        "ledgerflow": re.search(r"useradd .*--uid (\d+)", IMAGES["ledgerflow"].read_text()),
        "ledgerflow-ray": re.search(r"--chown=(\d+):", IMAGES["ledgerflow-ray"].read_text()),
    }
    for c in ours(rendered(overlay)):
        if c.invocation is None:
            continue  # KubeRay's pods run as Ray's image says
        uid = users[image_name(c.spec["image"])]
        assert uid is not None
        security = c.template["spec"]["securityContext"]
        assert security["runAsNonRoot"] and security["runAsUser"] == int(uid.group(1)), c.where


def test_the_ray_image_copies_everything_the_wheel_is_built_from() -> None:
    """deploy/Dockerfile's are checked with compose.yaml (tests/unit/test_deploy_files.py)."""
    assert copied(IMAGES["ledgerflow-ray"].read_text()) >= WHEEL_SOURCES


def test_production_runs_the_released_images() -> None:
    spec = yaml.safe_load((K8S / "overlays/production/kustomization.yaml").read_text())
    tags = {image["name"]: image["newTag"] for image in spec["images"]}
    assert tags == dict.fromkeys(IMAGES, PYPROJECT["project"]["version"])
    for c in ours(rendered("production")):
        assert ":latest" not in c.spec["image"], c.where


# -- commands, settings and what they name ----------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ledgerflow_container_runs_a_command_the_cli_has(overlay: str) -> None:
    containers = ours(rendered(overlay))  # parses each command line: a bad one fails here
    for c in containers:
        assert "args" not in c.spec, f"{c.where}: the whole command line goes in `command`"
        if c.invocation is None:
            assert c.where.startswith("RayCluster/"), f"{c.where}: no command"
    assert {c.invocation.path for c in containers if c.invocation} >= {
        ("gateway",), ("projector",), ("webhooks", "run"), ("deployer",), ("traffic-stats",),
        ("serve",),
    }  # fmt: skip


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_ledgerflow_container_gets_valid_settings(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = rendered(overlay)
    for c in ours(objects):
        if c.invocation is None:
            continue  # Ray's processes: jobs pass their own settings (docs/jobs.md)
        env = _environment(objects, c)
        other = {k for k in env if not k.startswith("LEDGERFLOW_")}
        assert other <= set(OTHER_ENV), f"{c.where}: {sorted(other - set(OTHER_ENV))}"
        with monkeypatch.context() as m:
            settings = load_env(env, c.where, m)
        assert settings.is_kafka and settings.traffic_stats == "redis", c.where
        assert settings.views_db_url.startswith("postgresql+psycopg://"), c.where
        assert settings.artifacts is not None and settings.artifacts.startswith("s3://")
        open_secret_box(settings)  # a Fernet key every gateway and dispatcher shares
        runtime_for(settings.ray_address)  # local, auto or ray://: refused otherwise


def test_the_bundle_runner_reaches_ray_client_on_the_head_service_kuberay_makes() -> None:
    objects = rendered("production")
    cluster = find(objects, "RayCluster", "ledgerflow-ray")
    [runner] = [c for c in ours(objects) if c.invocation and c.invocation.path[0] == "bundle"]
    assert cluster is not None
    env = _environment(objects, runner)
    [(_, host, port)] = list(hosts_named({"LEDGERFLOW_RAY_ADDRESS": env["LEDGERFLOW_RAY_ADDRESS"]}))
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    client = {p["name"]: p["containerPort"] for p in head["ports"]}["client"]
    assert (host, port) == (f"{cluster['metadata']['name']}-head-svc", client)

    def claim_at(template: Obj, container: Obj, path: str) -> str:
        [volume] = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == path]
        [claim] = [v["persistentVolumeClaim"]["claimName"]
                   for v in template["spec"]["volumes"] if v["name"] == volume]  # fmt: skip
        return str(claim)

    # The models it converts lie where the workers read them: one claim, at the same path.
    shared = claim_at(runner.template, runner.spec, env["TMPDIR"])
    for where, template in pod_templates((cluster,)):
        if not where.endswith(" head"):
            worker = template["spec"]["containers"][0]
            assert claim_at(template, worker, env["TMPDIR"]) == shared, where
    claim = find(objects, "PersistentVolumeClaim", shared)
    assert claim is not None and claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_the_production_secret_has_the_keys_the_docs_tell_operators_to_set() -> None:
    keys = _documented_secret_keys()
    assert keys == set(_dev_secret()), "docs/deploy.md and the dev Secret disagree"
    assert all(key.startswith("LEDGERFLOW_") for key in keys)
    assert find(rendered("production"), "Secret", SECRET) is None  # never in the repository


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_reference_resolves(overlay: str) -> None:
    objects = rendered(overlay)
    for where, template in pod_templates(objects):
        spec = template["spec"]
        for volume in spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim")
            if claim is not None:
                assert find(objects, "PersistentVolumeClaim", claim["claimName"]), where
        names = {v["name"] for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in names, f"{where}: no volume {mount['name']}"
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref is not None:
                    secret = find(objects, "Secret", ref["name"])
                    assert secret is not None, f"{where}: no Secret {ref['name']}"
                    assert ref["key"] in secret["stringData"], f"{where}: {ref}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_host_a_setting_names_is_a_service_with_that_port(overlay: str) -> None:
    """In dev, all of them; in production the short names (Services of the namespace), the
    others being your endpoints. KubeRay makes the Ray head's Service from the RayCluster."""
    objects = rendered(overlay)
    ray_heads = {f"{o['metadata']['name']}-head-svc" for o in objects if o["kind"] == "RayCluster"}
    for c in ours(objects):
        if c.invocation is None:
            continue
        for key, host, port in hosts_named(_environment(objects, c, stand_in=False)):
            if host in ray_heads or (overlay == "production" and "." in host):
                continue
            service = find(objects, "Service", host)
            assert service is not None, f"{c.where}: {key} names {host!r}, not a Service"
            assert port in {p["port"] for p in service["spec"]["ports"]}, f"{key}: {host}:{port}"


# -- ports, probes, Services, scaling ---------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_port_a_command_opens_is_declared_and_reachable(overlay: str) -> None:
    for c in ours(rendered(overlay)):
        if c.invocation is None:
            continue
        params = c.invocation.params
        opened = {params[k] for k in ("port", "grpc_port", "metrics_port") if params.get(k)}
        declared = {p["containerPort"] for p in c.spec.get("ports", [])}
        assert declared == opened, f"{c.where}: declares {declared}, opens {opened}"
        if opened:
            assert params["host"] == "0.0.0.0", f"{c.where}: listens on {params['host']} only"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_scrape_annotations_ask_the_server_on_their_port(overlay: str) -> None:
    found = list(endpoints(rendered(overlay)))
    for e in found:
        assert e.server is not None, f"{e.where}: {e.asked_by} asks port {e.port}: no server"
        if e.asked_by == "prometheus":
            assert e.path == "/metrics", e
    asked = {(e.where, e.asked_by): e for e in found}
    # the deployment replicas are ready when every variant is loaded and warmed
    ready = asked[("Deployment/web", "readinessProbe")]
    assert (ready.server, ready.path) == ("serve", "/v2/health/ready")
    for c in ours(rendered(overlay)):
        if c.invocation is None or not c.spec.get("ports"):
            continue
        assert (c.where, "prometheus") in asked, f"{c.where}: not scraped"
        assert (c.where, "livenessProbe") in asked, f"{c.where}: no liveness probe"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_selects_pods_and_their_ports(overlay: str) -> None:
    objects = rendered(overlay)
    templates = list(pod_templates(objects))
    for obj in objects:
        if obj["kind"] == "Deployment":
            labels = obj["spec"]["template"]["metadata"]["labels"]
            assert obj["spec"]["selector"]["matchLabels"].items() <= labels.items()
        if obj["kind"] != "Service":
            continue
        selector = obj["spec"]["selector"].items()
        chosen = [(w, t) for w, t in templates if selector <= t["metadata"]["labels"].items()]
        assert chosen, f"Service/{obj['metadata']['name']} selects no pods"
        for where, template in chosen:
            ports: set[str | int] = set()
            for container in template["spec"]["containers"]:
                for p in container.get("ports", []):
                    ports |= {p["containerPort"], p.get("name", p["containerPort"])}
            for port in obj["spec"]["ports"]:
                assert port["targetPort"] in ports, f"{where}: no port {port['targetPort']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_leave_their_replicas_to_the_autoscaler(overlay: str) -> None:
    objects = rendered(overlay)
    autoscalers = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert {o["spec"]["scaleTargetRef"]["name"] for o in autoscalers} >= {"gateway"}
    for hpa in autoscalers:
        ref = hpa["spec"]["scaleTargetRef"]
        target = find(objects, ref["kind"], ref["name"])
        assert target is not None, f"HPA/{hpa['metadata']['name']}: no {ref}"
        assert "replicas" not in target["spec"], f"{ref['name']}: every apply would reset it"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        for container in target["spec"]["template"]["spec"]["containers"]:
            assert "cpu" in container["resources"]["requests"]  # utilization needs a request


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_consumer_groups_fit_the_partitions_and_single_runners_stay_single(
    overlay: str,
) -> None:
    objects = rendered(overlay)
    config = find(objects, "ConfigMap", "ledgerflow-config")
    assert config is not None
    partitions = int(config["data"]["LEDGERFLOW_KAFKA_PARTITIONS"])
    for name in ("projector", "traffic-stats"):
        deployment = find(objects, "Deployment", name)
        assert deployment is not None and deployment["spec"]["replicas"] <= partitions
    for c in ours(objects):
        if c.invocation is not None and c.invocation.path == ("webhooks", "run"):
            assert "--lease" in c.spec["command"]  # replicas take webhooks over by lease
    runner = find(objects, "Deployment", "bundle-policy")
    if runner is not None:  # no lease: one runner, and never two during a rollout
        assert runner["spec"]["replicas"] == 1
        assert runner["spec"]["strategy"]["type"] == "Recreate"


# -- the same stack as compose.yaml, watched by the same Prometheus jobs ---------------------


def test_every_ledgerflow_service_of_compose_has_a_kubernetes_counterpart() -> None:
    ledgerflow = {name: s for name, s in COMPOSE["services"].items()
                  if s.get("image", "").startswith("ledgerflow")}  # fmt: skip
    objects = rendered("production")
    for name, service in ledgerflow.items():
        compose = parse_command(service["command"], f"compose {name}")
        deployment = find(objects, "Deployment", name)
        assert deployment is not None, f"compose runs {name}; deploy/k8s does not"
        [c] = [c for c in ours(objects) if c.where == f"Deployment/{name}"]
        assert c.invocation is not None and c.invocation.path == compose.path
        for port in ("port", "grpc_port", "metrics_port"):
            assert c.invocation.params.get(port) == compose.params.get(port), (name, port)
    backing = {s["image"] for n, s in COMPOSE["services"].items() if n not in ledgerflow}
    for where, template in pod_templates(rendered("dev")):
        for container in template["spec"]["containers"]:
            if image_name(container["image"]) not in IMAGES:
                assert container["image"] in backing, f"{where}: not an image compose runs"


def _relabel(rules: list[Obj], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' `keep` and `replace` relabeling (the actions kubernetes.yml uses)."""
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule["source_labels"])
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        if rule.get("action", "replace") == "keep":
            if match is None:
                return None
        elif match is not None:
            labels[rule["target_label"]] = match.expand(
                re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1"))
            )
    return labels


def _meta(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_on_kubernetes_scrapes_every_process_under_the_compose_job_names(
    overlay: str,
) -> None:
    """deploy/prometheus/kubernetes.yml relabels each annotated pod to the job name
    prometheus.yml gives it on compose, so alerts.yml and the dashboards apply as they are."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/kubernetes.yml").read_text())
    [job] = config["scrape_configs"]
    [sd] = job["kubernetes_sd_configs"]
    objects = rendered(overlay)
    assert sd["role"] == "pod" and objects[0]["metadata"]["namespace"] in sd["namespaces"]["names"]
    compose = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    scraped: dict[str, set[tuple[str, str]]] = {}
    for _, template in pod_templates(objects):
        meta = template["metadata"]
        for container in template["spec"]["containers"]:
            for port in container.get("ports", []):
                labels = {"__address__": f"10.0.0.1:{port['containerPort']}",
                          "__metrics_path__": "/metrics"}  # fmt: skip
                for key, value in meta.get("labels", {}).items():
                    labels[f"__meta_kubernetes_pod_label_{_meta(key)}"] = value
                for key, value in meta.get("annotations", {}).items():
                    labels[f"__meta_kubernetes_pod_annotation_{_meta(key)}"] = value
                target = _relabel(job["relabel_configs"], labels)
                if target is not None:
                    scraped.setdefault(target["job"], set()).add(
                        (target["__address__"], target["__metrics_path__"])
                    )
    assert set(scraped) == {j["job_name"] for j in compose["scrape_configs"]}
    wanted = {
        (f"10.0.0.1:{e.port}", e.path) for e in endpoints(objects) if e.asked_by == "prometheus"
    }
    assert set().union(*scraped.values()) == wanted


# -- the docs ---------------------------------------------------------------------------------


def test_the_docs_name_every_workload_and_how_to_apply_each_overlay() -> None:
    section = _kubernetes_section()
    for overlay in OVERLAYS:
        assert f"kubectl apply -k deploy/k8s/overlays/{overlay}" in section
        for obj in rendered(overlay):
            if obj["kind"] in ("Deployment", "RayCluster", "HorizontalPodAutoscaler"):
                assert f"`{obj['metadata']['name']}`" in section, obj["metadata"]["name"]
    assert f"Kubernetes {OLDEST_KUBERNETES}" in section
