"""Python models written against MLflow's own PythonModel, for the interchange tests.

Kept apart so importing the test modules does not import MLflow."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc


class MlflowScale(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.factor = float(Path(context.artifacts["factor"]).read_text())
        self.offset = (context.model_config or {}).get("offset", 0.0)

    def predict(self, context, model_input, params=None):
        return model_input * self.factor + self.offset
