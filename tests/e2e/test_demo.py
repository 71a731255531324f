"""The main job: `ledgerflow demo` in its own process (training jobs on a local Ray,
bundles, an A/B test), then everything read back through Client. The demo runs once per
session (tests/e2e/demo_fixture.py), shared with the CLI tests."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ledgerflow as lf
from ledgerflow import session
from ledgerflow.entities import Run
from ledgerflow.events.bundle_entities import Bundle
from ledgerflow.models import Model
from ledgerflow.services.deployments.state import DeploymentChange
from ledgerflow.services.jobs.queries import Job
from tests.conftest import PYTHON, python_env
from tests.e2e.demo_fixture import DEMO_EPOCHS, DemoRun

pytestmark = pytest.mark.slow

EPOCHS = DEMO_EPOCHS
EXPERIMENT = "ledgerflow-demo-digits"
REGISTERED = "digits-cnn"
CHAMPION_URI = f"models:/{REGISTERED}@champion"
EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
BUNDLE_TARGETS = {1: {"savedmodel", "onnx"}, 2: {"torchscript", "onnx"}}  # keras, pytorch
BUNDLE_FILES = {"savedmodel": "saved_model.pb", "onnx": "model.onnx", "torchscript": "model.pt"}


@dataclass(frozen=True)
class DemoResult:
    data_dir: Path
    stdout: str
    client: lf.Client
    parent: Run
    children: list[Run]  # keras-cnn, then pytorch-cnn
    jobs: list[Job]  # oldest first
    bundles: list[Bundle]  # failed ones too

    def child(self, run_id: str) -> Run:
        return next(r for r in self.children if r.info.run_id == run_id)


def run_in_subprocess(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = python_env()
    env["COLUMNS"] = "100"  # rich wraps at the terminal width; keep the output predictable
    return subprocess.run(
        [PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun) -> Iterator[DemoResult]:
    """The session's one demo run (tests/e2e/demo_fixture.py), read back through Client."""
    out, data_dir = demo_run.process, demo_run.data_dir
    assert out.returncode == 0, out.stderr
    client = lf.Client(tracking_uri=str(data_dir))
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp is not None
    runs = client.search_runs(exp.experiment_id)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    children = sorted(
        (r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id),
        key=lambda r: r.info.start_time,
    )
    jobs = sorted(lf.jobs.list_jobs(tracking_uri=str(data_dir)), key=lambda j: j.submitted_time)
    bundles = client.list_bundles(REGISTERED, include_failed=True)
    yield DemoResult(data_dir, out.stdout, client, parents[0], children, jobs, bundles)
    session.reset()


@pytest.fixture
def data_dir(demo: DemoResult) -> Path:
    """Point conftest's `tracking` fixture (the fluent API) at the demo's data directory."""
    return demo.data_dir


def model_files(demo: DemoResult, run: Run) -> Model:
    return Model.load(demo.client.download_artifacts(run.info.run_id, "cnn-digits/MLmodel"))


