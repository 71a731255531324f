"""The read side of the registry: models, versions, aliases, and their searches.

Registry searches take the runs' filter language (filters.py) on the registry's
fields: what MLflow accepts (`name = 'x'`, `name LIKE 'x%'`, `run_id IN ('a', 'b')`,
`version_number > 2`, `source_path = '...'`, `tags.team = 'cv'`) and also OR, NOT,
parentheses and IS NULL. Paging is by opaque cursor (cursor.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, func, select, tuple_

from ledgerflow.events.entities import ModelVersion, PagedList, RegisteredModel
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.projector.filter_fields import (
    MODEL_VERSION_FIELDS,
    REGISTERED_MODEL_FIELDS,
    Fields,
)
from ledgerflow.services.projector.filters import parse_filter, parse_order_by
from ledgerflow.services.projector.readable import Readable
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
from ledgerflow.services.projector.search import (
    MODEL_VERSION_SEARCH,
    REGISTERED_MODEL_SEARCH,
    Page,
    Searchable,
    compile_filter,
    search_page,
)


def _check_max(max_results: int) -> None:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise InvalidInput(
            f"max_results must be a positive integer, got {max_results!r}", field="max_results"
        )


class RegistryQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _search(
        self,
        kind: str,
        fields: Fields,
        target: Searchable,
        filter_string: str | None,
        max_results: int,
        order_by: Sequence[str] | None,
        page_token: str | None,
        readable: Readable | None,
    ) -> Page:
        """One page of a registry search: the filter and order parsed on `fields`, compiled
        for `target`; a page token resumes only the same `kind` of search and query. With
        `readable`, only the models a reader may see, filtered in the query itself."""
        _check_max(max_results)
        node = parse_filter(filter_string, fields)
        keys = parse_order_by(order_by, fields)
        where = compile_filter(node, target)
        if readable is not None:
            where = and_(where, readable.where(target.table.c.name))
        query = (kind, filter_string, keys)
        with self.engine.connect() as conn:
            return search_page(
                conn, target, where, keys, limit=max_results, page_token=page_token, query=query
            )

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
        *,
        readable: Readable | None = None,
    ) -> PagedList[RegisteredModel]:
        page = self._search(
            "registered_models", REGISTERED_MODEL_FIELDS, REGISTERED_MODEL_SEARCH,
            filter_string, max_results, order_by, page_token, readable,
        )  # fmt: skip
        return PagedList(self._models([name for (name,) in page.owners]), page.token)

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
                r.run_link,
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
        *,
        readable: Readable | None = None,
    ) -> PagedList[ModelVersion]:
        page = self._search(
            "model_versions", MODEL_VERSION_FIELDS, MODEL_VERSION_SEARCH,
            filter_string, max_results, order_by, page_token, readable,
        )  # fmt: skip
        found: dict[tuple[Any, ...], ModelVersion] = {}
        for start in range(0, len(page.owners), 300):  # stay under bound-parameter limits
            chunk = page.owners[start : start + 300]
            for mv in self._versions(tuple_(V.c.name, V.c.version).in_(chunk)):
                found[(mv.name, mv.version)] = mv
        return PagedList([found[k] for k in page.owners if k in found], page.token)
