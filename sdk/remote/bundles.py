"""Bundles over the gateway: the policy commands travel as their typed models
(`RemoteCommands.execute`); what needs the event log itself (building, and the bundle
reads that serve the builds) answers an InvalidInput saying where to run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

from ledgerflow.events.bundle_entities import Bundle
from ledgerflow.events.commands import Command, R
from ledgerflow.events.errors import InvalidInput
from ledgerflow.remote.channel import Channel
from ledgerflow.remote.commands import RemoteCommands


class RemoteBundles(RemoteCommands):
    """`execute` for the commands the gateway offers (the bundle policy); builds and
    reads refused with the reason."""

    def __init__(self, channel: Channel, tracking_uri: str) -> None:
        super().__init__(channel)
        self._uri = tracking_uri

    def _needs_the_log(self) -> NoReturn:
        raise InvalidInput(
            f"{self._uri}: bundles are built next to the event log; use a data directory "
            "or LEDGERFLOW_EVENT_LOG with LEDGERFLOW_VIEWS_DB (not a gateway URL)",
            field="tracking_uri",
        )

    def execute(self, command: Command[R], *, actor: str) -> R:
        if type(command).HTTP is None:
            self._needs_the_log()
        return super().execute(command, actor=actor)

    def list_bundles(
        self, name: str, version: int | str | None = None, *, include_failed: bool = False
    ) -> list[Bundle]:
        self._needs_the_log()

    def get_bundle(self, bundle_id: str) -> Bundle:
        self._needs_the_log()

    def download(self, bundle_id: str, dst: Path) -> Path:
        self._needs_the_log()
