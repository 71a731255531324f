"""Bundle forms against the original model through pyfunc: `predict` latency and
throughput at batch sizes 1 and 64, side by side in one run.

    .venv/bin/python bench/bundles.py            # what produced docs/benchmarks.md (~1 min)
    .venv/bin/python bench/bundles.py --quick    # fewer calls, a smoke run
    .venv/bin/python bench/bundles.py --json out.json

Three small MLPs (64 features in, 10 classes out) are logged and registered in a
fresh data directory: PyTorch, Keras and scikit-learn. `lf.bundles.build` turns
them into every form their flavor has, on a local Ray, with parity checked.
Each form is then called in this process the way a server would call it
(ONNX Runtime `session.run`, a TorchScript module under `no_grad`, a SavedModel's
`serve` function), and the original through `lf.pyfunc.load_model(...).predict`.
Latency: median and 90th percentile of single calls; throughput: rows per second
over all calls (so it feels the slow calls the median ignores).
Ratio: pyfunc's median latency over the form's (above 1, the bundle is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

Predict = Callable[[np.ndarray], Any]
FEATURES, HIDDEN, CLASSES = 64, 256, 10


def _models(rng: np.random.Generator) -> dict[str, Callable[[np.ndarray], None]]:
    """Log one model per flavor; each function logs and registers it under its name."""
    import ledgerflow as lf

    X = rng.normal(size=(512, FEATURES)).astype(np.float32)
    y = (X[:, :CLASSES].argmax(axis=1)).astype(np.int64)

    def pytorch(example: np.ndarray) -> None:
        import torch

        net = torch.nn.Sequential(
            torch.nn.Linear(FEATURES, HIDDEN), torch.nn.ReLU(),
            torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, CLASSES),
        )  # fmt: skip
        lf.pytorch.log_model(net, name="pytorch", input_example=example,
                             registered_model_name="bench-pytorch")  # fmt: skip

    def keras(example: np.ndarray) -> None:
        import keras

        keras.utils.set_random_seed(0)
        net = keras.Sequential([
            keras.Input((FEATURES,)), keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dense(HIDDEN, activation="relu"), keras.layers.Dense(CLASSES),
        ])  # fmt: skip
        lf.tensorflow.log_model(net, name="keras", input_example=example,
                                registered_model_name="bench-keras")  # fmt: skip

    def sklearn(example: np.ndarray) -> None:
        from sklearn.neural_network import MLPClassifier

        net = MLPClassifier((HIDDEN, HIDDEN), max_iter=30, random_state=0).fit(X, y)
        lf.sklearn.log_model(
            net, name="sklearn", input_example=example, registered_model_name="bench-sklearn",
            skops_trusted_types=["sklearn.neural_network._stochastic_optimizers.AdamOptimizer"],
        )  # fmt: skip

    return {"pytorch": pytorch, "keras": keras, "sklearn": sklearn}


def _loader(target: str, folder: Path, manifest: dict[str, Any]) -> Predict:
    if target == "onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        # idle ONNX Runtime threads spin for a while by default, taking the CPU from the
        # next form measured on a small machine; they sleep here, as they would in a
        # server that also runs other work
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})
    if target == "torchscript":
        import torch

        module = torch.jit.load(str(folder / "model.pt"))
        module.eval()

        def run(x: np.ndarray) -> Any:
            with torch.no_grad():
                return module(torch.from_numpy(x)).numpy()

        return run
    import tensorflow as tf

    src = manifest["source"]
    loaded = tf.saved_model.load(str(folder / src["name"] / str(src["version"])))
    return lambda x: loaded.serve(tf.constant(x)).numpy()


def _measure(fn: Predict, batch: np.ndarray, calls: int) -> tuple[float, float, float]:
    """(median and 90th percentile latency in ms, rows per second)."""
    for _ in range(max(20, calls // 10)):  # TorchScript optimizes over its first calls
        fn(batch)
    times = []
    start = time.perf_counter()
    for _ in range(calls):
        t = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    p90 = statistics.quantiles(times, n=10)[-1]
    return statistics.median(times) * 1000, p90 * 1000, len(batch) * calls / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    calls = 50 if args.quick else 400
    data = Path(tempfile.mkdtemp(prefix="ledgerflow-bench-bundles-"))
    import ledgerflow as lf

    lf.set_tracking_uri(str(data / "ledgerflow-data"))
    rng = np.random.default_rng(0)
    example = rng.normal(size=(4, FEATURES)).astype(np.float32)
    started = time.perf_counter()
    forms: dict[str, dict[str, Predict]] = {}
    with lf.start_run():
        for log in _models(rng).values():
            log(example)
    for flavor in ("pytorch", "keras", "sklearn"):
        uri = f"models:/bench-{flavor}/1"
        t = time.perf_counter()
        bundles = lf.bundles.build(uri)
        print(f"built {flavor}: " + ", ".join(
            f"{b.target} {b.status} (max |diff| {b.max_abs_diff:.2g})" if b.status == "built"
            else f"{b.target} FAILED: {b.reason}" for b in bundles
        ) + f" in {time.perf_counter() - t:.1f} s", flush=True)  # fmt: skip
        original = lf.pyfunc.load_model(uri)
        forms[flavor] = {"pyfunc": original.predict}
        for b in bundles:
            if b.status == "built":
                folder = Path(lf.bundles.download(b.id, str(data / b.id)))
                forms[flavor][b.target] = _loader(b.target, folder, b.manifest)

    rows: list[dict[str, Any]] = []
    for flavor, by_form in forms.items():
        for size in (1, 64):
            batch = rng.normal(size=(size, FEATURES)).astype(np.float32)
            base = None
            for form, fn in by_form.items():
                p50, p90, rate = _measure(fn, batch, calls)
                base = p50 if form == "pyfunc" else base
                rows.append({
                    "model": flavor, "form": form, "batch": size, "p50_ms": p50, "p90_ms": p90,
                    "rows_per_s": rate, "speedup": (base or p50) / p50,
                })  # fmt: skip
    head = ("model", "form", "batch", "p50 ms", "p90 ms", "rows/s", "vs pyfunc")
    print("\n{:8} {:12} {:>5} {:>9} {:>9} {:>11} {:>9}".format(*head))
    for r in rows:
        print(f"{r['model']:8} {r['form']:12} {r['batch']:>5} {r['p50_ms']:>9.3f} "
              f"{r['p90_ms']:>9.3f} {r['rows_per_s']:>11,.0f} {r['speedup']:>8.1f}x")  # fmt: skip
    print(f"\n{calls} calls per row; total {time.perf_counter() - started:.0f} s; "
          f"Python {platform.python_version()}, {os.cpu_count()} CPUs")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
