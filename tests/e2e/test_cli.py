"""The `ledgerflow` command line, run as real processes against data logged with the SDK.

Read-only commands run together in one module-scoped batch (in parallel), so the file
stays quick; commands that write get their own calls, in the order the tests need.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ledgerflow as lf
from tests.conftest import PYTHON, python_env
from tests.e2e.demo_fixture import DemoRun

pytestmark = pytest.mark.slow

EXPERIMENT = "cli-e2e"
OTHER = "cli-e2e-other"
STEPS = 10
Result = subprocess.CompletedProcess[str]


def cli_env(data_dir: Path) -> dict[str, str]:
    env = python_env(data_dir)
    for key in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        env.pop(key, None)
    return env


def cli(data_dir: Path, *args: str, timeout: float = 120) -> Result:
    return subprocess.run(
        [PYTHON, "-m", "ledgerflow.cli", *args],
        env=cli_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_many(data_dir: Path, commands: dict[str, Sequence[str]]) -> dict[str, Result]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {name: pool.submit(cli, data_dir, *args) for name, args in commands.items()}
        return {name: f.result() for name, f in futures.items()}


def ok(result: Result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def doc(result: Result) -> Any:
    return json.loads(ok(result))


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in ok(result).splitlines()]


def clean_error(result: Result) -> str:
    """The one red line a LedgerflowError becomes: exit 1, nothing on stdout, no traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@dataclass(frozen=True)
class Logged:
    data_dir: Path
    client: lf.Client
    experiment_id: str
    other_id: str
    deleted_id: str
    good: str  # lr 0.01, acc ends at 0.95, has an artifact
    mid: str  # lr 0.01, acc ends at 0.85
    bad: str  # lr 0.1, acc ends at 0.5
    elsewhere: str  # the one run in OTHER


def log_run(client: lf.Client, experiment_id: str, name: str, lr: str, final_acc: float) -> str:
    run_id: str = client.create_run(experiment_id, run_name=name).info.run_id
    client.log_param(run_id, "lr", lr)
    client.log_batch(
        run_id,
        metrics=[
            ("acc", final_acc * (step + 1) / STEPS, 1_700_000_000_000 + step, step)
            for step in range(STEPS)
        ],
    )
    client.set_tag(run_id, "team", "cv")
    client.set_terminated(run_id)
    return run_id


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Logged:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    client = lf.Client(tracking_uri=str(data_dir))
    exp = client.create_experiment(EXPERIMENT, tags={"owner": "e2e"})
    other = client.create_experiment(OTHER)
    deleted = client.create_experiment("cli-e2e-deleted")
    client.delete_experiment(deleted)
    good = log_run(client, exp, "good", "0.01", 0.95)
    client.log_text(good, "all good", "notes/summary.txt")
    mid = log_run(client, exp, "mid", "0.01", 0.85)
    bad = log_run(client, exp, "bad", "0.1", 0.5)
    elsewhere = log_run(client, other, "elsewhere", "0.5", 0.7)
    return Logged(data_dir, client, exp, other, deleted, good, mid, bad, elsewhere)


@pytest.fixture(scope="module")
def reads(logged: Logged) -> dict[str, Result]:
    """Every read-only command, human and --json, run once in parallel."""
    search = [
        "runs",
        "search",
        "-e",
        EXPERIMENT,
        "--filter",
        "metrics.acc > 0.8 and params.lr = '0.01'",
        "--order-by",
        "metrics.acc DESC",
    ]
    return cli_many(
        logged.data_dir,
        {
            "experiments": ["experiments", "list"],
            "experiments json": ["experiments", "list", "--json"],
            "experiments deleted json": ["experiments", "list", "--deleted", "--json"],
            "runs": ["runs", "list"],
            "runs json": ["runs", "list", "--json"],
            "runs narrowed json": [
                "runs",
                "list",
                "--experiment",
                EXPERIMENT,
                "--max",
                "2",
                "--json",
            ],
            "show": ["runs", "show", logged.good],
            "show json": ["runs", "show", logged.good, "--json"],
            "search json": [*search, "--json"],
            "search page": [*search, "--max", "1"],
            "history sampled": ["metrics", "history", logged.good, "acc", "--max-points", "4"],
            "history json": ["metrics", "history", logged.good, "acc", "--json"],
            "tail json": ["events", "tail", "--json"],
            "tail last runs json": ["events", "tail", "--type", "run.*", "--limit", "3", "--json"],
            "dead letters json": ["dead-letters", "list", "--json"],
            "unknown run": ["runs", "show", "0123456789abcdef0123456789abcdef", "--json"],
            "bad filter": ["runs", "search", "-e", EXPERIMENT, "--filter", "metrics.acc >"],
        },
    )


