"""Bundles over HTTP: the per-model policy that builds bundles when an alias moves.

The routes are made from the command classes (`ledgerflow.events.bundle_commands`,
offered as `command_registry.BUNDLES`).
Building bundles has none: conversions run next to the event log, on the Ray of the
process that has it (`ledgerflow server`'s policy runner, or the SDK on a data
directory).
"""

from __future__ import annotations

from fastapi import APIRouter

from ledgerflow.services.gateway.command_registry import BUNDLES
from ledgerflow.services.gateway.command_routes import command_router

router = APIRouter()
router.include_router(command_router(BUNDLES))
