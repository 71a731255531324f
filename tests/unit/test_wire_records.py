"""Records as they travel: each wire model takes its fields from the record it carries,
and reading an answer back gives the very record the embedded mode returns."""

import dataclasses
import math

import pytest

from ledgerflow.events.entities import ModelVersion, RegisteredModel, Run, RunData, RunInfo
from ledgerflow.events.model_commands import ModelVersionOut, RegisteredModelOut
from ledgerflow.events.webhook_commands import WebhookCreatedOut, WebhookOut
from ledgerflow.events.webhook_entities import Webhook
from ledgerflow.events.wire import RecordOut
from ledgerflow.services.gateway.schemas import (
    ExperimentOut,
    FileInfoOut,
    RunDataOut,
    RunInfoOut,
    RunOut,
    WebhookDeliveryOut,
)

WIRE_MODELS = [
    ModelVersionOut,
    RegisteredModelOut,
    ExperimentOut,
    RunInfoOut,
    RunDataOut,
    RunOut,
    FileInfoOut,
    WebhookDeliveryOut,
]

VERSION = ModelVersion("m", 3, 1, 2, "d", "u", "Production", "runs:/r/model", "r", aliases=["a"])
HOOK = Webhook("id", "ci", "https://x.example.com", ["model.*"], "", True, 1, 2, secret="s" * 16)


@pytest.mark.parametrize("model", WIRE_MODELS, ids=lambda m: m.__name__)
def test_a_wire_model_has_its_records_fields_in_order_all_required(model: type[RecordOut]):
    record_fields = [f.name for f in dataclasses.fields(model.RECORD)]
    assert list(model.model_fields) == record_fields
    assert all(f.is_required() for f in model.model_fields.values())


def test_a_registered_model_comes_back_with_its_versions_as_records():
    model = RegisteredModel("m", 1, 2, "d", [VERSION], {"team": "cv"}, {"champion": 3})
    wire = RegisteredModelOut.model_validate(model).model_dump_json()
    back = RegisteredModelOut.model_validate_json(wire).entity()
    assert back == model and isinstance(back.latest_versions[0], ModelVersion)


def test_a_run_comes_back_with_its_info_and_data_and_non_finite_metrics():
    run = Run(
        RunInfo("r", "e", "n", "u", "RUNNING", 1, None, "file:///a", "active"),
        RunData({"loss": math.inf}, {"lr": "0.1"}, {}),
    )
    wire = RunOut.model_validate(run).model_dump_json()
    assert '"Infinity"' in wire
    assert RunOut.model_validate_json(wire).entity() == run


def test_a_webhook_travels_without_its_secret_except_in_the_answer_to_creating_it():
    assert "secret" not in WebhookOut.model_fields
    shown = WebhookOut.model_validate_json(WebhookOut.model_validate(HOOK).model_dump_json())
    assert "secret" not in shown.model_fields_set
    assert shown.entity() == dataclasses.replace(HOOK, secret=None)
    assert WebhookCreatedOut.model_validate(HOOK).entity() == HOOK


def test_a_webhook_answer_without_the_delivery_fields_still_reads():
    doc = {k: v for k, v in dataclasses.asdict(HOOK).items() if k in WebhookOut.model_fields}
    for optional in ("cursor", "failed_attempts", "next_attempt_time", "last_error"):
        del doc[optional]
    assert WebhookOut.model_validate(doc).entity() == dataclasses.replace(HOOK, secret=None)