# help ----------------------------------------------------------------------------------
def test_the_root_help_lists_every_command_group() -> None:
    # run directly rather than through the batch: help must work without a data directory
    out = ok(
        subprocess.run(
            [PYTHON, "-m", "ledgerflow.cli", "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=cli_env(Path("unused")),
        )
    )
    for name in (
        "experiments",
        "runs",
        "metrics",
        "events",
        "replay",
        "dead-letters",
        "demo",
        "--tracking-uri",
    ):
        assert name in out


def test_help_flows_docstrings_as_paragraphs_and_keeps_placeholders() -> None:
    """Docstrings are wrapped at the code's width; help rewraps them to the terminal's
    instead of breaking lines where the source did."""

    def help_of(*args: str) -> str:
        env = {**cli_env(Path("unused")), "COLUMNS": "200"}
        run = subprocess.run(
            [PYTHON, "-m", "ledgerflow.cli", *args, "--help"],
            capture_output=True, text=True, timeout=60, check=False, env=env,
        )  # fmt: skip
        return ok(run)

    assert "the identity its credentials (LEDGERFLOW_TRACKING_TOKEN" in help_of()
    assert "the projector and the webhook dispatcher share the data directory" in help_of("server")
    assert "run:RUN_ID" in help_of("audit")


def test_every_command_and_option_has_its_own_help_text() -> None:
    import typer.main

    from ledgerflow.cli import app

    def walk(cmd: Any, path: str) -> list[tuple[str, Any]]:
        found = [(path, cmd)]
        for name, sub in getattr(cmd, "commands", {}).items():
            found += walk(sub, f"{path} {name}")
        return found

    commands = walk(typer.main.get_command(app), "ledgerflow")
    assert len(commands) > 12
    for path, cmd in commands:
        assert (cmd.help or "").strip(), f"{path} has no help"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), f"{path} {param.opts} has no help"


# experiments ---------------------------------------------------------------------------
def test_experiments_list_shows_active_experiments_as_a_table_and_as_json(
    reads: dict[str, Result], logged: Logged
) -> None:
    table = ok(reads["experiments"])
    assert EXPERIMENT in table and logged.experiment_id in table and "owner=e2e" in table
    assert "cli-e2e-deleted" not in table
    rows = {e["name"]: e for e in doc(reads["experiments json"])}
    assert rows[EXPERIMENT]["experiment_id"] == logged.experiment_id
    assert rows[EXPERIMENT]["tags"] == {"owner": "e2e"}
    assert rows[EXPERIMENT]["lifecycle_stage"] == "active"
    assert "cli-e2e-deleted" not in rows


def test_experiments_list_deleted_shows_only_deleted_experiments(
    reads: dict[str, Result], logged: Logged
) -> None:
    deleted = doc(reads["experiments deleted json"])
    assert [(e["experiment_id"], e["lifecycle_stage"]) for e in deleted] == [
        (logged.deleted_id, "deleted")
    ]


def test_experiments_create_prints_the_new_id_and_takes_tags(logged: Logged) -> None:
    plain = ok(
        cli(
            logged.data_dir,
            "experiments",
            "create",
            "made-by-cli",
            "--tag",
            "a=1",
            "--tag",
            "expr=x=y",
        )
    )
    made = logged.client.get_experiment(plain.strip())
    assert made.name == "made-by-cli"
    assert made.tags == {"a": "1", "expr": "x=y"}
    created = doc(
        cli(
            logged.data_dir,
            "experiments",
            "create",
            "made-by-cli-json",
            "--artifact-location",
            str(logged.data_dir / "elsewhere"),
            "--json",
        )
    )
    again = logged.client.get_experiment(created["experiment_id"])
    assert again.name == "made-by-cli-json"
    assert again.artifact_location == str(logged.data_dir / "elsewhere")


# runs ----------------------------------------------------------------------------------
def test_runs_list_shows_every_active_experiments_runs(
    reads: dict[str, Result], logged: Logged
) -> None:
    table = ok(reads["runs"])
    for run_id in (logged.good, logged.mid, logged.bad, logged.elsewhere):
        assert run_id in table
    assert "acc=0.95" in table and "lr=0.01" in table
    assert EXPERIMENT in table and OTHER in table  # experiments by name, as people know them
    runs = {r["info"]["run_id"]: r for r in doc(reads["runs json"])}
    assert set(runs) == {logged.good, logged.mid, logged.bad, logged.elsewhere}
    assert runs[logged.good]["data"]["metrics"] == {"acc": pytest.approx(0.95)}
    assert runs[logged.good]["data"]["params"] == {"lr": "0.01"}
    assert runs[logged.good]["info"]["status"] == "FINISHED"


