"""Which keys of one kind of resource a reader may see, as a condition a query puts in
its WHERE clause, so a page holds `max_results` readable rows and its cursor goes on
from the last of them (filtering after paging gives short or empty pages while more
readable rows exist).

`ledgerflow.services.auth.authorize.Authorizer.readable` builds one from the reader's
grants and the default level: either every key but those a grant hides (the default
lets them read), or only the keys a grant shows (it does not). Either list is as long
as the reader's grants on that kind, not as the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement


@dataclass(frozen=True)
class Readable:
    """`all_but`: every key except `keys`; otherwise only `keys`."""

    all_but: bool
    keys: frozenset[str]

    @classmethod
    def everything(cls) -> Readable:
        return cls(True, frozenset())

    def prefixed(self, prefix: str) -> Readable:
        """The same keys, each written `prefix + key` (the audit's `kind:key`)."""
        return Readable(self.all_but, frozenset(prefix + k for k in self.keys))

    def where(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """`column` holds a readable key (one bound parameter per key: a reader with tens
        of thousands of grants on one kind would pass the drivers' limits)."""
        keys = sorted(self.keys)
        return column.not_in(keys) if self.all_but else column.in_(keys)
