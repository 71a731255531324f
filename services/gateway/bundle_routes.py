"""Bundles over HTTP: the per-model policy that builds bundles when an alias moves, and
the bundles of a model version with their parity results (what the web UI shows).

The policy's routes are made from the command classes (`ledgerflow.events.bundle_commands`,
offered as `command_registry.BUNDLES`).
Building bundles has none: conversions run next to the event log, on the Ray of the
process that has it (`ledgerflow server`'s policy runner, or the SDK on a data
directory).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from ledgerflow.events.bundle_entities import Bundle
from ledgerflow.events.commands import on
from ledgerflow.events.limits import VERSION_PATTERN
from ledgerflow.events.permissions import Level
from ledgerflow.events.wire import RecordOut, from_record
from ledgerflow.services.gateway.auth import Requires
from ledgerflow.services.gateway.command_registry import BUNDLES
from ledgerflow.services.gateway.command_routes import command_router
from ledgerflow.services.gateway.deps import FreshDep
from ledgerflow.services.registry.decide import check_version


@from_record(Bundle)
class BundleOut(RecordOut[Bundle]):
    """A bundle as the bundles view holds it; `manifest.parity` is its parity check."""


reads = APIRouter(tags=["bundles"])


@reads.get(
    "/registered-models/{name}/versions/{version}/bundles",
    summary="The bundles of a model version, with their parity results",
    dependencies=[Depends(Requires(on("model", "name", Level.READ)))],
)
def list_version_bundles(
    name: str,
    version: Annotated[str, Path(json_schema_extra={"pattern": VERSION_PATTERN})],
    backend: FreshDep,
    include_failed: Annotated[
        bool, Query(description="also failed and still requested bundles")
    ] = False,
) -> list[BundleOut]:
    found = backend.bundles.list_bundles(
        name, check_version(version), include_failed=include_failed
    )
    return [BundleOut.model_validate(b) for b in found]


router = APIRouter()
router.include_router(command_router(BUNDLES))
router.include_router(reads)
