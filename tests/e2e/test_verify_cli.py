"""`ledgerflow verify` as a user runs it: a process over a data directory the SDK wrote,
then the same directory with its SQLite file edited behind Ledgerflow's back."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

import ledgerflow as lf
from tests.conftest import PYTHON, python_env

pytestmark = pytest.mark.slow

Result = subprocess.CompletedProcess[str]


def cli(data_dir: Path, *args: str) -> Result:
    env = python_env(data_dir)
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        env.pop(key, None)
    return subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", str(data_dir), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_error_line(result: Result) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    client = lf.Client(tracking_uri=str(data_dir))
    run_id = client.create_run(client.create_experiment("verify-e2e")).info.run_id
    client.log_param(run_id, "lr", "0.01")
    client.log_batch(run_id, metrics=[("acc", 0.1 * s, 1_700_000_000_000 + s, s) for s in range(5)])
    client.set_tag(run_id, "team", "cv")
    client.set_terminated(run_id)
    return data_dir


def test_a_clean_log_verifies_and_its_anchor_checks_out_later(logged: Path) -> None:
    first = cli(logged, "verify")
    assert first.returncode == 0, first.stderr
    assert "none altered, dropped or reordered" in first.stdout
    anchor = next(line for line in first.stdout.splitlines() if line.startswith("anchor "))
    again = cli(logged, "verify", "--json", "--expect-head", anchor.split()[1])
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["ok"] and report["anchors_checked"] == 1 and report["checked"] > 5


def test_an_edited_event_fails_with_a_message_naming_it(logged: Path) -> None:
    anchor = json.loads(cli(logged, "verify", "--json").stdout)["partitions"][0]["anchor"]
    conn = sqlite3.connect(logged / "events.db")
    with conn:
        position, id_, stream = conn.execute(
            "SELECT position, id, stream FROM events WHERE type = 'run.params_logged'"
        ).fetchone()
        conn.execute(
            "UPDATE events SET data = replace(data, '0.01', '0.99') WHERE position = ?",
            (position,),
        )
    conn.close()
    result = cli(logged, "verify", "--expect-head", anchor)
    error = one_error_line(result)
    assert error.startswith("Error: the event log failed verification (2 problems)")
    assert f"position {position} (event {id_}, stream {stream}): altered" in error
    assert "anchor" in result.stdout  # the digest no longer matches either


def test_events_from_before_the_chain_are_reported_not_failed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "events.db")  # a log as Ledgerflow wrote it before
    conn.executescript(
        "CREATE TABLE events (position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL "
        "UNIQUE, type TEXT NOT NULL, stream TEXT NOT NULL, time INTEGER NOT NULL, v INTEGER "
        "NOT NULL, actor TEXT NOT NULL, trace TEXT, data TEXT NOT NULL);"
        "INSERT INTO events (id, type, stream, time, v, actor, data) VALUES "
        "('e1', 'experiment.created', 'experiment:1', 0, 1, 'x', '{}'), "
        "('e2', 'experiment.renamed', 'experiment:1', 0, 1, 'x', '{}');"
    )
    conn.close()
    result = cli(data_dir, "verify")
    assert result.returncode == 0, result.stderr
    assert "2 event(s) were written before events carried a hash" in result.stdout
    assert "no event here has a hash yet" in result.stdout


def test_a_bad_anchor_a_gateway_url_and_a_missing_log_are_one_line_errors(
    logged: Path, tmp_path: Path
) -> None:
    assert "[PARTITION@]POSITION:DIGEST" in one_error_line(
        cli(logged, "verify", "--expect-head", "12:nothex")
    )
    gateway = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "--tracking-uri", "http://127.0.0.1:9", "verify"],
        env=python_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "--log" in one_error_line(gateway)
    assert "no event log at" in one_error_line(cli(tmp_path / "nowhere", "verify"))


def test_a_kafka_log_verifies_with_an_anchor_per_partition(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    from ledgerflow.events.kafka_log import KafkaEventLog
    from tests.integration.eventlog_tamper_contract import tag

    prefix = f"verify-cli-{tmp_path.name}"
    log = KafkaEventLog(kafka_bootstrap, topic_prefix=prefix, partitions=3, idempotent=False)
    try:
        log.append([tag(f"r{i % 4}", i) for i in range(12)])
        partitions = {name for name, _ in log.head().partitions().items()}
    finally:
        log.close()
    env = python_env(tmp_path) | {
        "LEDGERFLOW_KAFKA_TOPIC_PREFIX": prefix,
        "LEDGERFLOW_KAFKA_IDEMPOTENT": "false",
    }
    result = subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", "verify", "--log", f"kafka://{kafka_bootstrap}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "checked 12 events in 4 streams" in result.stdout
    anchors = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("anchor ")]
    assert {a.rpartition("@")[0] for a in anchors} == partitions
