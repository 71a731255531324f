"""The read side of the registry: models, versions, aliases, and their searches.

Registry filters are what MLflow accepts for its registry, AND-ed comparisons:
`name = 'x'`, `name LIKE 'x%'`, `run_id IN ('a', 'b')`, `version_number > 2`,
`source_path = '...'`, `tags.team = 'cv'`. Paging is by opaque cursor.
"""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, exists, func, or_, select, true, tuple_

from ledgerflow.events.entities import ModelVersion, PagedList, RegisteredModel
from ledgerflow.events.errors import InvalidInput, NotFound
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

_COND = re.compile(
    r"""\s*(?P<key>tags\.`[^`]+`|tags\.[\w.\-/: ]+?|[a-z_]+)\s*
        (?P<op>=|!=|<>|<=|>=|<|>|NOT\s+LIKE|LIKE|NOT\s+ILIKE|ILIKE|NOT\s+IN|IN)\s*
        (?P<value>'(?:[^']|'')*'|"(?:[^"]|"")*"|-?\d+|\((?:[^()'"]|'(?:[^']|'')*'|"[^"]*")*\))\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_SPLIT_AND = re.compile(r"\s+AND\s+(?=(?:[^'\"]|'[^']*'|\"[^\"]*\")*$)", re.IGNORECASE)


def _literal(text: str) -> Any:
    if text.startswith("("):
        return tuple(
            _literal(v.strip()) for v in re.findall(r"'(?:[^']|'')*'|\"[^\"]*\"|-?\d+", text)
        )
    if text[0] in "'\"":
        q = text[0]
        return text[1:-1].replace(q * 2, q)
    return int(text)


def _op(col: Any, op: str, value: Any) -> ColumnElement[bool]:
    op = re.sub(r"\s+", " ", op.upper()).replace("<>", "!=")
    table = {
        "=": lambda: col == value, "!=": lambda: col != value, "<": lambda: col < value,
        "<=": lambda: col <= value, ">": lambda: col > value, ">=": lambda: col >= value,
        "LIKE": lambda: col.like(value), "NOT LIKE": lambda: col.not_like(value),
        "ILIKE": lambda: col.ilike(value), "NOT ILIKE": lambda: col.not_ilike(value),
        "IN": lambda: col.in_(list(value)), "NOT IN": lambda: col.not_in(list(value)),
    }  # fmt: skip
    if op in ("IN", "NOT IN") and not isinstance(value, tuple):
        raise InvalidInput(f"{op} needs a parenthesized list, got {value!r}", field="filter")
    return table[op]()  # type: ignore[no-any-return]


def compile_registry_filter(
    text: str | None, columns: dict[str, Any], tags: Any, owner: Sequence[Any]
) -> ColumnElement[bool]:
    """AND-ed comparisons on `columns` (attribute name -> column) and `tags.<key>`."""
    if not text or not text.strip():
        return true()
    parts: list[ColumnElement[bool]] = []
    for chunk in _SPLIT_AND.split(text.strip()):
        m = _COND.fullmatch(chunk)
        if m is None:
            raise InvalidInput(
                f"cannot read {chunk.strip()!r} in filter {text!r}; write comparisons like "
                f"name = 'x' or tags.k LIKE 'v%' joined by AND (keys: {', '.join(columns)}, "
                "tags.<key>)",
                field="filter",
            )
        key, op, value = m.group("key"), m.group("op"), _literal(m.group("value"))
        if key.lower().startswith("tags."):
            tag = key[5:].strip("`")
            match = [
                t == o
                for t, o in zip((tags.c.name, *_tag_owner_columns(tags)), owner, strict=False)
            ]
            parts.append(exists().where(*match, tags.c.key == tag, _op(tags.c.value, op, value)))
            continue
        col = columns.get(key.lower())
        if col is None:
            raise InvalidInput(
                f"unknown key {key!r} in filter; use one of {', '.join(columns)} or tags.<key>",
                field="filter",
            )
        parts.append(_op(col, op, value))
    return and_(*parts)


def _tag_owner_columns(tags: Any) -> tuple[Any, ...]:
    return (tags.c.version,) if "version" in tags.c else ()


def _token(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError:
        raise InvalidInput(
            "page_token is not a token this server issued", field="page_token"
        ) from None
    if not isinstance(values, list):
        raise InvalidInput("page_token is not a token this server issued", field="page_token")
    return values


def _check_max(max_results: int) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise InvalidInput(
            f"max_results must be a positive integer, got {max_results!r}", field="max_results"
        )


class RegistryQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def model_exists(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(M.c.name).where(M.c.name == name)).first() is not None

    def require_model(self, name: str) -> None:
        if not self.model_exists(name):
            raise NotFound(f"no registered model named {name!r}", kind="registered_model", key=name)

    def find_model(self, name: str) -> RegisteredModel | None:
        found = self._models([name])
        return found[0] if found else None

    def get_registered_model(self, name: str) -> RegisteredModel:
        model = self.find_model(name)
        if model is None:
            raise NotFound(f"no registered model named {name!r}", kind="registered_model", key=name)
        return model

    def _models(self, names: list[str]) -> list[RegisteredModel]:
        with self.engine.connect() as conn:
            rows = {r.name: r for r in conn.execute(select(M).where(M.c.name.in_(names)))}
            tags: dict[str, dict[str, str]] = defaultdict(dict)
            for n, k, v in conn.execute(
                select(MT.c.name, MT.c.key, MT.c.value).where(MT.c.name.in_(names))
            ):
                tags[n][k] = v
            aliases: dict[str, dict[str, int]] = defaultdict(dict)
            for n, a, v in conn.execute(
                select(AL.c.name, AL.c.alias, AL.c.version).where(AL.c.name.in_(names))
            ):
                aliases[n][a] = v
        latest_by_model = self._latest_versions(names)
        out = []
        for n in names:
            if n in rows:
                r = rows[n]
                latest = latest_by_model.get(n, [])
                out.append(
                    RegisteredModel(
                        n,
                        r.creation_time,
                        r.last_updated_time,
                        r.description,
                        latest,
                        tags[n],
                        aliases[n],
                    )
                )
        return out

    def search_registered_models(
        self,
        filter_string: str | None = None,
        max_results: int = 100,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[RegisteredModel]:
        _check_max(max_results)
        cols = {
            "name": M.c.name,
            "creation_timestamp": M.c.creation_time,
            "last_updated_timestamp": M.c.last_updated_time,
        }
        where = compile_registry_filter(filter_string, cols, MT, (M.c.name,))
        col, desc = _order(order_by, cols, default=("name", False))
        keys, dirs = (
            ([col, M.c.name], [desc, False]) if col is not M.c.name else ([M.c.name], [desc])
        )
        stmt = select(*keys).where(where)
        if page_token:
            stmt = stmt.where(_after(keys, dirs, _untoken(page_token)))
        stmt = stmt.order_by(*(k.desc() if d else k.asc() for k, d in zip(keys, dirs, strict=True)))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt.limit(max_results + 1)).all()
        token = _token(list(rows[max_results - 1])) if len(rows) > max_results else None
        names = [r[-1] for r in rows[:max_results]]
        return PagedList(self._models(names), token)

    # versions -------------------------------------------------------------------------
    def _versions(
        self, where: ColumnElement[bool], order: Sequence[Any] = (), limit: int | None = None
    ) -> list[ModelVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(V).where(where).order_by(*order).limit(limit)).all()
            keys = [(r.name, r.version) for r in rows]
            tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
            aliases: dict[tuple[str, int], list[str]] = defaultdict(list)
            for start in range(0, len(keys), 300):  # only these versions' tags and aliases
                chunk = keys[start : start + 300]
                for n, ver, k, v in conn.execute(
                    select(VT.c.name, VT.c.version, VT.c.key, VT.c.value).where(
                        tuple_(VT.c.name, VT.c.version).in_(chunk)
                    )
                ):
                    tags[(n, ver)][k] = v
                for n, a, ver in conn.execute(
                    select(AL.c.name, AL.c.alias, AL.c.version)
                    .where(tuple_(AL.c.name, AL.c.version).in_(chunk))
                    .order_by(AL.c.alias)
                ):
                    aliases[(n, ver)].append(a)
        return [
            ModelVersion(
                r.name,
                r.version,
                r.creation_time,
                r.last_updated_time,
                r.description,
                r.user_id,
                r.stage,
                r.source,
                r.run_id,
                r.status,
                None,
                tags[(r.name, r.version)],
                None,
                aliases[(r.name, r.version)],
            )
            for r in rows
        ]

    def find_version(self, name: str, version: int) -> ModelVersion | None:
        found = self._versions(and_(V.c.name == name, V.c.version == version))
        return found[0] if found else None

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        found = self.find_version(name, version)
        if found is None:
            self.get_registered_model(name)
            raise NotFound(
                f"model {name!r} has no version {version}",
                kind="model_version",
                key=f"{name}/{version}",
            )
        return found

    def version_created_by(self, event_id: str) -> ModelVersion | None:
        found = self._versions(V.c.creation_event_id == event_id)
        return found[0] if found else None

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(AL.c.version).where(and_(AL.c.name == name, AL.c.alias == alias))
            ).first()
        if row is None:
            self.get_registered_model(name)
            raise NotFound(
                f"model {name!r} has no alias {alias!r}", kind="alias", key=f"{name}@{alias}"
            )
        return self.get_model_version(name, row[0])

    def get_latest_versions(
        self, name: str, stages: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """The highest version in each stage (or in each of `stages`), as MLflow defines it."""
        return self._latest_versions([name], stages).get(name, [])

    def _latest_versions(
        self, names: list[str], stages: Sequence[str] | None = None
    ) -> dict[str, list[ModelVersion]]:
        """get_latest_versions for many models at once: two queries, not two per model."""
        if not names:
            return {}
        where: ColumnElement[bool] = V.c.name.in_(names)
        if stages is not None:
            where = and_(where, V.c.stage.in_(list(stages)))
        with self.engine.connect() as conn:
            keys = [
                (n, v)
                for n, v in conn.execute(
                    select(V.c.name, func.max(V.c.version))
                    .where(where)
                    .group_by(V.c.name, V.c.stage)
                )
            ]
        if not keys:
            return {}
        found = self._versions(tuple_(V.c.name, V.c.version).in_(keys))
        out: dict[str, list[ModelVersion]] = defaultdict(list)
        for mv in sorted(found, key=lambda v: v.version):
            out[mv.name].append(mv)
        return out

    def latest_version(self, name: str) -> ModelVersion:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(V.c.version).where(V.c.name == name).order_by(V.c.version.desc()).limit(1)
            ).first()
        if row is None:
            self.get_registered_model(name)
            raise NotFound(f"model {name!r} has no versions yet", kind="model_version", key=name)
        return self.get_model_version(name, row[0])

    def search_model_versions(
        self,
        filter_string: str | None = None,
        max_results: int = 10_000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[ModelVersion]:
        _check_max(max_results)
        cols = {
            "name": V.c.name,
            "run_id": V.c.run_id,
            "source_path": V.c.source,
            "source": V.c.source,
            "version_number": V.c.version,
            "version": V.c.version,
            "current_stage": V.c.stage,
            "creation_timestamp": V.c.creation_time,
            "last_updated_timestamp": V.c.last_updated_time,
            "user_id": V.c.user_id,
        }
        where = compile_registry_filter(filter_string, cols, VT, (V.c.name, V.c.version))
        if order_by:
            col, desc = _order(order_by, cols, default=("name", False))
            keys, dirs = [col, V.c.name, V.c.version], [desc, False, True]
        else:
            keys, dirs = [V.c.name, V.c.version], [False, True]
        if page_token:
            where = and_(where, _after(keys, dirs, _untoken(page_token)))
        order = [k.desc() if d else k.asc() for k, d in zip(keys, dirs, strict=True)]
        found = self._versions(where, order, max_results + 1)
        token = None
        if len(found) > max_results:
            last = found[max_results - 1]
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(*keys).where(and_(V.c.name == last.name, V.c.version == last.version))
                ).one()
            token = _token(list(row))
        return PagedList(found[:max_results], token)


def _order(
    order_by: Sequence[str] | None, cols: dict[str, Any], default: tuple[str, bool]
) -> tuple[Any, bool]:
    if not order_by:
        return cols[default[0]], default[1]
    if len(order_by) > 1:
        raise InvalidInput("registry searches order by one key", field="order_by")
    parts = order_by[0].split()
    key = parts[0].lower() if parts else ""
    if (
        key not in cols
        or len(parts) > 2
        or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC"))
    ):
        raise InvalidInput(
            f"cannot order by {order_by[0]!r}; use one of {', '.join(cols)} with ASC or DESC",
            field="order_by",
        )
    return cols[key], len(parts) == 2 and parts[1].upper() == "DESC"


def _after(keys: list[Any], desc: list[bool], values: list[Any]) -> ColumnElement[bool]:
    if len(values) != len(keys):
        raise InvalidInput("page_token does not match this search", field="page_token")
    ors = []
    for i, (k, d, v) in enumerate(zip(keys, desc, values, strict=True)):
        eqs = [kk == vv for kk, vv in zip(keys[:i], values[:i], strict=True)]
        ors.append(and_(*eqs, k < v if d else k > v))
    return or_(*ors)
