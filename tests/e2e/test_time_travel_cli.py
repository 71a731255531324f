"""`ledgerflow runs show --as-of` and `ledgerflow models show --as-of`, as real processes:
what the registry said when version 2 was promoted, and what a run looked like then."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow.events.as_of import AsOf
from ledgerflow.events.envelope import now_ms
from tests.e2e.test_cli import Result, clean_error, cli_many, doc, ok

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class History:
    data_dir: Path
    run: str
    promoted: str  # the log position right after version 2 went to Production
    promoted_at: str  # an ISO-8601 time just after that


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    data_dir = tmp_path_factory.mktemp("as-of-cli") / "data"
    c = lf.Client(tracking_uri=str(data_dir))
    run = c.create_run(c.create_experiment("cv")).info.run_id
    c.log_param(run, "lr", 0.1)
    c.create_registered_model("digits", tags={"team": "cv"})
    for _ in range(3):
        c.create_model_version("digits", f"runs:/{run}/model", run_id=run)
    c.set_registered_model_alias("digits", "champion", 1)
    c.transition_model_version_stage("digits", 2, "Production")
    c.set_registered_model_alias("digits", "champion", 2)
    backend = c._backend.embedded()
    promoted, moment = backend.log.head().encode(), now_ms()
    time.sleep(0.005)
    c.transition_model_version_stage("digits", 3, "Production", archive_existing_versions=True)
    c.set_registered_model_alias("digits", "champion", 3)
    c.set_registered_model_tag("digits", "team", "vision")
    c.log_param(run, "epochs", 5)
    return History(data_dir, run, promoted, AsOf(time_ms=moment).encode())


@pytest.fixture(scope="module")
def shown(history: History) -> dict[str, Result]:
    model, run = ["models", "show", "digits"], ["runs", "show", history.run]
    return cli_many(
        history.data_dir,
        {
            "model then": [*model, "--as-of", history.promoted, "--json"],
            "model at time": [*model, "--as-of", history.promoted_at, "--json"],
            "model now": [*model, "--json"],
            "model table then": [*model, "--as-of", history.promoted],
            "run then": [*run, "--as-of", history.promoted_at, "--json"],
            "run now": [*run, "--json"],
            "bad as of": [*run, "--as-of", "last tuesday"],
            "past the head": [*model, "--as-of", "99999"],
            "no such model then": ["models", "show", "absent", "--as-of", history.promoted],
        },
    )


def test_models_show_as_of_gives_what_the_registry_said_then(
    shown: dict[str, Result], history: History
) -> None:
    for name in ("model then", "model at time"):
        then = doc(shown[name])
        assert then["aliases"] == {"champion": 2}
        assert then["tags"] == {"team": "cv"}
        assert [(v["version"], v["current_stage"]) for v in then["versions"]] == [
            (1, "None"), (2, "Production"), (3, "None"),
        ]  # fmt: skip
        assert f"log position {history.promoted}" in shown[name].stderr
    now = doc(shown["model now"])
    assert now["aliases"] == {"champion": 3} and now["tags"] == {"team": "vision"}
    assert [v["current_stage"] for v in now["versions"]] == ["None", "Archived", "Production"]


def test_models_show_prints_versions_stages_aliases_and_tags_as_tables(
    shown: dict[str, Result],
) -> None:
    out = ok(shown["model table then"])
    for text in ("digits", "Production", "champion", "team", "cv"):
        assert text in out
    assert "vision" not in out


def test_runs_show_as_of_gives_the_run_as_it_was(shown: dict[str, Result]) -> None:
    assert doc(shown["run then"])["data"]["params"] == {"lr": "0.1"}
    assert doc(shown["run now"])["data"]["params"] == {"lr": "0.1", "epochs": "5"}


def test_a_bad_or_future_as_of_is_a_one_line_error(shown: dict[str, Result]) -> None:
    assert "as_of" in clean_error(shown["bad as of"]) or "ISO-8601" in shown["bad as of"].stderr
    assert "past the head" in clean_error(shown["past the head"])
    missing = shown["no such model then"]  # stderr: which position, then the error
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.splitlines() == [
        f"as of log position {history_position(missing)}",
        "Error: no registered model named 'absent'",
    ]


def history_position(result: Result) -> str:
    return result.args[result.args.index("--as-of") + 1]
