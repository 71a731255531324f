"""The data and the two models behind `ledgerflow demo`: a Keras CNN and a PyTorch CNN.

Both read scikit-learn's bundled 8x8 digit images (no download) as float32 arrays of
shape (n, 8, 8, 1) scaled to [0, 1], and return float32 class probabilities of shape
(n, 10): one signature, so whichever wins can be served without knowing its framework.
Each trains as a Ray job (`keras_job`, `torch_job`: the function `lf.jobs.submit` runs
in a fresh process) that logs into the job's run: its params, one point per epoch of
train/val loss and accuracy, its test metrics and a confusion matrix, and the model as
`cnn-digits`, the way the MLflow walkthrough the demo follows does. The submitting
process then registers each run's model as the next version of `digits-cnn`
(`register`), in a fixed order whichever job ends first. TensorFlow, torch,
scikit-learn and numpy are imported inside the functions, so importing this module
stays cheap.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ledgerflow as lf

if TYPE_CHECKING:
    from ledgerflow.entities import Run
    from ledgerflow.models import ModelSignature

SEED = 42
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2  # of what is left after the test split
IMAGE_SHAPE = (8, 8, 1)
N_CLASSES = 10
FILTERS = 16
KERNEL = 3
BATCH_SIZE = 32
LEARNING_RATE = 0.005
ARTIFACT = "cnn-digits"
REGISTERED_MODEL = "digits-cnn"
LAYERS = f"Conv2D({FILTERS}, {KERNEL}x{KERNEL}, relu) > MaxPool(2x2) > Flatten > Dense(10, softmax)"


@dataclass(frozen=True)
class Splits:
    x_train: Any  # float32 (n, 8, 8, 1), pixels / 16
    y_train: Any  # int64 labels 0-9
    x_val: Any
    y_val: Any
    x_test: Any
    y_test: Any

    def sizes(self) -> dict[str, int]:
        return {
            "train_size": len(self.y_train),
            "val_size": len(self.y_val),
            "test_size": len(self.y_test),
        }


@dataclass(frozen=True)
class Trained:
    """One candidate: its run, its test metrics and the registry version it became."""

    framework: str
    run_id: str
    model_uri: str
    test_loss: float
    test_accuracy: float
    train_seconds: float
    version: int


def load_digits() -> Splits:
    """The digits, split stratified into train / validation / test with a fixed seed."""
    import numpy as np
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    digits = sk_load_digits()
    x = (digits.images / 16.0).astype(np.float32).reshape(-1, *IMAGE_SHAPE)
    y = digits.target.astype(np.int64)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SEED, stratify=y)
    train, val = train_test_split(rest, test_size=VAL_FRACTION, random_state=SEED, stratify=y[rest])
    return Splits(x[train], y[train], x[val], y[val], x[test], y[test])


def dataset_info(s: Splits) -> dict[str, Any]:
    return {
        "name": "digits",
        "source": "sklearn.datasets.load_digits (bundled with scikit-learn)",
        "model_input": "float32 tensor (n, 8, 8, 1), pixel / 16 so every value is in [0, 1]",
        "model_output": "float32 tensor (n, 10), the probability of each digit 0-9",
        "label_names": {str(i): f"digit {i}" for i in range(N_CLASSES)},
        "split": {**s.sizes(), "stratified": True, "random_seed": SEED},
        "confusion_matrix_layout": "rows are true labels 0-9, columns predicted labels 0-9",
    }


def signature() -> ModelSignature:
    """What both models take and return, so the champion is served the same either way."""
    import numpy as np

    from ledgerflow.models import ModelSignature, Schema, TensorSpec

    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *IMAGE_SHAPE))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, N_CLASSES))]),
    )


def _params(framework: str, epochs: int, s: Splits) -> dict[str, Any]:
    return {
        "framework": framework,
        "layers": LAYERS,
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "optimizer": "adam",
        "learning_rate": LEARNING_RATE,
        "random_seed": SEED,
        **s.sizes(),
    }


# Keras -----------------------------------------------------------------------------------
def keras_job(epochs: int) -> None:
    """The Keras job: train and log into the job's run (LEDGERFLOW_RUN_ID)."""
    train_keras(load_digits(), epochs)


def train_keras(s: Splits, epochs: int) -> None:
    """The walkthrough's CNN, sized for 8x8 images, fitted with validation data."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    from tensorflow import keras

    import ledgerflow.tensorflow  # noqa: F401  # makes lf.tensorflow available

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            keras.layers.Conv2D(FILTERS, KERNEL, activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dense(N_CLASSES, activation="softmax"),
        ]
    )
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        metrics=["accuracy"],
    )
    with lf.start_run(tags={"role": "candidate"}):  # resumes the job's run
        lf.log_params(_params("keras", epochs, s))
        started = time.perf_counter()
        history = model.fit(
            s.x_train,
            s.y_train,
            epochs=epochs,
            batch_size=BATCH_SIZE,
            validation_data=(s.x_val, s.y_val),
            verbose=0,
        ).history
        seconds = time.perf_counter() - started
        for i in range(epochs):
            lf.log_metrics(
                {
                    "train_loss": history["loss"][i],
                    "train_accuracy": history["accuracy"][i],
                    "val_loss": history["val_loss"][i],
                    "val_accuracy": history["val_accuracy"][i],
                },
                step=i + 1,
            )
        _report("keras", history["val_accuracy"])
        test_loss, test_accuracy = model.evaluate(s.x_test, s.y_test, verbose=0)
        probs = model.predict(s.x_test, verbose=0)
        _log_test_metrics(s, probs, test_loss, test_accuracy, epochs, seconds)
        # artifact_path= is MLflow's older spelling of name=, kept as the walkthrough has it
        lf.tensorflow.log_model(
            model,
            artifact_path=ARTIFACT,
            signature=signature(),
            input_example=s.x_train[:3],
        )
        print(f"keras: test_accuracy {test_accuracy:.3f}, model logged as {ARTIFACT}")


# PyTorch ---------------------------------------------------------------------------------
def _torch_cnn() -> Any:
    """The same layers in torch; it takes (n, 8, 8, 1) like the Keras model and permutes."""
    import torch
    from torch import nn

    class DigitsCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, FILTERS, KERNEL)
            self.pool = nn.MaxPool2d(2)
            self.dense = nn.Linear(FILTERS * 3 * 3, N_CLASSES)

        def logits(self, x: Any) -> Any:
            h = self.pool(torch.relu(self.conv(x.permute(0, 3, 1, 2))))
            return self.dense(torch.flatten(h, 1))

        def forward(self, x: Any) -> Any:
            return torch.softmax(self.logits(x), dim=1)

    return DigitsCNN()


def torch_job(epochs: int) -> None:
    """The PyTorch job: train and log into the job's run (LEDGERFLOW_RUN_ID)."""
    train_torch(load_digits(), epochs)


