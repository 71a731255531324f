"""The pyfunc faces of TensorFlow models, as MLflow's tensorflow flavor has them."""

from __future__ import annotations

from typing import Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.signature import ModelSignature


class _KerasModelWrapper:
    """The pyfunc face of a Keras model (as MLflow's): arrays, dicts, lists or DataFrames in."""

    def __init__(self, keras_model: Any, signature: ModelSignature | None) -> None:
        self.keras_model = keras_model
        self.signature = signature

    def get_raw_model(self) -> Any:
        return self.keras_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np

        if hasattr(data, "iloc") and hasattr(data, "columns"):  # a pandas DataFrame
            import pandas as pd

            return pd.DataFrame(self.keras_model.predict(data.values, verbose=0), index=data.index)
        if not isinstance(data, np.ndarray | list | tuple | dict):
            raise InvalidInput(
                f"a Keras model predicts on a numpy array, list, tuple, dict or DataFrame, not "
                f"{type(data).__name__}",
                field="data",
            )
        return self.keras_model.predict(data, verbose=0)


class _TF2ModuleWrapper:
    def __init__(self, model: Any, signature: ModelSignature | None) -> None:
        self.model = model
        self.signature = signature

    def get_raw_model(self) -> Any:
        return self.model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np
        import tensorflow as tf

        if not isinstance(data, np.ndarray | list):
            raise InvalidInput(
                f"a tf.Module predicts on a numpy array or list, not {type(data).__name__}",
                field="data",
            )
        result = self.model(tf.convert_to_tensor(data))
        return result.numpy() if isinstance(result, tf.Tensor) else result
