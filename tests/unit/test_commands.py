"""Commands as typed messages: each command class is declared once, and the gateway's
route, the remote client's call and the service's handler all come from it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from ledgerflow.events import auth_commands as ac
from ledgerflow.events import bundle_commands as bc
from ledgerflow.events import deployment_payloads as d
from ledgerflow.events import job_commands as jc
from ledgerflow.events import model_commands as mc
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events import webhook_commands as wc
from ledgerflow.events.commands import Command
from ledgerflow.events.errors import InvalidInput
from ledgerflow.remote.commands import call_for
from ledgerflow.services.auth.service import AuthService
from ledgerflow.services.bundles.service import BundleService
from ledgerflow.services.deployer.service import DeploymentService
from ledgerflow.services.deployments import commands as dc
from ledgerflow.services.gateway.command_routes import body_model, operation_name
from ledgerflow.services.jobs.service import JobService
from ledgerflow.services.registry.service import RegistryService
from ledgerflow.services.tracking.service import TrackingService
from ledgerflow.services.webhooks.service import WebhookService

DOMAINS: list[tuple[tuple[type[Command[Any]], ...], Any]] = [
    (dc.DEPLOYMENT_COMMANDS, DeploymentService.handlers),
    (wc.WEBHOOK_COMMANDS, WebhookService.handlers),
    (mc.MODEL_COMMANDS, RegistryService.handlers),
    (tc.TRACKING_COMMANDS, TrackingService.handlers),
    (bc.BUNDLE_COMMANDS, BundleService.handlers),
    (jc.JOB_COMMANDS, JobService.handlers),
    (ac.AUTH_COMMANDS, AuthService.handlers),
]
ALL = [c for commands, _ in DOMAINS for c in commands]


@pytest.mark.parametrize(("commands", "handlers"), DOMAINS)
def test_every_command_of_a_domain_has_exactly_one_handler(commands, handlers):
    assert set(handlers.handled()) == set(commands)


@pytest.mark.parametrize("command", [c for c in ALL if c.HTTP], ids=lambda c: c.__name__)
def test_every_routed_command_says_what_its_caller_needs(command: type[Command[Any]]):
    need = command.NEEDS
    assert need is not None, f"{command.__name__} has a route but no NEEDS"
    for field in (need.field, need.kind[1:] if need.kind.startswith("@") else ""):
        assert not field or field in command.model_fields, (command.__name__, field)


@pytest.mark.parametrize("command", [c for c in ALL if c.HTTP], ids=lambda c: c.__name__)
def test_every_routed_command_names_fields_that_exist(command: type[Command[Any]]):
    http = command.HTTP
    assert http is not None
    fields = set(command.model_fields)
    assert set(http.path_fields) <= fields and set(http.query) <= fields
    assert http.body_field is None or http.body_field in fields
    assert not (http.optional_body and http.body_field)
    assert http.path.startswith("/") and http.summary


def test_a_hand_built_command_with_a_wrong_type_is_invalid_input_naming_the_field():
    with pytest.raises(InvalidInput) as e:
        dc.SetTraffic(name="web", weights=["a"])  # type: ignore[arg-type]
    assert e.value.field == "weights"
    assert e.value.message.startswith("weights: ")
    with pytest.raises(InvalidInput) as e:
        dc.Pause(name="web", colour=1)  # type: ignore[call-arg]
    assert e.value.field == "colour"


def test_commands_are_frozen():
    pause = dc.Pause(name="web")
    with pytest.raises(Exception, match="frozen"):
        pause.reason = "x"  # type: ignore[misc]


def test_a_command_travels_as_the_rest_call_its_class_declares():
    call = call_for(dc.SetTraffic(name="a/b", weights={"x": 1}, reason="r"))
    assert (call.method, call.path, call.params) == ("PUT", "/deployments/a%2Fb/traffic", None)
    assert call.json == {"weights": {"x": 1}, "reason": "r"}

    call = call_for(dc.RemoveVariant(name="web", variant="b", reason="gone"))
    assert (call.method, call.path) == ("DELETE", "/deployments/web/variants/b")
    assert (call.params, call.json, call.idempotent) == ({"reason": "gone"}, None, False)

    spec = d.VariantSpec(name="c", model="m", version=2)
    call = call_for(dc.AddVariant(name="web", variant=spec))
    assert call.json == spec.model_dump(mode="json")  # the whole body is the variant

    assert call_for(dc.Resume(name="web")).json is None
    assert call_for(dc.DeleteDeployment(name="web")).path == "/deployments/web"
    promote = call_for(dc.Promote(name="web", variant="b", alias=None))
    assert promote.json == {"variant": "b", "alias": None, "reason": ""}


def test_non_finite_numbers_travel_as_given_for_the_gateway_to_judge():
    call = call_for(dc.RecordFeedback(name="web", request_id="r", value=math.inf, kind="reward"))
    assert call.json["value"] == math.inf


def test_the_loops_own_commands_are_not_offered_over_rest():
    assert dc.AdvanceStep.HTTP is None
    with pytest.raises(InvalidInput, match="not offered"):
        call_for(dc.AdvanceStep(name="web", requests=1, duration_s=1.0))


def test_a_commands_body_model_is_its_fields_less_path_and_query():
    model = body_model(dc.Promote, ["variant", "alias", "reason"])
    assert list(model.model_fields) == ["variant", "alias", "reason"]
    assert model.model_fields["alias"].default == dc.DEFAULT_ALIAS
    assert model.model_config.get("extra") == "forbid"
    assert operation_name(dc.CreateDeployment) == "create_deployment"


def test_a_webhook_patch_sends_what_is_given_and_its_answer_reads_back_without_a_secret():
    call = call_for(wc.UpdateWebhook(name="ci", active=False))
    assert (call.method, call.path, call.idempotent) == ("PATCH", "/webhooks/ci", True)
    assert call.json is not None and call.json["active"] is False
    doc = {"id": "1", "name": "ci", "url": "https://x", "events": ["model.*"],
           "description": "", "active": True, "creation_time": 1, "last_updated_time": 2}  # fmt: skip
    assert wc.UpdateWebhook.ANSWER.decode(doc).secret is None
    created = wc.CreateWebhook.ANSWER.decode({**doc, "secret": "s" * 20})
    assert created.secret == "s" * 20
    assert wc.CreateWebhook.ANSWER.schema is wc.WebhookCreatedOut


def test_a_registry_command_fills_its_path_from_its_fields():
    call = call_for(mc.DeleteModelVersionTag(name="clf", version=3, key="k"))
    assert (call.method, call.path) == ("DELETE", "/registered-models/clf/versions/3/tags")
    assert (call.params, call.json) == ({"key": "k"}, None)
    call = call_for(mc.SetRegisteredModelAlias(name="clf", alias="champion", version=2))
    assert (call.path, call.json) == ("/registered-models/clf/aliases/champion", {"version": 2})
    call = call_for(mc.RegisterModel(model_uri="runs:/r/model", name="clf"))
    assert call.path == "/model-versions/register" and call.json is not None
    assert call.json["name"] == "clf"


def test_tag_values_are_made_text_where_the_command_is_built():
    import datetime

    when = datetime.date(2024, 5, 1)
    tag = tc.SetExperimentTag(experiment_id="1", key="k", value=when)
    assert tag.value == str(when) and call_for(tag).json == {"key": "k", "value": "2024-05-01"}
    created = mc.CreateRegisteredModel(name="m", tags={"n": 5, "f": 0.5})
    assert created.tags == {"n": "5", "f": "0.5"}
    assert call_for(tc.DeleteTag(run_id="r", key="k")).params == {"key": "k"}


def test_creating_an_experiment_answers_its_id():
    answer = tc.CreateExperiment.ANSWER
    assert answer.decode(answer.encode("42").model_dump()) == "42"


def test_the_bundle_policy_travels_to_its_route_and_building_is_not_offered_over_rest():
    call = call_for(bc.SetBundlePolicy(name="iris", on_alias=("champion",), targets="onnx"))
    assert (call.method, call.path) == ("PUT", "/registered-models/iris/bundle-policy")
    assert call.json == {"on_alias": ["champion"], "targets": "onnx"}
    clear = call_for(bc.ClearBundlePolicy(name="iris"))
    assert (clear.method, clear.path, clear.json) == ("DELETE", clear.path, None)
    assert bc.BuildBundles.HTTP is None
    with pytest.raises(InvalidInput, match="not offered"):
        call_for(bc.BuildBundles(model_uri="models:/iris/1"))


def test_job_commands_have_no_rest_route_and_a_submitted_function_survives_json():
    assert jc.SubmitJob.HTTP is None and jc.CancelJob.HTTP is None
    submit = jc.SubmitJob(
        name="f", kind="function", entry_point="m:f", experiment_id="0", user_id="u",
        function=bytes(range(256)), params={"n": 3},
    )  # fmt: skip
    assert submit.params == {"n": "3"}
    assert jc.SubmitJob.model_validate_json(submit.model_dump_json()) == submit
    with pytest.raises(InvalidInput, match="not offered"):
        call_for(jc.CancelJob(job_id="j"))


def test_the_gateway_offers_every_command_with_a_route_by_its_name_and_no_other():
    from ledgerflow.services.gateway.command_registry import DOMAINS, UnknownCommand, offered

    with_route = {c for c in ALL if c.HTTP is not None}
    assert {c for domain in DOMAINS for c in domain.offered()} == with_route
    for command in with_route:
        assert offered(command.__name__)[0] is command
    with pytest.raises(UnknownCommand, match="not offered by the gateway"):
        offered("AdvanceStep")
    with pytest.raises(UnknownCommand, match="unknown command 'Nope'; the gateway offers: "):
        offered("Nope")
