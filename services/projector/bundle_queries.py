"""Reads of the bundles view."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, and_, select

from ledgerflow.events.bundle_entities import Bundle
from ledgerflow.events.errors import NotFound
from ledgerflow.services.projector.bundle_tables import BUNDLES as B


def _bundle(row: Any) -> Bundle:
    return Bundle(
        id=row.id, name=row.name, version=row.version, target=row.target, status=row.status,
        source=row.source, trigger=row.trigger, creation_timestamp=row.creation_time,
        last_updated_timestamp=row.last_updated_time, artifact_uri=row.artifact_uri,
        runtime=row.runtime, size_bytes=row.size_bytes, max_abs_diff=row.max_abs_diff,
        reason=row.reason, manifest=json.loads(row.manifest) if row.manifest else {},
    )  # fmt: skip


class BundleQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get_bundle(self, bundle_id: str) -> Bundle:
        with self.engine.connect() as conn:
            row = conn.execute(select(B).where(B.c.id == bundle_id)).first()
        if row is None:
            raise NotFound(f"no bundle with id {bundle_id!r}", kind="bundle", key=bundle_id)
        return _bundle(row)

    def list_bundles(
        self, name: str, version: int | None = None, statuses: tuple[str, ...] = ("built",)
    ) -> list[Bundle]:
        """The bundles of a model (or of one version), oldest first, in the given states."""
        where = [B.c.name == name, B.c.status.in_(statuses)]
        if version is not None:
            where.append(B.c.version == version)
        query = select(B).where(and_(*where)).order_by(B.c.version, B.c.creation_time, B.c.id)
        with self.engine.connect() as conn:
            return [_bundle(r) for r in conn.execute(query)]
