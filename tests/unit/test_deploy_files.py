"""compose.yaml and deploy/Dockerfile agree with the code: settings it reads, commands it has.

No Docker engine runs here, so this is how the distributed stack's files stay true.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.deploy_checks import WHEEL_SOURCES, copied, hosts_named, load_env, parse_command

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("ledgerflow")}
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_stack_has_the_services_the_distributed_deployment_needs() -> None:
    assert {"kafka", "postgres", "redis", "minio", "gateway", "projector"} <= set(SERVICES)
    assert SERVICES["kafka"]["image"].startswith("apache/kafka")
    assert "controller" in SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    assert SERVICES["projector"]["deploy"]["replicas"] == 2


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_ledgerflow_variable_is_a_setting_with_a_valid_value(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = OURS[name]["environment"]
    assert all(key.startswith("LEDGERFLOW_") for key in env)
    settings = load_env(env, name, monkeypatch)
    assert settings.is_kafka and settings.views_db_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_host_a_setting_names_is_a_service_of_the_stack(name: str) -> None:
    for key, host, _ in hosts_named(OURS[name]["environment"]):
        assert host in SERVICES, f"{name}: {key} names {host!r}, not a compose service"


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_service_command_exists_with_the_options_it_is_given(name: str) -> None:
    parse_command(OURS[name]["command"], name)  # unknown options and bad values fail


def test_the_image_installs_the_extras_the_settings_need() -> None:
    assert re.search(r'pip install "\.\[distributed\]"', DOCKERFILE)
    extras = PYPROJECT["project"]["optional-dependencies"]
    distributed = " ".join(extras["distributed"])
    for extra in ("kafka", "server", "s3", "postgres", "redis"):
        assert extra in distributed


def test_the_image_copies_everything_the_wheel_is_built_from() -> None:
    assert copied(DOCKERFILE) >= WHEEL_SOURCES
