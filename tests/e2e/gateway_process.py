"""`ledgerflow gateway` as a real process on a free port, for the end-to-end tests."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, free_port, python_env

START_TIMEOUT_S = 60.0


class GatewayProcess:
    def __init__(
        self,
        data_dir: Path,
        log: Path,
        port: int | None = None,
        command: str = "gateway",
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env or {}
        self.command = command
        self.extra = extra
        self.data_dir = data_dir
        self.log = log
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayProcess:
        seen = len(self.output())  # a restart appends to the same log
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(self.data_dir), self.command]
                + ["--port", str(self.port), *self.extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=python_env() | self.env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"ledgerflow {self.command} exited with {self.proc.returncode}:\n{self.output()}"
                )
            if f"listening on {self.url}" in self.output()[seen:]:
                r = httpx.get(self.url + "/health", timeout=5)
                assert r.status_code == 200 and r.json()["status"] == "ok"
                return self
            time.sleep(0.05)
        self.kill()
        pytest.fail(
            f"ledgerflow {self.command} did not get ready in {START_TIMEOUT_S}s:\n{self.output()}"
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
