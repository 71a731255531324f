"""Result types returned by the SDK (MLflow-compatible shapes)."""

from ledgerflow.events.audit_entities import AuditEntry
from ledgerflow.events.entities import (
    Experiment,
    FileInfo,
    Metric,
    MetricSeries,
    ModelVersion,
    PagedList,
    Param,
    RegisteredModel,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)

__all__ = [
    "AuditEntry",
    "Experiment",
    "FileInfo",
    "Metric",
    "MetricSeries",
    "ModelVersion",
    "PagedList",
    "Param",
    "RegisteredModel",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "ViewType",
]
