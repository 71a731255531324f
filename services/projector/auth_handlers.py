"""How `user.*`, `group.*`, `token.*` and `permission.*` events change the identity views,
and how a resource's creation and end change its grants.

The creator of an experiment, registered model, deployment or webhook gets MANAGE on it
(`source = creator`), folded from the creation event's actor, so the grant is as
replayable as the resource. Deleting a model, deployment or webhook removes its grants,
and renaming a model carries them to the new name: a resource created later under the
same name starts with no one's grants but its creator's.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, delete, insert, select, update

from ledgerflow.events import auth_payloads as a
from ledgerflow.events import deployment_payloads as dp
from ledgerflow.events import model_payloads as m
from ledgerflow.events import payloads as p
from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.envelope import Event
from ledgerflow.events.payloads import Payload
from ledgerflow.events.permissions import Level, user_of
from ledgerflow.services.projector import (  # noqa: F401 - the creator's grant comes after
    deployment_handlers,
    registry_handlers,
    webhook_handlers,
)
from ledgerflow.services.projector.auth_tables import AUTH_GENERATION as GEN
from ledgerflow.services.projector.auth_tables import GROUP_MEMBERS as GM
from ledgerflow.services.projector.auth_tables import GROUPS as G
from ledgerflow.services.projector.auth_tables import PERMISSIONS as PM
from ledgerflow.services.projector.auth_tables import TOKENS as TK
from ledgerflow.services.projector.auth_tables import USERS as U
from ledgerflow.services.projector.handlers import Handler, Rejected, _data
from ledgerflow.services.projector.handlers import handles as _handles
from ledgerflow.services.projector.sql import upsert
from ledgerflow.services.projector.webhook_tables import WEBHOOKS as W

GENERATION_TYPES: set[str] = set()
"""The event types whose projection bumps the generation of the auth views."""


def handles(cls: type[Payload], *, also: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler that also bumps the generation of the auth views."""
    GENERATION_TYPES.add(cls.TYPE)

    def register(fn: Handler) -> Handler:
        def bumping(conn: Connection, ev: Event) -> None:
            fn(conn, ev)
            _bump(conn, ev)

        bumping.__name__ = fn.__name__
        _handles(cls, also=also)(bumping)
        return fn

    return register


def _bump(conn: Connection, ev: Event) -> None:
    """Tell gateways that what they cached of these views is stale (see AuthGenerationRow).
    The epoch is the id of the event that started the count: a rebuild of the views from
    the same log counts through the same states, so a replay folds equal views."""
    if conn.execute(update(GEN).where(GEN.c.id == 1).values(n=GEN.c.n + 1)).rowcount == 0:
        conn.execute(insert(GEN).values(id=1, epoch=ev.id, n=1))


def _user(conn: Connection, name: str) -> None:
    if conn.execute(select(U.c.name).where(U.c.name == name)).first() is None:
        raise Rejected(f"user {name!r} does not exist")


def _group(conn: Connection, name: str) -> None:
    if conn.execute(select(G.c.name).where(G.c.name == name)).first() is None:
        raise Rejected(f"group {name!r} does not exist")


@handles(a.UserCreated)
def user_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.UserCreated)
    if conn.execute(select(U.c.name).where(U.c.name == d.name)).first():
        raise Rejected(f"user {d.name!r} already exists")
    conn.execute(
        insert(U).values(
            name=d.name, password_hash=d.password_hash, admin=d.admin, creation_time=ev.time
        )
    )


@handles(a.UserPasswordChanged)
def user_password_changed(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.UserPasswordChanged)
    _user(conn, d.name)
    conn.execute(update(U).where(U.c.name == d.name).values(password_hash=d.password_hash))


@handles(a.UserAdminChanged)
def user_admin_changed(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.UserAdminChanged)
    _user(conn, d.name)
    conn.execute(update(U).where(U.c.name == d.name).values(admin=d.admin))


@handles(a.UserDeleted)
def user_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.UserDeleted)
    _user(conn, d.name)
    conn.execute(delete(U).where(U.c.name == d.name))
    conn.execute(update(TK).where(TK.c.user == d.name).values(revoked=True))
    conn.execute(delete(GM).where(GM.c.user == d.name))
    conn.execute(delete(PM).where(PM.c.principal == f"user:{d.name}"))


@handles(a.GroupCreated)
def group_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.GroupCreated)
    if conn.execute(select(G.c.name).where(G.c.name == d.group)).first():
        raise Rejected(f"group {d.group!r} already exists")
    conn.execute(insert(G).values(name=d.group, description=d.description, creation_time=ev.time))


@handles(a.GroupMemberAdded)
def group_member_added(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.GroupMemberAdded)
    _group(conn, d.group)
    _user(conn, d.user)
    if conn.execute(select(GM.c.user).where(GM.c.group == d.group, GM.c.user == d.user)).first():
        return
    conn.execute(insert(GM).values(group=d.group, user=d.user))