def digit_images() -> tuple[Any, Any]:
    """All 1797 digits in the layout both models take: float32 (n, 8, 8, 1) in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32)[..., None], digits.target


# runs ----------------------------------------------------------------------------------
def test_the_demo_records_a_parent_run_with_a_keras_and_a_pytorch_child_all_finished(
    demo: DemoResult,
) -> None:
    assert demo.parent.info.run_name == "compare-cnns"
    assert [r.info.run_name for r in demo.children] == ["keras-cnn", "pytorch-cnn"]
    assert [r.data.params["framework"] for r in demo.children] == ["keras", "pytorch"]
    assert {r.info.status for r in [demo.parent, *demo.children]} == {"FINISHED"}
    assert (
        len({demo.parent.info.experiment_id, *(r.info.experiment_id for r in demo.children)}) == 1
    )


def test_both_children_train_the_same_epochs_batch_size_and_split(demo: DemoResult) -> None:
    shared = ("epochs", "batch_size", "learning_rate", "random_seed", "train_size", "test_size")
    first, second = (r.data.params for r in demo.children)
    assert {k: first[k] for k in shared} == {k: second[k] for k in shared}
    assert first["epochs"] == demo.parent.data.params["epochs"] == str(EPOCHS)
    sizes = demo.parent.data.params
    assert int(sizes["train_size"]) + int(sizes["val_size"]) + int(sizes["test_size"]) == 1797


def test_each_child_logs_one_point_per_epoch_of_train_and_validation_metrics(
    demo: DemoResult,
) -> None:
    for run in demo.children:
        for key in EPOCH_METRICS:
            history = demo.client.get_metric_history(run.info.run_id, key)
            assert [p.step for p in history] == list(range(1, EPOCHS + 1)), key
            if key.endswith("accuracy"):
                assert all(0.0 <= p.value <= 1.0 for p in history)
        assert run.data.metrics["test_loss"] > 0.0
        assert 0.0 < run.data.metrics["test_accuracy"] <= 1.0


def test_each_child_logs_a_confusion_matrix_that_agrees_with_its_test_accuracy(
    demo: DemoResult, tmp_path: Path
) -> None:
    for run in demo.children:
        path = demo.client.download_artifacts(
            run.info.run_id, "eval/confusion_matrix.csv", tmp_path / run.info.run_id
        )
        rows = [[int(x) for x in line.split(",")] for line in Path(path).read_text().splitlines()]
        assert [len(row) for row in rows] == [10] * 10
        total = sum(map(sum, rows))
        assert total == int(run.data.params["test_size"])
        correct = sum(rows[i][i] for i in range(10))
        assert correct / total == pytest.approx(run.data.metrics["test_accuracy"], abs=1e-6)
        assert total - correct == run.data.metrics["test_misclassified"]


# models --------------------------------------------------------------------------------
def test_both_children_log_a_cnn_digits_model_with_one_and_the_same_tensor_signature(
    demo: DemoResult,
) -> None:
    keras, torch = (model_files(demo, r) for r in demo.children)
    assert "tensorflow" in keras.flavors
    assert "pytorch" in torch.flavors
    assert keras.signature is not None and torch.signature is not None
    assert keras.signature.to_dict() == torch.signature.to_dict()
    [spec] = keras.signature.inputs.inputs  # type: ignore[union-attr]
    assert (str(spec.type), spec.shape) == ("float32", (-1, 8, 8, 1))
    assert [m.artifact_path for m in (keras, torch)] == ["cnn-digits", "cnn-digits"]


def test_digits_cnn_has_versions_1_and_2_one_per_child_run(demo: DemoResult) -> None:
    versions = [demo.client.get_model_version(REGISTERED, v) for v in (1, 2)]
    assert [mv.run_id for mv in versions] == [r.info.run_id for r in demo.children]
    assert [mv.tags["framework"] for mv in versions] == ["keras", "pytorch"]
    for mv in versions:
        assert mv.source.endswith("/cnn-digits")
    assert {mv.version for mv in demo.client.search_model_versions(f"name = '{REGISTERED}'")} == {
        1,
        2,
    }


def test_the_champion_chosen_after_training_is_the_version_with_the_higher_test_accuracy(
    demo: DemoResult,
) -> None:
    tags = demo.parent.data.tags
    champion = demo.client.get_model_version(REGISTERED, int(tags["champion_version"]))
    challenger = demo.client.get_model_version_by_alias(REGISTERED, "challenger")
    assert {champion.version, challenger.version} == {1, 2}
    assert champion.run_id is not None and challenger.run_id is not None
    best = demo.child(champion.run_id).data.metrics["test_accuracy"]
    other = demo.child(challenger.run_id).data.metrics["test_accuracy"]
    assert best >= other
    assert tags["champion_run_id"] == champion.run_id
    assert demo.parent.data.metrics["champion_test_accuracy"] == best
    promoted = ab_promoted(demo)
    now = promoted.summary["version"] if promoted is not None else champion.version
    assert demo.client.resolve_model_version(CHAMPION_URI).version == now


def test_the_champion_loads_by_alias_with_pyfunc_and_reads_digits_better_than_60_percent(
    tracking: Path,
) -> None:
    import ledgerflow.pyfunc

    images, labels = digit_images()
    model = ledgerflow.pyfunc.load_model(CHAMPION_URI)
    probs = np.asarray(model.predict(images))
    assert probs.shape == (len(labels), 10)
    assert float(np.mean(probs.argmax(axis=1) == labels)) > 0.6


def test_both_versions_load_with_pyfunc_and_answer_in_the_same_layout(tracking: Path) -> None:
    import ledgerflow.pyfunc

    images, _ = digit_images()
    answers = [
        np.asarray(ledgerflow.pyfunc.load_model(f"models:/{REGISTERED}/{v}").predict(images[:7]))
        for v in (1, 2)
    ]
    for probs in answers:
        assert (probs.shape, probs.dtype) == ((7, 10), np.float32)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)


# jobs ----------------------------------------------------------------------------------
def test_each_child_run_is_the_run_of_a_training_job_that_finished_on_a_local_ray(
    demo: DemoResult,
) -> None:
    assert [(j.name, j.status, j.runtime, j.kind) for j in demo.jobs] == [
        ("keras-cnn", "FINISHED", "local", "function"),
        ("pytorch-cnn", "FINISHED", "local", "function"),
    ]
    assert [j.run_id for j in demo.jobs] == [r.info.run_id for r in demo.children]
    for job, run in zip(demo.jobs, demo.children, strict=True):
        assert run.data.tags["ledgerflow.job_id"] == job.job_id
        assert run.data.tags["mlflow.source.type"] == "JOB"
        assert run.data.tags["mlflow.parentRunId"] == demo.parent.info.run_id
        assert job.params == {"epochs": str(EPOCHS)}
        assert job.error is None


def test_each_jobs_log_holds_its_training_output(demo: DemoResult) -> None:
    for job in demo.jobs:
        framework = "keras" if job.name == "keras-cnn" else "pytorch"
        log = lf.jobs.logs(job.job_id, tracking_uri=str(demo.data_dir))
        assert f"{framework}: epoch {EPOCHS}/{EPOCHS} val_accuracy" in log
        assert f"{framework}: test_accuracy" in log


# bundles -------------------------------------------------------------------------------
def test_each_version_gets_its_frameworks_bundles_built_with_parity_recorded(
    demo: DemoResult,
) -> None:
    by_version = {v: {b.target for b in demo.bundles if b.version == v} for v in BUNDLE_TARGETS}
    assert by_version == BUNDLE_TARGETS
    assert len(demo.bundles) == 4
    for bundle in demo.bundles:
        assert (bundle.status, bundle.reason) == ("built", None), bundle.target
        assert bundle.max_abs_diff is not None and bundle.max_abs_diff <= 1e-3
        parity = bundle.manifest["parity"]
        assert parity["passed"] is True
        assert parity["max_abs_diff"] == bundle.max_abs_diff
        assert bundle.size_bytes is not None and bundle.size_bytes > 0


def test_each_built_bundle_downloads_with_every_file_its_manifest_lists(
    demo: DemoResult, tmp_path: Path
) -> None:
    from ledgerflow.workers.bundles.manifest import verify

    for bundle in demo.bundles:
        folder = Path(demo.client.download_bundle(bundle.id, str(tmp_path / bundle.id)))
        assert verify(folder) == [], bundle.target
        paths = [str(f["path"]) for f in bundle.manifest["files"]]
        assert any(p.endswith(BUNDLE_FILES[bundle.target]) for p in paths), paths
        assert "Dockerfile" in paths


# printout ------------------------------------------------------------------------------
def test_the_printout_shows_the_fresh_process_predictions_of_the_champion(
    demo: DemoResult,
) -> None:
    out = demo.stdout
    champion = demo.client.get_model_version(
        REGISTERED, int(demo.parent.data.tags["champion_version"])
    )
    assert f"fresh-process predictions of {CHAMPION_URI} (version {champion.version})" in out
    assert f"a new Python process loaded run {champion.run_id}'s model" in out
    assert re.search(r"^\s+label(\s+\d){12}$", out, re.MULTILINE)
    assert re.search(r"^\s+predicted(\s+\d){12}$", out, re.MULTILINE)
    found = re.search(
        r"accuracy on all (\d+) test images: ([\d.]+) \(.*test_accuracy ([\d.]+)", out
    )
    assert found is not None
    assert found[2] == found[3]  # served in a new process, it scores what training logged


def test_the_printout_names_runs_versions_aliases_the_data_directory_and_next_steps(
    demo: DemoResult,
) -> None:
    out = demo.stdout
    champion = demo.client.get_model_version_by_alias(REGISTERED, "champion")
    assert EXPERIMENT in out
    assert demo.parent.info.experiment_id in out
    for run in [demo.parent, *demo.children]:
        assert run.info.run_id in out
    assert re.search(rf"^{champion.version}\s+\w+\s+champion\s", out, re.MULTILINE)
    assert re.search(r"^\d\s+\w+\s+challenger\s", out, re.MULTILINE)
    assert str(demo.data_dir) in out
    assert f"val_accuracy per epoch ({EPOCHS} points)" in out
    assert f"ledgerflow runs show {champion.run_id}" in out
    assert "ledgerflow deployments show digits-ab" in out
    assert "ledgerflow events tail --type 'model.*'" in out


def test_the_printout_shows_each_job_and_each_bundle_with_size_runtime_and_parity(
    demo: DemoResult,
) -> None:
    out = demo.stdout
    for job in demo.jobs:
        assert re.search(rf"^{job.name}\s+{job.job_id}\s+FINISHED\s+{job.run_id}", out, re.M)
        assert f"{job.name} job log (last lines):" in out
    for b in demo.bundles:
        assert b.runtime is not None and b.max_abs_diff is not None
        row = rf"^{b.version}\s+\w+\s+{b.target}\s+built\s+\d+ KiB\s+{b.runtime}\s+"
        assert re.search(row + re.escape(f"{b.max_abs_diff:.2e}"), out, re.M), b.target
    assert "4 of 4 built" in out


# A/B test ------------------------------------------------------------------------------
AB = "digits-ab"


def ab_promoted(demo: DemoResult) -> DeploymentChange | None:
    """The A/B test's promotion, if the analysis found a winner."""
    changes = demo.client.get_deployment_history(AB)
    return next((c for c in changes if c.type == "deployment.promoted"), None)


