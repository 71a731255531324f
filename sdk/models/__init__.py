"""Model packaging: the MLmodel file, signatures, and the helpers every flavor uses.

A model directory written here is an MLflow model directory (same MLmodel keys,
flavor blocks, environment and input-example files), so MLflow loads ours and we
load MLflow's. See docs/models.md.
"""

from ledgerflow.models.model import MLMODEL_FILE_NAME, Model, ModelInfo
from ledgerflow.models.signature import (
    ColSpec,
    DataType,
    ModelSignature,
    ParamSchema,
    ParamSpec,
    Schema,
    TensorSpec,
    infer_signature,
)

__all__ = [
    "MLMODEL_FILE_NAME",
    "ColSpec",
    "DataType",
    "Model",
    "ModelInfo",
    "ModelSignature",
    "ParamSchema",
    "ParamSpec",
    "Schema",
    "TensorSpec",
    "infer_signature",
]
