"""MLflow's own walkthrough, unchanged, against a Ledgerflow server (MLFLOW_TRACKING_URI):
autolog a scikit-learn fit, register the logged model, point an alias at it, load it back
by the alias. Prints what the test checks as one JSON line."""

from __future__ import annotations

import json
import sys

import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

name = sys.argv[1]
mlflow.set_experiment("mlflow-workflow")
mlflow.sklearn.autolog()
X, y = load_iris(return_X_y=True)
with mlflow.start_run() as run:
    LogisticRegression(max_iter=300).fit(X, y)
version = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
client = MlflowClient()
client.set_registered_model_alias(name, "champion", version.version)
loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
finished = client.get_run(run.info.run_id)
print(
    json.dumps(
        {
            "run_id": run.info.run_id,
            "version": version.version,
            "predictions": [int(p) for p in loaded.predict(X[:5])],
            "inputs": X[:5].tolist(),
            "params": sorted(finished.data.params),
            "metrics": sorted(finished.data.metrics),
            "datasets": [d.dataset.name for d in finished.inputs.dataset_inputs],
            "outputs": [o.model_id for o in (finished.outputs.model_outputs or [])],
        }
    )
)
