"""The main job behind `ledgerflow demo`: train on Ray, register, promote, bundle, serve,
and A/B test.

It follows the MLflow walkthrough (a Keras CNN logged with its params and metrics,
registered, then deployed) on scikit-learn's bundled 8x8 digit images, and adds a
PyTorch twin. Each trains as a training job on Ray (`lf.jobs.submit`, on the Ray that
LEDGERFLOW_RAY_ADDRESS names, a local one by default) whose run is a child of one
parent run; both are logged as `cnn-digits` with the same signature and registered as
versions of `digits-cnn`; the one with the better test accuracy gets the alias
`champion`, the other `challenger`. Each version is then converted into deployable
bundles (`lf.bundles.build`: TorchScript and ONNX for PyTorch, a TensorFlow Serving
SavedModel and ONNX for Keras), each checked for parity with the original; a bundle
that fails is reported with its reason, not raised. A fresh Python process then loads
`models:/digits-cnn@champion` through `ledgerflow.pyfunc`, knowing nothing of its
framework, and predicts test images. Last, the champion and the challenger are deployed
as an A/B test with a canary plan and guardrails, served in this process to simulated
users whose outcomes depend on the answers, and the analysis decides whether a winner is
promoted (see `ab`). Everything printed is read back through `Client`, so it has gone
through the event log and the views. The frameworks load
only in the jobs and when the demo runs (see `models`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import ledgerflow as lf
from ledgerflow.demo.ab import embedded_backend, run_ab_test
from ledgerflow.demo.models import REGISTERED_MODEL  # demo.models imports no framework
from ledgerflow.demo.results import Built, Served, TrainingJob
from ledgerflow.demo.summary import CHAMPION_URI, EXPERIMENT, print_summary
from ledgerflow.events.errors import InvalidInput, LedgerflowError

if TYPE_CHECKING:
    from ledgerflow.demo.ab import AbTest
    from ledgerflow.demo.models import Splits, Trained
    from ledgerflow.jobs import Job

PARENT_RUN = "compare-cnns"
SERVE_TIMEOUT_S = 180
JOB_TIMEOUT_S = 900
JOB_LOG_LINES = 3  # the last lines of each job's output shown in the summary
# (framework, job and run name, the function the job runs, bundle targets)
TRAININGS = (
    ("keras", "keras-cnn", "keras_job", ("savedmodel", "onnx")),
    ("pytorch", "pytorch-cnn", "torch_job", ("torchscript", "onnx")),
)
_NEEDED = {
    "numpy": "numpy",
    "sklearn": "scikit-learn",
    "torch": "torch",
    "tensorflow": "tensorflow",
    "ray": "ray",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
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


def run_demo(epochs: int = 5, tracking_uri: str | None = None) -> None:
    """Train both CNNs for `epochs` epochs as Ray jobs, register them, bundle each version,
    serve the champion from a fresh process, A/B test champion against challenger, and
    print what was recorded where.

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

    from ledgerflow.demo import models as dm

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
        jobs = _train_as_jobs(experiment.experiment_id, parent_id, epochs)
        candidates = [dm.register(job.run) for job in jobs]  # fixed order: keras is 1
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
    bundles = _build_bundles(candidates)
    served = _serve_in_fresh_process(splits)
    ab = _ab_test(splits, champion, challenger, bundles)
    elapsed = time.perf_counter() - started
    client = lf.Client(lf.get_tracking_uri())
    summary_jobs = [_job_summary(job, t) for job, t in zip(jobs, candidates, strict=True)]
    print_summary(
        client, experiment.experiment_id, parent_id, summary_jobs, bundles, served, ab, elapsed
    )


def _ab_test(
    splits: Splits, champion: Trained, challenger: Trained, bundles: list[Built]
) -> AbTest | str:
    """The A/B test, or why there is none: like a failed bundle, a failure here is
    reported in the summary rather than raised, since everything before it stands."""
    backend = embedded_backend()
    if backend is None:
        return (
            "skipped: it serves the deployment from the event log in this process, "
            "and the tracking URI is a remote server"
        )
    try:
        return run_ab_test(backend, splits, champion, challenger, bundles)
    except LedgerflowError as e:
        return f"failed: {e}"


def _importable(module: str) -> bool:
    """Whether `module` could be imported, without importing it (TensorFlow takes seconds)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _train_as_jobs(experiment_id: str, parent_id: str, epochs: int) -> list[Job]:
    """Submit both trainings as Ray jobs, each with one CPU (so on two CPUs they train
    side by side), link their runs to the parent, and wait for both. A job that did not
    finish stops the demo with its reason and the end of its output."""
    from ledgerflow.demo import models as dm

    client = lf.Client(lf.get_tracking_uri())
    jobs = []
    for _, name, function, _ in TRAININGS:
        job = lf.jobs.submit(
            getattr(dm, function),
            params={"epochs": epochs},
            name=name,
            experiment_id=experiment_id,
            cpus=1,
        )
        client.set_tag(job.run_id, "mlflow.parentRunId", parent_id)
        jobs.append(job)
    for job in jobs:
        job.wait(timeout=JOB_TIMEOUT_S)
    for job in jobs:
        if job.status != "FINISHED":
            tail = "\n".join(job.logs().strip().splitlines()[-15:])
            raise LedgerflowError(
                f"training job {job.job_id} ({job.info.name}) ended {job.status}: "
                f"{job.error or 'no reason recorded'}\n{tail}"
            )
    return jobs


def _job_summary(job: Job, trained: Trained) -> TrainingJob:
    info = job.info
    lines = [ln for ln in job.logs().splitlines() if ln.startswith(f"{trained.framework}:")]
    return TrainingJob(
        job_id=info.job_id,
        name=info.name,
        status=info.status,
        run_id=info.run_id,
        runtime=info.runtime,
        log_tail=lines[-JOB_LOG_LINES:],
        trained=trained,
    )


def _build_bundles(candidates: list[Trained]) -> list[Built]:
    """Convert each registered version into its framework's bundles. A build that raises
    (Ray would not start, say) is reported like a failed bundle, with the reason."""
    targets = {framework: list(t) for framework, _, _, t in TRAININGS}
    out = []
    for t in sorted(candidates, key=lambda c: c.version):
        uri = f"models:/{REGISTERED_MODEL}/{t.version}"
        try:
            bundles = lf.bundles.build(uri, targets=targets[t.framework])
        except LedgerflowError as e:
            out += [
                Built(t.version, t.framework, target, None, error=str(e))
                for target in targets[t.framework]
            ]
            continue
        out += [Built(t.version, t.framework, b.target, b) for b in bundles]
    return out


def _promote(candidates: list[Trained]) -> tuple[Trained, Trained]:
    """Alias the better version by test accuracy `champion` (lower test loss breaks a tie,
    then the earlier version), the other `challenger`."""
    ranked = sorted(candidates, key=lambda t: (-t.test_accuracy, t.test_loss, t.version))
    champion, challenger = ranked[0], ranked[1]
    client = lf.Client(lf.get_tracking_uri())
    client.set_registered_model_alias(REGISTERED_MODEL, "champion", champion.version)
    client.set_registered_model_alias(REGISTERED_MODEL, "challenger", challenger.version)
    return champion, challenger


def _serve_in_fresh_process(splits: Splits) -> Served:
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
    return Served(
        loader_module=answer["loader_module"],
        run_id=answer["run_id"] or "",
        predictions=[int(p) for p in answer["predictions"]],
        labels=[int(y) for y in splits.y_test],
        seconds=time.perf_counter() - started,
    )
