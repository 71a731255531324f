import dataclasses
import json
import math
import re

import pytest

from ledgerflow.events import auth_payloads as a
from ledgerflow.events import bundle_payloads as b
from ledgerflow.events import job_payloads as j
from ledgerflow.events import logged_model_payloads as lm
from ledgerflow.events import model_payloads as m
from ledgerflow.events import payloads as p
from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.codec import (
    REGISTRY,
    EventRegistry,
    decode,
    decode_data,
    decode_row,
    encode,
    encode_data,
)
from ledgerflow.events.envelope import Event, Recorded, stored_event, stored_record, uuid7
from ledgerflow.events.errors import CorruptEvent
from tests.unit.deployment_samples import DEPLOYMENT_SAMPLES

SAMPLES: list[p.Payload] = [
    p.ExperimentCreated(experiment_id="1", name="exp", artifact_location="/a", tags={"t": "v"}),
    p.ExperimentRenamed(experiment_id="1", name="new"),
    p.ExperimentDeleted(experiment_id="1"),
    p.ExperimentRestored(experiment_id="1"),
    p.ExperimentTagSet(experiment_id="1", key="k", value="v"),
    p.ExperimentTagDeleted(experiment_id="1", key="k"),
    p.RunStarted(
        run_id="r",
        experiment_id="1",
        run_name="n",
        start_time=1,
        user_id="u",
        artifact_uri="/a",
        parent_run_id=None,
        tags={"a": "b"},
    ),
    p.RunResumed(run_id="r"),
    p.RunParamsLogged(run_id="r", params={"lr": "0.1"}),
    p.RunMetricsLogged(run_id="r", points=(("loss", 0.5, 10, 0), ("loss", 0.25, 11, 1))),
    p.RunTagsSet(run_id="r", tags={"x": "y"}),
    p.RunTagDeleted(run_id="r", key="x"),
    p.RunArtifactLogged(run_id="r", path="a/b.txt", size=3, sha256="0" * 64),
    p.RunInputsLogged(
        run_id="r",
        datasets=(
            p.DatasetInput(
                name="train",
                digest="abc",
                source_type="s3",
                source="s3://b/k",
                dataset_schema='{"x": "double"}',
                tags={"mlflow.data.context": "train"},
            ),
        ),
    ),
    p.RunFinished(run_id="r", status="FINISHED", end_time=5),
    p.RunDeleted(run_id="r"),
    p.RunRestored(run_id="r"),
    m.RegisteredModelCreated(name="m", description="d", tags={"t": "v"}),
    m.RegisteredModelRenamed(name="m", new_name="n"),
    m.RegisteredModelDeleted(name="m"),
    m.RegisteredModelDescribed(name="m", description="d"),
    m.RegisteredModelTagSet(name="m", key="k", value="v"),
    m.RegisteredModelTagDeleted(name="m", key="k"),
    m.ModelVersionCreated(name="m", source="/a", run_id="r", tags={"a": "b"}, user_id="u"),
    m.ModelVersionDescribed(name="m", version=1, description="d"),
    m.ModelVersionTagSet(name="m", version=1, key="k", value="v"),
    m.ModelVersionTagDeleted(name="m", version=1, key="k"),
    m.ModelVersionStageChanged(
        name="m", version=2, stage="Production", archive_existing_versions=True
    ),
    m.ModelVersionDeleted(name="m", version=1),
    m.ModelAliasSet(name="m", version=1, alias="champion"),
    m.ModelAliasDeleted(name="m", alias="champion"),
    w.WebhookCreated(
        id="h",
        name="hook",
        url="https://example.com/x",
        events=("model.*",),
        sealed_secret="gAAAAA-ciphertext",
        secret_key_id="0123abcd0123abcd",
        description="d",
        deliver_after="41",
    ),
    w.WebhookUpdated(id="h", url="http://example.com/y", events=("run.*",), active=False),
    w.WebhookDeleted(id="h"),
    lm.LoggedModelCreated(
        model_id="m-1",
        experiment_id="1",
        name="model",
        artifact_key="1/models/m-1/artifacts",
        model_type="sklearn",
        source_run_id="r",
        params={"lr": "0.1"},
        tags={"t": "v"},
    ),
    lm.LoggedModelFinalized(model_id="m-1", experiment_id="1", status="FAILED", status_message="x"),
    lm.LoggedModelTagsSet(model_id="m-1", experiment_id="1", tags={"t": "w"}),
    lm.LoggedModelTagDeleted(model_id="m-1", experiment_id="1", key="t"),
    lm.LoggedModelParamsLogged(model_id="m-1", experiment_id="1", params={"depth": "3"}),
    lm.LoggedModelArtifactLogged(
        model_id="m-1", experiment_id="1", path="MLmodel", size=3, sha256="0" * 64
    ),
    lm.LoggedModelMetricsLogged(
        model_id="m-1",
        experiment_id="1",
        points=(("acc", 0.5, 3, 1),),
        run_id="r",
        dataset_name="d",
        dataset_digest="x",
    ),
    lm.LoggedModelDeleted(model_id="m-1", experiment_id="1"),
    lm.RunOutputsLogged(run_id="r", models=(lm.ModelOutput(model_id="m-1", step=2),)),
    lm.RunModelInputsLogged(run_id="r", model_ids=("m-1",)),
    j.JobSubmitted(
        job_id="j",
        name="train",
        kind="distributed",
        entry_point="pkg.mod:loop",
        params={"lr": "0.1"},
        cpus=2,
        gpus=0.5,
        memory=1 << 30,
        num_workers=2,
        experiment_id="1",
        run_id="r",
        runtime="ray://head:10001",
        project={"name": "p", "python_env": "python_env.yaml"},
    ),
    j.JobStarted(job_id="j", host="node-1", log_path="/data/jobs/j/output.log"),
    j.JobFinished(job_id="j", log_tail="done"),
    j.JobFailed(job_id="j", error="exit status 1: ValueError: x", log_tail="Traceback ..."),
    j.JobCancelled(job_id="j", reason="no longer needed"),
    b.BundleRequested(id="b", name="m", version=1, target="onnx", source="/m", trigger="alias:x"),
    b.BundleBuilt(
        id="b",
        artifact_uri="/a/b",
        runtime="onnxruntime",
        size_bytes=10,
        max_abs_diff=1e-7,
        manifest={"parity": {"rtol": 1e-4, "passed": True}, "files": [{"path": "model.onnx"}]},
    ),
    b.BundleFailed(id="b", reason="parity broken on input 1"),
    *DEPLOYMENT_SAMPLES,
    a.UserCreated(name="alice", password_hash="$argon2id$v=19$...", admin=True),
    a.UserPasswordChanged(name="alice", password_hash=None),
    a.UserAdminChanged(name="alice", admin=False),
    a.UserDeleted(name="alice"),
    a.GroupCreated(group="g", description="d"),
    a.GroupMemberAdded(group="g", user="alice"),
    a.GroupMemberRemoved(group="g", user="alice"),
    a.GroupDeleted(group="g"),
    a.TokenCreated(id="t", user="alice", token_hash="0" * 64, description="ci", expires=9),
    a.TokenRevoked(id="t"),
    a.PermissionSet(kind="model", key="m", principal="group:g", level="MANAGE"),
    a.PermissionRemoved(kind="model", key="m", principal="group:g"),
    a.AuthDenied(
        status=403,
        method="PUT",
        path="/api/v1/registered-models/m/aliases/champion",
        route="/api/v1/registered-models/{name}/aliases/{alias}",
        needs="MANAGE on model 'm'",
        reason="alice needs MANAGE on model 'm' for this",
        token_id="t",
        credential="token",
        client="10.0.0.7",
        suppressed=3,
    ),
]


