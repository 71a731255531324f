"""The read side of identities and permissions: the auth views as records, and the rows
authentication and authorization look up (a token by its hash, a user's grants)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, select

from ledgerflow.events.auth_commands import Group, Permission, Token, User
from ledgerflow.services.projector.auth_tables import AUTH_GENERATION as GEN
from ledgerflow.services.projector.auth_tables import GROUP_MEMBERS as GM
from ledgerflow.services.projector.auth_tables import GROUPS as G
from ledgerflow.services.projector.auth_tables import PERMISSIONS as PM
from ledgerflow.services.projector.auth_tables import TOKENS as TK
from ledgerflow.services.projector.auth_tables import USERS as U

_GENERATION = select(GEN.c.epoch, GEN.c.n).where(GEN.c.id == 1)


@dataclass(frozen=True)
class Credentials:
    """What signing in as a user checks against."""

    name: str
    password_hash: str | None
    admin: bool
    groups: tuple[str, ...]


@dataclass(frozen=True)
class StoredToken:
    id: str
    user: str
    expires: int | None
    revoked: bool


class AuthQueries:
    def __init__(
        self,
        engine: Engine,
        *,
        generation_ttl_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`generation_ttl_s` > 0: the generation read is reused for that long (a gateway:
        one read every 50 ms instead of two a request; a model server's inference path: one
        a second), so a change to the auth views made elsewhere reaches its caches that
        much later; `invalidate()` (called when this process commits such a change) makes
        the next call read it. 0: every call reads it."""
        self.engine = engine
        self._ttl = generation_ttl_s
        self._clock = clock
        self._seen: tuple[float, tuple[str, int]] | None = None

    def generation(self) -> tuple[str, int]:
        """Changes whenever any auth view changes (see AuthGenerationRow)."""
        now = self._clock()
        seen = self._seen
        if seen is not None and now - seen[0] < self._ttl:
            return seen[1]
        with self.engine.connect() as conn:
            row = conn.execute(_GENERATION).first()
        found = ("", 0) if row is None else (row.epoch, row.n)
        if self._ttl > 0:
            self._seen = (now, found)
        return found

    def invalidate(self) -> None:
        """The next `generation()` reads the views (they changed: this process said so)."""
        self._seen = None

    # users and groups ---------------------------------------------------------------

    def _memberships(self, users: list[str] | None = None) -> dict[str, list[str]]:
        stmt = select(GM.c.user, GM.c.group).order_by(GM.c.group)
        if users is not None:
            stmt = stmt.where(GM.c.user.in_(users))
        out: dict[str, list[str]] = defaultdict(list)
        with self.engine.connect() as conn:
            for row in conn.execute(stmt):
                out[row.user].append(row.group)
        return out

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(U).order_by(U.c.name)).all()
        groups = self._memberships()
        return [
            User(
                name=r.name, admin=r.admin, has_password=r.password_hash is not None,
                groups=groups.get(r.name, []), creation_time=r.creation_time,
            )
            for r in rows
        ]  # fmt: skip

    def user(self, name: str) -> User | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(U).where(U.c.name == name)).first()
        if r is None:
            return None
        return User(
            name=r.name, admin=r.admin, has_password=r.password_hash is not None,
            groups=self._memberships([name]).get(name, []), creation_time=r.creation_time,
        )  # fmt: skip

    def credentials(self, name: str) -> Credentials | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(U).where(U.c.name == name)).first()
        if r is None:
            return None
        groups = tuple(self._memberships([name]).get(name, []))
        return Credentials(r.name, r.password_hash, r.admin, groups)

    def any_admin(self) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(U.c.name).where(U.c.admin.is_(True)).limit(1)).first()
                is not None
            )

    def groups(self) -> list[Group]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(G).order_by(G.c.name)).all()
            members: dict[str, list[str]] = defaultdict(list)
            for m in conn.execute(select(GM).order_by(GM.c.user)):
                members[m.group].append(m.user)
        return [
            Group(name=r.name, description=r.description, members=members.get(r.name, []),
                  creation_time=r.creation_time)
            for r in rows
        ]  # fmt: skip

    def group(self, name: str) -> Group | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(G).where(G.c.name == name)).first()
            if r is None:
                return None
            members = conn.execute(
                select(GM.c.user).where(GM.c.group == name).order_by(GM.c.user)
            ).scalars().all()  # fmt: skip
        return Group(
            name=r.name, description=r.description, members=list(members),
            creation_time=r.creation_time,
        )  # fmt: skip

    # tokens --------------------------------------------------------------------------

    def tokens(self, user: str | None = None) -> list[Token]:
        stmt = select(TK).order_by(TK.c.creation_time, TK.c.id)
        if user is not None:
            stmt = stmt.where(TK.c.user == user)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            Token(id=r.id, user=r.user, description=r.description,
                  creation_time=r.creation_time, expires=r.expires, revoked=r.revoked)
            for r in rows
        ]  # fmt: skip

    def token(self, token_id: str) -> Token | None:
        with self.engine.connect() as conn:
            r = conn.execute(select(TK).where(TK.c.id == token_id)).first()
        if r is None:
            return None
        return Token(
            id=r.id, user=r.user, description=r.description, creation_time=r.creation_time,
            expires=r.expires, revoked=r.revoked,
        )  # fmt: skip

    def token_by_hash(self, token_hash: str) -> StoredToken | None:
        with self.engine.connect() as conn:
            r = conn.execute(
                select(TK.c.id, TK.c.user, TK.c.expires, TK.c.revoked).where(
                    TK.c.token_hash == token_hash
                )
            ).first()
        return None if r is None else StoredToken(r.id, r.user, r.expires, r.revoked)

    # permissions ---------------------------------------------------------------------

    def permissions(
        self, kind: str | None = None, key: str | None = None, principal: str | None = None
    ) -> list[Permission]:
        stmt = select(PM).order_by(PM.c.kind, PM.c.key, PM.c.principal)
        if kind is not None:
            stmt = stmt.where(PM.c.kind == kind)
        if key is not None:
            stmt = stmt.where(PM.c.key == key)
        if principal is not None:
            stmt = stmt.where(PM.c.principal == principal)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            Permission(kind=r.kind, key=r.key, principal=r.principal, level=r.level,
                       source=r.source)
            for r in rows
        ]  # fmt: skip

    def permission(self, kind: str, key: str, principal: str) -> Permission | None:
        found = self.permissions(kind, key, principal)
        return found[0] if found else None

    def grants_of(self, principals: list[str]) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """Every grant naming one of `principals`, by (kind, key): [(principal, level)]."""
        out: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(PM.c.kind, PM.c.key, PM.c.principal, PM.c.level).where(
                    PM.c.principal.in_(principals)
                )
            )
            for r in rows:
                out[(r.kind, r.key)].append((r.principal, r.level))
        return out