def test_runs_list_narrows_to_an_experiment_and_caps_the_count(
    reads: dict[str, Result], logged: Logged
) -> None:
    newest_first = [r["info"]["run_id"] for r in doc(reads["runs narrowed json"])]
    assert newest_first == [logged.bad, logged.mid]


def test_runs_show_gives_info_params_latest_metrics_tags_and_artifacts(
    reads: dict[str, Result], logged: Logged
) -> None:
    text = ok(reads["show"])
    for expected in (
        logged.good,
        "FINISHED",
        "lr",
        "0.01",
        "acc",
        "0.95",
        "team",
        "cv",
        "notes/summary.txt",
    ):
        assert expected in text
    run = doc(reads["show json"])
    assert run["info"]["run_id"] == logged.good
    assert run["info"]["run_name"] == "good"
    assert run["data"]["params"] == {"lr": "0.01"}
    assert run["data"]["metrics"]["acc"] == pytest.approx(0.95)
    assert run["data"]["tags"]["team"] == "cv"
    assert [(a["path"], a["size"]) for a in run["artifacts"]] == [("notes/summary.txt", 8)]


def test_runs_search_filters_and_orders_runs(reads: dict[str, Result], logged: Logged) -> None:
    page = doc(reads["search json"])
    assert [r["info"]["run_id"] for r in page["runs"]] == [logged.good, logged.mid]
    assert page["next_page_token"] is None


def test_runs_search_pages_with_the_token_it_prints(
    reads: dict[str, Result], logged: Logged
) -> None:
    human = ok(reads["search page"])
    assert logged.good in human and logged.mid not in human
    [token] = re.findall(r"^next page: --page-token (\S+)$", human, re.MULTILINE)
    search = [
        "runs",
        "search",
        "-e",
        logged.experiment_id,
        "--filter",
        "metrics.acc > 0.8 and params.lr = '0.01'",
        "--order-by",
        "metrics.acc DESC",
        "--max",
        "1",
        "--page-token",
        token,
        "--json",
    ]
    second = doc(cli(logged.data_dir, *search))
    assert [r["info"]["run_id"] for r in second["runs"]] == [logged.mid]
    assert second["next_page_token"] is None


# metrics -------------------------------------------------------------------------------
def test_metrics_history_prints_every_point_in_step_order(
    reads: dict[str, Result], logged: Logged
) -> None:
    points = doc(reads["history json"])
    assert [p["step"] for p in points] == list(range(STEPS))
    assert [p["value"] for p in points] == pytest.approx(
        [0.95 * (s + 1) / STEPS for s in range(STEPS)]
    )
    assert {p["key"] for p in points} == {"acc"}
    sampled = ok(reads["history sampled"])
    assert "acc (4 points)" in sampled and "0.95" in sampled


# events --------------------------------------------------------------------------------
def test_events_tail_prints_the_whole_log_from_the_start(
    reads: dict[str, Result], logged: Logged
) -> None:
    events = json_lines(reads["tail json"])
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(positions) == len(set(positions))
    assert events[0]["type"] == "experiment.created"
    assert events[0]["data"]["name"] == EXPERIMENT
    started = [e for e in events if e["type"] == "run.started"]
    assert {e["stream"] for e in started} == {
        f"run:{r}" for r in (logged.good, logged.mid, logged.bad, logged.elsewhere)
    }
    for e in events:
        assert set(e) >= {"position", "id", "type", "stream", "time", "actor", "data"}
        assert e["corrupt"] is False


def test_events_tail_with_a_type_glob_and_limit_prints_the_last_matching_events(
    reads: dict[str, Result], logged: Logged
) -> None:
    events = json_lines(reads["tail last runs json"])
    assert len(events) == 3
    assert all(e["type"].startswith("run.") for e in events)
    assert events[-1]["type"] == "run.finished"
    assert events[-1]["stream"] == f"run:{logged.elsewhere}"


def test_events_tail_follow_prints_new_events_and_exits_cleanly_on_ctrl_c(logged: Logged) -> None:
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "ledgerflow.cli",
            "events",
            "tail",
            "--follow",
            "--json",
            "--type",
            "run.tags_set",
        ],
        env=cli_env(logged.data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=60))  # the replay has reached the existing events
        assert first["type"] == "run.tags_set"
        marker = uuid.uuid4().hex
        logged.client.set_tag(logged.bad, "followed", marker)
        while True:
            event = json.loads(lines.get(timeout=30))
            if event["data"].get("tags") == {"followed": marker}:
                break
        assert event["stream"] == f"run:{logged.bad}"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# replay and dead letters ---------------------------------------------------------------