@handles(a.GroupMemberRemoved)
def group_member_removed(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.GroupMemberRemoved)
    _group(conn, d.group)
    conn.execute(delete(GM).where(GM.c.group == d.group, GM.c.user == d.user))


@handles(a.GroupDeleted)
def group_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.GroupDeleted)
    _group(conn, d.group)
    conn.execute(delete(G).where(G.c.name == d.group))
    conn.execute(delete(GM).where(GM.c.group == d.group))
    conn.execute(delete(PM).where(PM.c.principal == f"group:{d.group}"))


@handles(a.TokenCreated)
def token_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.TokenCreated)
    _user(conn, d.user)
    if conn.execute(select(TK.c.id).where(TK.c.id == d.id)).first():
        raise Rejected(f"token {d.id} already exists")
    if conn.execute(select(TK.c.id).where(TK.c.token_hash == d.token_hash)).first():
        raise Rejected(f"token {d.id} has the hash of another token")
    conn.execute(
        insert(TK).values(
            id=d.id, user=d.user, token_hash=d.token_hash, description=d.description,
            creation_time=ev.time, expires=d.expires, revoked=False,
        )
    )  # fmt: skip


@handles(a.TokenRevoked)
def token_revoked(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.TokenRevoked)
    if conn.execute(select(TK.c.id).where(TK.c.id == d.id)).first() is None:
        raise Rejected(f"token {d.id} does not exist")
    conn.execute(update(TK).where(TK.c.id == d.id).values(revoked=True))


def _grant(conn: Connection, kind: str, key: str, principal: str, level: str, source: str) -> None:
    row = {"kind": kind, "key": key, "principal": principal, "level": level, "source": source}
    upsert(conn, PM, ("kind", "key", "principal"), [row])


@handles(a.PermissionSet)
def permission_set(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.PermissionSet)
    who, _, name = d.principal.partition(":")
    (_user if who == "user" else _group)(conn, name)
    _grant(conn, d.kind, d.key, d.principal, d.level, "grant")


@handles(a.PermissionRemoved)
def permission_removed(conn: Connection, ev: Event) -> None:
    d = _data(ev, a.PermissionRemoved)
    conn.execute(
        delete(PM).where(PM.c.kind == d.kind, PM.c.key == d.key, PM.c.principal == d.principal)
    )


# the creator's MANAGE, and grants that follow their resource ---------------------------


def _creator(conn: Connection, ev: Event, kind: str, key: str) -> None:
    """MANAGE for whoever created the resource; a grant already there (set before the
    resource existed) is kept as it is."""
    principal = f"user:{user_of(ev.actor)}"
    taken = conn.execute(
        select(PM.c.level).where(PM.c.kind == kind, PM.c.key == key, PM.c.principal == principal)
    ).first()
    if taken is None:
        _grant(conn, kind, key, principal, Level.MANAGE.name, "creator")


def _forget(conn: Connection, kind: str, key: str) -> None:
    conn.execute(delete(PM).where(PM.c.kind == kind, PM.c.key == key))


@handles(p.ExperimentCreated, also=True)
def experiment_creator(conn: Connection, ev: Event) -> None:
    _creator(conn, ev, "experiment", _data(ev, p.ExperimentCreated).experiment_id)


@handles(m.RegisteredModelCreated, also=True)
def model_creator(conn: Connection, ev: Event) -> None:
    _creator(conn, ev, "model", _data(ev, m.RegisteredModelCreated).name)


@handles(m.RegisteredModelRenamed, also=True)
def model_grants_renamed(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.RegisteredModelRenamed)
    conn.execute(update(PM).where(PM.c.kind == "model", PM.c.key == d.name).values(key=d.new_name))


@handles(m.RegisteredModelDeleted, also=True)
def model_grants_deleted(conn: Connection, ev: Event) -> None:
    _forget(conn, "model", _data(ev, m.RegisteredModelDeleted).name)


@handles(dp.DeploymentCreated, also=True)
def deployment_creator(conn: Connection, ev: Event) -> None:
    _creator(conn, ev, "deployment", _data(ev, dp.DeploymentCreated).name)


@handles(dp.DeploymentDeleted, also=True)
def deployment_grants_deleted(conn: Connection, ev: Event) -> None:
    _forget(conn, "deployment", _data(ev, dp.DeploymentDeleted).name)


@handles(w.WebhookCreated, also=True)
def webhook_creator(conn: Connection, ev: Event) -> None:
    _creator(conn, ev, "webhook", _data(ev, w.WebhookCreated).name)


@handles(w.WebhookDeleted, also=True)
def webhook_grants_deleted(conn: Connection, ev: Event) -> None:
    """The event names the webhook by id, and its row is gone by now: forget the grants of
    webhook names no webhook has any more."""
    conn.execute(delete(PM).where(PM.c.kind == "webhook", PM.c.key.not_in(select(W.c.name))))