def test_every_registered_type_has_a_sample_here():
    assert sorted(s.TYPE for s in SAMPLES) == REGISTRY.types()


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda s: s.TYPE)
def test_an_event_survives_encoding_and_decoding_unchanged(payload: p.Payload):
    ev = Event.of(payload, actor="user:test", trace="00-abc-def-01")
    back = decode(encode(ev))
    assert back == ev
    assert back.stream == payload.stream()


def test_webhook_events_from_before_secrets_were_sealed_still_decode():
    old = '{"id":"h","name":"hook","url":"https://e.com/x","events":["model.*"],"secret":"%s"}'
    for type_, data in (
        ("webhook.created", old % ("s" * 20)),
        ("webhook.updated", '{"id":"h","secret":"%s"}' % ("t" * 20)),
    ):
        ev = Event.of(REGISTRY.payload_class(type_).model_validate_json(data))
        assert decode(encode(ev)).data == ev.data


def test_the_wire_form_is_plain_json_with_stable_type_names():
    ev = Event.of(p.RunTagsSet(run_id="r", tags={"a": "b"}))
    doc = json.loads(encode(ev))
    assert doc["type"] == "run.tags_set"
    assert doc["stream"] == "run:r"
    assert doc["data"] == {"run_id": "r", "tags": {"a": "b"}}
    assert set(doc) == {"id", "type", "stream", "time", "v", "actor", "trace", "data"}


def test_nan_and_infinities_travel_as_strings_and_come_back_as_floats():
    pl = p.RunMetricsLogged(
        run_id="r", points=(("m", math.nan, 1, 0), ("m", math.inf, 1, 1), ("m", -math.inf, 1, 2))
    )
    blob = encode(Event.of(pl))
    assert b"NaN" in blob and b'"Infinity"' in blob
    json.loads(blob)  # still standard JSON
    values = [pt[1] for pt in decode(blob).data.points]  # type: ignore[attr-defined]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf


