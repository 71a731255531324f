"""`lf.log_model` / `lf.save_model` pick the flavor from the model's framework, as the
seed's first snippet promises; `conda_env=` is honoured as MLflow does; and a flavor's
`load_model` takes a registered model's name with `version=`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import ledgerflow as lf
from ledgerflow import pyfunc
from ledgerflow.events.errors import InvalidInput
from ledgerflow.flavors import flavor_of
from ledgerflow.models import Model

CONDA = {
    "name": "iris-env",
    "channels": ["conda-forge"],
    "dependencies": ["python=3.11.7", "pip", {"pip": ["scikit-learn", "skops"]}],
}


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray, LogisticRegression]:
    data = load_iris()
    X, y = data.data[::5], data.target[::5]
    return X, y, LogisticRegression(max_iter=500).fit(X, y)


class Doubler(pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return np.asarray(model_input) * 2


def _halve(model_input: list[float]) -> list[float]:
    return [x / 2 for x in model_input]


def test_each_framework_goes_to_its_flavor(iris) -> None:
    *_, estimator = iris
    assert flavor_of(estimator) == "sklearn"
    assert flavor_of(torch.nn.Linear(2, 1)) == "pytorch"
    assert flavor_of(Doubler()) == "pyfunc"
    assert flavor_of(_halve) == "pyfunc"


def test_what_has_no_flavor_is_refused_with_what_is_supported() -> None:
    with pytest.raises(InvalidInput, match=r"no flavor saves a builtins.dict; .*scikit-learn"):
        flavor_of({"weights": [1, 2]})
    with pytest.raises(InvalidInput, match="no flavor saves a builtins.type"):
        flavor_of(LogisticRegression)  # the class, not a fitted model

    class Booster:  # what LightGBM's classes look like to the dispatcher
        pass

    Booster.__module__ = "lightgbm.basic"
    with pytest.raises(InvalidInput, match="is a lightgbm model, which has no flavor"):
        flavor_of(Booster())


def test_an_estimator_logged_with_a_conda_env_registers_and_loads_by_name_and_version(
    tracking: Path, iris, tmp_path: Path
) -> None:
    X, _, estimator = iris
    conda_file = tmp_path / "conda.yaml"
    conda_file.write_text(yaml.safe_dump(CONDA))
    with lf.start_run() as run, pytest.warns(DeprecationWarning, match="use name=") as warned:
        info = lf.log_model(  # the seed's call, as MLflow 2 wrote it
            estimator, artifact_path="model", conda_env=str(conda_file),
            registered_model_name="iris",
        )  # fmt: skip
    assert warned[0].filename == __file__  # said where the call is
    assert info.registered_model_version == 1 and info.run_id == run.info.run_id
    local = Path(lf.Client().download_artifacts(run.info.run_id, "model", tmp_path / "got"))
    assert "sklearn" in Model.load(local).flavors
    assert yaml.safe_load((local / "conda.yaml").read_text()) == CONDA
    assert (local / "requirements.txt").read_text().splitlines() == ["scikit-learn", "skops"]
    assert yaml.safe_load((local / "python_env.yaml").read_text())["python"] == "3.11.7"
    loaded = pyfunc.load_model("iris", version=1)
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))
    again = lf.sklearn.load_model("iris", version="1")
    np.testing.assert_array_equal(again.predict(X), estimator.predict(X))


def test_save_model_writes_each_kind_in_its_flavor(tmp_path: Path) -> None:
    module = torch.nn.Linear(2, 1)
    lf.save_model(module, tmp_path / "torch", input_example=np.ones((1, 2), np.float32))
    assert "pytorch" in Model.load(tmp_path / "torch").flavors
    lf.save_model(Doubler(), tmp_path / "doubler")
    assert pyfunc.load_model(tmp_path / "doubler").predict([1.0, 2.0]).tolist() == [2.0, 4.0]
    lf.save_model(_halve, tmp_path / "halve", pip_requirements=["numpy"])
    assert pyfunc.load_model(tmp_path / "halve").predict([4.0]) == [2.0]
    assert (tmp_path / "halve" / "requirements.txt").read_text() == "numpy"


def test_bad_environments_and_versions_are_refused_naming_the_argument(
    tracking: Path, iris, tmp_path: Path
) -> None:
    *_, estimator = iris
    with pytest.raises(InvalidInput, match="only one of conda_env, pip_requirements") as e:
        lf.save_model(estimator, tmp_path / "a", conda_env=CONDA, pip_requirements=["x"])
    assert e.value.field == "conda_env"
    (tmp_path / "bad.yaml").write_text("dependencies: [python=3.11, {pip: [1, 2]}]")
    with pytest.raises(InvalidInput, match="dependencies must be a list of strings"):
        lf.save_model(estimator, tmp_path / "b", conda_env=tmp_path / "bad.yaml")
    with pytest.raises(InvalidInput, match="a value YAML cannot write"):
        lf.save_model(estimator, tmp_path / "y", conda_env={**CONDA, "name": object()})
    with pytest.raises(InvalidInput, match="is not a file"):
        lf.save_model(estimator, tmp_path / "c", conda_env="missing.yaml")
    with pytest.raises(InvalidInput, match="version= goes with a registered model's name"):
        pyfunc.load_model("models:/iris/1", version=2)
    for bad in (0, "²", True, "1.5"):
        with pytest.raises(InvalidInput, match="version must be a positive integer"):
            pyfunc.load_model("iris", version=bad)  # type: ignore[arg-type]
