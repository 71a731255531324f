"""The main job behind `ledgerflow demo`: train, log, register, promote, serve.

It follows the MLflow walkthrough (a Keras CNN logged with its params and metrics,
registered, then deployed) on scikit-learn's bundled 8x8 digit images, and adds a
PyTorch twin: both train in nested runs under one parent, both are logged as
`cnn-digits` with the same signature and registered as versions of `digits-cnn`; the
one with the better test accuracy gets the alias `champion`, the other `challenger`.
A fresh Python process then loads `models:/digits-cnn@champion` through
`ledgerflow.pyfunc`, knowing nothing of its framework, and predicts test images.
Everything printed is read back through `Client`, so it has gone through the event
log and the views. The frameworks load only when the demo runs (see demo_models).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ledgerflow as lf
from ledgerflow.demo_models import REGISTERED_MODEL  # demo_models imports no framework
from ledgerflow.events.errors import InvalidInput, LedgerflowError

if TYPE_CHECKING:
    from ledgerflow.client import Client
    from ledgerflow.demo_models import Splits, Trained
    from ledgerflow.events.settings import Settings

EXPERIMENT = "ledgerflow-demo-digits"
PARENT_RUN = "compare-cnns"
CHAMPION_URI = f"models:/{REGISTERED_MODEL}@champion"
SHOWN_PREDICTIONS = 12
SERVE_TIMEOUT_S = 180
_NEEDED = {
    "numpy": "numpy",
    "sklearn": "scikit-learn",
    "torch": "torch",
    "tensorflow": "tensorflow",
}

# Runs in a fresh interpreter: only the tracking URI (from the environment) and the model
# URI connect it to this process. Request on stdin, one JSON line of answer on stdout.
_SERVE_CODE = """\
import json, sys
import numpy as np
import ledgerflow.pyfunc
request = json.load(sys.stdin)
model = ledgerflow.pyfunc.load_model(request["model_uri"])
probs = np.asarray(model.predict(np.asarray(request["images"], dtype=np.float32)))
answer = {"loader_module": model.loader_module, "run_id": model.metadata.run_id,
          "predictions": probs.argmax(axis=1).tolist()}
