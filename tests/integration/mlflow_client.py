"""MLflow's client as the MLflow API tests use it: no retries, no telemetry
(`mlflow_client_settings`, which a module asks for with `pytest.mark.usefixtures`), and the
fluent API pointed at the module's server (`fluent`, from the module's `url` fixture).
Registered for every test by ``pytest_plugins`` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def mlflow_client_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """No retries (a wrong 5xx fails at once instead of after backoffs), no telemetry."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture
def fluent(url: str) -> Iterator[str]:
    """MLflow's fluent API pointed at `url` (the module's server fixture); runs ended and the
    experiment unset after. (`mlflow` is imported here: sessions without these tests do not
    pay for importing it.)"""
    import mlflow
    from mlflow.tracking import fluent as mlflow_fluent
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(url):
        yield url
        while mlflow.active_run() is not None:
            mlflow.end_run()
    mlflow_fluent._active_experiment_id = None
