"""Every method of the gateway's gRPC service declares what its caller needs, and a
service with one that does not refuses to start (as REST's `guard_routes`)."""

from __future__ import annotations

from typing import Any

import pytest

from ledgerflow.services.gateway.grpc_auth import SERVICE, guard_rpcs, guards, unguarded
from ledgerflow.services.gateway.grpc_server import LedgerflowServicer


def test_every_method_of_the_service_declares_a_guard() -> None:
    declared = guards(LedgerflowServicer)
    assert set(declared) == {m.name for m in SERVICE.methods}
    assert unguarded(LedgerflowServicer) == []
    for name, guard in declared.items():
        assert guard is not None and guard.how, name
    assert declared["GetRun"].need is not None  # checked before the method runs
    assert declared["GetRun"].how == "READ on the run named by `run_id`"


def test_a_method_added_without_a_guard_keeps_the_service_from_starting() -> None:
    class Forgetful(LedgerflowServicer):
        def GetRun(self, request: Any, context: Any) -> Any:  # type: ignore[override]
            return None

    assert unguarded(Forgetful) == ["GetRun"]
    with pytest.raises(TypeError, match="GetRun"):
        guard_rpcs(Forgetful)

    class Missing:  # a servicer that does not implement a method at all
        pass

    assert set(unguarded(Missing)) == {m.name for m in SERVICE.methods}
