"""The other resources a command's payload names, which its NEEDS check besides its own."""

from __future__ import annotations

from typing import Any

import pytest

from ledgerflow.events import bundle_commands as bc
from ledgerflow.events import model_commands as mc
from ledgerflow.events.commands import Command
from ledgerflow.events.deployment_payloads import VariantSpec
from ledgerflow.events.named_resources import model_in_uri, models_of_variants, run_in_uri
from ledgerflow.events.permissions import Level
from ledgerflow.services.deployments import commands as dc


class Views:
    """The state a need reads: one deployment `web` whose variant `b` serves `m-b`."""

    def variant_model(self, deployment: str, variant: str) -> str | None:
        return "m-b" if (deployment, variant) == ("web", "b") else None


def named(command: Command[Any]) -> set[tuple[str, str, str]]:
    need = type(command).NEEDS
    assert need is not None
    return {(n.kind, key, n.level.name) for n in need.also for key in n.keys(command, Views())}


@pytest.mark.parametrize(
    ("uri", "run", "model"),
    [
        ("runs:/abc/model", ["abc"], []),
        ("runs:///abc/sub/model", ["abc"], []),
        ("runs:/", [], []),
        ("models:/digits/3", [], ["digits"]),
        ("models:/digits@champion", [], ["digits"]),
        ("models:/digits/latest", [], ["digits"]),
        ("/tmp/model", [], []),
        ("s3://bucket/runs:/x", [], []),
    ],
)
def test_uris_name_the_run_or_model_the_registry_would_read(uri, run, model):
    assert run_in_uri(uri) == run
    assert model_in_uri(uri) == model


def test_malformed_variants_name_nothing_and_the_deployer_refuses_them_later():
    assert models_of_variants([{"model": "a"}, {"model": 3}, "x", {}, {"model": "b"}]) == [
        "a",
        "b",
    ]
    spec = VariantSpec(name="c", model="typed", version=1)
    assert models_of_variants([spec]) == ["typed"]
    assert models_of_variants("not a list") == []
    assert models_of_variants({"model": "a"}) == []


def test_a_deployment_needs_read_on_every_variants_model():
    command = dc.CreateDeployment(
        name="web",
        variants=[{"name": "a", "model": "m1", "version": 1}, {"name": "b", "model": "m2"}],
    )
    assert named(command) == {("model", "m1", "READ"), ("model", "m2", "READ")}
    added = dc.AddVariant(name="web", variant={"name": "c", "model": "m3", "version": 1})
    assert named(added) == {("model", "m3", "READ")}
    assert dc.AddVariant.NEEDS is not None and dc.AddVariant.NEEDS.level == Level.EDIT


def test_promoting_with_an_alias_needs_manage_on_the_variants_model():
    assert named(dc.Promote(name="web", variant="b")) == {("model", "m-b", "MANAGE")}
    assert named(dc.Promote(name="web", variant="b", alias=None)) == set()
    assert named(dc.Promote(name="web", variant="gone")) == set()  # the deployer says why


def test_a_model_version_needs_read_on_the_run_or_model_its_source_names():
    assert named(mc.RegisterModel(name="m", model_uri="runs:/r1/model")) == {("run", "r1", "READ")}
    assert named(mc.RegisterModel(name="m", model_uri="models:/other/2")) == {
        ("model", "other", "READ")
    }
    assert named(mc.RegisterModel(name="m", model_uri="/tmp/files")) == set()
    version = mc.CreateModelVersion(name="m", source="runs:/r2/model", run_id="r3")
    assert named(version) == {("run", "r2", "READ"), ("run", "r3", "READ")}


def test_a_bundle_needs_read_on_the_model_it_converts():
    assert named(bc.BuildBundles(model_uri="models:/digits@champion")) == {
        ("model", "digits", "READ")
    }


def test_the_route_description_says_what_else_is_needed():
    assert dc.CreateDeployment.NEEDS is not None
    assert dc.CreateDeployment.NEEDS.describe() == (
        "any identity and READ on every variant's registered model"
    )
