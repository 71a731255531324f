"""Reads of the logged models view: one model, a search, what runs output, their files.

Search speaks MLflow's filter language on a logged model's attributes (`name`,
`model_id`, `model_type`, `status`, `source_run_id`, `creation_timestamp`,
`last_updated_timestamp`), its `params.`, its `tags.` and its `metrics.` (a model
matches when one of its points of that metric does). Orders are by attributes, params
and tags: a model has many points of a metric, so no one value to sort it by."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, and_, select

from ledgerflow.events.entities import FileInfo, PagedList
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.logged_model_entities import LoggedModel, ModelMetric, ModelOutput
from ledgerflow.services.projector.cursor import SortKey
from ledgerflow.services.projector.filter_fields import Fields
from ledgerflow.services.projector.filters import OrderKey, parse_filter
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_ARTIFACTS as LA,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_METRICS as LMM,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_PARAMS as LP,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_TAGS as LT,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODELS as L,
)
from ledgerflow.services.projector.logged_model_tables import (
    RUN_MODEL_INPUTS as RI,
)
from ledgerflow.services.projector.logged_model_tables import (
    RUN_MODEL_OUTPUTS as RO,
)
from ledgerflow.services.projector.queries import directory
from ledgerflow.services.projector.search import Searchable, compile_filter, search_page
from ledgerflow.services.projector.sql import fetch_in
from ledgerflow.services.projector.tables import METRIC_POINTS as MP

MAX_SEARCH_RESULTS = 50
"""MLflow's limit on one page of `logged-models/search`."""
STATUSES = ("PENDING", "READY", "FAILED")

LOGGED_MODEL_FIELDS = Fields(
    entities={
        "metrics": "metric", "metric": "metric",
        "params": "param", "param": "param", "parameter": "param", "parameters": "param",
        "tags": "tag", "tag": "tag",
        "attributes": "attribute", "attribute": "attribute", "attr": "attribute",
    },
    attributes={
        "name": "string", "model_id": "string", "model_type": "string", "status": "string",
        "source_run_id": "string", "creation_timestamp": "number",
        "last_updated_timestamp": "number",
    },
    aliases={"creation_time": "creation_timestamp", "last_updated_time": "last_updated_timestamp"},
    choices={"status": STATUSES},
    example="a field such as name, status, source_run_id, params.<key> or tags.<key>",
)  # fmt: skip
LOGGED_MODEL_SEARCH = Searchable(
    LOGGED_MODEL_FIELDS,
    L,
    {"name": "name", "model_id": "model_id", "model_type": "model_type", "status": "status",
     "source_run_id": "source_run_id", "creation_timestamp": "creation_time",
     "last_updated_timestamp": "last_updated_time"},
    ("model_id",),
    {"metric": LMM, "param": LP, "tag": LT},
    (SortKey(L.c.model_id, nulls_last=False),),
    (OrderKey("attribute", "creation_timestamp", True),),
)  # fmt: skip


def order_keys(items: Sequence[tuple[str, bool]]) -> tuple[OrderKey, ...]:
    """MLflow's `order_by` entries, (field_name, ascending) pairs, on a logged model's
    attributes, params or tags."""
    keys = []
    for field_name, ascending in items:
        entity, _, key = field_name.partition(".")
        kind = LOGGED_MODEL_FIELDS.entities.get(entity.lower()) if key else None
        if kind is None or kind == "attribute":
            attribute = LOGGED_MODEL_FIELDS.attribute(key or field_name)
            if attribute is None:
                raise InvalidInput(
                    f"Invalid order_by field {field_name!r}: expected "
                    f"{LOGGED_MODEL_FIELDS.example}",
                    field="order_by",
                )
            keys.append(OrderKey("attribute", attribute, not ascending))
        elif kind == "metric":
            raise InvalidInput(
                f"Invalid order_by field {field_name!r}: ordering logged models by a metric "
                "is not supported",
                field="order_by",
            )
        else:
            keys.append(OrderKey(kind, key, not ascending))
    return tuple(keys)


class LoggedModelQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _models(self, ids: Sequence[str]) -> list[LoggedModel]:
        if not ids:
            return []
        with self.engine.connect() as conn:
            rows = {r.model_id: r for r in conn.execute(select(L).where(L.c.model_id.in_(ids)))}
            tags: dict[str, dict[str, str]] = defaultdict(dict)
            params: dict[str, dict[str, str]] = defaultdict(dict)
            for table, into in ((LT, tags), (LP, params)):
                for mid, k, v in conn.execute(
                    select(table.c.model_id, table.c.key, table.c.value).where(
                        table.c.model_id.in_(ids)
                    )
                ):
                    into[mid][k] = v
            metrics: dict[str, list[ModelMetric]] = defaultdict(list)
            for r in conn.execute(
                select(LMM)
                .where(LMM.c.model_id.in_(ids))
                .order_by(LMM.c.model_id, LMM.c.key, LMM.c.step, LMM.c.timestamp)
            ):
                metrics[r.model_id].append(
                    ModelMetric(
                        r.key, math.nan if r.value is None else r.value, r.timestamp, r.step,
                        r.run_id, r.dataset_name or None, r.dataset_digest or None,
                    )
                )  # fmt: skip
        return [
            _model(rows[mid], tags[mid], params[mid], tuple(metrics[mid]))
            for mid in ids
            if mid in rows
        ]

    def find(self, model_id: str) -> LoggedModel | None:
        """The model, deleted or not; None when there is none."""
        found = self._models([model_id])
        return found[0] if found else None

    def get(self, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
        found = self.find(model_id)
        if found is None or (found.lifecycle_stage == "deleted" and not allow_deleted):
            raise NotFound(
                f"Logged model with ID '{model_id}' not found", kind="logged_model", key=model_id
            )
        return found

    def artifact_key(self, model_id: str, path: str = "") -> str:
        """The artifact store key of the model's file `path` (of its artifact root when
        empty): where `models:/<model_id>` sources are read from. NotFound when there is
        no such model."""
        root = self.get(model_id, allow_deleted=True).artifact_key
        return f"{root}/{path.strip('/')}" if path.strip("/") else root

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None = None,
        max_results: int = MAX_SEARCH_RESULTS,
        order_by: Sequence[tuple[str, bool]] = (),
        page_token: str | None = None,
    ) -> PagedList[LoggedModel]:
        """Active models of `experiment_ids` matching the filter, newest first unless
        `order_by` says otherwise."""
        if not 1 <= max_results <= MAX_SEARCH_RESULTS:
            raise InvalidInput(
                f"Invalid value for parameter 'max_results': {max_results}; it must be "
                f"between 1 and {MAX_SEARCH_RESULTS}",
                field="max_results",
            )
        node = parse_filter(filter_string, LOGGED_MODEL_FIELDS)
        keys = order_keys(order_by)
        where = and_(
            L.c.experiment_id.in_(list(experiment_ids)),
            L.c.lifecycle_stage == "active",
            compile_filter(node, LOGGED_MODEL_SEARCH),
        )
        query = ("logged_models", tuple(sorted(experiment_ids)), filter_string, keys)
        with self.engine.connect() as conn:
            page = search_page(
                conn, LOGGED_MODEL_SEARCH, where, keys,
                limit=max_results, page_token=page_token, query=query,
            )  # fmt: skip
        return PagedList(self._models([mid for (mid,) in page.owners]), page.token)

    def outputs_of(self, run_ids: Sequence[str]) -> dict[str, list[ModelOutput]]:
        """The models each run output, by step then id."""
        out: dict[str, list[ModelOutput]] = defaultdict(list)
        if not run_ids:
            return out
        sql = (  # plain: every MLflow run read and search asks, SQLAlchemy's IN cost more
            f"SELECT run_id, model_id, step FROM {RO.name} WHERE run_id IN ({{}}) "
            "ORDER BY run_id, step, model_id"
        )
        with self.engine.connect() as conn:
            for rid, mid, step in fetch_in(conn, sql, list(run_ids)):
                out[rid].append(ModelOutput(mid, step))
        return out

    def inputs_of(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """The models each run used, by id."""
        out: dict[str, list[str]] = defaultdict(list)
        if not run_ids:
            return out
        sql = f"SELECT run_id, model_id FROM {RI.name} WHERE run_id IN ({{}}) ORDER BY 1, 2"
        with self.engine.connect() as conn:
            for rid, mid in fetch_in(conn, sql, list(run_ids)):
                out[rid].append(mid)
        return out

    def run_points_present(
        self, run_id: str, points: Sequence[tuple[str, float, int, int]]
    ) -> set[tuple[str, int, int]]:
        """(key, step, timestamp) of `points` the run already holds with the same value:
        MLflow's client copies a run's points to a model it logs (`log_model`), and the
        run must not get them twice."""
        keys = sorted({k for k, _, _, _ in points})
        with self.engine.connect() as conn:
            stored = {
                (k, st, ts): v
                for k, st, ts, v in conn.execute(
                    select(MP.c.key, MP.c.step, MP.c.timestamp, MP.c.value).where(
                        MP.c.run_id == run_id, MP.c.key.in_(keys)
                    )
                )
            }
        found = set()
        for key, value, ts, step in points:
            if (key, step, ts) in stored:
                old = stored[(key, step, ts)]
                if (old is None and math.isnan(value)) or old == value:
                    found.add((key, step, ts))
        return found

    def artifact_entries(self, model_id: str) -> dict[str, tuple[int, str]]:
        """The model's files: path -> (size, sha256)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(LA.c.path, LA.c.size, LA.c.sha256).where(LA.c.model_id == model_id)
            ).all()
        return {p: (s, h) for p, s, h in rows}

    def list_artifacts(self, model_id: str, path: str | None = None) -> list[FileInfo]:
        """What lies directly under `path` of the model's files (paths from its root)."""
        entries = self.artifact_entries(model_id)
        return directory(((p, s) for p, (s, _) in entries.items()), path)


def _model(
    r: Any, tags: dict[str, str], params: dict[str, str], metrics: tuple[ModelMetric, ...]
) -> LoggedModel:
    return LoggedModel(
        model_id=r.model_id, experiment_id=r.experiment_id, name=r.name,
        artifact_key=r.artifact_key, status=r.status, creation_time=r.creation_time,
        last_updated_time=r.last_updated_time, model_type=r.model_type,
        source_run_id=r.source_run_id, status_message=r.status_message,
        lifecycle_stage=r.lifecycle_stage, tags=tags, params=params, metrics=metrics,
    )  # fmt: skip