def train_torch(s: Splits, epochs: int) -> None:
    """The PyTorch twin: same layers, optimizer, batch size and epochs, a plain loop."""
    import torch

    torch.manual_seed(SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # batches of 32 8x8 images: thread hand-offs cost more than they save
    try:
        _fit_torch(s, epochs, _torch_cnn())
    finally:
        torch.set_num_threads(threads)


def _fit_torch(s: Splits, epochs: int, model: Any) -> None:
    import torch
    import torch.nn.functional as F

    import ledgerflow.pytorch  # noqa: F401  # makes lf.pytorch available

    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    x, y = torch.from_numpy(s.x_train), torch.from_numpy(s.y_train)
    shuffle = torch.Generator().manual_seed(SEED)

    def evaluate(images: Any, labels: Any) -> tuple[float, float, Any]:
        model.eval()
        with torch.no_grad():
            logits = model.logits(torch.from_numpy(images))
        target = torch.from_numpy(labels)
        accuracy = (logits.argmax(1) == target).float().mean()
        probs = torch.softmax(logits, 1).numpy()
        return float(F.cross_entropy(logits, target)), float(accuracy), probs

    with lf.start_run(tags={"role": "candidate"}):  # resumes the job's run
        lf.log_params(_params("pytorch", epochs, s))
        started = time.perf_counter()
        val_history = []
        for epoch in range(1, epochs + 1):
            model.train()
            total_loss, hits = 0.0, 0
            order: Any = torch.randperm(len(y), generator=shuffle)
            for batch in order.split(BATCH_SIZE):
                optimizer.zero_grad()
                logits = model.logits(x[batch])
                loss: Any = F.cross_entropy(logits, y[batch])
                loss.backward()
                optimizer.step()
                total_loss += loss.item() * len(batch)
                hits += int((logits.argmax(1) == y[batch]).sum())
            val_loss, val_accuracy, _ = evaluate(s.x_val, s.y_val)
            val_history.append(val_accuracy)
            lf.log_metrics(
                {
                    "train_loss": total_loss / len(y),
                    "train_accuracy": hits / len(y),
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                },
                step=epoch,
            )
        seconds = time.perf_counter() - started
        _report("pytorch", val_history)
        test_loss, test_accuracy, probs = evaluate(s.x_test, s.y_test)
        _log_test_metrics(s, probs, test_loss, test_accuracy, epochs, seconds)
        lf.pytorch.log_model(
            model, name=ARTIFACT, signature=signature(), input_example=s.x_train[:3]
        )
        print(f"pytorch: test_accuracy {test_accuracy:.3f}, model logged as {ARTIFACT}")


# both ------------------------------------------------------------------------------------
def _report(framework: str, val_accuracy: list[float]) -> None:
    """One line per epoch in the job's log, which the demo shows."""
    for epoch, value in enumerate(val_accuracy, start=1):
        print(f"{framework}: epoch {epoch}/{len(val_accuracy)} val_accuracy {value:.3f}")


def _log_test_metrics(
    s: Splits, probs: Any, test_loss: float, test_accuracy: float, epochs: int, seconds: float
) -> None:
    import numpy as np
    from sklearn.metrics import confusion_matrix

    predicted = np.asarray(probs).argmax(axis=1)
    lf.log_metrics(
        {
            "test_loss": float(test_loss),
            "test_accuracy": float(test_accuracy),
            "test_misclassified": float(np.sum(predicted != s.y_test)),
            "train_seconds": seconds,
        },
        step=epochs,
    )
    matrix = confusion_matrix(s.y_test, predicted, labels=np.arange(N_CLASSES))
    lf.log_text(
        "\n".join(",".join(str(int(v)) for v in row) for row in matrix) + "\n",
        "eval/confusion_matrix.csv",
    )


def register(run: Run) -> Trained:
    """Register a finished job's model as the next version of REGISTERED_MODEL, with what
    its run logged."""
    framework = run.data.params["framework"]
    m = run.data.metrics
    model_uri = f"runs:/{run.info.run_id}/{ARTIFACT}"
    mv = lf.register_model(
        model_uri,
        REGISTERED_MODEL,
        tags={"framework": framework, "test_accuracy": f"{m['test_accuracy']:.4f}"},
    )
    return Trained(
        framework=framework,
        run_id=run.info.run_id,
        model_uri=model_uri,
        test_loss=m["test_loss"],
        test_accuracy=m["test_accuracy"],
        train_seconds=m["train_seconds"],
        version=int(mv.version),
    )
