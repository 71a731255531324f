"""`GET /api/v1/audit`: the audit trail (docs/audit.md), filtered, newest first, in pages.

Any identity may ask; the answer holds what the caller may see: everything for an admin;
for anyone else the entries on resources they may READ, the grant changes on resources
they MANAGE, and their own refused requests.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.as_of import TIME_PATTERN
from ledgerflow.events.audit_entities import (
    MAX_RESULTS,
    AuditEntryOut,
    AuditPage,
    AuditQuery,
    instant,
)
from ledgerflow.services.auth.visibility import audit_reader
from ledgerflow.services.gateway.auth import checked
from ledgerflow.services.gateway.deps import FreshDep, PrincipalDep

router = APIRouter(tags=["audit"])

_AT = {"pattern": TIME_PATTERN}
_TIME = "epoch ms, ISO-8601 (2026-12-03, 2026-12-03T14:00Z; UTC without a zone), or a time "
_TIME += "ago (30m, 1h, 2d)"


@router.get(
    "/audit",
    summary="The audit trail: who did what, when, through which token, before and after",
    dependencies=[
        checked(
            "any identity; the answer holds the entries on resources the caller may READ, "
            "grant changes on those they MANAGE, and their own refused requests (admins: all)"
        )
    ],
)
def audit(
    backend: FreshDep,
    principal: PrincipalDep,
    entity: Annotated[
        str | None,
        Query(description="a stream or resource, e.g. model:digits-cnn or experiment:1; * globs"),
    ] = None,
    actor: Annotated[str | None, Query(description="the user who acted; * globs")] = None,
    token: Annotated[str | None, Query(description="the API token id it acted through")] = None,
    type: Annotated[str | None, Query(description="event type, e.g. deployment.*")] = None,
    since: Annotated[
        str | None, Query(description=f"from this time on: {_TIME}", json_schema_extra=_AT)
    ] = None,
    until: Annotated[
        str | None, Query(description=f"before this time: {_TIME}", json_schema_extra=_AT)
    ] = None,
    max_results: Annotated[int, Query(description=f"1 to {MAX_RESULTS}")] = 100,
    page_token: Annotated[str | None, Query(description="next_page_token of a page")] = None,
) -> AuditPage:
    query = AuditQuery(
        entity=entity or None, actor=actor or None, token=token or None, type=type or None,
        since=instant(since, field="since"), until=instant(until, field="until"),
    )  # fmt: skip
    reader = audit_reader(backend.authorizer, principal) if backend.settings.auth else None
    page = backend.audit.search(query, max_results, page_token, reader=reader)
    return AuditPage(
        entries=[AuditEntryOut.model_validate(e) for e in page], next_page_token=page.token
    )
