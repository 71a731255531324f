"""The view tables. Only the projector writes them; everything else reads.

Every table can be dropped and rebuilt from the log (`ledgerflow replay`).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Table, Text
from sqlmodel import Field, SQLModel

METADATA = SQLModel.metadata
KEYED = {"sqlite_with_rowid": False}
"""Table options of a table found by its primary key (params, tags, latest metrics,
applied ids): on SQLite its rows live in the key's b-tree (WITHOUT ROWID) instead of a
rowid b-tree beside a second one for the key, so an insert writes one b-tree, not two
(15 % less CPU for those tables' inserts in a bulk replay), and loading a page of runs'
values is one b-tree search per run and key instead of two. Nothing reads them by rowid.
Other databases ignore it; SQLite views made before keep their layout, which answers
the same."""


class Experiment(SQLModel, table=True):
    __tablename__ = "experiments"
    experiment_id: str = Field(primary_key=True)
    name: str = Field(index=True, unique=True)
    artifact_location: str
    lifecycle_stage: str = "active"
    creation_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_update_time: int = Field(sa_column=Column(BigInteger, nullable=False))


class ExperimentTag(SQLModel, table=True):
    __tablename__ = "experiment_tags"
    experiment_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (
        Index("runs_by_experiment_start", "experiment_id", "start_time"),
        # `run_name LIKE 'prefix%'` as an index range (LIKE is case-sensitive on SQLite too)
        Index("runs_by_experiment_name", "experiment_id", "run_name"),
    )
    run_id: str = Field(primary_key=True)
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int = Field(sa_column=Column(BigInteger, nullable=False))
    end_time: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    lifecycle_stage: str = "active"
    artifact_uri: str
    parent_run_id: str | None = Field(default=None, index=True)


class Param(SQLModel, table=True):
    __tablename__ = "params"
    # Covering (run_id last): a search condition on a key is read from the index alone.
    __table_args__ = (Index("params_by_key_value_run", "key", "value", "run_id"), KEYED)
    run_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class Tag(SQLModel, table=True):
    __tablename__ = "tags"
    __table_args__ = (Index("tags_by_key_value_run", "key", "value", "run_id"), KEYED)
    run_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))


class MetricPoint(SQLModel, table=True):
    """Every logged point. `value` NULL means NaN (SQLite cannot store NaN)."""

    __tablename__ = "metric_points"
    # Covering: a history read is one ordered index range scan, no table lookups.
    __table_args__ = (
        Index("points_by_run_key_step", "run_id", "key", "step", "timestamp", "id", "value"),
        # the same for charts against wall time (series with x=time, zoomed in)
        Index("points_by_run_key_time", "run_id", "key", "timestamp", "step", "id", "value"),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: str
    key: str
    step: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class LatestMetric(SQLModel, table=True):
    """The point with the largest (step, timestamp) per run and key: what runs tables show."""

    __tablename__ = "latest_metrics"
    __table_args__ = (Index("latest_by_key_value_run", "key", "value", "run_id"), KEYED)
    run_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    step: int = Field(sa_column=Column(BigInteger, nullable=False))
    timestamp: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class MetricRollup(SQLModel, table=True):
    """A metric's points summarised per bucket of `width` steps (axis "step") or
    milliseconds (axis "time"), at several widths (services/projector/rollups.py): a chart
    of a million points reads a few thousand of these instead of the points. `first_*` is
    the bucket's first point and `last_*` its last, in the axis' order; min and max leave
    NaN out (NULL when every value is NaN), `last_value` NULL means NaN."""

    __tablename__ = "metric_rollups"
    run_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    axis: str = Field(primary_key=True)
    width: int = Field(sa_column=Column(BigInteger, primary_key=True))
    bucket: int = Field(sa_column=Column(BigInteger, primary_key=True))
    n: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_step: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_ts: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_step: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_ts: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    min_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    max_value: float | None = Field(default=None, sa_column=Column(Float, nullable=True))


class Artifact(SQLModel, table=True):
    __tablename__ = "artifacts"
    run_id: str = Field(primary_key=True)
    path: str = Field(primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str
    time: int = Field(sa_column=Column(BigInteger, nullable=False))


class DatasetInput(SQLModel, table=True):
    """A dataset a run read (`run.inputs_logged`); logged again, it is the same row."""

    __tablename__ = "dataset_inputs"
    run_id: str = Field(primary_key=True)
    name: str = Field(primary_key=True)
    digest: str = Field(primary_key=True)
    source_type: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(sa_column=Column(Text, nullable=False))
    dataset_schema: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    profile: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    tags: str = Field(sa_column=Column(Text, nullable=False))  # JSON object


class ProjectorOffset(SQLModel, table=True):
    """How far a projector has applied each partition of the log (the SQLite log has one,
    named ""). Written in the same transaction as the rows, so effects are exactly once."""

    __tablename__ = "projector_offsets"
    name: str = Field(primary_key=True)
    partition: str = Field(primary_key=True)
    position: int = Field(sa_column=Column(BigInteger, nullable=False))


class AppliedEvent(SQLModel, table=True):
    """Ids already applied, with where (partition, position): a second copy of an event
    within the dedupe window of its first (at-least-once logs) is skipped. Rows older than
    the window are pruned (`Projector.dedupe_window`); `position` is NULL for rows written
    before positions were kept, which count as applied wherever the copy is."""

    __tablename__ = "applied_events"
    __table_args__ = (Index("applied_events_by_place", "partition", "position"), KEYED)
    event_id: str = Field(primary_key=True)
    partition: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    position: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class DeadLetter(SQLModel, table=True):
    """An event the projector could not apply, with the reason. Never silently dropped."""

    __tablename__ = "dead_letters"
    id: int | None = Field(default=None, primary_key=True)
    position: int = Field(sa_column=Column(BigInteger, nullable=False))
    partition: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    event_id: str
    type: str
    stream: str
    kind: str  # "corrupt" (cannot be decoded) or "rejected" (contradicts the stream)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    data: str = Field(sa_column=Column(Text, nullable=False))
    time: int = Field(sa_column=Column(BigInteger, nullable=False))


def table(model: type[SQLModel]) -> Table:
    """The Core table of a model, for the bulk statements the projector runs."""
    return model.__table__  # type: ignore[attr-defined, no-any-return]


EXPERIMENTS = table(Experiment)
EXPERIMENT_TAGS = table(ExperimentTag)
RUNS = table(Run)
PARAMS = table(Param)
TAGS = table(Tag)
METRIC_POINTS = table(MetricPoint)
LATEST_METRICS = table(LatestMetric)
METRIC_ROLLUPS = table(MetricRollup)
ARTIFACTS = table(Artifact)
DATASET_INPUTS = table(DatasetInput)
OFFSETS = table(ProjectorOffset)
APPLIED_EVENTS = table(AppliedEvent)
DEAD_LETTERS = table(DeadLetter)

SEARCH_INDEXES_REPLACED = ("params_by_key", "tags_by_key", "latest_by_key_value")
"""The (key, value) indexes the covering (key, value, run_id) ones replaced."""
BOOKKEEPING = ("projector_offsets", "applied_events", "dead_letters")


def view_tables() -> list[Table]:
    """Every view table defined so far. The registry, webhook and job views live in
    their own modules, which the projector imports: import it before asking."""
    return [t for t in METADATA.sorted_tables if t.name not in BOOKKEEPING]
