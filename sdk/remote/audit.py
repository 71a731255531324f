"""The audit trail over the gateway (`GET /api/v1/audit`), offering what the embedded
`AuditQueries` offers; the gateway answers with what the caller may see."""

from __future__ import annotations

from typing import Any

from ledgerflow.events.audit_entities import AuditEntry, AuditPage, AuditQuery
from ledgerflow.events.entities import PagedList
from ledgerflow.remote.channel import Channel


class RemoteAudit:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    def search(
        self,
        query: AuditQuery | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> PagedList[AuditEntry]:
        params: dict[str, Any] = {
            **(query or AuditQuery()).params(), "max_results": max_results,
            "page_token": page_token,
        }  # fmt: skip
        page = AuditPage.model_validate(self._ch.call("GET", "/audit", params=params))
        return PagedList([e.entity() for e in page.entries], page.next_page_token)
