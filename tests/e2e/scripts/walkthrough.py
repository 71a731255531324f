"""Log experiments, runs, params, metrics, tags, artifacts and a registered model, read them
all back, and print one JSON summary free of ids, times and paths, so the embedded and the
remote mode can be compared by equality. The mode comes from LEDGERFLOW_TRACKING_URI."""

import json
import math
import tempfile
from pathlib import Path

import ledgerflow as lf
from ledgerflow.exceptions import InvalidInput, LedgerflowError, NotFound


class AddN(lf.pyfunc.PythonModel):
    def __init__(self, n):
        self.n = n

    def predict(self, context, model_input, params=None):
        return [x + self.n for x in model_input]


def clean(value):
    return "nan" if isinstance(value, float) and math.isnan(value) else value


exp = lf.set_experiment("walkthrough")
names = {}
for lr in (0.1, 0.01, 0.001):
    with lf.start_run(run_name=f"lr-{lr}", tags={"team": "cv"}) as run:
        lf.log_params({"lr": lr, "epochs": 3})
        for step in range(30):
            lf.log_metric("loss", lr * 100 / (step + 1), step=step)
        lf.log_metrics({"acc": 1 - lr, "odd": math.nan})
        lf.set_tag("bucket", "high" if lr > 0.05 else "low")
        lf.log_text(f"notes for {lr}", "notes/readme.txt")
        names[run.info.run_id] = run.info.run_name
with lf.start_run(run_name="model") as run:
    info = lf.pyfunc.log_model(name="model", python_model=AddN(5))
    model_run = run.info.run_id
names[model_run] = "model"

c = lf.Client()
mv = lf.register_model(info.model_uri, "walkthrough-model")
lf.register_model(info.model_uri, "walkthrough-model")
c.set_registered_model_alias("walkthrough-model", "champion", mv.version)
c.transition_model_version_stage("walkthrough-model", 2, "Staging")

runs = lf.search_runs(output_format="list", order_by=["attributes.run_name ASC"])
paged, token = [], None
while True:
    page = c.search_runs(
        [exp.experiment_id], max_results=1, order_by=["metrics.acc DESC"], page_token=token
    )
    paged += [names[r.info.run_id] for r in page]
    token = page.token
    if not token:
        break
first = next(r for r in runs if r.info.run_name == "lr-0.1").info.run_id
with tempfile.TemporaryDirectory() as tmp:
    notes = Path(c.download_artifacts(first, "notes", tmp))
    downloaded = sorted(
        (p.relative_to(notes).as_posix(), p.read_text()) for p in notes.rglob("*") if p.is_file()
    )
errors = {}
try:
    c.get_run("no-such-run")
except NotFound as e:
    errors["unknown_run"] = [type(e).__name__, e.kind, e.message]
try:
    c.get_metric_history(first, "loss", max_points=1)
except InvalidInput as e:
    errors["bad_max_points"] = [type(e).__name__, e.field]
try:
    c.log_param(first, "lr", 0.5)
except LedgerflowError as e:
    errors["changed_param"] = [type(e).__name__, e.message.replace(first, "<run>")]

summary = {
    "experiment": [exp.name, exp.lifecycle_stage],
    "runs": [
        {
            "name": r.info.run_name,
            "status": r.info.status,
            "params": r.data.params,
            "metrics": {k: clean(v) for k, v in r.data.metrics.items()},
            "tags": {k: v for k, v in r.data.tags.items() if k != "mlflow.log-model.history"},
            "artifacts": [(f.path, f.is_dir, f.file_size) for f in c.list_artifacts(r.info.run_id)],
        }
        for r in runs
    ],
    "filtered": [
        names[r.info.run_id]
        for r in c.search_runs(
            [exp.experiment_id],
            "tags.bucket = 'low' and metrics.acc > 0.95",
            order_by=["params.lr DESC"],
        )
    ],
    "paged": paged,
    "history": [(m.step, m.value) for m in c.get_metric_history(first, "loss")],
    "downsampled": [m.step for m in c.get_metric_history(first, "loss", max_points=6)],
    "downloaded": downloaded,
    "versions": [
        (v.version, v.current_stage, v.aliases, v.run_id == model_run)
        for v in c.search_model_versions("name = 'walkthrough-model'")
    ],
    "champion": c.get_model_version_by_alias("walkthrough-model", "champion").version,
    "latest": [v.version for v in c.get_latest_versions("walkthrough-model")],
    "predict_alias": lf.pyfunc.load_model("models:/walkthrough-model@champion").predict([1, 2]),
    "predict_stage": lf.pyfunc.load_model("models:/walkthrough-model/Staging").predict([3]),
    "predict_run": lf.pyfunc.load_model(f"runs:/{model_run}/model").predict([10]),
    "errors": errors,
}
print(json.dumps(summary, sort_keys=True))
