"""Request and response bodies of the tracking, query, artifact and webhook routes.

The response models of read-model records (`ledgerflow.events.entities`) take their
fields from the records (`ledgerflow.events.wire.from_record`), so the SDK's remote
mode rebuilds the very objects the embedded mode returns. Metric values may be NaN or
infinite: they travel as the strings "NaN", "Infinity" and "-Infinity" to keep the JSON
standard.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledgerflow.events.entities import (
    Experiment,
    FileInfo,
    Metric,
    MetricSeries,
    Run,
    RunData,
    RunInfo,
)
from ledgerflow.events.field_schemas import KEY, Key, RunId, StrictNumbers, stated
from ledgerflow.events.tracking_commands import ExperimentId as ExperimentId
from ledgerflow.events.webhook_commands import WebhookCreatedOut as WebhookCreatedOut
from ledgerflow.events.webhook_commands import WebhookOut as WebhookOut
from ledgerflow.events.webhook_entities import WebhookDelivery
from ledgerflow.events.wire import Out as Out
from ledgerflow.events.wire import RecordOut, from_record
from ledgerflow.services.artifacts.port import ARTIFACT_PATH

ArtifactPath = Annotated[str, stated(pattern=ARTIFACT_PATH)]
"""A path naming a file of a run's artifacts (`safe_relpath`)."""
NON_FINITE = r"^\s*(?:[nN][aA][nN]|-?[iI][nN][fF][iI][nN][iI][tT][yY])\s*$"
"""The text a metric value may be instead of a number."""


class Body(StrictNumbers):
    """Base of request bodies: an unknown field is an error naming it, not ignored; a
    number is not `true` or `false`."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    error_code: str = Field(description="e.g. RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE")
    message: str
    field: str | None = Field(None, description="the input that was wrong, when one was")
    kind: str | None = Field(None, description="for a missing resource: what kind it is")
    key: str | None = Field(None, description="for a missing resource: its id or name")
    position: int | None = Field(
        None, description="for text in a language (a filter): 0-based offset of the error"
    )
    token: str | None = Field(None, description="with position: the text found there")


class Health(BaseModel):
    status: Literal["ok", "failing"] = "ok"
    version: str
    failed: dict[str, str] | None = Field(
        default=None, description="Background services that stopped, with the reason"
    )


# experiments -----------------------------------------------------------------------------
@from_record(Experiment)
class ExperimentOut(RecordOut[Experiment]):
    pass


# runs ------------------------------------------------------------------------------------
class RunIn(Body):
    experiment_id: str
    user_id: str
    run_name: str | None = None
    start_time: int | None = None
    tags: Annotated[dict[str, Any], stated(propertyNames=KEY)] | None = None
    parent_run_id: str | None = None
    run_id: RunId | None = Field(
        None,
        description="choose the id instead of a random one; sending the same start again "
        "(same experiment, user, parent and start_time) answers the run it started",
    )


@from_record(RunInfo)
class RunInfoOut(RecordOut[RunInfo]):
    pass


@from_record(RunData)
class RunDataOut(RecordOut[RunData]):
    pass


@from_record(Run, types={"info": RunInfoOut, "data": RunDataOut})
class RunOut(RecordOut[Run]):
    pass


class RunPage(Out):
    runs: list[RunOut]
    next_page_token: str | None = Field(None, description="pass back as page_token; None: done")


class RunSearch(Body):
    experiment_ids: list[str]
    filter: str | None = Field(None, description="e.g. metrics.acc > 0.9 and params.lr = '0.1'")
    run_view_type: str | int = "ACTIVE_ONLY"
    max_results: int = 1000
    order_by: list[str] | None = None
    page_token: str | None = None


class ParamsIn(Body):
    params: Annotated[dict[str, Any], stated(propertyNames=KEY)]


class MetricIn(Body):
    key: Key
    value: float | Annotated[str, stated(pattern=NON_FINITE)] = Field(
        description="a number, or NaN / Infinity / -Infinity as text"
    )
    timestamp: int
    step: int = Field(0, ge=-(10**18), le=10**18)


class MetricsIn(Body):
    metrics: list[MetricIn]


class TagsIn(Body):
    tags: Annotated[dict[str, Any], stated(propertyNames=KEY)]


class FinishIn(Body):
    status: Literal["FINISHED", "FAILED", "KILLED"] = "FINISHED"
    end_time: int | None = None


class MetricHistoryOut(Out):
    """One metric's points in step order, as columns: a history can be long."""

    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[float]

    @classmethod
    def of(cls, key: str, points: list[Metric]) -> MetricHistoryOut:
        return cls(
            key=key,
            steps=[m.step for m in points],
            timestamps=[m.timestamp for m in points],
            values=[m.value for m in points],
        )

    def entity(self) -> list[Metric]:
        k = self.key
        return [
            Metric(k, v, ts, st)
            for st, ts, v in zip(self.steps, self.timestamps, self.values, strict=True)
        ]


Axis = Literal["step", "time"]


@from_record(
    MetricSeries,
    types={"x": Axis},
    descriptions={
        "x": "what xs are: steps, or the points' timestamps (epoch ms)",
        "count": "how many points the range holds",
        "downsampled": "true: one entry per bucket; false: every point (mins == maxs == values)",
        "xs": "per bucket its first point's x, or each point's x",
        "values": "per bucket its last value, or each point's value",
        "mins": "per bucket its lowest value (NaN left out; NaN if every value is NaN)",
        "maxs": "per bucket its highest value (NaN left out; NaN if every value is NaN)",
        "timestamps": "per bucket its first point's timestamp, or each point's",
    },
)
class MetricSeriesOut(RecordOut[MetricSeries]):
    """A metric's range for a chart, downsampled on the server keeping its shape."""


class SeriesRef(Body):
    run_id: str
    key: Key


class SeriesQuery(Body):
    series: list[SeriesRef] = Field(min_length=1, max_length=100)
    points: int = Field(
        1000, ge=2, le=10_000, description="at most this many buckets per series (2 to 10,000)"
    )
    x: Axis = "step"
    start: int | None = Field(None, description="first x of the range; null: the first point")
    end: int | None = Field(None, description="last x of the range (inclusive); null: the last")


class SeriesPage(Out):
    series: list[MetricSeriesOut] = Field(description="in the order they were asked for")
    after: str = Field(
        "",
        description="the log position these series reflect: follow the event stream from it "
        "(`/events/stream?after=...`) to get every point logged since, none twice",
    )


# artifacts -------------------------------------------------------------------------------
@from_record(FileInfo)
class FileInfoOut(RecordOut[FileInfo]):
    pass


class StoredFileOut(Out):
    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ArtifactPaths(Body):
    paths: list[ArtifactPath] = Field(min_length=1)


class TransferUrl(Out):
    path: str
    url: str = Field(description="absolute (presigned, straight to the store) or gateway-relative")
    presigned: bool


class TransferUrls(Out):
    files: list[TransferUrl]


class StoredFileIn(Body):
    path: ArtifactPath
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ArtifactCommit(Body):
    files: list[StoredFileIn] = Field(min_length=1)


# webhooks --------------------------------------------------------------------------------
@from_record(WebhookDelivery)
class WebhookDeliveryOut(RecordOut[WebhookDelivery]):
    pass
