"""What users install is the wheel, not this checkout: build it, install it into a fresh
virtual environment, and run a backend from it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, python_env

pytestmark = pytest.mark.slow

LOG_A_RUN = """
import ledgerflow as lf
lf.set_experiment("from-the-wheel")
with lf.start_run(run_name="wheel") as run:
    lf.log_param("lr", 0.1)
    lf.log_metric("loss", 0.25, step=3)
print(run.info.run_id)
"""


def _run(*args: str | Path, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
        env=env or python_env(), check=False,
    )  # fmt: skip
    assert out.returncode == 0, f"{args} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel (and the server extra) installed from it, not from here."""
    tmp = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", ROOT, "-w", tmp / "dist", timeout=300)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("ledgerflow-*.whl")
    # No pip of its own (ensurepip takes seconds): this checkout's pip installs into it
    # (`pip --python`), the wheel and what it declares for the server, nothing else.
    _run(sys.executable, "-m", "venv", "--without-pip", tmp / "venv")
    py = tmp / "venv" / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", py, "install", "-q", f"{wheel}[server]")
    return tmp / "venv"


def test_the_installed_wheel_imports_every_layer_from_site_packages(venv: Path) -> None:
    code = (
        "import ledgerflow, ledgerflow.services.bootstrap, ledgerflow.services.server, "
        "ledgerflow.services.tracking, ledgerflow.workers, ledgerflow.events, "
        "ledgerflow.services.serving.grpc_front; "  # its hpack comes with the server extra
        "print(ledgerflow.__file__); print(ledgerflow.services.bootstrap.__file__)"
    )
    out = _run(venv / "bin" / "python", "-c", code, env=python_env() | {"PYTHONPATH": ""})
    for line in out.split():
        assert "site-packages" in line and str(ROOT) not in line


@contextmanager
def _serving(venv: Path, tmp_path: Path, command: str) -> Iterator[str]:
    """`ledgerflow COMMAND` (server, ui) from the wheel's venv, once it answers /health."""
    port = free_port()
    log = tmp_path / f"{command}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [venv / "bin" / "ledgerflow", "--tracking-uri", tmp_path / "data", command,
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=python_env(), cwd=tmp_path,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the wheel's {command} did not answer /health:\n{log.read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def server(venv: Path, tmp_path: Path) -> Iterator[str]:
    with _serving(venv, tmp_path, "server") as url:
        yield url


def test_the_wheel_carries_the_built_web_ui(venv: Path) -> None:
    (wheel,) = (venv.parent / "dist").glob("ledgerflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "ledgerflow/services/ui/static/index.html" in names
    assert any(re.fullmatch(r"ledgerflow/services/ui/static/assets/index-.+\.js", n) for n in names)


def test_the_wheel_carries_the_r_helper_and_crate_helper_prints_where(venv: Path) -> None:
    (wheel,) = (venv.parent / "dist").glob("ledgerflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"ledgerflow/crate/ledgerflow.R", "ledgerflow/crate/worker.R"} <= set(names)
    out = _run(venv / "bin" / "ledgerflow", "crate-helper", env=python_env() | {"PYTHONPATH": ""})
    helper = Path(out.strip())
    assert "site-packages" in str(helper) and str(ROOT) not in str(helper)
    assert "ledgerflow_save_model <- function" in helper.read_text()


def test_the_installed_ledgerflow_ui_serves_the_web_ui_and_the_api(
    venv: Path, tmp_path: Path
) -> None:
    with _serving(venv, tmp_path, "ui") as url:
        page = httpx.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and '<div id="root">' in page.text
        script = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
        assert script is not None, page.text
        asset = httpx.get(url + script.group(1), timeout=10)
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        deep = httpx.get(f"{url}/runs/abc/metrics", timeout=10)  # a shared link opens the app
        assert deep.status_code == 200 and deep.text == page.text
        assert httpx.get(f"{url}/api/v1/experiments", timeout=10).status_code == 200
        missing = httpx.get(f"{url}/api/v1/no-such-route", timeout=10)
        assert missing.status_code == 404 and missing.json()["error_code"]


def test_a_server_from_the_wheel_takes_a_run_and_reads_it_back(
    venv: Path, server: str, tmp_path: Path
) -> None:
    assert httpx.get(f"{server}/health", timeout=5).json()["status"] == "ok"
    env = python_env() | {
        "LEDGERFLOW_TRACKING_URI": server,
        "LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool"),
    }
    run_id = _run(venv / "bin" / "python", "-c", LOG_A_RUN, env=env).strip()
    run = httpx.get(f"{server}/api/v1/runs/{run_id}", timeout=10).json()
    assert run["info"]["status"] == "FINISHED"
    assert run["data"]["params"] == {"lr": "0.1"}
    assert run["data"]["metrics"]["loss"] == 0.25
