"""Bundle methods of `lf.Client`: convert registered model versions into deployable
bundles (ONNX, TorchScript, SavedModel), each checked for parity, fetch them, and set
the per-model policy that builds them when an alias moves.

Each write builds its typed command (`ledgerflow.events.bundle_commands`) and executes
it. Conversions run next to the event log; against a gateway URL they and the reads
answer an InvalidInput that says so, while the policy goes through the gateway's route.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        from ledgerflow.events import bundle_commands as bc

        command = bc.BuildBundles(model_uri=model_uri, targets=_listed(targets), wait=wait)
        return self._bundles().execute(command, actor=self._actor)

    def set_bundle_policy(
        self, name: str, on_alias: Sequence[str], targets: Sequence[str] | None = None
    ) -> dict[str, str]:
        """Build bundles of the registered model `name` whenever one of `on_alias` is set on
        a version (`targets`: all its flavor supports when None). Replaces the model's
        policy; answers the model tags that store it (`ledgerflow.bundle.on_alias`,
        `ledgerflow.bundle.targets`). The policy runner (`ledgerflow bundle policy run`,
        or `ledgerflow server`) acts on it. Works the same against a gateway URL."""
        from ledgerflow.events import bundle_commands as bc

        command = bc.SetBundlePolicy(
            name=name, on_alias=_listed(on_alias), targets=_listed(targets)
        )
        return self._backend.bundles.execute(command, actor=self._actor)

    def clear_bundle_policy(self, name: str) -> None:
        """Stop building bundles of `name` when aliases move (nothing to do without one)."""
        from ledgerflow.events import bundle_commands as bc

        self._backend.bundles.execute(bc.ClearBundlePolicy(name=name), actor=self._actor)

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


def _listed(values: Any) -> Any:
    """Any iterable as a list (a tuple, say); one string (`"onnx,savedmodel"`) and anything
    else as it is, for the command to take or to refuse naming the field."""
    if isinstance(values, Iterable) and not isinstance(values, (str, bytes, dict)):
        return list(values)
    return values
