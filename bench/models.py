"""Ledgerflow against MLflow on model packaging and the registry, side by side.

    .venv/bin/python bench/models.py            # the full run (about a minute)
    .venv/bin/python bench/models.py --quick    # fewer repetitions

For a scikit-learn model and a small PyTorch model: the time to save a model
directory, to load it back through pyfunc, and `predict` latency through pyfunc
at batch sizes 1 and 64. For the registry: the round trip of `register_model`
(append, project, read back the version) against MLflow's SQLite registry.
Both run in this one process, each in its own temporary directory; the ratio
is how many times faster Ledgerflow is (above 1, Ledgerflow wins).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sklearn_model() -> tuple[Any, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float64)
    return LogisticRegression(max_iter=300).fit(x, y), x


def torch_model() -> tuple[Any, np.ndarray]:
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    ).eval()
    x = np.random.default_rng(0).random((256, 64), dtype=np.float32)
    return model, x


def flavor_rows(kind: str, repeats: int, work: Path) -> list[tuple[str, float, float]]:
    import mlflow
    import mlflow.pyfunc

    import ledgerflow.pyfunc

    if kind == "sklearn":
        import mlflow.sklearn

        import ledgerflow.sklearn

        model, x = sklearn_model()
        ours_save, theirs_save = ledgerflow.sklearn.save_model, mlflow.sklearn.save_model
    else:
        import mlflow.pytorch

        import ledgerflow.pytorch

        model, x = torch_model()
        ours_save, theirs_save = ledgerflow.pytorch.save_model, mlflow.pytorch.save_model
    counter = iter(range(10**6))

    def saver(save: Callable[..., Any], tag: str) -> Callable[[], Path]:
        def go() -> Path:
            path = work / f"{kind}-{tag}-{next(counter)}"
            save(model, path, input_example=x[:5])  # pt2 export traces it; both infer signatures
            return path

        return go

    rows = []
    ours_path, theirs_path = saver(ours_save, "lf")(), saver(theirs_save, "ml")()
    rows.append(
        (
            f"{kind}: save_model",
            median_time(saver(ours_save, "lf"), repeats),
            median_time(saver(theirs_save, "ml"), repeats),
        )
    )
    # MLflow's default save infers pip requirements by loading the model in a subprocess;
    # ours pins the flavor's known requirements. Given requirements, MLflow skips that.
    reqs = ["scikit-learn"] if kind == "sklearn" else ["torch"]

    def theirs_with_reqs(m: Any, p: Path, **kw: Any) -> None:
        theirs_save(m, p, pip_requirements=reqs, **kw)

    rows.append(
        (
            f"{kind}: save_model, MLflow given pip_requirements",
            median_time(saver(ours_save, "lf"), repeats),
            median_time(saver(theirs_with_reqs, "ml2"), repeats),
        )
    )
    rows.append(
        (
            f"{kind}: pyfunc.load_model",
            median_time(lambda: ledgerflow.pyfunc.load_model(str(ours_path)), repeats),
            median_time(lambda: mlflow.pyfunc.load_model(str(theirs_path)), repeats),
        )
    )
    ours = ledgerflow.pyfunc.load_model(str(ours_path))
    theirs = mlflow.pyfunc.load_model(str(theirs_path))
    for batch in (1, 64):
        xb = x[:batch]
        rows.append(
            (
                f"{kind}: predict, batch {batch}",
                median_time(lambda xb=xb: ours.predict(xb), repeats * 20),
                median_time(lambda xb=xb: theirs.predict(xb), repeats * 20),
            )
        )
    same = np.allclose(np.asarray(ours.predict(x[:64])), np.asarray(theirs.predict(x[:64])))
    print(f"  {kind}: both predict the same on 64 rows: {same}")
    return rows


def registry_row(repeats: int, work: Path) -> tuple[str, float, float]:
    """Registering a version: append + project + read back (ours) against MLflow's SQLite
    registry insert. Both through the Client's create_model_version, the call every
    register_model ends in (MLflow 3's register_model of a runs:/ URI also wants a
    LoggedModel, which this comparison leaves out)."""
    import mlflow
    from mlflow import MlflowClient

    import ledgerflow as lf

    lf.set_tracking_uri(str(work / "lf-data"))
    with lf.start_run() as run:
        lf.log_text("x", "model/weights.txt")
    ours_client = lf.Client()
    ours_client.create_registered_model("bench")
    source = f"runs:/{run.info.run_id}/model"
    ours = median_time(
        lambda: ours_client.create_model_version("bench", source, run.info.run_id), repeats
    )
    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    with mlflow.start_run() as mrun:
        mlflow.log_text("x", "model/weights.txt")
    theirs_client = MlflowClient()
    theirs_client.create_registered_model("bench")
    msource = f"runs:/{mrun.info.run_id}/model"
    theirs = median_time(
        lambda: theirs_client.create_model_version("bench", msource, mrun.info.run_id), repeats
    )
    return ("create_model_version round trip", ours, theirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeats = 3 if args.quick else 10
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    import ledgerflow

    print(
        f"Ledgerflow {ledgerflow.__version__} vs MLflow {mlflow.__version__}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in ("sklearn", "pytorch"):
            rows += flavor_rows(kind, repeats, work)
        rows.append(registry_row(repeats, work))
    print(f"\n{'benchmark':50} {'Ledgerflow':>12} {'MLflow':>12} {'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:50} {ours * 1000:>10.2f}ms {theirs * 1000:>10.2f}ms {theirs / ours:>7.1f}x")
    print("\nratio = how many times faster Ledgerflow is (above 1: Ledgerflow wins)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
