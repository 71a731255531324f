"""Read models and log items as the gRPC API's protobuf messages."""

from __future__ import annotations

from ledgerflow.events.entities import Metric, ModelVersion, Run
from ledgerflow.events.envelope import Recorded
from ledgerflow.services.gateway.hub import Delivery
from ledgerflow.services.gateway.items import item_id, item_json, item_stream
from ledgerflow.services.gateway.proto import ledgerflow_pb2 as pb


def run_message(run: Run) -> pb.Run:
    info = run.info
    return pb.Run(
        info=pb.RunInfo(
            run_id=info.run_id,
            experiment_id=info.experiment_id,
            run_name=info.run_name,
            user_id=info.user_id,
            status=info.status,
            start_time=info.start_time,
            end_time=info.end_time,
            artifact_uri=info.artifact_uri,
            lifecycle_stage=info.lifecycle_stage,
        ),
        data=pb.RunData(metrics=run.data.metrics, params=run.data.params, tags=run.data.tags),
    )


def metric_message(metric: Metric) -> pb.Metric:
    return pb.Metric(
        key=metric.key, value=metric.value, timestamp=metric.timestamp, step=metric.step
    )


def version_message(version: ModelVersion) -> pb.ModelVersion:
    return pb.ModelVersion(
        name=version.name,
        version=version.version,
        creation_timestamp=version.creation_timestamp,
        last_updated_timestamp=version.last_updated_timestamp,
        description=version.description,
        user_id=version.user_id,
        current_stage=version.current_stage,
        source=version.source,
        run_id=version.run_id,
        status=version.status,
        status_message=version.status_message,
        tags=version.tags,
        run_link=version.run_link,
        aliases=version.aliases,
    )


def event_message(got: Delivery) -> pb.EventMessage:
    item = got.item
    return pb.EventMessage(
        token=got.token,
        type=got.type,
        stream=item_stream(item),
        partition=item.partition,
        position=item.position,
        json=item_json(item),
        id=item_id(item),
        corrupt="" if isinstance(item, Recorded) else item.reason,
    )
