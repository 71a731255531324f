"""The main job behind `ledgerflow demo`: a small, reproducible training run to look at.

It trains a small neural network on scikit-learn's bundled 8x8 digit images (no
download) with two learning rates, one nested run each under a parent run, and
records params, per-epoch and per-batch metrics, tags and artifacts through the
fluent API. It then reads everything back through `Client` (so what is printed
has gone through the event log and the views) and says where it lives and what
to run next. scikit-learn and numpy are imported only when the demo runs.
"""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ledgerflow as lf
from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow.client import Client
    from ledgerflow.events.settings import Settings

EXPERIMENT = "ledgerflow-demo-digits"
PARENT_RUN = "digits-mlp"
MODEL_TYPE = "sklearn.neural_network.MLPClassifier"
SEED = 42
HIDDEN = (64,)
BATCH_SIZE = 64
LEARNING_RATES = (0.001, 0.01)
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2  # of what is left after the test split
PNG_SCALE = 4  # each 8x8 digit becomes 32x32
PNG_MAX_DIGITS = 24
PNG_COLUMNS = 8


@dataclass(frozen=True)
class _Splits:
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any
    images_test: Any  # the 8x8 images of x_test, values 0..16


@dataclass(frozen=True)
class _ChildResult:
    run_id: str
    learning_rate: float
    val_accuracy: float
    test_accuracy: float
    test_f1_macro: float


def run_demo(epochs: int = 5, tracking_uri: str | None = None) -> None:
    """Train the digits MLP for `epochs` epochs per learning rate, record it, print a summary.

    `tracking_uri` (a data directory) becomes the process's tracking URI when given;
    otherwise the configured one (LEDGERFLOW_TRACKING_URI or ./ledgerflow-data) is used.
    """
    if type(epochs) is not int or epochs < 1:
        raise InvalidInput(f"epochs must be a whole number >= 1, got {epochs!r}", field="epochs")
    try:
        import numpy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError:
        raise InvalidInput(
            "the demo needs scikit-learn and numpy; install them with "
            "pip install 'ledgerflow[demo]'"
        ) from None
    if tracking_uri is not None:
        lf.set_tracking_uri(tracking_uri)

    started = time.perf_counter()
    splits = _load_digits()
    experiment = lf.set_experiment(EXPERIMENT)
    with lf.start_run(
        run_name=PARENT_RUN,
        description=(
            "Ledgerflow demo: an MLP on scikit-learn's digits, one child run per learning rate"
        ),
    ) as parent:
        parent_id = parent.info.run_id
        lf.log_params(
            {
                "model_type": MODEL_TYPE,
                "hidden_layer_sizes": list(HIDDEN),
                "learning_rates": list(LEARNING_RATES),
                "epochs": epochs,
                "batch_size": BATCH_SIZE,
                "random_seed": SEED,
                **_sizes(splits),
            }
        )
        lf.set_tags(
            {"demo": "digits", "task": "classification", "dataset": "sklearn.datasets.load_digits"}
        )
        lf.log_dict(_dataset_info(splits), "data/dataset_info.json")
        results = [_train_child(splits, lr, epochs) for lr in LEARNING_RATES]
        best = max(results, key=lambda r: (r.val_accuracy, r.test_accuracy))
        lf.log_metrics(
            {
                "best_val_accuracy": best.val_accuracy,
                "best_test_accuracy": best.test_accuracy,
                "best_test_f1_macro": best.test_f1_macro,
            }
        )
        lf.set_tags({"best_run_id": best.run_id, "best_learning_rate": str(best.learning_rate)})
        lf.log_dict(
            {
                "selected_by": "val_accuracy",
                "best_run_id": best.run_id,
                "children": [asdict(r) for r in results],
            },
            "summary.json",
        )
    elapsed = time.perf_counter() - started
    _print_summary(
        lf.Client(lf.get_tracking_uri()),
        experiment.experiment_id,
        parent_id,
        elapsed,
    )


# data ------------------------------------------------------------------------------------
def _load_digits() -> _Splits:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float64) / 16.0
    y = digits.target
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SEED, stratify=y)
    train, val = train_test_split(rest, test_size=VAL_FRACTION, random_state=SEED, stratify=y[rest])
    return _Splits(x[train], y[train], x[val], y[val], x[test], y[test], digits.images[test])


def _sizes(s: _Splits) -> dict[str, int]:
    return {"train_size": len(s.y_train), "val_size": len(s.y_val), "test_size": len(s.y_test)}


