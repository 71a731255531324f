"""The R flavor's format (MLflow's `crate`): an R prediction function saved by R, in the
layout MLflow's R package writes, loaded in Python behind a long-lived `Rscript` worker.

    crate.bin          an RDS of serialize(<function(df) -> predictions>)
    MLmodel            flavors.crate: version, model (crate.bin), r_version, r_packages;
                       flavors.python_function: loader_module ledgerflow.crate
    r_requirements.txt R's and the packages' versions

R writes it with the helper shipped here (`ledgerflow.R`, path from `helper_path()` or
`ledgerflow crate-helper`); `save_model` copies a directory R saved (Ledgerflow's helper
or MLflow's `mlflow_save_model` of a crate) and adds what a Python loader needs when it
is missing. Loading runs the R code stored in the model, so it obeys the pickle policy.
What workers and model servers import; `ledgerflow.crate.fluent` adds the session.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.crate._codec import decode_answer, encode_request
from ledgerflow.crate._worker import RWorker
from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import flavor_io
from ledgerflow.models.environment import (
    CONDA_ENV_FILE_NAME,
    resolve_requirements,
    write_environment,
)
from ledgerflow.models.model import MLMODEL_FILE_NAME, Model
from ledgerflow.pyfunc.flavor import add_to_model
from ledgerflow.pyfunc.loading import FLAVOR_NAME as PYFUNC

if TYPE_CHECKING:
    from ledgerflow.models.uri import ArtifactSource

FLAVOR_NAME = "crate"
LOADER_MODULE = "ledgerflow.crate"
DATA = "crate.bin"
HELPER = Path(__file__).with_name("ledgerflow.R")


def helper_path() -> Path:
    """The R helper to `source()` in R: it defines `ledgerflow_save_model`."""
    return HELPER


def get_default_pip_requirements() -> list[str]:
    return ["ledgerflow", "pandas"]


def save_model(
    r_model_path: str | os.PathLike[str],
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
) -> Model:
    """Copy the R-saved model directory `r_model_path` to `path`. A crate saved by MLflow's
    R package (no `python_function` block, no environment files) gets both, so that
    `ledgerflow.pyfunc` loads it and `ledgerflow serve` serves it."""
    src = Path(r_model_path).expanduser()
    if not (src / MLMODEL_FILE_NAME).is_file():
        raise InvalidInput(
            f"{str(src)!r} is not a model directory: save the R model with "
            "ledgerflow_save_model(predict_fn, path) in R first (source the file that "
            "`ledgerflow crate-helper` prints)",
            field="r_model_path",
        )
    conf = flavor_io.flavor_conf(src, FLAVOR_NAME)
    _model_file(src, conf)
    dest = flavor_io.prepare_dir(path)
    shutil.copytree(src, dest, dirs_exist_ok=True)
    mlmodel = Model.load(dest)
    if metadata is not None:
        mlmodel.metadata = metadata
    if PYFUNC not in mlmodel.flavors:
        add_to_model(mlmodel, LOADER_MODULE, data=str(conf.get("model", DATA)))
    if not (dest / CONDA_ENV_FILE_NAME).is_file():
        write_environment(dest, resolve_requirements(get_default_pip_requirements(), None, None))
    mlmodel.save(dest / MLMODEL_FILE_NAME)
    return mlmodel


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
    allow_pickle: bool,
) -> CrateModel:
    """The R model at `model_uri` (path, file:, or runs:/ and models:/ looked up in
    `source`), its R worker started at the first predict."""
    local, conf = flavor_io.open_model(model_uri, dst_path, FLAVOR_NAME, source=source)
    return _load(local, conf, allow_pickle=allow_pickle)


def _model_file(model_dir: Path, conf: dict[str, Any]) -> Path:
    name = str(conf.get("model", DATA))
    file = (model_dir / name).resolve()
    if not file.is_relative_to(model_dir.resolve()) or not file.is_file():
        raise InvalidInput(
            f"the crate model at {str(model_dir)!r} has no model file {name!r} inside it",
            field="model",
        )
    return file


def _load(
    model_dir: Path, conf: dict[str, Any], *, allow_pickle: bool, **config: Any
) -> CrateModel:
    flavor_io.check_pickle_allowed("an R model (crate.bin holds R code)", allow_pickle)
    packages = conf.get("r_packages") or {}
    if not isinstance(packages, dict):
        raise InvalidInput("the crate block's r_packages must map names to versions")
    timeout = float(config.get("timeout_s", 600.0))
    return CrateModel(RWorker(_model_file(model_dir, conf), list(packages), timeout_s=timeout))


class CrateModel:
    """A loaded R model: `predict(table)` runs the R function in the model's worker and
    answers a numpy array (an R vector or matrix), a DataFrame (a data.frame) or the JSON
    of any other R value."""

    def __init__(self, worker: RWorker) -> None:
        self.worker = worker

    @property
    def pid(self) -> int | None:
        """The R worker's process id, None until the first predict."""
        pid: int | None = self.worker.pid
        return pid

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return decode_answer(self.worker.call(encode_request(data)))

    def get_raw_model(self) -> CrateModel:
        return self

    def close(self) -> None:
        """Stop the R worker now (it is also stopped when the model is garbage collected)."""
        self.worker.close()


def _load_pyfunc(
    path: str, model_config: dict[str, Any] | None = None, *, allow_pickle: bool = True
) -> CrateModel:
    """Called by pyfunc.load_model with crate.bin (or the model directory); `model_config`
    may set `timeout_s`, how long one predict may take in R (default 600)."""
    model_dir = flavor_io.model_dir_of(path)
    conf = flavor_io.flavor_conf(model_dir, FLAVOR_NAME)
    return _load(model_dir, conf, allow_pickle=allow_pickle, **(model_config or {}))
