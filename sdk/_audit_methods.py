"""Audit methods of `lf.Client`: who did what, when, through which token, with the value
before and after (docs/audit.md).

Embedded, the Client reads the audit index next to the log (everything: the local user
is its admin); against a gateway URL, `GET /api/v1/audit`, which answers with what the
caller may see. The same `AuditEntry` records either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledgerflow._client_methods import ClientMethods

if TYPE_CHECKING:
    from ledgerflow.events.audit_entities import AuditEntry
    from ledgerflow.events.entities import PagedList


class AuditMethods(ClientMethods):
    """Mixed into Client, which provides the backend."""

    def audit(
        self,
        entity: str | None = None,
        actor: str | None = None,
        since: Any = None,
        type: str | None = None,
        max_results: int = 100,
        *,
        until: Any = None,
        token: str | None = None,
        page_token: str | None = None,
    ) -> PagedList[AuditEntry]:
        """Audit entries, newest first, matching every filter given:

        - `entity`: a stream or resource (`model:digits-cnn`, `deployment:web`,
          `experiment:1` with its runs); `actor`: the user who acted; `type`: the event
          type (`deployment.*`); `*` globs in all three; `token`: an API token id;
        - `since`, `until`: epoch ms, an ISO-8601 date or time (UTC without a zone), a
          `datetime`, or a time ago (`"1h"`, `"2d"`).

        At most `max_results` (1 to 1000); `.token` of the answer is the `page_token` of
        the next page (None: no more). A change that replaces a value has it in `before`
        and `after`; metric batches come as one entry per run, identity and minute."""
        from ledgerflow.events.audit_entities import AuditQuery, instant

        query = AuditQuery(
            entity=entity, actor=actor, token=token, type=type,
            since=instant(since, field="since"), until=instant(until, field="until"),
        )  # fmt: skip
        backend = self._backend
        backend.refresh()
        return backend.audit.search(query, max_results, page_token)
