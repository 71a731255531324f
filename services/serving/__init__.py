"""The model server: MLflow's scoring protocol and the Open Inference Protocol v2 over REST
and gRPC, dynamic batching, readiness after warm-up, and Prometheus metrics.

The core is a `ModelRepository` of named served models with an async `infer(...)`; the REST
app (`create_app`) and the gRPC service are fronts over it, and `run_server` wires one
process (`ledgerflow serve`).
"""

from ledgerflow.services.serving.repository import ModelFailed, ModelRepository, ServedModel

__all__ = ["ModelFailed", "ModelRepository", "ServedModel"]
