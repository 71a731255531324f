"""The main job: `run_demo` in its own process, then everything read back through Client."""

from __future__ import annotations

import json
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import ledgerflow as lf
from ledgerflow import _backend
from ledgerflow.entities import Run
from tests.conftest import PYTHON, python_env

pytestmark = pytest.mark.slow

EPOCHS = 2
EXPERIMENT = "ledgerflow-demo-digits"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class DemoResult:
    data_dir: Path
    stdout: str
    client: lf.Client
    parent: Run
    children: list[Run]


def run_in_subprocess(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = python_env()
    env["COLUMNS"] = "100"  # rich wraps at the terminal width; keep the output predictable
    return subprocess.run(
        [PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def demo_code(data_dir: Path, epochs: int, times: int = 1) -> str:
    return (
        "from ledgerflow.demo import run_demo\n"
        f"for _ in range({times}):\n"
        f"    run_demo(epochs={epochs}, tracking_uri={str(data_dir)!r})\n"
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoResult]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    out = run_in_subprocess(demo_code(data_dir, EPOCHS))
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
    yield DemoResult(data_dir, out.stdout, client, parents[0], children)
    _backend.close_all()


def best_child(demo: DemoResult) -> Run:
    best_id = demo.parent.data.tags["best_run_id"]
    return next(r for r in demo.children if r.info.run_id == best_id)


def test_the_demo_creates_its_experiment_with_a_parent_and_two_children_all_finished(
    demo: DemoResult,
) -> None:
    assert demo.parent.info.run_name == "digits-mlp"
    assert [r.info.run_name for r in demo.children] == ["lr=0.001", "lr=0.01"]
    assert {r.info.status for r in [demo.parent, *demo.children]} == {"FINISHED"}
    assert (
        len({demo.parent.info.experiment_id, *(r.info.experiment_id for r in demo.children)}) == 1
    )


def test_every_run_records_the_training_params(demo: DemoResult) -> None:
    common = {
        "model_type",
        "hidden_layer_sizes",
        "epochs",
        "batch_size",
        "random_seed",
        "train_size",
        "val_size",
        "test_size",
    }
    assert common | {"learning_rates"} <= demo.parent.data.params.keys()
    for run in demo.children:
        assert common | {"learning_rate"} <= run.data.params.keys()
        assert run.data.params["epochs"] == str(EPOCHS)
    assert [r.data.params["learning_rate"] for r in demo.children] == ["0.001", "0.01"]
    sizes = demo.parent.data.params
    assert int(sizes["train_size"]) + int(sizes["val_size"]) + int(sizes["test_size"]) == 1797


def test_each_child_has_one_val_accuracy_point_per_epoch_and_finer_batch_losses(
    demo: DemoResult,
) -> None:
    for run in demo.children:
        val = demo.client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [p.step for p in val] == list(range(1, EPOCHS + 1))
        assert all(0.0 <= p.value <= 1.0 for p in val)
        for key in ("train_loss", "train_accuracy"):
            assert len(demo.client.get_metric_history(run.info.run_id, key)) == EPOCHS
        batches = demo.client.get_metric_history(run.info.run_id, "batch_loss")
        assert len(batches) > EPOCHS
        assert [p.step for p in batches] == list(range(1, len(batches) + 1))


def test_the_best_child_reaches_over_80_percent_test_accuracy_and_the_parent_says_so(
    demo: DemoResult,
) -> None:
    best = best_child(demo)
    assert best.data.metrics["test_accuracy"] > 0.8
    assert 0.0 < best.data.metrics["test_f1_macro"] <= 1.0
    assert best.data.metrics["val_accuracy"] == max(
        r.data.metrics["val_accuracy"] for r in demo.children
    )
    assert demo.parent.data.metrics["best_test_accuracy"] == best.data.metrics["test_accuracy"]
    assert demo.parent.data.tags["best_learning_rate"] == best.data.params["learning_rate"]


def test_each_child_has_a_10_by_10_confusion_matrix_covering_the_test_set(
    demo: DemoResult, tmp_path: Path
) -> None:
    for run in demo.children:
        path = demo.client.download_artifacts(
            run.info.run_id, "eval/confusion_matrix.csv", tmp_path / run.info.run_id
        )
        rows = [[int(x) for x in line.split(",")] for line in Path(path).read_text().splitlines()]
        assert len(rows) == 10
        assert all(len(row) == 10 for row in rows)
        assert sum(map(sum, rows)) == int(run.data.params["test_size"])
        correct = sum(rows[i][i] for i in range(10))
        assert correct / sum(map(sum, rows)) == pytest.approx(run.data.metrics["test_accuracy"])


def test_the_misclassified_digits_png_is_a_valid_grayscale_image(
    demo: DemoResult, tmp_path: Path
) -> None:
    run = best_child(demo)
    assert run.data.metrics["test_misclassified"] > 0
    data = Path(
        demo.client.download_artifacts(run.info.run_id, "eval/misclassified.png", tmp_path)
    ).read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    assert (depth, color) == (8, 0)
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    assert kind == b"IEND"
    assert len(zlib.decompress(idat)) == height * (width + 1)


def test_the_report_and_the_dataset_info_are_logged_as_text_and_json(demo: DemoResult) -> None:
    paths = {f.path for f in demo.client.list_artifacts(demo.parent.info.run_id)}
    assert paths == {"data", "summary.json"}
    for run in demo.children:
        files = {f.path for f in demo.client.list_artifacts(run.info.run_id, "eval")}
        assert {
            "eval/classification_report.txt",
            "eval/confusion_matrix.csv",
            "eval/misclassified.png",
            "eval/misclassified.json",
        } <= files
    where = Path(demo.client.download_artifacts(demo.parent.info.run_id, "data"))
    info = json.loads((where / "dataset_info.json").read_text())
    assert info["label_names"] == {str(i): f"digit {i}" for i in range(10)}
    report = Path(
        demo.client.download_artifacts(
            best_child(demo).info.run_id, "eval/classification_report.txt"
        )
    ).read_text()
    assert "macro avg" in report


def test_the_printout_names_the_runs_the_data_directory_and_next_steps(demo: DemoResult) -> None:
    out = demo.stdout
    assert EXPERIMENT in out
    assert demo.parent.info.experiment_id in out
    for run in [demo.parent, *demo.children]:
        assert run.info.run_id in out
    assert str(demo.data_dir) in out
    assert f"val_accuracy history {EPOCHS} points" in out
    assert "eval/misclassified.png" in out
    assert f"ledgerflow runs show {demo.parent.info.run_id}" in out
    assert "ledgerflow events tail --type 'run.*'" in out


def test_running_the_demo_twice_with_its_fixed_seed_gives_the_same_metrics(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = run_in_subprocess(demo_code(data_dir, epochs=1, times=2))
    assert out.returncode == 0, out.stderr
    client = lf.Client(tracking_uri=str(data_dir))
    try:
        exp = client.get_experiment_by_name(EXPERIMENT)
        assert exp is not None
        children = client.search_runs(exp.experiment_id, "tags.role = 'candidate'")
        by_lr: dict[str, list[dict[str, float]]] = {}
        for run in children:
            by_lr.setdefault(run.data.params["learning_rate"], []).append(run.data.metrics)
        assert sorted(by_lr) == ["0.001", "0.01"]
        for first, second in by_lr.values():
            assert first == second
    finally:
        _backend.close_all()


def test_importing_the_demo_does_not_import_scikit_learn_or_numpy() -> None:
    out = run_in_subprocess(
        "import sys, ledgerflow.demo\nprint(sorted({'sklearn', 'numpy'} & set(sys.modules)))"
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
    assert "ledgerflow[demo]" in out.stdout
    assert not (tmp_path / "data").exists()