def test_the_ab_test_deploys_champion_against_challenger_and_the_canary_advances(
    demo: DemoResult,
) -> None:
    tags = demo.parent.data.tags
    dep = demo.client.get_deployment(AB)
    assert dep.baseline in ("champion", "challenger")
    versions = {v.name: v.version for v in dep.variants}
    assert versions == {
        "champion": int(tags["champion_version"]),
        "challenger": int(tags["challenger_version"]),
    }
    onnx = {b.id for b in demo.bundles if b.target == "onnx"}
    assert {v.bundle_id for v in dep.variants} <= onnx  # served from the ONNX bundles
    changes = demo.client.get_deployment_history(AB)
    types = [c.type.removeprefix("deployment.") for c in changes]
    assert types[0] == "created"
    advanced = [c for c in changes if c.type == "deployment.step_advanced"]
    assert advanced and all(c.actor == "deployer" for c in advanced)
    assert types[-1] in ("promoted", "rolled_back")
    for change in advanced:
        weight = change.summary["weights"]["challenger"]
        assert re.search(rf"step advanced: challenger now at {weight:g}%", demo.stdout)


def test_the_ab_decision_follows_the_analysis_and_moves_the_champion_alias_with_a_winner(
    demo: DemoResult,
) -> None:
    out = demo.stdout
    dep = demo.client.get_deployment(AB)
    verdict = re.search(r"^verdict: (.*)", out, re.M)
    assert verdict is not None
    rows = {
        m[1]: m for m in re.finditer(
            r"^(champion|challenger)\s+(\d) \w+\s+(\d+)%\s+(\d+)\s+([\d.]+)%\s+\S+\s+"
            r"([\d.]+) \[[\d.]+, [\d.]+\]\s+(\S+)\s+(.+?)\s*$", out, re.M
        )
    }  # fmt: skip
    assert set(rows) == {"champion", "challenger"}
    assert rows["champion"][8] == "baseline"
    sent = re.search(r"^\s+(\d+) simulated requests from \d+ users", out, re.M)
    assert sent is not None and int(sent[1]) >= 1000
    assert sum(int(r[4]) for r in rows.values()) == int(sent[1])  # every request answered
    promoted = ab_promoted(demo)
    state = rows["challenger"][8]
    if promoted is not None:
        winner = promoted.summary["variant"]
        assert state == ("better" if winner == "challenger" else "worse")
        assert float(rows["challenger"][7]) < 0.05
        assert dep.shares()[winner] == 1.0 and dep.baseline == winner
        champion = demo.client.get_model_version_by_alias(REGISTERED, "champion")
        assert champion.version == promoted.summary["version"]
        assert f"{winner} converts significantly better" in verdict[1]
    else:
        assert dep.last_action == "rolled_back" and dep.shares()["champion"] == 1.0
        assert state in ("not enough data", "no difference")
        assert "not enough evidence" in verdict[1] or "guardrail" in verdict[1]


