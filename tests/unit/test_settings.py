import subprocess

import pytest

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.settings import load_settings
from tests.conftest import PYTHON, python_env


def test_defaults_put_everything_in_the_data_directory(tmp_path):
    s = load_settings(tracking_uri=str(tmp_path / "d"))
    assert s.event_log_url == f"sqlite:///{tmp_path / 'd' / 'events.db'}"
    assert s.views_db_url == f"sqlite:///{tmp_path / 'd' / 'views.db'}"
    assert s.artifacts_root == str(tmp_path / "d" / "artifacts")
    assert s.ray_address == "local" and not s.is_remote


def test_settings_come_from_ledgerflow_environment_variables(monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_TRACKING_URI", "/srv/lf")
    monkeypatch.setenv("LEDGERFLOW_FLUSH_INTERVAL_S", "0.25")
    s = load_settings()
    assert s.tracking_uri == "/srv/lf" and s.flush_interval_s == 0.25


def test_a_misspelled_variable_is_an_error_that_names_it_and_suggests_the_right_one(monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_TRACKNG_URI", "/x")
    with pytest.raises(InvalidInput, match="LEDGERFLOW_TRACKNG_URI.*LEDGERFLOW_TRACKING_URI"):
        load_settings()


def test_a_bad_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_FLUSH_INTERVAL_S", "soon")
    with pytest.raises(InvalidInput, match="LEDGERFLOW_FLUSH_INTERVAL_S"):
        load_settings()


def test_importing_ledgerflow_loads_no_framework_or_database_library():
    heavy = [
        "torch",
        "tensorflow",
        "ray",
        "sklearn",
        "pandas",
        "kafka",
        "aiokafka",
        "sqlalchemy",
        "pydantic",
        "numpy",
    ]
    code = f"import sys, ledgerflow; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run(
        [PYTHON, "-c", code], env=python_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_the_s3_endpoint_must_be_an_http_url_and_names_the_variable(monkeypatch):
    monkeypatch.setenv("LEDGERFLOW_S3_ENDPOINT", "127.0.0.1:9000")
    with pytest.raises(InvalidInput, match="LEDGERFLOW_S3_ENDPOINT.*http://"):
        load_settings()
    monkeypatch.setenv("LEDGERFLOW_S3_ENDPOINT", " https://minio.example:9000 ")
    monkeypatch.setenv("LEDGERFLOW_S3_REGION", "eu-central-1")
    s = load_settings()
    assert s.s3_endpoint == "https://minio.example:9000" and s.s3_region == "eu-central-1"
