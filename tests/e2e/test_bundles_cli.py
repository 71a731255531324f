"""`ledgerflow bundle policy run` as a real process: setting the policy's alias makes it
build the bundle on its own Ray, and SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

import ledgerflow as lf
from tests.conftest import PYTHON
from tests.e2e.test_cli import cli, cli_env
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def test_the_policy_runner_builds_the_bundle_when_the_champion_alias_is_set(
    tracking: Path, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    with lf.start_run():
        lf.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(X, y), name="model", input_example=X[:3],
            registered_model_name="iris",
        )  # fmt: skip
    set_policy = cli(tracking, "bundle", "policy", "set", "iris", "--on-alias", "champion",
                     "-t", "onnx")  # fmt: skip
    assert set_policy.returncode == 0, set_policy.stderr

    log = tmp_path / "runner.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "ledgerflow.cli", "bundle", "policy", "run"],
            env=cli_env(tracking), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until(lambda: "Ctrl-C or SIGTERM stops" in log.read_text(), 60, log.read_text)
        lf.Client().set_registered_model_alias("iris", "champion", 1)
        wait_until(lambda: bool(lf.bundles.list("iris", 1)), 180, log.read_text)
        [bundle] = lf.bundles.list("iris", 1)
        assert (bundle.target, bundle.trigger) == ("onnx", "alias:champion")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_downloaded_onnx_bundle_serves_predictions_with_its_own_server(
    tracking: Path, tmp_path: Path
) -> None:
    import httpx
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from tests.conftest import free_port

    X, y = load_iris(return_X_y=True)
    with lf.start_run():
        lf.sklearn.log_model(
            LogisticRegression(max_iter=500).fit(X, y), name="model", input_example=X[:3],
            registered_model_name="served",
        )  # fmt: skip
    # Built inline (no Ray of its own to start and stop, ~4 s): what this test is about is
    # the downloaded bundle; the test above builds on a process's own Ray.
    built = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "bundle", "build", "models:/served/1", "-t", "onnx",
         "--json"],
        env=cli_env(tracking) | {"LEDGERFLOW_RAY_ADDRESS": "inline"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    [bundle] = lf.bundles.list("served", 1)
    folder = Path(lf.bundles.download(bundle.id, str(tmp_path / "bundle")))

    port = free_port()
    env = {**cli_env(tracking), "PORT": str(port), "HOST": "127.0.0.1"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([PYTHON, "serve.py"], cwd=folder, env=env, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{url}/health").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, 60, log.read_text)
        answer = httpx.post(f"{url}/predict", json={"inputs": X[:20].tolist()})
        assert answer.status_code == 200
        expected = lf.pyfunc.load_model("models:/served/1").predict(X[:20])
        assert np.array_equal(np.asarray(answer.json()["outputs"]), expected)
        bad = httpx.post(f"{url}/predict", json={"rows": []})
        assert bad.status_code == 400 and "inputs" in bad.json()["error"]
    finally:
        proc.terminate()
        proc.wait(30)
