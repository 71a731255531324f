"""One run of `ledgerflow demo` for the whole test session.

The demo trains two CNNs as Ray jobs, builds four bundles, serves the champion from a
fresh process and runs an A/B test: tens of seconds. tests/e2e/test_demo.py reads
everything it recorded back, and tests/e2e/test_cli.py checks that the command line's
`--tracking-uri` option decides where it records; both read this one run, started the
way users start it: `ledgerflow --tracking-uri DIR demo --epochs N`.

Registered for every test by ``pytest_plugins`` in tests/conftest.py; only tests that
name ``demo_run`` pay for it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PYTHON, python_env

DEMO_EPOCHS = 2
DEMO_TIMEOUT_S = 300


@dataclass(frozen=True)
class DemoRun:
    data_dir: Path  # what --tracking-uri named
    env_data_dir: Path  # what LEDGERFLOW_TRACKING_URI named: the option must win over it
    process: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`ledgerflow demo` run once, to completion, whatever its exit status."""
    tmp = tmp_path_factory.mktemp("demo")
    data_dir, env_data_dir = tmp / "data", tmp / "env-data"
    env = python_env(env_data_dir)
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(key, None)
    env["COLUMNS"] = "100"  # rich wraps at the terminal width; keep the output predictable
    process = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(data_dir), "demo",
         "--epochs", str(DEMO_EPOCHS)],
        env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False,
    )  # fmt: skip
    return DemoRun(data_dir, env_data_dir, process)
