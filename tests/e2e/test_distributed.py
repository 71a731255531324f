"""The distributed stack as real processes:
SDK writers -> gateway -> Kafka -> projector group -> PostgreSQL.

Four SDK processes in remote mode log runs concurrently through a gateway on Kafka;
two `ledgerflow projector` processes share the partitions; one is SIGKILLed midway
and restarted. The views must end equal to an embedded replay of the same events:
nothing lost, nothing doubled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from ledgerflow.events.kafka_log import KafkaEventLog
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector
from tests.conftest import PYTHON, python_env
from tests.integration.gateway_fixture import GatewayProcess
from tests.integration.test_projector_service import embedded_replay
from tests.integration.views_dump import dump_views

pytestmark = pytest.mark.slow

WRITERS = 4
RUNS = 3
STEPS = 30

WRITER = f"""
import sys
import ledgerflow as lf

i = int(sys.argv[1])
lf.set_experiment(f"writer-{{i}}")
for r in range({RUNS}):
    with lf.start_run(run_name=f"w{{i}}-r{{r}}"):
        lf.log_params({{"lr": 0.1 * r, "writer": i}})
        for s in range({STEPS}):
            lf.log_metric("loss", 1 / (s + 1), step=s)
            lf.log_metric("acc", s / {STEPS}, step=s)
        lf.set_tag("rank", str(i))
    lf.register_model(f"runs:/{{lf.last_active_run().info.run_id}}/model", "shared")
print("done", i)
"""


def stack_env(tmp_path: Path, kafka: str, views: str, prefix: str) -> dict[str, str]:
    env = python_env(tmp_path / "data")
    env |= {
        "LEDGERFLOW_EVENT_LOG": f"kafka://{kafka}",
        "LEDGERFLOW_VIEWS_DB": views,
        "LEDGERFLOW_KAFKA_TOPIC_PREFIX": prefix,
        "LEDGERFLOW_KAFKA_PARTITIONS": "3",
        "LEDGERFLOW_KAFKA_IDEMPOTENT": "false",  # Tansu has no InitProducerId
    }
    return env


def start_projector(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [PYTHON, "-m", "ledgerflow", "projector", "--group", "e2e"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def start_writer(env: dict[str, str], i: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-c", WRITER, str(i)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_writers_through_a_gateway_on_kafka_and_a_projector_group_with_a_killed_member(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    prefix = f"e2e-{uuid.uuid4().hex[:10]}"
    env = stack_env(tmp_path, kafka_bootstrap, postgres_url, prefix)
    logs = tmp_path / "projector.log"
    projectors = [start_projector(env, logs) for _ in range(2)]
    gateway = GatewayProcess(
        tmp_path / "data", tmp_path / "gateway.log",
        env={k: v for k, v in env.items() if k.startswith("LEDGERFLOW_")},
    ).start()  # fmt: skip
    remote = python_env() | {
        "LEDGERFLOW_TRACKING_URI": gateway.url,
        "LEDGERFLOW_SPOOL_DIR": str(tmp_path / "spool"),
    }
    writers = [start_writer(remote, i) for i in range(WRITERS)]
    try:
        time.sleep(6)  # writers are mid-way through their runs
        assert all(p.poll() is None for p in projectors), logs.read_text()
        os.kill(projectors[0].pid, signal.SIGKILL)
        projectors[0].wait()
        time.sleep(2)
        projectors[0] = start_projector(env, logs)
        for w in writers:
            out, _ = w.communicate(timeout=240)
            assert w.returncode == 0, out
        log = KafkaEventLog(kafka_bootstrap, topic_prefix=prefix, idempotent=False)
        engine = make_engine(postgres_url, writer=False)
        try:
            views = Projector(log, engine, inline=False)
            head = log.head()
            deadline = time.monotonic() + 60
            while not views.checkpoint().covers(head):
                assert time.monotonic() < deadline, "the projectors did not catch up"
                time.sleep(0.2)
            # Writers racing to create the shared model: the losers' model.created is
            # refused (and register_model carries on); nothing else may be refused.
            refused = views.dead_letters()
            assert all(
                d["type"] == "model.created" and "already exists" in d["reason"] for d in refused
            ), refused
            got = dump_views(engine)
            assert len(got["runs"]) == WRITERS * RUNS
            assert len(got["metric_points"]) == WRITERS * RUNS * STEPS * 2
            versions = sorted(row[1] for row in got["model_versions"])
            assert versions == list(range(1, WRITERS * RUNS + 1))  # gap-free, none doubled
            assert got == embedded_replay(log, tmp_path)
        finally:
            engine.dispose()
            log.close()
    finally:
        gateway.stop()
        for proc in [*projectors, *writers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
