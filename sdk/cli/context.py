"""What every command shares: the tracking URI from the root option, opened on demand.

Settings, backend and client are built only when a command first needs them,
so `ledgerflow --help` and option errors never touch the data directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ledgerflow._ports import BackendPort
    from ledgerflow.client import Client
    from ledgerflow.events.settings import Settings
    from ledgerflow.services.bootstrap import Backend


AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of",
        help="Show it as it was at this point of the log: a position (a token from "
        "/api/v1/events/head) or a time (ISO-8601 such as 2026-12-01T10:00Z, UTC when no "
        "zone is given, or epoch milliseconds).",
    ),
]


@dataclass
class State:
    tracking_uri: str | None = None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            from ledgerflow.events.settings import load_settings

            self._settings = load_settings(tracking_uri=self.tracking_uri)
        return self._settings

    def backend(self, *, catch_up: bool = True) -> BackendPort:
        """The backend (embedded, or a gateway's), with the views first brought up to the
        head of the log (so a command shows events a crashed writer appended but never
        projected)."""
        from ledgerflow.session import backend_for

        settings = self.settings()
        if not settings.is_remote and settings.event_log is None and not settings.data_dir.exists():
            from ledgerflow.cli import output

            output.note(
                f"{settings.data_dir} did not exist; starting an empty data directory "
                "there (set --tracking-uri or LEDGERFLOW_TRACKING_URI to use another)"
            )
        backend = backend_for(settings)
        if catch_up:
            backend.refresh()
        return backend

    def reader(self, as_of: str | None) -> BackendPort:
        """The backend to read from: up to the head of the log, or as it was at `as_of`
        (read-only; stderr says which position that is)."""
        if as_of is None:
            return self.backend()
        from ledgerflow.cli import output
        from ledgerflow.events.as_of import AsOf

        point = AsOf.parse(as_of)
        past = self.backend(catch_up=False).as_of(point)
        position = f"log position {past.log.head().encode() or 0}"
        output.note(
            f"as of {position}"
            if point.time_ms is None
            else f"as of {point.describe()} ({position})"
        )
        return past

    def embedded(self) -> Backend:
        """The embedded backend, for commands that work on the event log itself (a
        gateway URL answers that they must run where the log is)."""
        return self.backend(catch_up=False).embedded()

    def client(self) -> Client:
        from ledgerflow.client import Client

        return Client(self.settings().tracking_uri)


def state(ctx: typer.Context) -> State:
    """The State the root callback stored; a bare one when a command runs on its own."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj
