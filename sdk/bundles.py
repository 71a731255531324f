"""Deployable bundles of registered model versions.

    import ledgerflow as lf

    [onnx] = lf.bundles.build("models:/iris/1", targets=["onnx"])
    print(onnx.status, onnx.max_abs_diff, onnx.artifact_uri)
    lf.bundles.list("iris", 1)
    lf.bundles.download(onnx.id, "./iris-onnx")

    # build ONNX bundles whenever a version becomes the champion
    lf.bundles.set_policy("iris", on_alias=["champion"], targets=["onnx"])

A bundle is one form (`onnx`, `torchscript`, `savedmodel`) with a manifest, a
Dockerfile and requirements; see docs/bundles.md.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerflow.events.bundle_entities import Bundle

__all__ = ["build", "clear_policy", "download", "get", "list", "set_policy"]


def _client() -> Any:
    from ledgerflow.client import Client

    return Client()


def build(
    model_uri: str, targets: Sequence[str] | None = None, *, wait: bool = True
) -> builtins.list[Bundle]:
    """One bundle per target, built on Ray and checked for parity. With `wait`, each has
    ended: `built`, or `failed` with its `reason`."""
    bundles: builtins.list[Bundle] = _client().build_bundles(model_uri, targets, wait=wait)
    return bundles


def list(
    name: str, version: int | str | None = None, *, include_failed: bool = False
) -> builtins.list[Bundle]:
    bundles: builtins.list[Bundle] = _client().list_bundles(
        name, version, include_failed=include_failed
    )
    return bundles


def get(bundle_id: str) -> Bundle:
    bundle: Bundle = _client().get_bundle(bundle_id)
    return bundle


def download(bundle_id: str, dst_path: str | None = None) -> str:
    path: str = _client().download_bundle(bundle_id, dst_path)
    return path


def set_policy(name: str, on_alias: Sequence[str], targets: Sequence[str] | None = None) -> None:
    """Build bundles of `name` whenever one of `on_alias` is set on a version (`targets`:
    every target of the flavor when None). Replaces the model's policy, stored as the
    model tags `ledgerflow.bundle.on_alias` and `ledgerflow.bundle.targets`; the policy
    runner (`ledgerflow bundle policy run`) acts on them."""
    _client().set_bundle_policy(name, on_alias, targets)


def clear_policy(name: str) -> None:
    _client().clear_bundle_policy(name)