def test_an_unknown_type_is_a_corrupt_event_naming_the_type():
    with pytest.raises(CorruptEvent, match="unknown event type 'run.exploded'"):
        decode_data("run.exploded", 1, "{}")


def test_an_invalid_payload_is_a_corrupt_event_naming_the_field():
    with pytest.raises(CorruptEvent, match="params"):
        decode_data("run.params_logged", 1, '{"run_id": "r"}')


def test_undecodable_json_is_a_corrupt_event():
    with pytest.raises(CorruptEvent, match="undecodable|invalid"):
        decode_data("run.params_logged", 1, "{not json")


def test_a_payload_from_a_newer_version_asks_for_an_upgrade():
    with pytest.raises(CorruptEvent, match="newer than this build"):
        decode_data("run.tags_set", 9, '{"run_id": "r", "tags": {}}')


def test_old_payload_versions_are_lifted_by_their_upcasters():
    class RunNoted(p.Payload):
        """Version 3 of an imaginary event whose field was renamed twice."""

        TYPE = "test.noted"
        VERSION = 3
        run_id: str
        note: str

        def stream(self) -> str:
            return f"run:{self.run_id}"

    registry = EventRegistry([RunNoted])

    @registry.upcaster("test.noted", from_version=1)
    def v1_to_v2(data: dict) -> dict:
        return {"run_id": data["run"], "text": data["text"]}

    @registry.upcaster("test.noted", from_version=2)
    def v2_to_v3(data: dict) -> dict:
        return {"run_id": data["run_id"], "note": data["text"]}

    lifted = decode_data("test.noted", 1, '{"run": "r1", "text": "hi"}', registry)
    assert lifted == RunNoted(run_id="r1", note="hi")
    assert decode_data("test.noted", 2, '{"run_id": "r1", "text": "hi"}', registry) == lifted
    with pytest.raises(CorruptEvent, match="no upcaster"):
        EventRegistry([RunNoted]).upcast("test.noted", 1, {})


def test_payloads_refuse_unknown_fields_and_are_frozen():
    with pytest.raises(ValueError):
        p.RunTagsSet(run_id="r", tags={}, colour="red")  # type: ignore[call-arg]
    tags = p.RunTagsSet(run_id="r", tags={})
    with pytest.raises(ValueError):
        tags.run_id = "other"  # type: ignore[misc]


def test_event_ids_are_uuid7_and_sort_by_creation_time():
    ids = [uuid7() for _ in range(200)]
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", i)
        for i in ids
    )
    assert len(set(ids)) == 200
    prefixes = [i[:13] for i in ids]
    assert prefixes == sorted(prefixes)


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda s: s.TYPE)
def test_a_stored_row_at_the_current_version_decodes_as_the_general_path_does(
    payload: p.Payload,
) -> None:
    ev = Event.of(payload, actor="alice#token:01")
    text = encode_data(payload)
    row = decode_row(id=ev.id, type=ev.type, stream=ev.stream, time=ev.time, v=ev.v,
                     actor=ev.actor, trace=None, data=text)  # fmt: skip
    assert row == ev
    assert row.data == decode_data(ev.type, ev.v, text)


@pytest.mark.parametrize(
    "data",
    ['{"run_id": "r"}', '{"run_id": "", "params": {}}', '{"run_id": "r", "params": {"a": 1}}',
     "{not json", '{"run_id": "r", "params": {}, "extra": 1}', "[]", '"text"'],
)  # fmt: skip
def test_a_stored_row_the_validator_refuses_is_corrupt_for_the_general_path_s_reason(
    data: str,
) -> None:
    with pytest.raises(CorruptEvent) as general:
        decode_data("run.params_logged", 1, data)
    with pytest.raises(CorruptEvent) as stored:
        decode_row(id="i", type="run.params_logged", stream="run:r", time=1, v=1, actor="a",
                   trace=None, data=data)  # fmt: skip
    assert stored.value.message == general.value.message


def test_events_a_reader_makes_without_init_are_the_events_init_makes() -> None:
    data = p.RunFinished(run_id="r", status="FINISHED", end_time=9)
    made = Event(type="run.finished", stream="run:r", data=data, actor="bob", id="i", time=7,
                 v=1, trace="00-abc-def-01")  # fmt: skip
    stored = stored_event("run.finished", "run:r", data, "bob", "i", 7, 1, "00-abc-def-01")
    assert stored == made and hash(stored) == hash(made) and repr(stored) == repr(made)
    record = stored_record(3, stored)
    assert record == Recorded(3, made) and stored_record(3, stored, "p") == Recorded(3, made, "p")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stored.actor = "eve"  # type: ignore[misc]