print("LEDGERFLOW-ANSWER " + json.dumps(answer))
"""


@dataclass(frozen=True)
class _Served:
    """What the fresh process predicted for the test images, and how long it took."""

    loader_module: str
    run_id: str
    predictions: list[int]
    labels: list[int]
    seconds: float

    @property
    def accuracy(self) -> float:
        return sum(p == y for p, y in zip(self.predictions, self.labels, strict=True)) / len(
            self.labels
        )


def run_demo(epochs: int = 5, tracking_uri: str | None = None) -> None:
    """Train both CNNs for `epochs` epochs, record and register them, serve the champion
    from a fresh process, and print what was recorded where.

    `tracking_uri` (a data directory) becomes the process's tracking URI when given;
    otherwise the configured one (LEDGERFLOW_TRACKING_URI or ./ledgerflow-data) is used.
    """
    if type(epochs) is not int or epochs < 1:
        raise InvalidInput(f"epochs must be a whole number >= 1, got {epochs!r}", field="epochs")
    missing = [pkg for mod, pkg in _NEEDED.items() if not _importable(mod)]
    if missing:
        raise InvalidInput(
            f"the demo needs {', '.join(missing)}; install what it trains with: "
            "pip install 'ledgerflow[demo]'"
        )
    if tracking_uri is not None:
        lf.set_tracking_uri(tracking_uri)

    from ledgerflow import demo_models as dm

    started = time.perf_counter()
    splits = dm.load_digits()
    experiment = lf.set_experiment(EXPERIMENT)
    with lf.start_run(
        run_name=PARENT_RUN,
        description="Ledgerflow demo: a Keras CNN and a PyTorch CNN on scikit-learn's digits",
    ) as parent:
        parent_id = parent.info.run_id
        lf.log_params(
            {"epochs": epochs, "layers": dm.LAYERS, "random_seed": dm.SEED, **splits.sizes()}
        )
        lf.set_tags({"demo": "digits", "dataset": "sklearn.datasets.load_digits"})
        lf.log_dict(dm.dataset_info(splits), "data/dataset_info.json")
        candidates = [dm.train_keras(splits, epochs), dm.train_torch(splits, epochs)]
        champion, challenger = _promote(candidates)
        lf.set_tags(
            {
                "champion_run_id": champion.run_id,
                "champion_version": str(champion.version),
                "challenger_version": str(challenger.version),
            }
        )
        lf.log_metrics({"champion_test_accuracy": champion.test_accuracy})
    lf.flush()
    served = _serve_in_fresh_process(splits)
    elapsed = time.perf_counter() - started
    client = lf.Client(lf.get_tracking_uri())
    _print_summary(client, experiment.experiment_id, parent_id, candidates, served, elapsed)


def _importable(module: str) -> bool:
    """Whether `module` could be imported, without importing it (TensorFlow takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _promote(candidates: list[Trained]) -> tuple[Trained, Trained]:
    """Alias the better version by test accuracy `champion` (lower test loss breaks a tie,
    then the earlier version), the other `challenger`."""
    ranked = sorted(candidates, key=lambda t: (-t.test_accuracy, t.test_loss, t.version))
    champion, challenger = ranked[0], ranked[1]
    client = lf.Client(lf.get_tracking_uri())
    client.set_registered_model_alias(REGISTERED_MODEL, "champion", champion.version)
    client.set_registered_model_alias(REGISTERED_MODEL, "challenger", challenger.version)
    return champion, challenger


def _serve_in_fresh_process(splits: Splits) -> _Served:
    """Load the champion by its alias in a new interpreter and predict every test image."""
    env = {**os.environ, "LEDGERFLOW_TRACKING_URI": lf.get_tracking_uri()}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    request = {"model_uri": CHAMPION_URI, "images": splits.x_test.tolist()}
    started = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "-c", _SERVE_CODE],
            input=json.dumps(request),
            env=env,
            capture_output=True,
            text=True,
            timeout=SERVE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LedgerflowError(
            f"loading {CHAMPION_URI} in a fresh process took over {SERVE_TIMEOUT_S} s"
        ) from None
    answers = [ln for ln in out.stdout.splitlines() if ln.startswith("LEDGERFLOW-ANSWER ")]
    if out.returncode != 0 or not answers:
        tail = "\n".join(out.stderr.strip().splitlines()[-15:])
        raise LedgerflowError(
            f"loading {CHAMPION_URI} in a fresh process failed (exit {out.returncode}):\n{tail}"
        )
    answer = json.loads(answers[-1].removeprefix("LEDGERFLOW-ANSWER "))
    return _Served(
        loader_module=answer["loader_module"],
        run_id=answer["run_id"] or "",
        predictions=[int(p) for p in answer["predictions"]],
        labels=[int(y) for y in splits.y_test],
        seconds=time.perf_counter() - started,
    )


