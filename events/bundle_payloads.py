"""Typed payloads for deployable bundles. Stream: `bundle:<id>`.

One bundle is one deployable form (`onnx`, `torchscript`, `savedmodel`) of one
model version. Each has its own stream because its life (requested, then built
or failed) is independent of the model's: conversions of several targets run
in parallel and finish in any order, and none of them should contend with
registry writes on `model:<name>`. Every payload names the model and version,
so the registry views can list bundles per version.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ledgerflow.events.payloads import Payload

Target = Literal["onnx", "torchscript", "savedmodel"]
TARGETS: tuple[str, ...] = ("onnx", "torchscript", "savedmodel")


class _BundlePayload(Payload):
    id: str = Field(min_length=1)

    def stream(self) -> str:
        return f"bundle:{self.id}"


class BundleRequested(_BundlePayload):
    TYPE = "bundle.requested"
    name: str = Field(min_length=1)
    version: int = Field(ge=1)
    target: Target
    source: str = Field(min_length=1)
    """Where the model's files were when the build was asked for."""
    trigger: str = "manual"
    """Why: `manual`, or `alias:<alias>` when a bundle policy asked for it."""


class BundleBuilt(_BundlePayload):
    TYPE = "bundle.built"
    artifact_uri: str = Field(min_length=1)
    """Where the bundle's files are (manifest.json at its root)."""
    runtime: str
    size_bytes: int = Field(ge=0)
    max_abs_diff: float
    manifest: dict[str, Any]
    """The manifest summary: inputs, outputs, files with sizes and sha256, parity."""


class BundleFailed(_BundlePayload):
    TYPE = "bundle.failed"
    reason: str = Field(min_length=1)


BUNDLE_PAYLOADS: tuple[type[Payload], ...] = (BundleRequested, BundleBuilt, BundleFailed)
