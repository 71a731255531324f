"""Typed, frozen payloads for experiment and run events.

Each payload class names its stable event type (`run.metrics_logged`) and its
schema version. Validation is strict at the edge: unknown fields are refused,
so a typo in a producer is caught where it happens, not in a projector.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"FINISHED", "FAILED", "KILLED"})

MetricPoint = tuple[str, float, int, int]
"""(key, value, timestamp in epoch ms, step). NaN and ±inf travel as the strings
"NaN", "Infinity" and "-Infinity" so the JSON stays standard."""


class Payload(BaseModel):
    """Base of every payload. Subclasses set TYPE, VERSION and say which stream they belong to."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", ser_json_inf_nan="strings", allow_inf_nan=True
    )
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    def stream(self) -> str:
        raise NotImplementedError

    def identity(self) -> str | None:
        """What makes this event one of a kind, for events that happen at most once (a
        run's start): its event id is derived from it, so the same fact sent again (a
        retry after a lost answer) is the same event, which the log and the projectors
        take once. None (most events): every event is new."""
        return None


class _ExperimentPayload(Payload):
    experiment_id: str = Field(min_length=1)

    def stream(self) -> str:
        return f"experiment:{self.experiment_id}"


class _RunPayload(Payload):
    run_id: str = Field(min_length=1)

    def stream(self) -> str:
        return f"run:{self.run_id}"


class ExperimentCreated(_ExperimentPayload):
    TYPE = "experiment.created"
    name: str = Field(min_length=1)
    artifact_location: str
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentRenamed(_ExperimentPayload):
    TYPE = "experiment.renamed"
    name: str = Field(min_length=1)


class ExperimentDeleted(_ExperimentPayload):
    TYPE = "experiment.deleted"


class ExperimentRestored(_ExperimentPayload):
    TYPE = "experiment.restored"


class ExperimentTagSet(_ExperimentPayload):
    TYPE = "experiment.tag_set"
    key: str
    value: str


class ExperimentTagDeleted(_ExperimentPayload):
    TYPE = "experiment.tag_deleted"
    key: str


class RunStarted(_RunPayload):
    TYPE = "run.started"
    experiment_id: str
    run_name: str
    start_time: int
    user_id: str
    artifact_uri: str
    parent_run_id: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    def identity(self) -> str:
        return self.stream()  # a run starts once


class RunResumed(_RunPayload):
    """An ended run was reopened with `start_run(run_id=...)`."""

    TYPE = "run.resumed"


class RunParamsLogged(_RunPayload):
    TYPE = "run.params_logged"
    params: dict[str, str]


class RunMetricsLogged(_RunPayload):
    """A batch of metric points: metrics are the hottest event, so they travel many at a time."""

    TYPE = "run.metrics_logged"
    points: tuple[MetricPoint, ...]


class RunTagsSet(_RunPayload):
    TYPE = "run.tags_set"
    tags: dict[str, str]


class RunTagDeleted(_RunPayload):
    TYPE = "run.tag_deleted"
    key: str


class RunArtifactLogged(_RunPayload):
    TYPE = "run.artifact_logged"
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class DatasetInput(BaseModel):
    """A dataset a run read (MLflow's DatasetInput): what it is and where it came from,
    never its data. `context` is what MLflow tags as `mlflow.data.context` (train, eval)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(min_length=1)
    digest: str = Field(min_length=1)
    source_type: str = ""
    source: str = ""
    dataset_schema: str | None = None
    profile: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)


class RunInputsLogged(_RunPayload):
    TYPE = "run.inputs_logged"
    datasets: tuple[DatasetInput, ...] = Field(min_length=1)


class RunFinished(_RunPayload):
    TYPE = "run.finished"
    status: RunStatus
    end_time: int


class RunDeleted(_RunPayload):
    TYPE = "run.deleted"


class RunRestored(_RunPayload):
    TYPE = "run.restored"


ALL_PAYLOADS: tuple[type[Payload], ...] = (
    ExperimentCreated,
    ExperimentRenamed,
    ExperimentDeleted,
    ExperimentRestored,
    ExperimentTagSet,
    ExperimentTagDeleted,
    RunStarted,
    RunResumed,
    RunParamsLogged,
    RunMetricsLogged,
    RunTagsSet,
    RunTagDeleted,
    RunArtifactLogged,
    RunInputsLogged,
    RunFinished,
    RunDeleted,
    RunRestored,
)
