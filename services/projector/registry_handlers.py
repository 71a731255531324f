"""How `model.*` events change the registry views.

The one decision that matters most lives here: `model.version_created` gets the
next version number of its model, in stream order. Every replay of the log
assigns the same numbers, with no gaps, however many writers raced.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, delete, insert, select, update

from ledgerflow.events import model_payloads as m
from ledgerflow.events.envelope import Event
from ledgerflow.services.projector.handlers import Rejected, _data, handles
from ledgerflow.services.projector.registry_tables import (
    MODEL_ALIASES as AL,
)
from ledgerflow.services.projector.registry_tables import (
    MODEL_VERSION_TAGS as VT,
)
from ledgerflow.services.projector.registry_tables import (
    MODEL_VERSIONS as V,
)
from ledgerflow.services.projector.registry_tables import (
    REGISTERED_MODEL_TAGS as MT,
)
from ledgerflow.services.projector.registry_tables import (
    REGISTERED_MODELS as M,
)
from ledgerflow.services.projector.sql import upsert

_BY_NAME = (M, MT, V, VT, AL)


def _model(conn: Connection, name: str) -> Any:
    row = conn.execute(select(M).where(M.c.name == name)).first()
    if row is None:
        raise Rejected(f"registered model {name!r} does not exist")
    return row


def _version(conn: Connection, name: str, version: int) -> Any:
    row = conn.execute(select(V).where(and_(V.c.name == name, V.c.version == version))).first()
    if row is None:
        raise Rejected(f"model {name!r} has no version {version}")
    return row


def _touch(conn: Connection, name: str, time: int, version: int | None = None) -> None:
    conn.execute(update(M).where(M.c.name == name).values(last_updated_time=time))
    if version is not None:
        conn.execute(
            update(V)
            .where(and_(V.c.name == name, V.c.version == version))
            .values(last_updated_time=time)
        )


@handles(m.RegisteredModelCreated)
def model_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.RegisteredModelCreated)
    if conn.execute(select(M.c.name).where(M.c.name == d.name)).first():
        raise Rejected(f"registered model {d.name!r} already exists")
    conn.execute(
        insert(M).values(
            name=d.name, description=d.description, creation_time=ev.time,
            last_updated_time=ev.time, last_version=0,
        )
    )  # fmt: skip
    upsert(conn, MT, ("name", "key"), [{"name": d.name, "key": k, "value": v}
                                         for k, v in d.tags.items()])  # fmt: skip


@handles(m.RegisteredModelRenamed)
def model_renamed(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.RegisteredModelRenamed)
    _model(conn, d.name)
    if conn.execute(select(M.c.name).where(M.c.name == d.new_name)).first():
        raise Rejected(f"registered model {d.new_name!r} already exists")
    for t in _BY_NAME:
        conn.execute(update(t).where(t.c.name == d.name).values(name=d.new_name))
    _touch(conn, d.new_name, ev.time)


@handles(m.RegisteredModelDeleted)
def model_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.RegisteredModelDeleted)
    _model(conn, d.name)
    for t in _BY_NAME:
        conn.execute(delete(t).where(t.c.name == d.name))


@handles(m.RegisteredModelDescribed)
def model_described(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.RegisteredModelDescribed)
    _model(conn, d.name)
    conn.execute(update(M).where(M.c.name == d.name).values(description=d.description))
    _touch(conn, d.name, ev.time)


@handles(m.RegisteredModelTagSet)
def model_tag_set(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.RegisteredModelTagSet)
    _model(conn, d.name)
    upsert(conn, MT, ("name", "key"), [{"name": d.name, "key": d.key, "value": d.value}])


@handles(m.RegisteredModelTagDeleted)
def model_tag_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.RegisteredModelTagDeleted)
    _model(conn, d.name)
    if conn.execute(delete(MT).where(and_(MT.c.name == d.name, MT.c.key == d.key))).rowcount == 0:
        raise Rejected(f"registered model {d.name!r} has no tag {d.key!r}")


@handles(m.ModelVersionCreated)
def version_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelVersionCreated)
    model = _model(conn, d.name)
    version = model.last_version + 1
    conn.execute(
        update(M).where(M.c.name == d.name).values(last_version=version, last_updated_time=ev.time)
    )
    conn.execute(
        insert(V).values(
            name=d.name, version=version, source=d.source, run_id=d.run_id,
            description=d.description, user_id=d.user_id, run_link=d.run_link, stage="None",
            status="READY",
            creation_time=ev.time, last_updated_time=ev.time, creation_event_id=ev.id,
        )
    )  # fmt: skip
    upsert(
        conn, VT, ("name", "version", "key"),
        [{"name": d.name, "version": version, "key": k, "value": v} for k, v in d.tags.items()],
    )  # fmt: skip


@handles(m.ModelVersionDescribed)
def version_described(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelVersionDescribed)
    _version(conn, d.name, d.version)
    conn.execute(
        update(V)
        .where(and_(V.c.name == d.name, V.c.version == d.version))
        .values(description=d.description)
    )
    _touch(conn, d.name, ev.time, d.version)


@handles(m.ModelVersionTagSet)
def version_tag_set(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelVersionTagSet)
    _version(conn, d.name, d.version)
    upsert(conn, VT, ("name", "version", "key"),
           [{"name": d.name, "version": d.version, "key": d.key, "value": d.value}])  # fmt: skip


@handles(m.ModelVersionTagDeleted)
def version_tag_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelVersionTagDeleted)
    _version(conn, d.name, d.version)
    gone = conn.execute(
        delete(VT).where(and_(VT.c.name == d.name, VT.c.version == d.version, VT.c.key == d.key))
    )
    if gone.rowcount == 0:
        raise Rejected(f"model {d.name!r} version {d.version} has no tag {d.key!r}")


@handles(m.ModelVersionStageChanged)
def version_stage_changed(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelVersionStageChanged)
    _version(conn, d.name, d.version)
    if d.archive_existing_versions and d.stage in ("Staging", "Production"):
        conn.execute(
            update(V)
            .where(and_(V.c.name == d.name, V.c.stage == d.stage, V.c.version != d.version))
            .values(stage="Archived", last_updated_time=ev.time)
        )
    conn.execute(
        update(V).where(and_(V.c.name == d.name, V.c.version == d.version)).values(stage=d.stage)
    )
    _touch(conn, d.name, ev.time, d.version)


@handles(m.ModelVersionDeleted)
def version_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelVersionDeleted)
    _version(conn, d.name, d.version)
    for t in (V, VT, AL):
        conn.execute(delete(t).where(and_(t.c.name == d.name, t.c.version == d.version)))
    _touch(conn, d.name, ev.time)


@handles(m.ModelAliasSet)
def alias_set(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelAliasSet)
    _version(conn, d.name, d.version)
    upsert(conn, AL, ("name", "alias"), [{"name": d.name, "alias": d.alias, "version": d.version}])
    _touch(conn, d.name, ev.time)


@handles(m.ModelAliasDeleted)
def alias_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, m.ModelAliasDeleted)
    _model(conn, d.name)
    if (
        conn.execute(delete(AL).where(and_(AL.c.name == d.name, AL.c.alias == d.alias))).rowcount
        == 0
    ):
        raise Rejected(f"model {d.name!r} has no alias {d.alias!r}")