# without running the demo --------------------------------------------------------------
def test_importing_the_demo_imports_neither_torch_nor_tensorflow() -> None:
    heavy = {"torch", "tensorflow", "keras", "sklearn", "numpy"}
    out = run_in_subprocess(
        f"import sys, ledgerflow.demo\nprint(sorted({heavy!r} & set(sys.modules)))"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_without_scikit_learn_the_demo_says_to_install_the_demo_extra(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['sklearn'] = None  # makes `import sklearn` raise ImportError\n"
        "from ledgerflow.demo import run_demo\n"
        "from ledgerflow.events.errors import InvalidInput\n"
        "try:\n"
        f"    run_demo(epochs=1, tracking_uri={str(tmp_path / 'data')!r})\n"
        "except InvalidInput as e:\n"
        "    print('InvalidInput:', e)\n"
    )
    out = run_in_subprocess(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("InvalidInput:")
    assert "scikit-learn" in out.stdout
    assert "ledgerflow[demo]" in out.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("epochs", [0, -1, 1.5, "2"])
def test_the_demo_refuses_an_epoch_count_that_is_not_a_positive_whole_number(
    epochs: Any, tmp_path: Path
) -> None:
    from ledgerflow.demo import run_demo
    from ledgerflow.events.errors import InvalidInput

    with pytest.raises(InvalidInput, match="epochs"):
        run_demo(epochs=epochs, tracking_uri=str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_a_failed_bundle_is_printed_with_its_reason_among_the_built_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from rich.console import Console

    from ledgerflow.demo.results import Built
    from ledgerflow.demo.summary import _print_bundles

    def bundle(target: str, status: str, reason: str | None = None) -> Bundle:
        built = status == "built"
        return Bundle(
            id=f"id-{target}", name=REGISTERED, version=1, target=target, status=status,
            source="s", trigger="manual", creation_timestamp=0, last_updated_timestamp=0,
            runtime="tensorflow-serving" if built else None, size_bytes=2048 if built else None,
            max_abs_diff=0.0 if built else None, reason=reason,
        )  # fmt: skip

    _print_bundles(
        Console(width=120),
        [
            Built(1, "keras", "savedmodel", bundle("savedmodel", "built")),
            Built(
                1, "keras", "onnx", bundle("onnx", "failed", "Keras to ONNX needs tf2onnx"), None
            ),
            Built(2, "pytorch", "onnx", None, error="cannot reach Ray at 'auto'"),
        ],
    )
    out = capsys.readouterr().out
    assert re.search(
        r"^1\s+keras\s+savedmodel\s+built\s+2 KiB\s+tensorflow-serving\s+0\.00e\+00", out, re.M
    )
    assert re.search(r"^1\s+keras\s+onnx\s+failed\s+-\s+-\s+-", out, re.M)
    assert "version 1 onnx failed: Keras to ONNX needs tf2onnx" in out
    assert "version 2 onnx failed: cannot reach Ray at 'auto'" in out
    assert "1 of 3 built" in out


def test_the_demo_ends_by_saying_how_to_open_the_web_ui_on_its_data(demo: DemoResult) -> None:
    tail = demo.stdout[demo.stdout.index("look at it in the web UI") :]
    assert "--tracking-uri " in tail and f"{demo.data_dir.name} ui" in tail
    experiment = demo.client.get_experiment_by_name("ledgerflow-demo-digits")
    assert f"http://127.0.0.1:5000/experiments/{experiment.experiment_id}/runs" in tail
