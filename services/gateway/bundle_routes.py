"""Bundles over HTTP: the per-model policy that builds bundles when an alias moves.

The routes are made from the command classes (`ledgerflow.events.bundle_commands`).
Building bundles has none: conversions run next to the event log, on the Ray of the
process that has it (`ledgerflow server`'s policy runner, or the SDK on a data
directory).
"""

from __future__ import annotations

from fastapi import APIRouter

from ledgerflow.events.bundle_commands import BUNDLE_COMMANDS
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.bundles.service import BundleService
from ledgerflow.services.gateway.command_routes import command_router


def _service(backend: Backend) -> BundleService:
    return backend.bundles


router = APIRouter()
router.include_router(command_router(BUNDLE_COMMANDS, _service, tag="bundles"))