def _dataset_info(s: _Splits) -> dict[str, Any]:
    return {
        "name": "digits",
        "source": "sklearn.datasets.load_digits (bundled with scikit-learn)",
        "image_shape": [8, 8],
        "n_features": int(s.x_train.shape[1]),
        "feature_scaling": "pixel / 16, so every feature is in [0, 1]",
        "label_names": {str(i): f"digit {i}" for i in range(10)},
        "split": {**_sizes(s), "stratified": True, "random_seed": SEED},
        "confusion_matrix_layout": "rows are true labels 0-9, columns predicted labels 0-9",
    }


# training --------------------------------------------------------------------------------
def _train_child(s: _Splits, learning_rate: float, epochs: int) -> _ChildResult:
    import numpy as np
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score
    from sklearn.neural_network import MLPClassifier

    classes = np.arange(10)
    # partial_fit on one mini-batch makes one update; "auto" also fits the short last batch
    model = MLPClassifier(
        hidden_layer_sizes=HIDDEN,
        learning_rate_init=learning_rate,
        batch_size="auto",
        random_state=SEED,
    )
    rng = np.random.default_rng(SEED)  # same batch order for every learning rate
    n = len(s.y_train)
    batches_per_epoch = -(-n // BATCH_SIZE)
    with lf.start_run(
        run_name=f"lr={learning_rate:g}", nested=True, tags={"demo": "digits", "role": "candidate"}
    ) as child:
        lf.log_params(
            {
                "model_type": MODEL_TYPE,
                "hidden_layer_sizes": list(HIDDEN),
                "learning_rate": learning_rate,
                "solver": "adam",
                "epochs": epochs,
                "batch_size": BATCH_SIZE,
                "random_seed": SEED,
                **_sizes(s),
            }
        )
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n)
            losses = []
            for b in range(batches_per_epoch):
                idx = order[b * BATCH_SIZE : (b + 1) * BATCH_SIZE]
                model.partial_fit(s.x_train[idx], s.y_train[idx], classes=classes)
                losses.append(float(model.loss_))
                lf.log_metric(
                    "batch_loss", losses[-1], step=(epoch - 1) * batches_per_epoch + b + 1
                )
            val_accuracy = float(model.score(s.x_val, s.y_val))
            lf.log_metrics(
                {
                    "train_loss": float(np.mean(losses)),
                    "train_accuracy": float(model.score(s.x_train, s.y_train)),
                    "val_accuracy": val_accuracy,
                },
                step=epoch,
            )
        predicted = model.predict(s.x_test)
        test_accuracy = float(accuracy_score(s.y_test, predicted))
        test_f1 = float(f1_score(s.y_test, predicted, average="macro"))
        wrong = np.flatnonzero(predicted != s.y_test)
        lf.log_metrics(
            {
                "test_accuracy": test_accuracy,
                "test_f1_macro": test_f1,
                "test_misclassified": float(len(wrong)),
            },
            step=epochs,
        )
        lf.log_text(
            classification_report(s.y_test, predicted, digits=4), "eval/classification_report.txt"
        )
        with tempfile.TemporaryDirectory(prefix="ledgerflow-demo-") as tmp:
            csv = Path(tmp) / "confusion_matrix.csv"
            np.savetxt(
                csv, confusion_matrix(s.y_test, predicted, labels=classes), fmt="%d", delimiter=","
            )
            lf.log_artifact(csv, "eval")
            if len(wrong):
                shown = wrong[:PNG_MAX_DIGITS]
                png = Path(tmp) / "misclassified.png"
                png.write_bytes(_digit_grid_png(s.images_test[shown]))
                lf.log_artifact(png, "eval")
                lf.log_dict(
                    {
                        "layout": f"tiles left to right, top to bottom, {PNG_COLUMNS} per row",
                        "tiles": [
                            {"true": int(s.y_test[i]), "predicted": int(predicted[i])}
                            for i in shown
                        ],
                    },
                    "eval/misclassified.json",
                )
        return _ChildResult(child.info.run_id, learning_rate, val_accuracy, test_accuracy, test_f1)


