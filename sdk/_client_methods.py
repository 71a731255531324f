"""The base of `lf.Client`'s method mixins (registry, deployments, webhooks, bundles):
what each of them uses of the Client, which provides it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledgerflow._ports import BackendPort


class ClientMethods:
    """Mixed into Client, which provides the backend and the actor."""

    @property
    def _backend(self) -> BackendPort:
        raise NotImplementedError

    @property
    def _actor(self) -> str:
        raise NotImplementedError
