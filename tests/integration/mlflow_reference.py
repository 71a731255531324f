"""A real `mlflow server` (SQLite backend) for the tests that compare Ledgerflow's MLflow
REST API with MLflow's own answers on the same calls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

START_TIMEOUT_S = 120.0


def client_env() -> dict[str, str]:
    """This process's environment without Ledgerflow's or MLflow's settings, and with
    MLflow's telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEDGERFLOW_", "MLFLOW_"))}
    return env | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


class MlflowServer:
    """`mlflow server` on a free port over `folder` (m.db and an artifact folder a/)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.log = folder / "mlflow-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> MlflowServer:
        """Start it without waiting (starting takes MLflow 10-20 s)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1",
                 "--backend-store-uri", f"sqlite:///{self.folder / 'm.db'}",
                 "--default-artifact-root", str(self.folder / "a")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                # no background job runner (it starts a pool of ten workers)
                env=client_env() | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )  # fmt: skip
        return self

    def wait_ready(self) -> MlflowServer:
        assert self.proc is not None, "launch() first"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mlflow server exited:\n{self.log.read_text(errors='replace')}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"mlflow server did not answer /health in {START_TIMEOUT_S:g} s")

    def stop(self) -> None:
        """Its process group: `mlflow server` runs uvicorn as a child process."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
