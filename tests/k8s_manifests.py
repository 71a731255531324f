"""deploy/k8s as the tests see it: each overlay rendered (tests/kustomize.py), its
Ledgerflow containers with their command lines parsed by the CLI, and every HTTP path a
probe or Prometheus asks of them, with the server behind the port it asks on."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.conftest import ROOT
from tests.deploy_checks import Invocation, parse_command
from tests.kustomize import build

K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
# Our images and the Dockerfile each is built from.
IMAGES = {"ledgerflow": ROOT / "deploy" / "Dockerfile",
          "ledgerflow-ray": ROOT / "deploy" / "ray.Dockerfile"}  # fmt: skip
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")

Obj = dict[str, Any]


@functools.cache
def rendered(overlay: str) -> tuple[Obj, ...]:
    """The objects of deploy/k8s/overlays/OVERLAY (read them, never change them)."""
    return tuple(build(K8S / "overlays" / overlay))


def find(objects: tuple[Obj, ...], kind: str, name: str) -> Obj | None:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    return None


def pod_templates(objects: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(where, pod template) of every Deployment and of the RayCluster's groups."""
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Deployment":
            yield where, obj["spec"]["template"]
        elif obj["kind"] == "RayCluster":
            yield f"{where} head", obj["spec"]["headGroupSpec"]["template"]
            for group in obj["spec"].get("workerGroupSpecs", []):
                yield f"{where} {group['groupName']}", group["template"]


def image_name(image: str) -> str:
    """`registry.example.com/ledgerflow:0.1.0` -> `ledgerflow`."""
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].split("@", 1)[0]


@dataclass(frozen=True)
class Container:
    where: str  # "Deployment/gateway"
    template: Obj  # its pod template
    spec: Obj  # the container
    invocation: Invocation | None  # its `ledgerflow ...` command; None where KubeRay sets it

    @property
    def ports(self) -> dict[str | int, int]:
        """containerPort by name and by number, as probes and Services refer to them."""
        found: dict[str | int, int] = {}
        for port in self.spec.get("ports", []):
            found[port["containerPort"]] = port["containerPort"]
            if "name" in port:
                found[port["name"]] = port["containerPort"]
        return found


def ours(objects: tuple[Obj, ...]) -> list[Container]:
    """Every container running one of our images."""
    found = []
    for where, template in pod_templates(objects):
        for spec in template["spec"]["containers"]:
            if image_name(spec["image"]) not in IMAGES:
                continue
            command = spec.get("command")
            invocation = parse_command(command, where) if command is not None else None
            found.append(Container(where, template, spec, invocation))
    return found


@dataclass(frozen=True)
class Endpoint:
    where: str
    server: str | None  # "gateway", "serve" (their REST apps), "metrics" (--metrics-port)
    port: int
    path: str
    asked_by: str  # "readinessProbe", "prometheus", ...


def server_on(invocation: Invocation, port: int) -> str | None:
    """Which of the process's servers listens on `port`."""
    params = invocation.params
    if params.get("metrics_port") == port:
        return "metrics"
    if invocation.path in (("gateway",), ("serve",)) and params.get("port") == port:
        return invocation.path[0]
    return None


def endpoints(objects: tuple[Obj, ...]) -> Iterator[Endpoint]:
    """Every HTTP path a probe or the Prometheus annotations ask of our processes."""
    for c in ours(objects):
        if c.invocation is None:
            continue
        for probe in PROBES:
            get = c.spec.get(probe, {}).get("httpGet")
            if get is not None:
                port = c.ports.get(get["port"], 0)  # 0: no such port (a failure)
                yield Endpoint(c.where, server_on(c.invocation, port), port, get["path"], probe)
        notes = c.template.get("metadata", {}).get("annotations", {})
        if notes.get("prometheus.io/scrape") == "true":
            port = int(notes["prometheus.io/port"])
            path = notes.get("prometheus.io/path", "/metrics")
            yield Endpoint(c.where, server_on(c.invocation, port), port, path, "prometheus")
