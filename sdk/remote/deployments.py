"""Deployments over the gateway (`/api/v1/deployments`), offering what the embedded
`DeploymentService` offers, so the Client manages them alike in both modes: commands
travel as their typed models (`RemoteCommands.execute`), reads as GETs.

The gateway decides with the same functions as embedded mode, so a mistake is
refused with the same message and field; answers are the folded state, read back
into the same `Deployment`.
"""

from __future__ import annotations

import builtins
from typing import Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.remote.channel import seg
from ledgerflow.remote.commands import RemoteCommands
from ledgerflow.services.deployments.state import Deployment, DeploymentChange

ROOT = "/deployments"


class RemoteDeployments(RemoteCommands):
    """Deployment commands (`execute`) and reads over the gateway."""

    def _path(self, name: str, *rest: str) -> str:
        return "/".join([ROOT, seg(name), *(seg(r) for r in rest)])

    def _state(self, doc: Any) -> Deployment:
        return Deployment.from_dict(doc)

    def get(self, name: str) -> Deployment:
        return self._state(self._ch.call("GET", self._path(name)))

    def list(self) -> builtins.list[Deployment]:
        return [self._state(doc) for doc in self._ch.call("GET", ROOT)]

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentChange]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive number, got {limit!r}", field="limit")
        docs = self._ch.call("GET", self._path(name, "history"), params={"limit": limit})
        return [DeploymentChange(**doc) for doc in docs]

    def analysis(
        self,
        name: str,
        *,
        metric: str | None = None,
        alpha: float = 0.05,
        power: float = 0.8,
        mde: float | None = None,
        since_ms: int | None = None,
    ) -> dict[str, Any]:
        params = {"metric": metric, "alpha": alpha, "power": power, "mde": mde, "since": since_ms}
        doc = self._ch.call(
            "GET",
            self._path(name, "analysis"),
            params={k: v for k, v in params.items() if v is not None},
        )
        return dict(doc)
