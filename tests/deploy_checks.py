"""What deployment files (compose.yaml, deploy/k8s) must agree on with the code: the
`ledgerflow` command lines they run and the `LEDGERFLOW_*` settings they set.

No Docker engine or Kubernetes cluster runs where the tests do, so these checks ask the
code itself: the CLI parses each command line as it would at start (options, types,
ranges), and the settings object loads each environment as a process would.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pytest
import typer

from ledgerflow.cli.app import app
from ledgerflow.events.settings import PREFIX, Settings, load_settings


@dataclass(frozen=True)
class Invocation:
    """A `ledgerflow ...` command line as the CLI parses it."""

    path: tuple[str, ...]  # the subcommands: ("webhooks", "run")
    params: dict[str, Any]  # every option's value, defaults included


@functools.cache
def _root() -> Any:
    """The click group of `ledgerflow` (typer may vendor click: duck-typed); built once."""
    return typer.main.get_command(app)


def parse_command(argv: list[str], where: str) -> Invocation:
    """Parse `argv` with the CLI's own parser, without running it: an unknown command or
    option, a bad value or one out of range fails the test, naming `where`."""
    assert argv and argv[0] == "ledgerflow", f"{where}: {argv} does not run `ledgerflow`"
    command = _root()
    rest, path = list(argv[1:]), []
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        assert sub is not None, f"{where}: `{' '.join(argv)}` has no command {rest[0]!r}"
        path.append(rest.pop(0))
        command = sub
    assert not hasattr(command, "commands"), f"{where}: {argv} names a group, not a command"
    try:
        ctx = command.make_context(" ".join(["ledgerflow", *path]), rest)
    except Exception as e:  # click's UsageError / BadParameter, whichever click typer uses
        pytest.fail(f"{where}: `{' '.join(argv)}`: {e}")
    return Invocation(tuple(path), dict(ctx.params))


# What the wheel is built from (setup.py derives the packages from the folders).
WHEEL_SOURCES = {"pyproject.toml", "setup.py", "README.md", "sdk", "events", "services", "workers"}


def copied(dockerfile: str) -> set[str]:
    """The paths a Dockerfile's COPY lines take from the build context."""
    return {
        part.rstrip("/")
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
        if not part.startswith("--")  # --chown=...
    }


def setting_names() -> set[str]:
    """Every LEDGERFLOW_* variable the settings object reads."""
    return {PREFIX + field.upper() for field in Settings.model_fields}


def load_env(env: Mapping[str, str], where: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process started with `env` reads; an unknown name fails first."""
    ours = {k: v for k, v in env.items() if k.startswith(PREFIX)}
    unknown = set(ours) - setting_names()
    assert not unknown, f"{where}: unknown settings {sorted(unknown)}"
    for key, value in ours.items():
        monkeypatch.setenv(key, str(value))
    return load_settings()


def hosts_named(env: Mapping[str, str]) -> Iterator[tuple[str, str, int | None]]:
    """(setting, host, port) of every network address a setting's URL names (a Kafka
    bootstrap list names several); s3:// locations name a bucket, not a host."""
    for key, value in env.items():
        text = str(value)
        if "://" not in text or text.startswith("s3://"):
            continue
        for part in text.split("://", 1)[1].split(","):
            url = urlparse("x://" + part)
            if url.hostname is not None:
                yield key, url.hostname, url.port
