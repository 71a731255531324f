"""`from ledgerflow.tracking import MlflowClient`, as MLflow code imports its client."""

from ledgerflow.client import Client

MlflowClient = Client

__all__ = ["Client", "MlflowClient"]
