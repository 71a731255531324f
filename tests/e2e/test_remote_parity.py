"""Remote mode against `ledgerflow server` as a process: an SDK process on the gateway
URL creates a webhook, logs and registers a model; the receiver gets the signed
model.* events, and remote subscriptions (in that process and in this one) see the
same events."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.events.log import Item
from tests.conftest import PYTHON, python_env
from tests.integration.gateway_fixture import GatewayProcess
from tests.integration.webhook_receiver import Receiver
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SECRET = "e2e-secret-" + "k" * 24
SDK_PROCESS = """
import json, os
import ledgerflow as lf

c = lf.Client()
hook = c.create_webhook("registry", os.environ["RECEIVER_URL"], ["model.*"],
                        secret=os.environ["HOOK_SECRET"])
listed = c.list_webhooks()
lf.set_experiment("parity")
with lf.start_run() as run:
    lf.log_param("lr", 0.1)
    lf.log_text("weights", "model/weights.txt")
lf.register_model(f"runs:/{run.info.run_id}/model", "served")
seen = [(i.event.type, i.event.id) for i in lf.subscribe(types=["model.*"], follow=False)]
print(json.dumps({"secret": hook.secret, "listed": [h.secret for h in listed], "seen": seen}))
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GatewayProcess]:
    s = GatewayProcess(tmp_path / "data", tmp_path / "server.log", command="server").start()
    yield s
    s.stop()


@pytest.fixture
def here_remote(server: GatewayProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """This test process's SDK pointed at the server too."""
    monkeypatch.setenv("LEDGERFLOW_SPOOL_DIR", str(tmp_path / "spool-here"))
    lf.set_tracking_uri(server.url)
    yield server
    session.reset()


def test_a_remote_sdk_process_creates_a_webhook_that_delivers_what_remote_subscribers_see(
    here_remote: GatewayProcess, tmp_path: Path
) -> None:
    server = here_remote
    receiver = Receiver().up()
    receiver.secret = SECRET
    live: list[Item] = []
    stop = threading.Event()
    head = httpx.get(f"{server.url}/api/v1/events/head", timeout=10).json()["token"]

    def follow() -> None:
        for item in lf.subscribe(types=["model.*"], after=head, stop=stop):
            live.append(item)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        env = python_env() | {
            "LEDGERFLOW_TRACKING_URI": server.url,
            "LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool-sdk"),
            "RECEIVER_URL": receiver.url,
            "HOOK_SECRET": SECRET,
        }
        out = subprocess.run(
            [PYTHON, "-c", SDK_PROCESS], env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["secret"] == SECRET and report["listed"] == [None]
        seen = [tuple(pair) for pair in report["seen"]]
        assert [t for t, _ in seen] == ["model.created", "model.version_created"]

        delivered = receiver.wait_for(2)  # signed (the receiver verifies), in log order
        assert not receiver.rejected
        assert delivered[:2] == [i for _, i in seen]
        wait_until(lambda: len(live) >= 2, 30, lambda: f"{len(live)} of 2 live events")
        assert [(i.event.type, i.event.id) for i in live] == seen  # type: ignore[union-attr]

        attempts = lf.Client().list_webhook_deliveries("registry")
        assert {a.event_id for a in attempts if a.ok} == {i for _, i in seen}
        shown = lf.Client().get_webhook("registry")
        assert shown.secret is None and shown.failed_attempts == 0

        listed = subprocess.run(
            [PYTHON, "-m", "ledgerflow", "--tracking-uri", server.url, "webhooks", "list",
             "--json"],
            env=python_env() | {"LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool-cli")},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        [hook] = json.loads(listed.stdout)
        assert hook["name"] == "registry" and hook.get("secret") is None
    finally:
        stop.set()
        follower.join(10)
        receiver.down()
