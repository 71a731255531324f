"""Bundle methods of `lf.Client`: convert registered model versions into deployable
bundles (ONNX, TorchScript, SavedModel), each checked for parity, and fetch them.

Conversions run next to the event log; against a gateway URL these methods answer an
InvalidInput that says so.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ledgerflow._client_methods import ClientMethods

if TYPE_CHECKING:
    from ledgerflow._ports import BundlesPort
    from ledgerflow.events.bundle_entities import Bundle


class BundleMethods(ClientMethods):
    """Mixed into Client, which provides the backend and the actor."""

    def _bundles(self) -> BundlesPort:
        """The bundle service next to the log: conversions run where the log is (on the
        Ray that LEDGERFLOW_RAY_ADDRESS names); a gateway URL answers that they need it."""
        backend = self._backend
        service = backend.bundles
        backend.refresh()
        return service

    def build_bundles(
        self, model_uri: str, targets: Sequence[str] | None = None, *, wait: bool = True
    ) -> list[Bundle]:
        """Convert the model version `model_uri` names (`models:/name/1`, `models:/name@prod`)
        into deployable bundles, one per target (`onnx`, `torchscript`, `savedmodel`; all
        its flavor supports when None), each checked for parity with the original."""
        return self._bundles().build(model_uri, targets, wait=wait, actor=self._actor)

    def list_bundles(
        self, name: str, version: int | str | None = None, *, include_failed: bool = False
    ) -> list[Bundle]:
        """The built bundles of a model or of one of its versions (failed ones too if asked)."""
        return self._bundles().list_bundles(name, version, include_failed=include_failed)

    def get_bundle(self, bundle_id: str) -> Bundle:
        return self._bundles().get_bundle(bundle_id)

    def download_bundle(self, bundle_id: str, dst_path: str | None = None) -> str:
        """Copy a built bundle's files into `dst_path` (a new temporary folder if None)."""
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="ledgerflow-bundle-"))
        return str(self._bundles().download(bundle_id, dst))
