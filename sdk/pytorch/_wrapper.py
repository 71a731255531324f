"""The pyfunc face of a pytorch model: DataFrame or ndarray in, same kind out (as MLflow)."""

from __future__ import annotations

from typing import Any

from ledgerflow.events.errors import InvalidInput


class PyTorchWrapper:
    """`predict(data)`: a DataFrame becomes a float32 tensor, an ndarray goes in as it is;
    the model must return one tensor, given back as a DataFrame (same index) or an ndarray."""

    def __init__(self, pytorch_model: Any, device: str) -> None:
        self.pytorch_model = pytorch_model
        self.device = device

    def get_raw_model(self) -> Any:
        return self.pytorch_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        import numpy as np
        import pandas as pd
        import torch

        if params and "device" in params:
            raise InvalidInput(
                "'device' is not an inference parameter: choose it when loading, e.g. "
                "ledgerflow.pyfunc.load_model(uri, model_config={'device': 'cuda'})",
                field="device",
            )
        if isinstance(data, pd.DataFrame):
            array = data.to_numpy(dtype=np.float32)
        elif isinstance(data, np.ndarray):
            array = data
        else:
            raise InvalidInput(
                f"a pytorch model predicts on a pandas.DataFrame or a numpy.ndarray, "
                f"not {type(data).__name__}"
            )
        with torch.no_grad():
            preds = self.pytorch_model(torch.from_numpy(array).to(self.device), **(params or {}))
            if not isinstance(preds, torch.Tensor):
                raise InvalidInput(
                    "the pytorch model must return a single tensor for pyfunc predict, "
                    f"got {type(preds).__name__}"
                )
            out = preds.to("cpu").numpy()
        if isinstance(data, pd.DataFrame):
            frame = pd.DataFrame(out)
            frame.index = data.index
            return frame
        return out
