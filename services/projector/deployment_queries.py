"""Reads of the deployment views: the folded aggregate, the list, and its history."""

from __future__ import annotations

import builtins
import json

from sqlalchemy import Engine, select

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.deployments.state import Deployment, DeploymentChange
from ledgerflow.services.projector.deployment_tables import DEPLOYMENT_HISTORY as H
from ledgerflow.services.projector.deployment_tables import DEPLOYMENTS as D
from ledgerflow.services.projector.readable import Readable


class DeploymentQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, name: str) -> Deployment | None:
        """The deployment's folded state, deleted ones included (None if never created)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(D.c.state).where(D.c.name == name)).first()
        return None if row is None else Deployment.from_dict(json.loads(row.state))

    def get(self, name: str) -> Deployment:
        found = self.find(name)
        if found is None or found.status == "deleted":
            raise NotFound(f"no deployment named {name!r}", kind="deployment", key=name)
        return found

    def list(
        self, *, include_deleted: bool = False, readable: Readable | None = None
    ) -> list[Deployment]:
        query = select(D.c.state).order_by(D.c.name)
        if not include_deleted:
            query = query.where(D.c.status != "deleted")
        if readable is not None:
            query = query.where(readable.where(D.c.name))
        with self.engine.connect() as conn:
            return [Deployment.from_dict(json.loads(r.state)) for r in conn.execute(query)]

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentChange]:
        """The latest `limit` events of the deployment, oldest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive number, got {limit!r}", field="limit")
        self.get(name)
        query = select(H).where(H.c.deployment == name).order_by(H.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = list(conn.execute(query))
        return [
            DeploymentChange(r.seq, r.time, r.type, r.actor, json.loads(r.summary))
            for r in reversed(rows)
        ]

    def version_of(self, name: str) -> int | None:
        """How many events of the deployment are folded (None if it never existed): a
        cheap poll for replicas that cache the routing state."""
        with self.engine.connect() as conn:
            row = conn.execute(select(D.c.version).where(D.c.name == name)).first()
        return None if row is None else int(row.version)
