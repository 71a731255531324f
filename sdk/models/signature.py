"""Model signatures: what a model takes and returns, stored in MLmodel as MLflow stores them.

    sig = infer_signature(X_train, model.predict(X_train), params={"threshold": 0.5})
    sig.to_dict()  # {"inputs": '[{"type": "double", "name": "a", ...}]', "outputs": ...}

`enforce_schema(data, sig.inputs)` checks input before `predict` and raises
`InvalidInput` naming the column or tensor at fault.
"""

from __future__ import annotations

from typing import Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.enforce import enforce_params, enforce_schema, enforce_tensor
from ledgerflow.models.infer import infer_param_schema, infer_schema
from ledgerflow.models.schema import (
    ColSpec,
    DataType,
    ParamSchema,
    ParamSpec,
    RawType,
    Schema,
    TensorSpec,
)


class ModelSignature:
    """Input schema, output schema and inference params of a model (any may be None)."""

    def __init__(
        self,
        inputs: Schema | None = None,
        outputs: Schema | None = None,
        params: ParamSchema | None = None,
    ) -> None:
        for what, value, kind in (
            ("inputs", inputs, Schema),
            ("outputs", outputs, Schema),
            ("params", params, ParamSchema),
        ):
            if value is not None and not isinstance(value, kind):
                raise InvalidInput(
                    f"signature {what} must be a {kind.__name__} or None, "
                    f"got {type(value).__name__}"
                )
        if inputs is None and outputs is None and params is None:
            raise InvalidInput("a signature needs at least one of inputs, outputs or params")
        self.inputs = inputs
        self.outputs = outputs
        self.params = params

    def to_dict(self) -> dict[str, str | None]:
        """MLflow's layout: each part is a JSON string (compact inside the YAML MLmodel)."""
        return {
            "inputs": self.inputs.to_json() if self.inputs else None,
            "outputs": self.outputs.to_json() if self.outputs else None,
            "params": self.params.to_json() if self.params else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        if not isinstance(d, dict):
            raise InvalidInput(f"a signature is a mapping, got {type(d).__name__}")
        inputs = Schema.from_json(x) if (x := d.get("inputs")) else None
        outputs = Schema.from_json(x) if (x := d.get("outputs")) else None
        params = ParamSchema.from_json(x) if (x := d.get("params")) else None
        return cls(inputs, outputs, params)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModelSignature)
            and self.inputs == other.inputs
            and self.outputs == other.outputs
            and self.params == other.params
        )

    def __hash__(self) -> int:
        return hash((self.inputs, self.outputs, self.params))

    def __repr__(self) -> str:
        return (
            f"inputs:\n  {self.inputs!r}\noutputs:\n  {self.outputs!r}\n"
            f"params:\n  {self.params!r}\n"
        )


def infer_signature(
    input: Any = None, output: Any = None, params: dict[str, Any] | None = None
) -> ModelSignature:
    """The signature of a model from sample input, its output and inference params.

    Accepts pandas DataFrames and Series, numpy arrays, dicts of numpy arrays, lists
    and dicts of scalars, and scalars.
    """
    return ModelSignature(
        infer_schema(input) if input is not None else None,
        infer_schema(output) if output is not None else None,
        infer_param_schema(params) if params else None,
    )


__all__ = [
    "ColSpec",
    "DataType",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "RawType",
    "Schema",
    "TensorSpec",
    "enforce_params",
    "enforce_schema",
    "enforce_tensor",
    "infer_param_schema",
    "infer_schema",
    "infer_signature",
]
