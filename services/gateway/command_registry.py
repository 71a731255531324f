"""The commands the gateway offers, each domain's with the service that executes it.

The REST routes (`command_routes`, one per command class with `HTTP` metadata) and the
gRPC `Execute` method (`grpc_server`, by class name) are both made from `DOMAINS`, so a
command added to a domain's tuple is offered both ways with no more code. Commands
whose `HTTP` is None (the services' own loop commands, bundle builds, jobs) are not
offered: they run next to the event log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ledgerflow.events.auth_commands import AUTH_COMMANDS
from ledgerflow.events.bundle_commands import BUNDLE_COMMANDS
from ledgerflow.events.commands import Command
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.model_commands import MODEL_COMMANDS
from ledgerflow.events.tracking_commands import EXPERIMENT_COMMANDS, RUN_COMMANDS
from ledgerflow.events.webhook_commands import WEBHOOK_COMMANDS
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.deployments.commands import DEPLOYMENT_COMMANDS


class Executor(Protocol):
    def execute(self, command: Any, *, actor: str) -> Any: ...


class UnknownCommand(InvalidInput):
    """A command name the gateway does not offer."""

    code = "UNKNOWN_COMMAND"


@dataclass(frozen=True)
class Domain:
    """One service's commands, the service that executes them, and their OpenAPI tag."""

    commands: tuple[type[Command[Any]], ...]
    service: Callable[[Backend], Executor]
    tag: str

    def offered(self) -> tuple[type[Command[Any]], ...]:
        return tuple(c for c in self.commands if c.HTTP is not None)


def _tracking(backend: Backend) -> Executor:
    return backend.tracking


def _registry(backend: Backend) -> Executor:
    return backend.registry


def _bundles(backend: Backend) -> Executor:
    return backend.bundles


def _webhooks(backend: Backend) -> Executor:
    return backend.webhooks


def _deployments(backend: Backend) -> Executor:
    return backend.deployments


def _auth(backend: Backend) -> Executor:
    return backend.auth


EXPERIMENTS = Domain(EXPERIMENT_COMMANDS, _tracking, "experiments")
RUNS = Domain(RUN_COMMANDS, _tracking, "runs")
REGISTRY = Domain(MODEL_COMMANDS, _registry, "registry")
BUNDLES = Domain(BUNDLE_COMMANDS, _bundles, "bundles")
WEBHOOKS = Domain(WEBHOOK_COMMANDS, _webhooks, "webhooks")
DEPLOYMENTS = Domain(DEPLOYMENT_COMMANDS, _deployments, "deployments")
AUTH = Domain(AUTH_COMMANDS, _auth, "auth")
DOMAINS: tuple[Domain, ...] = (
    EXPERIMENTS, RUNS, REGISTRY, BUNDLES, WEBHOOKS, DEPLOYMENTS, AUTH,
)  # fmt: skip


def _by_name(domains: tuple[Domain, ...]) -> dict[str, tuple[type[Command[Any]], Domain]]:
    found: dict[str, tuple[type[Command[Any]], Domain]] = {}
    for domain in domains:
        for command in domain.commands:
            if command.__name__ in found:
                raise TypeError(f"two commands are named {command.__name__}")
            found[command.__name__] = (command, domain)
    return found


_BY_NAME: Mapping[str, tuple[type[Command[Any]], Domain]] = _by_name(DOMAINS)


def offered(name: str) -> tuple[type[Command[Any]], Domain]:
    """The command class the gateway offers as `name` (`CreateWebhook`), and its domain."""
    found = _BY_NAME.get(name)
    if found is None:
        names = ", ".join(sorted(n for n, (c, _) in _BY_NAME.items() if c.HTTP is not None))
        raise UnknownCommand(
            f"unknown command {name!r}; the gateway offers: {names}", field="command"
        )
    if found[0].HTTP is None:
        raise UnknownCommand(
            f"{name} is not offered by the gateway: it runs next to the event log",
            field="command",
        )
    return found