# PNG without matplotlib ------------------------------------------------------------------
def _digit_grid_png(images: Any) -> bytes:
    """Tile 8x8 digit images (values 0..16) into a grid, dark ink on white, upscaled."""
    import numpy as np

    cell, pad = 8 * PNG_SCALE, 2
    cols = min(PNG_COLUMNS, len(images))
    rows = -(-len(images) // cols)
    canvas = np.full((rows * (cell + pad) + pad, cols * (cell + pad) + pad), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        big = np.kron(np.asarray(img, dtype=np.float64), np.ones((PNG_SCALE, PNG_SCALE)))
        y, x = pad + r * (cell + pad), pad + c * (cell + pad)
        canvas[y : y + cell, x : x + cell] = (255 - big * 255 / 16).round().astype(np.uint8)
    return encode_png_gray(canvas.shape[1], canvas.shape[0], canvas.tobytes())


def encode_png_gray(width: int, height: int, pixels: bytes | Sequence[int]) -> bytes:
    """A valid 8-bit grayscale PNG of `pixels` (row-major, one byte per pixel)."""
    data = bytes(pixels)
    if width < 1 or height < 1 or len(data) != width * height:
        raise InvalidInput(
            f"a {width}x{height} image needs {width * height} pixel bytes, got {len(data)}",
            field="pixels",
        )

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + data[y * width : (y + 1) * width] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# summary ---------------------------------------------------------------------------------
def _artifact_paths(client: Client, run_id: str, path: str | None = None) -> list[str]:
    out: list[str] = []
    for f in client.list_artifacts(run_id, path):
        out.extend(_artifact_paths(client, run_id, f.path) if f.is_dir else [f.path])
    return out


def _where(settings: Settings) -> str:
    return settings.tracking_uri if settings.is_remote else str(settings.data_dir)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_summary(client: Client, experiment_id: str, parent_id: str, elapsed: float) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from ledgerflow.events.settings import load_settings

    experiment = client.get_experiment(experiment_id)
    parent = client.get_run(parent_id)
    children = sorted(
        client.search_runs(experiment_id, f"tags.mlflow.parentRunId = '{parent_id}'"),
        key=lambda r: r.info.start_time,
    )
    best_id = parent.data.tags.get("best_run_id", "")

    console = Console()
    console.print(f"\n[bold]Ledgerflow demo[/] finished in {elapsed:.1f} s")
    console.print(f"experiment [cyan]{experiment.name}[/] (id {experiment.experiment_id})")

    table = Table(
        title="runs recorded by this demo", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 0)
    )
    for col in ("run", "run id", "status", "val acc", "test acc", "test F1"):
        table.add_column(
            col,
            no_wrap=True,
            min_width=32 if col == "run id" else None,
            justify="left" if col[0] in "rs" else "right",
        )
    for run in [parent, *children]:
        m = run.data.metrics
        name = run.info.run_name if run is parent else f"└ {run.info.run_name}"
        if run.info.run_id == best_id:
            name += " *"
        table.add_row(
            name,
            run.info.run_id,
            run.info.status,
            _fmt(m.get("val_accuracy", m.get("best_val_accuracy"))),
            _fmt(m.get("test_accuracy", m.get("best_test_accuracy"))),
            _fmt(m.get("test_f1_macro", m.get("best_test_f1_macro"))),
        )
    console.print(table)
    if best_id:
        console.print(
            f"* the best child by val accuracy (tag best_run_id of {PARENT_RUN}); "
            "the parent row repeats its metrics"
        )

    for run in children:
        rid = run.info.run_id
        val = client.get_metric_history(rid, "val_accuracy")
        batch = client.get_metric_history(rid, "batch_loss")
        console.print(
            f"[bold]{run.info.run_name}[/]: val_accuracy history {len(val)} points "
            f"({', '.join(f'{p.value:.3f}' for p in val)}), "
            f"batch_loss history {len(batch)} points"
        )
    for run in [parent, *children]:
        paths = _artifact_paths(client, run.info.run_id)
        console.print(f"artifacts of {run.info.run_name}: {', '.join(paths) or '(none)'}")

    settings = load_settings(tracking_uri=lf.get_tracking_uri())
    where = _where(settings)
    console.print(f"\ndata directory: [green]{where}[/]")
    console.print("\n[bold]next steps[/]")
    if where != _where(load_settings()):  # the commands below would look elsewhere
        console.print(f"  export LEDGERFLOW_TRACKING_URI={where}")
    show_id = best_id or parent_id
    exe = _ledgerflow_command()
    for cmd in (
        f"{exe} runs list --experiment {EXPERIMENT}",
        f"{exe} runs show {parent_id}",
        f"{exe} metrics history {show_id} val_accuracy",
        f"{exe} events tail --type 'run.*'",
    ):
        console.print(f"  {cmd}", markup=False, highlight=False, soft_wrap=True)


def _ledgerflow_command() -> str:
    """How the user can run the CLI from here: `ledgerflow` if it is on the PATH, else the
    script next to this interpreter (e.g. `.venv/bin/ledgerflow` before activating)."""
    import os
    import shutil
    import sys
    from pathlib import Path

    if shutil.which("ledgerflow"):
        return "ledgerflow"
    script = Path(sys.executable).parent / "ledgerflow"
    if not script.exists():
        return "ledgerflow"
    try:
        rel = os.path.relpath(script)
    except ValueError:  # another drive on Windows
        return str(script)
    return rel if not rel.startswith("..") else str(script)
