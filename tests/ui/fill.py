"""The data the browser tests look at, logged through the SDK into a data directory:
a few experiments, runs with params, metrics (one long), tags, nested runs, artifacts
of each kind the artifact browser previews, and a logged and registered model.

Run as `python -m tests.ui.fill DATA_DIR`; prints a JSON summary the tests read."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

from tests.ui.fill_registry import fill_registry

LONG_METRIC_POINTS = 20_000


def _png(width: int, height: int) -> bytes:
    """A small red-green gradient PNG, written with zlib (no imaging library needed)."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 80)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def fill(data_dir: Path) -> dict[str, object]:
    from sklearn.linear_model import LogisticRegression

    import ledgerflow as lf

    lf.set_tracking_uri(str(data_dir))
    summary: dict[str, object] = {}

    lf.set_experiment("image-classifier")
    with lf.start_run(run_name="baseline") as parent:
        lf.log_params({"lr": "0.01", "optimizer": "adam", "epochs": "3"})
        lf.set_tags({"team": "vision", "stage": "tuning"})
        steps = np.arange(LONG_METRIC_POINTS)
        loss = 1.0 / (1.0 + steps / 500.0) + 0.02 * np.sin(steps / 40.0)
        lf.log_metrics({"accuracy": 0.91, "f1": 0.88})
        for start in range(0, LONG_METRIC_POINTS, 5000):
            for s in range(start, start + 5000):
                lf.log_metric("loss", float(loss[s]), step=int(s))
        lf.log_text("epoch 1 done\nepoch 2 done\n", "logs/train.txt")
        lf.log_dict({"layers": [64, 32], "activation": "relu"}, "config.json")
        lf.log_dict({"batch_size": 32, "augment": True}, "params.yaml")
        lf.log_text("label,precision,recall\ncat,0.93,0.90\ndog,0.89,0.94\n", "report.csv")
        png = data_dir.parent / "confusion.png"
        png.write_bytes(_png(64, 48))
        lf.log_artifact(str(png), "plots")
        X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
        y = np.array([0, 1, 0, 1])
        lf.sklearn.log_model(
            LogisticRegression().fit(X, y),
            "model",
            input_example=X[:2],
            registered_model_name="digits-classifier",
        )
        for i, lr in enumerate(("0.1", "0.001")):
            with lf.start_run(run_name=f"trial-{i}", nested=True) as child:
                lf.log_param("lr", lr)
                for s in range(50):
                    lf.log_metric("loss", 1.0 / (s + 1 + i), step=s)
                lf.log_metric("accuracy", 0.8 + i / 100)
                summary.setdefault("children", []).append(child.info.run_id)  # type: ignore[union-attr]
    summary["parent"] = parent.info.run_id

    with lf.start_run(run_name="wide-net") as other:
        lf.log_params({"lr": "0.05", "optimizer": "sgd", "epochs": "5"})
        lf.log_metrics({"accuracy": 0.95, "f1": 0.93})
        for s in range(100):
            lf.log_metrics(
                {"loss": 2.0 / (s + 2), **{f"layer{i}.grad": 1.0 / (s + i + 1) for i in range(10)}},
                step=s,
            )
    summary["other"] = other.info.run_id

    lf.set_experiment("text-summarizer")
    for i in range(3):
        with lf.start_run(run_name=f"summarizer-{i}"):
            lf.log_param("temperature", str(0.2 * i))
            lf.log_metric("rouge", 0.3 + i / 10)
    fill_registry(summary)
    lf.set_experiment("to-be-deleted")
    lf.flush()
    summary["experiments"] = {e.name: e.experiment_id for e in lf.search_experiments()}
    return summary


if __name__ == "__main__":
    print(json.dumps(fill(Path(sys.argv[1]))))
