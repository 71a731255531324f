"""The registry and deployment data the browser tests look at, logged through the SDK after
tests/ui/fill.py's runs: a second version of `digits-classifier` from a run with other
params, aliases, stages, tags, a description, an ONNX bundle with its parity result, and
a deployment `web` of both versions with guardrails and a canary plan."""

from __future__ import annotations

import numpy as np

MODEL = "digits-classifier"
DEPLOYMENT = "web"


def fill_registry(summary: dict[str, object]) -> None:
    from sklearn.linear_model import LogisticRegression

    import ledgerflow as lf

    lf.set_experiment("image-classifier")
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    y = np.array([0, 1, 0, 1])
    with lf.start_run(run_name="candidate") as run:
        lf.log_params({"lr": "0.05", "optimizer": "adam", "epochs": "3"})
        lf.log_metrics({"accuracy": 0.94, "f1": 0.9})
        lf.sklearn.log_model(
            LogisticRegression(C=0.1).fit(X, y), "model",
            input_example=X[:2], registered_model_name=MODEL,
        )  # fmt: skip
    summary["candidate"] = run.info.run_id

    c = lf.Client()
    c.update_registered_model(MODEL, description="Classifies digits from two features.")
    c.set_registered_model_tag(MODEL, "team", "vision")
    c.set_registered_model_alias(MODEL, "champion", 1)
    c.set_registered_model_alias(MODEL, "challenger", 2)
    c.transition_model_version_stage(MODEL, 1, "Production")
    c.transition_model_version_stage(MODEL, 2, "Staging")
    c.set_model_version_tag(MODEL, 2, "validated", "yes")
    c.update_model_version(MODEL, 2, description="Stronger regularisation.")
    built = lf.bundles.build(f"models:/{MODEL}/1", targets=["onnx"])
    summary["bundle"] = built[0].id

    lf.deployments.create(
        DEPLOYMENT,
        [
            {"name": "a", "model": MODEL, "version": 1, "weight": 90},
            {"name": "b", "model": MODEL, "version": 2, "weight": 10},
        ],
        baseline="a",
        description="v2 against v1",
        key_header="X-User",
        guardrails=[{"metric": "error_rate", "threshold": 0.5, "min_samples": 1000}],
        plan={"candidate": "b", "steps": [
            {"weight": 10, "min_requests": 100_000},
            {"weight": 50, "min_requests": 100_000},
            {"weight": 100, "min_requests": 100_000},
        ]},
    )  # fmt: skip
    summary["model"] = MODEL
    summary["deployment"] = DEPLOYMENT
