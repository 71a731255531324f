"""`ledgerflow gateway` as a process, with SDK processes logging to it in remote mode:
the same results as embedded mode, a 30 s outage that training never notices, and a
spool left by a killed process shipped by `ledgerflow sync`."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PYTHON, python_env
from tests.integration.gateway_fixture import GatewayProcess

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent / "scripts"
OUTAGE_S = 30.0


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    g = GatewayProcess(tmp_path / "gateway-data", tmp_path / "gateway.log").start()
    yield g
    g.stop()


def remote_env(url: str, spool: Path) -> dict[str, str]:
    env = python_env()
    env["LEDGERFLOW_TRACKING_URI"] = url
    env["LEDGERFLOW_SPOOL_DIR"] = str(spool)
    return env


def run_script(name: str, env: dict[str, str], cwd: Path, timeout: float = 180) -> str:
    result = subprocess.run(
        [PYTHON, str(SCRIPTS / name)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_remote_mode_gives_what_embedded_mode_gives(gateway: GatewayProcess, tmp_path: Path):
    embedded = json.loads(
        run_script("walkthrough.py", python_env(tmp_path / "embedded-data"), tmp_path)
    )
    remote = json.loads(
        run_script("walkthrough.py", remote_env(gateway.url, tmp_path / "spool"), tmp_path)
    )
    assert remote == embedded
    assert remote["predict_alias"] == [6, 7] and remote["champion"] == 1
    assert [r["name"] for r in remote["runs"]] == ["lr-0.001", "lr-0.01", "lr-0.1", "model"]
    assert list((tmp_path / "spool").glob("*/*.db")) == []  # all shipped, spool removed


def served_steps(gateway: GatewayProcess, run_id: str) -> list[int]:
    """The steps of the outage run's `loss` the gateway holds now ([] while it has none)."""
    r = httpx.get(f"{gateway.url}/api/v1/runs/{run_id}/metrics/history", params={"key": "loss"})
    return list(r.json()["steps"]) if r.status_code == 200 else []


def wait_for_steps(gateway: GatewayProcess, run_id: str, more_than: int) -> int:
    deadline = time.monotonic() + 60
    while len(got := served_steps(gateway, run_id)) <= more_than:
        assert time.monotonic() < deadline, f"the gateway got {len(got)} of > {more_than} points"
        time.sleep(0.1)
    return len(got)


def test_a_30_second_gateway_outage_never_blocks_training_and_loses_nothing(
    gateway: GatewayProcess, tmp_path: Path
):
    stop = tmp_path / "stop-training"
    trainer = subprocess.Popen(
        [PYTHON, str(SCRIPTS / "outage_trainer.py"), str(stop), str(OUTAGE_S + 60)],
        env=remote_env(gateway.url, tmp_path / "spool"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert trainer.stdout is not None
        run_id = json.loads(trainer.stdout.readline())["run_id"]
        before = wait_for_steps(gateway, run_id, 100)  # points ship while the gateway is up
        gateway.kill()
        time.sleep(OUTAGE_S)
        gateway.start()
        wait_for_steps(gateway, run_id, before)  # and ship again once it is back
        stop.touch()
        out, err = trainer.communicate(timeout=180)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert trainer.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    print(f"slowest of {report['logged']} logging calls: {report['max_call_s'] * 1000:.1f} ms")
    assert report["logged"] > 1000
    assert report["max_call_s"] < 0.2  # a call that waited on the gateway would take seconds
    assert report["steps"] == list(range(report["logged"]))  # every point, once
    assert report["tags"]["progress"] == str((report["logged"] - 1) // 200 * 200)
    assert "cannot ship logged events" in err  # the outage was noticed, and logged past
    assert served_steps(gateway, run_id) == report["steps"]


def test_sync_ships_the_spool_of_a_process_killed_while_the_gateway_was_down(
    gateway: GatewayProcess, tmp_path: Path
):
    env = remote_env(gateway.url, tmp_path / "spool")
    logger = subprocess.Popen(
        [PYTHON, str(SCRIPTS / "killed_logger.py")],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert logger.stdin is not None and logger.stdout is not None
        run_id = logger.stdout.readline().strip()
        gateway.kill()
        logger.stdin.write("go\n")
        logger.stdin.flush()
        assert logger.stdout.readline().strip() == "spooled"
    finally:
        logger.send_signal(signal.SIGKILL)
        logger.wait(timeout=30)
    [left] = list((tmp_path / "spool").glob("*/*.db"))
    gateway.start()
    synced = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert synced.returncode == 0, synced.stderr
    assert "from 1 spool files" in synced.stdout and not left.exists()
    with httpx.Client(base_url=gateway.url + "/api/v1") as c:
        run = c.get(f"/runs/{run_id}").json()
        history = c.get(f"/runs/{run_id}/metrics/history", params={"key": "m"}).json()
    assert run["data"]["params"] == {"a": "1", "b": "2"} and run["data"]["tags"]["t"] == "v"
    assert history["steps"] == list(range(500))
    again = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0 and "shipped 0 events from 0 spool files" in again.stdout
