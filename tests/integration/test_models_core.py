"""The model directory core: the MLmodel file, flavor_io helpers, model URIs, and the
fluent edge every flavor's log_model goes through."""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import ledgerflow as lf
from ledgerflow import _flavor_fluent
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.models import Model, ModelInfo, flavor_io, infer_signature
from ledgerflow.models.uri import resolve
from tests.conftest import PYTHON, python_env


class _Doubler:
    """A stand-in flavor module: save_model writes one file and an MLmodel."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def save_model(self, path: str, value: int, signature=None, input_example=None) -> Model:
        self.calls.append({"path": path, "value": value})
        p = flavor_io.prepare_dir(path)
        (p / "value.txt").write_text(str(value))
        m = Model().add_flavor("doubler", value_file="value.txt")
        return flavor_io.finish_model_dir(
            p,
            m,
            signature=signature,
            input_example=input_example,
            pip_requirements=None,
            extra_pip_requirements=None,
            default_requirements=["numpy"],
        )


def test_an_mlmodel_we_write_is_read_by_mlflow_and_theirs_by_us(tmp_path: Path):
    from mlflow.models import Model as MlflowModel

    sig = infer_signature(pd.DataFrame({"a": [1.0]}), np.array([1]))
    ours = Model(run_id="r1", artifact_path="model", signature=sig, metadata={"k": "v"})
    ours.add_flavor("python_function", loader_module="mlflow.sklearn", model_path="m.skops")
    ours.save(tmp_path)
    theirs = MlflowModel.load(str(tmp_path))
    assert theirs.run_id == "r1" and theirs.model_uuid == ours.model_uuid
    assert theirs.signature.to_dict() == sig.to_dict()
    assert theirs.flavors == ours.flavors and theirs.metadata == {"k": "v"}

    other = tmp_path / "theirs"
    other.mkdir()
    fresh = MlflowModel(run_id="r2", signature=theirs.signature, metadata={"k": "v"})
    fresh.save(str(other / "MLmodel"))
    back = Model.load(other)
    assert back.run_id == "r2" and back.signature == sig and back.metadata == {"k": "v"}
    assert back.model_uuid == fresh.model_uuid
    written = yaml.safe_load(back.to_yaml())
    assert written["mlflow_version"] == fresh.mlflow_version  # keys we do not model survive


def test_loading_a_folder_without_an_mlmodel_says_so(tmp_path: Path):
    with pytest.raises(NotFound, match="no MLmodel file"):
        Model.load(tmp_path)


def test_prepare_dir_refuses_a_non_empty_folder(tmp_path: Path):
    (tmp_path / "x").write_text("keep me")
    with pytest.raises(InvalidInput, match="already exists and is not empty"):
        flavor_io.prepare_dir(tmp_path)
    assert flavor_io.prepare_dir(tmp_path / "new" / "model").is_dir()


def test_finish_model_dir_writes_example_signature_and_environment(tmp_path: Path):
    df = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]})
    m = _Doubler().save_model(str(tmp_path / "m"), 3, input_example=df)
    d = tmp_path / "m"
    assert m.signature is not None and m.signature.inputs is not None
    assert json.loads((d / "input_example.json").read_text()) == {
        "columns": ["a", "b"],
        "data": [[1.0, "x"], [None, "y"]],
    }
    serving = json.loads((d / "serving_input_example.json").read_text())
    assert serving["dataframe_split"]["columns"] == ["a", "b"]
    reqs = (d / "requirements.txt").read_text().splitlines()
    assert reqs == [f"numpy=={np.__version__}"]
    conda = yaml.safe_load((d / "conda.yaml").read_text())
    assert conda["dependencies"][-1] == {"pip": reqs}
    env = yaml.safe_load((d / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]
    assert Model.load(d).model_size_bytes > 0


def test_requirements_can_be_replaced_or_extended(tmp_path: Path):
    d = tmp_path / "m"
    d.mkdir()
    flavor_io.finish_model_dir(
        d,
        Model(),
        signature=None,
        input_example=None,
        pip_requirements=None,
        extra_pip_requirements=["numpy<3", "extra-pkg==1.0"],
        default_requirements=["numpy", "pyyaml"],
    )
    assert (d / "requirements.txt").read_text().splitlines()[1:] == ["numpy<3", "extra-pkg==1.0"]
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("# pinned by hand\nonly-this==2\n")
    d2 = tmp_path / "m2"
    d2.mkdir()
    flavor_io.finish_model_dir(
        d2,
        Model(),
        signature=False,
        input_example=None,
        pip_requirements=str(reqs),
        extra_pip_requirements=None,
        default_requirements=["numpy"],
    )
    assert (d2 / "requirements.txt").read_text() == "only-this==2"
    with pytest.raises(InvalidInput, match="not both"):
        flavor_io.finish_model_dir(
            d2,
            Model(),
            signature=None,
            input_example=None,
            pip_requirements=["a"],
            extra_pip_requirements=["b"],
            default_requirements=[],
        )


def test_a_signature_that_is_not_one_is_refused(tmp_path: Path):
    with pytest.raises(InvalidInput, match="signature must be a ModelSignature"):
        _Doubler().save_model(str(tmp_path / "m"), 1, signature={"inputs": "[]"})


def test_log_model_logs_the_folder_into_the_active_run(tracking: Path):
    flavor = _Doubler()
    with lf.start_run() as run:
        info = _flavor_fluent.log_model(flavor, name="doubled", value=7)
    assert isinstance(info, ModelInfo)
    assert info.model_uri == f"runs:/{run.info.run_id}/doubled"
    assert info.name == info.artifact_path == "doubled" and info.registered_model_version is None
    local = resolve(info.model_uri, source=lf.Client())
    assert (local / "value.txt").read_text() == "7"
    m = Model.load(local)
    assert m.run_id == run.info.run_id and m.artifact_path == "doubled"
    assert m.model_uuid == info.model_uuid and "doubler" in info.flavors
    files = {f.path for f in lf.Client().list_artifacts(run.info.run_id, "doubled")}
    assert "doubled/MLmodel" in files


def test_log_model_without_a_run_starts_one_and_the_old_spelling_still_works(tracking: Path):
    with pytest.warns(DeprecationWarning, match="artifact_path= is deprecated"):
        info = _flavor_fluent.log_model(_Doubler(), artifact_path="m", value=1)
    assert lf.active_run() is not None and lf.active_run().info.run_id == info.run_id
    assert info.artifact_path == "m"
    with pytest.raises(InvalidInput, match="disagree"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _flavor_fluent.log_model(_Doubler(), name="a", artifact_path="b", value=1)
    with pytest.raises(InvalidInput, match="not a relative artifact path"):
        _flavor_fluent.log_model(_Doubler(), name="../up", value=1)
    lf.end_run()


def test_a_registered_model_resolves_by_version_alias_latest_and_stage(tracking: Path):
    flavor = _Doubler()
    with lf.start_run():
        first = _flavor_fluent.log_model(flavor, name="m", registered_model_name="dbl", value=1)
        second = _flavor_fluent.log_model(flavor, name="m2", registered_model_name="dbl", value=2)
    assert (first.registered_model_version, second.registered_model_version) == (1, 2)
    c = lf.Client()
    c.set_registered_model_alias("dbl", "champion", 1)
    c.transition_model_version_stage("dbl", 2, "Production")

    def value(uri: str) -> str:
        return (resolve(uri, source=c) / "value.txt").read_text()

    assert value("models:/dbl/1") == "1"
    assert value("models:/dbl@champion") == "1"
    assert value("models:/dbl/latest") == "2"
    assert value("models:/dbl/Production") == "2"
    with pytest.raises(NotFound):
        resolve("models:/dbl/Staging", source=c)
    with pytest.raises(InvalidInput, match="must look like models:/"):
        resolve("models:/dbl", source=c)


def test_local_paths_and_file_uris_resolve_in_place(tmp_path: Path):
    d = tmp_path / "a model"
    d.mkdir()
    assert resolve(d) == d
    assert resolve(d.as_uri()) == d
    assert resolve(f"file:{d}") == d
    with pytest.raises(NotFound, match="does not exist"):
        resolve(tmp_path / "missing")
    with pytest.raises(InvalidInput, match="not supported"):
        resolve("s3://bucket/model")


def test_run_and_registry_uris_need_a_source_the_caller_passes():
    for uri in ("runs:/abc/model", "models:/m/1"):
        with pytest.raises(InvalidInput, match="needs a tracking backend") as e:
            resolve(uri)
        assert e.value.field == "uri"


def test_importing_the_model_packages_loads_no_framework():
    code = (
        "import sys, ledgerflow.models, ledgerflow.pyfunc, ledgerflow.sklearn, "
        "ledgerflow.models.flavor_io, ledgerflow.models.uri\n"
        "heavy = [m for m in ('pandas', 'sklearn', 'torch', 'tensorflow', 'mlflow', 'skops') "
        "if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run(
        [PYTHON, "-c", code], capture_output=True, text=True, env=python_env(), check=True
    )
    assert out.stdout.strip() == "[]"
