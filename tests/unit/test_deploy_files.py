"""compose.yaml and deploy/Dockerfile agree with the code: settings it reads, commands it has.

No Docker engine runs here, so this is how the distributed stack's files stay true.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any
from urllib.parse import urlparse

import pytest
import typer
import yaml

from ledgerflow.cli.app import app
from ledgerflow.events.settings import PREFIX, Settings, load_settings
from tests.conftest import ROOT

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
    known = {PREFIX + field.upper() for field in Settings.model_fields}
    assert set(env) <= known, f"{name}: unknown settings {sorted(set(env) - known)}"
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    settings = load_settings()
    assert settings.is_kafka and settings.views_db_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_host_a_setting_names_is_a_service_of_the_stack(name: str) -> None:
    for key, value in OURS[name]["environment"].items():
        text = str(value)
        if "://" not in text or text.startswith("s3://"):
            continue
        for part in text.split("://", 1)[1].split(","):
            host = urlparse("x://" + part).hostname
            assert host in SERVICES, f"{name}: {key} names {host!r}, not a compose service"


def _command(args: list[str]) -> tuple[Any, list[str]]:
    """The click command `ledgerflow ARGS` runs (typer may vendor click: duck-typed)."""
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        assert sub is not None, f"`ledgerflow {' '.join(args)}`: no command {rest[0]!r}"
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_service_command_exists_with_the_options_it_is_given(name: str) -> None:
    argv = OURS[name]["command"]
    assert argv[0] == "ledgerflow"
    command, rest = _command(argv[1:])
    assert not hasattr(command, "commands"), f"{name}: {argv} names a group, not a command"
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    given = [a for a in rest if a.startswith("--")]
    assert set(given) <= options, f"{name}: unknown options {sorted(set(given) - options)}"


def test_the_image_installs_the_extras_the_settings_need() -> None:
    assert re.search(r'pip install "\.\[distributed\]"', DOCKERFILE)
    extras = PYPROJECT["project"]["optional-dependencies"]
    distributed = " ".join(extras["distributed"])
    for extra in ("kafka", "server", "s3", "postgres", "redis"):
        assert extra in distributed


def test_the_image_copies_everything_the_wheel_is_built_from() -> None:
    copied = {
        part.rstrip("/")
        for line in DOCKERFILE.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    }
    assert {"pyproject.toml", "setup.py", "README.md", "sdk", "events", "services",
            "workers"} <= copied  # fmt: skip