def test_replay_rebuilds_the_views_to_the_same_runs(logged: Logged) -> None:
    def runs() -> list[dict[str, Any]]:
        ids = [logged.experiment_id, logged.other_id]
        return [r.to_dictionary() for r in logged.client.search_runs(ids)]

    before = runs()
    summary = ok(cli(logged.data_dir, "replay"))
    assert "replayed" in summary and "0 dead letters" in summary
    assert runs() == before
    assert len(before) == 4


def test_a_clean_log_has_no_dead_letters(reads: dict[str, Result]) -> None:
    assert doc(reads["dead letters json"]) == []


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, Result]]:
    """A data directory whose log holds one undecodable event, written behind the SDK's back."""
    data_dir = tmp_path_factory.mktemp("cli-corrupt") / "data"
    client = lf.Client(tracking_uri=str(data_dir))
    log_run(client, client.create_experiment("with-a-bad-event"), "fine", "0.1", 0.5)
    bad_id = str(uuid.uuid4())
    conn = sqlite3.connect(data_dir / "events.db")
    try:
        with conn:
            conn.execute(
                "INSERT INTO events (id, type, stream, time, v, actor, trace, data) "
                "VALUES (?, 'run.tags_set', 'run:nowhere', 1700000000000, 1, 'user:vandal', "
                "NULL, '{not json')",
                (bad_id,),
            )
    finally:
        conn.close()
    first = {"dead letters json": cli(data_dir, "dead-letters", "list", "--json")}
    rest = cli_many(
        data_dir,
        {
            "dead letters": ["dead-letters", "list"],
            "tail json": ["events", "tail", "--json"],
            "tail": ["events", "tail", "--limit", "2"],
        },
    )
    return data_dir, bad_id, first | rest | {"replay json": cli(data_dir, "replay", "--json")}


def test_dead_letters_list_shows_a_corrupt_event(
    corrupted: tuple[Path, str, dict[str, Result]],
) -> None:
    _, bad_id, out = corrupted
    [letter] = doc(out["dead letters json"])
    assert letter["event_id"] == bad_id
    assert letter["kind"] == "corrupt"
    assert letter["data"] == "{not json"
    assert letter["reason"]
    table = ok(out["dead letters"])
    assert bad_id in table and "corrupt" in table


def test_events_tail_shows_corrupt_events_instead_of_hiding_them(
    corrupted: tuple[Path, str, dict[str, Result]],
) -> None:
    _, bad_id, out = corrupted
    last = json_lines(out["tail json"])[-1]
    assert last["id"] == bad_id and last["corrupt"] is True
    assert last["data"] == "{not json" and last["reason"]
    human = ok(out["tail"]).splitlines()
    assert len(human) == 2
    assert "CORRUPT" in human[-1] and bad_id in human[-1]


def test_replay_counts_the_dead_letters_it_leaves(
    corrupted: tuple[Path, str, dict[str, Result]],
) -> None:
    _, _, out = corrupted
    summary = doc(out["replay json"])
    events = json_lines(out["tail json"])
    assert summary == {"applied": len(events), "dead_letters": 1}


# errors --------------------------------------------------------------------------------
def test_an_unknown_run_id_is_a_one_line_error_not_a_traceback(reads: dict[str, Result]) -> None:
    assert "no run with id '0123456789abcdef0123456789abcdef'" in clean_error(reads["unknown run"])


def test_a_malformed_filter_is_a_one_line_error(reads: dict[str, Result]) -> None:
    assert "Invalid filter" in clean_error(reads["bad filter"])


# demo ----------------------------------------------------------------------------------
def test_demo_records_its_runs_where_the_tracking_uri_option_points(demo_run: DemoRun) -> None:
    # the session's one demo run (tests/e2e/demo_fixture.py): `ledgerflow --tracking-uri
    # DIR demo` with LEDGERFLOW_TRACKING_URI naming another directory
    ok(demo_run.process)
    client = lf.Client(tracking_uri=str(demo_run.data_dir))
    [experiment] = client.search_experiments()
    runs = client.search_runs(experiment.experiment_id)
    assert runs
    assert all(r.info.artifact_uri.startswith(str(demo_run.data_dir)) for r in runs)
    assert not demo_run.env_data_dir.exists()
