"""A small, strict kustomize: renders deploy/k8s overlays where no kustomize binary is.

It knows only the part of kustomize that deploy/k8s uses, and refuses anything else by
name rather than ignoring it:

- `resources`: YAML files, and folders with a kustomization.yaml of their own (rendered
  first, as kustomize does);
- `namespace`: set on every namespaced object;
- `patches` whose `patch` is an inline RFC 6902 JSON patch (applied with the `jsonpatch`
  library) and whose `target` names a kind and a name; a target that matches nothing is an
  error here (kustomize would say nothing);
- `images`: `newName` and `newTag` for every container and init container, wherever a
  `containers` list sits (a RayCluster's pod templates too).

kubectl's embedded kustomize, where installed, must render the same objects:
tests/integration/test_k8s_endpoints.py compares the two.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

KUSTOMIZATION = "kustomization.yaml"
KEYS = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
TARGET_KEYS = {"kind", "name"}
IMAGE_KEYS = {"name", "newName", "newTag"}
# The kinds of this subset that live outside namespaces.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass"}  # fmt: skip

Obj = dict[str, Any]


class Unsupported(ValueError):
    """The kustomization uses a part of kustomize this renderer does not implement."""


def build(folder: Path) -> list[Obj]:
    """The objects `kubectl kustomize FOLDER` would print (in file order, not kustomize's)."""
    spec = yaml.safe_load((folder / KUSTOMIZATION).read_text())
    unknown = set(spec) - KEYS
    if unknown:
        raise Unsupported(f"{folder / KUSTOMIZATION}: {sorted(unknown)} not supported here")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            objects += build(path)
        else:
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for patch in spec.get("patches", []):
        objects = _patched(objects, patch, folder)
    for image in spec.get("images", []):
        if set(image) - IMAGE_KEYS:
            raise Unsupported(f"{folder}: image fields {sorted(set(image) - IMAGE_KEYS)}")
        for obj in objects:
            _retag(obj, image)
    return objects


def _patched(objects: list[Obj], patch: Obj, folder: Path) -> list[Obj]:
    target = patch.get("target", {})
    if set(patch) != {"target", "patch"} or set(target) != TARGET_KEYS:
        raise Unsupported(f"{folder}: a patch needs `target` (kind, name) and an inline `patch`")
    ops = yaml.safe_load(patch["patch"])
    if not isinstance(ops, list):
        raise Unsupported(f"{folder}: only JSON 6902 patches (a list of ops), not merge patches")
    hits = 0
    out = []
    for obj in objects:
        if obj["kind"] == target["kind"] and obj["metadata"]["name"] == target["name"]:
            obj = jsonpatch.apply_patch(copy.deepcopy(obj), ops)
            hits += 1
        out.append(obj)
    if hits == 0:
        raise ValueError(f"{folder}: no {target['kind']} {target['name']!r} to patch")
    return out


def _retag(node: Any, image: Obj) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    container["image"] = _new_image(container["image"], image)
            else:
                _retag(value, image)
    elif isinstance(node, list):
        for item in node:
            _retag(item, image)


def _new_image(current: str, image: Obj) -> str:
    slash = current.rfind("/")
    colon = current.rfind(":")
    name, tag = (current[:colon], current[colon + 1 :]) if colon > slash else (current, "")
    if name != image["name"]:
        return current
    name = image.get("newName", name)
    tag = image.get("newTag", tag)
    return f"{name}:{tag}" if tag else name
