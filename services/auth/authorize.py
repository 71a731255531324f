"""Authorization: the level a principal holds on a resource, and the checks made with it.

The level on one resource is, in order:

1. MANAGE for an admin;
2. the grant naming the user, if there is one (it may lower the default, down to
   NO_PERMISSIONS);
3. otherwise the highest grant naming one of the user's groups;
4. otherwise the default level (`LEDGERFLOW_AUTH_DEFAULT`, READ unless set).

A run's level is its experiment's. Grants are read once per principal and kept until
the auth views change (their generation), so checking every event of a large ingest
batch costs dictionary lookups; a run's experiment never changes, so it is kept in a
bounded map.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from ledgerflow.events.errors import PermissionDenied
from ledgerflow.events.permissions import Level
from ledgerflow.services.auth.principal import Principal
from ledgerflow.services.auth.queries import AuthQueries
from ledgerflow.services.projector.readable import Readable

Grants = dict[tuple[str, str], list[tuple[str, str]]]
_RUNS_KEPT = 100_000


class Authorizer:
    def __init__(
        self,
        queries: AuthQueries,
        default: Level,
        experiment_of_run: Callable[[str], str | None],
    ) -> None:
        self.queries = queries
        self.default = default
        self._experiment_of_run = experiment_of_run
        self._lock = threading.Lock()
        self._generation: tuple[str, int] | None = None
        self._grants: dict[tuple[str, ...], Grants] = {}
        self._runs: OrderedDict[str, str] = OrderedDict()

    # levels ----------------------------------------------------------------------------

    def _grants_of(self, principal: Principal) -> Grants:
        generation = self.queries.generation()
        with self._lock:
            if generation != self._generation:
                self._generation, self._grants = generation, {}
            hit = self._grants.get(principal.names)
        if hit is None:
            hit = self.queries.grants_of(list(principal.names))
            with self._lock:
                if generation == self._generation:
                    self._grants[principal.names] = hit
        return hit

    def level(self, principal: Principal, kind: str, key: str) -> Level:
        if principal.admin:
            return Level.MANAGE
        if kind == "run":
            experiment = self.experiment_of(key)
            if experiment is None:
                return self.default
            kind, key = "experiment", experiment
        found = self._grants_of(principal).get((kind, key))
        return self._granted(principal, found) if found else self.default

    @staticmethod
    def _granted(principal: Principal, found: list[tuple[str, str]]) -> Level:
        """The level the grants on one resource give: the user's own, else the highest
        of their groups'."""
        user = f"user:{principal.user}"
        for who, level in found:
            if who == user:
                return Level[level]
        return max(Level[level] for _, level in found)

    def readable(self, principal: Principal, kind: str, level: Level = Level.READ) -> Readable:
        """The keys of `kind` on which `principal` holds `level`, for a query's WHERE
        clause: every key but those a grant lowers below it (when the default level
        reaches it), or only those a grant raises to it (when it does not)."""
        if principal.admin:
            return Readable.everything()
        granted = {
            key: self._granted(principal, found)
            for (k, key), found in self._grants_of(principal).items()
            if k == kind
        }
        if self.default >= level:
            return Readable(True, frozenset(k for k, got in granted.items() if got < level))
        return Readable(False, frozenset(k for k, got in granted.items() if got >= level))

    def experiment_of(self, run_id: str) -> str | None:
        with self._lock:
            hit = self._runs.get(run_id)
        if hit is not None:
            return hit
        experiment = self._experiment_of_run(run_id)
        if experiment is not None:
            with self._lock:
                self._runs[run_id] = experiment
                if len(self._runs) > _RUNS_KEPT:
                    self._runs.popitem(last=False)
        return experiment

    def may(self, principal: Principal, kind: str, key: str, level: Level) -> bool:
        return self.level(principal, kind, key) >= level

    # checks ----------------------------------------------------------------------------

    def require(self, principal: Principal, kind: str, key: str, level: Level) -> None:
        """A refusal is decided on the views as they are now: a grant made through another
        gateway a moment ago is not refused on a cached generation."""
        if not self.may(principal, kind, key, level):
            self.queries.invalidate()
            if self.may(principal, kind, key, level):
                return
            raise PermissionDenied(
                f"{principal.user} needs {level.name} on {kind} {key!r} for this",
                kind=kind,
                key=key,
                needs=level.name,
            )

    def require_admin(self, principal: Principal, what: str = "this") -> None:
        if not principal.admin:
            raise PermissionDenied(
                f"only an admin may do {what}; {principal.user} is not one", needs="ADMIN"
            )

    def require_self_or_admin(self, principal: Principal, user: str, what: str) -> None:
        if not principal.admin and principal.user != user:
            raise PermissionDenied(
                f"{principal.user} may {what} only for themselves; an admin may for anyone",
                kind="user",
                key=user,
                needs="ADMIN",
            )