# summary ---------------------------------------------------------------------------------
def _where(settings: Settings) -> str:
    return settings.tracking_uri if settings.is_remote else str(settings.data_dir)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(title: str, columns: list[str]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    for col in columns:
        table.add_column(col, no_wrap=True, min_width=32 if col == "run id" else None)
    return table


def _print_summary(
    client: Client,
    experiment_id: str,
    parent_id: str,
    candidates: list[Trained],
    served: _Served,
    elapsed: float,
) -> None:
    from rich.console import Console

    from ledgerflow.events.settings import load_settings

    console = Console()
    experiment = client.get_experiment(experiment_id)
    parent = client.get_run(parent_id)
    by_run = {t.run_id: t for t in candidates}
    console.print(f"\n[bold]Ledgerflow demo[/] finished in {elapsed:.1f} s")
    console.print(f"experiment [cyan]{experiment.name}[/] (id {experiment.experiment_id})")

    runs = _table("runs", ["run", "run id", "status", "val acc", "test acc"])
    for run in [parent, *(client.get_run(t.run_id) for t in candidates)]:
        m = run.data.metrics
        name = run.info.run_name if run is parent else f"└ {run.info.run_name}"
        runs.add_row(
            name,
            run.info.run_id,
            run.info.status,
            _fmt(m.get("val_accuracy")),
            _fmt(m.get("test_accuracy", m.get("champion_test_accuracy"))),
        )
    console.print(runs)
    for t in candidates:
        history = client.get_metric_history(t.run_id, "val_accuracy")
        console.print(
            f"[bold]{t.framework}[/]: trained in {t.train_seconds:.1f} s, "
            f"test_loss {t.test_loss:.3f}, test_accuracy {t.test_accuracy:.3f}\n"
            f"  val_accuracy per epoch ({len(history)} points): "
            f"{', '.join(f'{p.value:.3f}' for p in history)}\n"
            f"  model: {t.model_uri}",
            highlight=False,
        )

    versions = _table(
        f"registered model {REGISTERED_MODEL}", ["version", "framework", "aliases", "run id"]
    )
    for t in sorted(candidates, key=lambda c: c.version):
        mv = client.get_model_version(REGISTERED_MODEL, t.version)
        versions.add_row(
            str(mv.version), mv.tags.get("framework", ""), ", ".join(mv.aliases), mv.run_id or ""
        )
    console.print(versions)
    champion = client.get_model_version_by_alias(REGISTERED_MODEL, "champion")
    files = client.get_model_version_download_uri(REGISTERED_MODEL, champion.version)
    console.print("the champion's files, an MLflow model directory:", highlight=False)
    console.print(f"  {files}", highlight=False, soft_wrap=True)

    console.print(
        f"\n[bold]fresh-process predictions[/] of {CHAMPION_URI} (version {champion.version})\n"
        f"  a new Python process loaded run {served.run_id}'s model\n"
        f"  with ledgerflow.pyfunc (via {served.loader_module}) in {served.seconds:.1f} s:",
        highlight=False,
    )
    shown = range(min(SHOWN_PREDICTIONS, len(served.labels)))
    console.print("  label      " + " ".join(f"{served.labels[i]:>2}" for i in shown))
    console.print("  predicted  " + " ".join(f"{served.predictions[i]:>2}" for i in shown))
    logged = by_run[champion.run_id].test_accuracy if champion.run_id in by_run else None
    console.print(
        f"  accuracy on all {len(served.labels)} test images: {served.accuracy:.3f} "
        f"(the run logged test_accuracy {_fmt(logged)})",
        highlight=False,
    )

    settings = load_settings(tracking_uri=lf.get_tracking_uri())
    where = _where(settings)
    console.print(f"\ndata directory: [green]{where}[/]")
    console.print("\n[bold]next steps[/]")
    if where != _where(load_settings()):  # the commands below would look elsewhere
        console.print(f"  export LEDGERFLOW_TRACKING_URI={where}")
    exe = _ledgerflow_command()
    for cmd in (
        f"{exe} runs list --experiment {EXPERIMENT}",
        f"{exe} runs show {champion.run_id}",
        f"{exe} metrics history {champion.run_id} val_accuracy",
        f"{exe} events tail --type 'model.*'",
        f'{_python_command()} -c "import ledgerflow.pyfunc as p; '
        f"print(p.load_model('{CHAMPION_URI}').metadata.to_dict()['flavors'])\"",
    ):
        console.print(f"  {cmd}", markup=False, highlight=False, soft_wrap=True)


def _ledgerflow_command() -> str:
    """How the user can run the CLI from here: `ledgerflow` if it is on the PATH, else the
    script next to this interpreter (e.g. `.venv/bin/ledgerflow` before activating)."""
    import shutil
    from pathlib import Path

    if shutil.which("ledgerflow"):
        return "ledgerflow"
    script = Path(sys.executable).parent / "ledgerflow"
    return _short(script) if script.exists() else "ledgerflow"


def _python_command() -> str:
    """This interpreter as the user can type it: `python` once the environment that has
    the `ledgerflow` command is active, else its path (e.g. `.venv/bin/python`)."""
    import shutil

    return "python" if shutil.which("ledgerflow") else _short(sys.executable)


def _short(path: os.PathLike[str] | str) -> str:
    """`path` relative to the working directory when that is below it, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return rel if not rel.startswith("..") else str(path)
