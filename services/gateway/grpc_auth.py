"""Who is calling the gateway's gRPC service, and whether they may (docs/security.md).

Every method of `ledgerflow.v1.Ledgerflow` declares what its caller needs with `@rpc`:

- a `Need` read from the request message's fields (`on("run", "run_id", READ)`),
  checked before the method runs;
- or a sentence saying how the method checks for itself, with the `caller` it is handed
  (the resource is named in each ingested event, a command has its own `NEEDS`, a stream
  shows only what the caller may read).

The wrapper authenticates the call once, from its `authorization` metadata (the same
`Basic` and `Bearer` values as HTTP's header): none, or one that does not verify, ends the
call with UNAUTHENTICATED before the method runs; a missing level is PERMISSION_DENIED.
`unguarded` lists the service's methods, read from the generated descriptor, that declare
nothing; `serve` refuses to start with any, so an RPC added to the proto later cannot
ship without a check (as REST's `guard_routes`).

With auth off, the caller is the local user the `x-ledgerflow-actor` metadata names
("anonymous" without), and nothing is checked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc

from ledgerflow.events.commands import Need
from ledgerflow.events.errors import LedgerflowError, PermissionDenied, Unauthenticated
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway import denials
from ledgerflow.services.gateway.auth import ACTOR_HEADER, check, local_principal
from ledgerflow.services.gateway.grpc_errors import abort
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb

AUTH_METADATA = "authorization"
ACTOR_METADATA = ACTOR_HEADER.lower()
"""Who is acting with auth off, as REST's `X-Ledgerflow-Actor` (gRPC metadata keys are
lower case); ignored with auth on."""
SERVICE = pb.DESCRIPTOR.services_by_name["Ledgerflow"]
Q = TypeVar("Q")
R = TypeVar("R")


class Servicer(Protocol):
    backend: Backend


Sv = TypeVar("Sv", bound=Servicer)


@dataclass(frozen=True)
class Guard:
    """What an RPC's caller needs: `need`, checked on the request before the method runs,
    or (None) what `how` says the method checks itself."""

    need: Need | None
    how: str


def _metadata(context: Any, key: str) -> str | None:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            return str(v)
    return None


def authorization(context: Any) -> str | None:
    """The call's `authorization` metadata (HTTP's `Authorization` value)."""
    return _metadata(context, AUTH_METADATA)


def caller(backend: Backend, context: Any) -> Principal:
    """Who made this call: the identity its `authorization` metadata verifies as (auth
    on; Unauthenticated otherwise), or the local user (auth off)."""
    if not backend.settings.auth:
        return local_principal(_metadata(context, ACTOR_METADATA))
    return backend.authenticator.authenticate(_metadata(context, AUTH_METADATA), _client(context))


def rpc(
    need: Need | str,
) -> Callable[[Callable[[Sv, Q, Any, Principal], R]], Callable[[Sv, Q, Any], R]]:
    """Declare what a servicer method's caller needs; the method gets the caller as its
    fourth argument."""
    guard = Guard(need, need.describe()) if isinstance(need, Need) else Guard(None, need)

    def decorate(fn: Callable[[Sv, Q, Any, Principal], R]) -> Callable[[Sv, Q, Any], R]:
        path = f"/{SERVICE.full_name}/{fn.__name__}"

        @functools.wraps(fn)
        def handler(self: Sv, request: Q, context: Any) -> R:
            backend = self.backend
            try:
                who = caller(backend, context)
            except LedgerflowError as e:
                _record(backend, context, path, e, None)
                abort(context, e)
            try:
                if guard.need is not None:
                    check(backend, who, guard.need, request)
            except LedgerflowError as e:
                _record(backend, context, path, e, who)
                abort(context, e)
            if backend.settings.auth:  # a refusal the method itself makes is recorded too
                context = _Recording(context, backend, path, who)
            return fn(self, request, context, who)

        handler.__ledgerflow_rpc__ = guard  # type: ignore[attr-defined]
        return handler

    return decorate


def _client(context: Any) -> str | None:
    """The caller's address from gRPC's peer string (`ipv4:10.0.0.7:51234`, `ipv6:[::1]:…`)."""
    peer = str(context.peer() or "")
    kind, _, rest = peer.partition(":")
    if kind == "ipv6" and rest.startswith("["):
        return rest[1:].partition("]")[0]
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    return peer or None


def _record(
    backend: Backend, context: Any, path: str, error: LedgerflowError, who: Principal | None
) -> None:
    """An `auth.denied` for a refused call, as REST records one (rate limited the same)."""
    if not backend.settings.auth:
        return
    client = _client(context)
    if isinstance(error, Unauthenticated):
        denials.record_unauthenticated(
            backend, error, method="GRPC", path=path, route=path, client=client,
            authorization=_metadata(context, AUTH_METADATA),
        )  # fmt: skip
    elif isinstance(error, PermissionDenied) and who is not None:
        denials.record_forbidden(
            backend, who, error, method="GRPC", path=path, route=path, client=client
        )


class _Recording:
    """The call's context, recording a PERMISSION_DENIED the method ends the call with
    (the error is read back from what `grpc_errors.abort` sets on the context)."""

    def __init__(self, context: Any, backend: Backend, path: str, who: Principal) -> None:
        self._context, self._backend, self._path, self._who = context, backend, path, who
        self._trailing: dict[str, str] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._trailing = dict(metadata)
        self._context.set_trailing_metadata(metadata)

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        if code == grpc.StatusCode.PERMISSION_DENIED:
            t = self._trailing
            error = PermissionDenied(
                details, kind=t.get("ledgerflow-kind", ""), key=t.get("ledgerflow-key", ""),
                needs=t.get("ledgerflow-needs", ""),
            )  # fmt: skip
            _record(self._backend, self._context, self._path, error, self._who)
        self._context.abort(code, details)


def guards(servicer: object) -> dict[str, Guard | None]:
    """Each method of the service (from the generated descriptor), with its guard."""
    return {
        m.name: getattr(getattr(servicer, m.name, None), "__ledgerflow_rpc__", None)
        for m in SERVICE.methods
    }


def unguarded(servicer: object) -> Sequence[str]:
    return [name for name, guard in guards(servicer).items() if guard is None]


def guard_rpcs(servicer: object) -> None:
    missing = unguarded(servicer)
    if missing:
        raise TypeError(
            "these gRPC methods declare no permission check (@rpc with a Need, or how the "
            "method checks): " + ", ".join(missing)
        )
