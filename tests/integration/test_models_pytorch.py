"""ledgerflow.pytorch: MLflow 3.17's pytorch flavor layout, both ways, and Lightning autolog."""

import logging
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import ledgerflow as lf
import ledgerflow.pytorch
from ledgerflow import fluent
from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import Model
from tests.tensorboard_files import logged_events

torch.manual_seed(0)


class TinyNet(torch.nn.Module):
    """Importable from this module, so pickles refer to it by name."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture
def net():
    torch.manual_seed(0)
    return TinyNet().eval()


@pytest.fixture
def x():
    return np.random.default_rng(0).random((5, 3), dtype=np.float32)


def expected(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def refuse_pickle(monkeypatch, data_dir):
    """LEDGERFLOW_ALLOW_PICKLE=false, read again as the settings object is built anew."""
    monkeypatch.setenv("LEDGERFLOW_ALLOW_PICKLE", "false")
    lf.set_tracking_uri(str(data_dir))
    assert fluent._current_settings().allow_pickle is False


# round trips ----------------------------------------------------------------------------
def test_a_module_saved_as_pt2_by_default_loads_back_and_predicts_the_same(net, x, tmp_path):
    from ledgerflow import pyfunc

    ledgerflow.pytorch.save_model(net, tmp_path / "m", input_example=x)

    assert sorted(p.name for p in (tmp_path / "m" / "data").iterdir()) == ["model.pt2"]
    mlmodel = Model.load(tmp_path / "m")
    assert mlmodel.flavors["pytorch"]["model_data"] == "data"
    assert mlmodel.flavors["python_function"]["loader_module"] == "mlflow.pytorch"
    assert mlmodel.signature.inputs.inputs[0].shape == (-1, 3)
    native = ledgerflow.pytorch.load_model(tmp_path / "m")
    with torch.no_grad():
        np.testing.assert_allclose(native(torch.from_numpy(x)).numpy(), expected(net, x), rtol=1e-6)
    bigger = np.random.default_rng(1).random((9, 3), dtype=np.float32)  # the batch is dynamic
    np.testing.assert_allclose(
        pyfunc.load_model(tmp_path / "m").predict(bigger), expected(net, bigger), rtol=1e-6
    )


def test_pt2_needs_an_input_example_to_trace_and_says_so(net, tmp_path):
    with pytest.raises(InvalidInput, match="input_example"):
        ledgerflow.pytorch.save_model(net, tmp_path / "m")


def test_a_pickled_module_round_trips(net, x, tmp_path):
    from ledgerflow import pyfunc

    ledgerflow.pytorch.save_model(net, tmp_path / "m", serialization_format="pickle")

    data = tmp_path / "m" / "data"
    assert (data / "pickle_module_info.txt").read_text() == "mlflow.pytorch.pickle_module"
    assert isinstance(ledgerflow.pytorch.load_model(tmp_path / "m"), TinyNet)
    np.testing.assert_allclose(pyfunc.load_model(tmp_path / "m").predict(x), expected(net, x))


def test_a_scripted_module_round_trips_as_torchscript(net, x, tmp_path):
    from ledgerflow import pyfunc

    scripted = torch.jit.script(net)
    ledgerflow.pytorch.save_model(scripted, tmp_path / "m", serialization_format="pickle")

    loaded = ledgerflow.pytorch.load_model(tmp_path / "m")
    assert isinstance(loaded, torch.jit.ScriptModule)
    np.testing.assert_allclose(pyfunc.load_model(tmp_path / "m").predict(x), expected(net, x))


def test_a_scripted_module_cannot_be_exported_as_pt2(net, x, tmp_path):
    with pytest.raises(InvalidInput, match="TorchScript"):
        ledgerflow.pytorch.save_model(torch.jit.script(net), tmp_path / "m", input_example=x)


# signatures -----------------------------------------------------------------------------
def test_pyfunc_enforces_the_inferred_tensor_signature(net, x, tmp_path):
    from ledgerflow import pyfunc

    ledgerflow.pytorch.save_model(net, tmp_path / "m", input_example=x)
    model = pyfunc.load_model(tmp_path / "m")

    with pytest.raises(InvalidInput, match=r"expected shape \(-1, 3\).*got \(2, 4\)"):
        model.predict(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(InvalidInput, match="expected dtype float32, got float64"):
        model.predict(np.ones((2, 3), dtype=np.float64))


# runs -----------------------------------------------------------------------------------
def test_a_model_logged_in_a_run_loads_through_its_runs_uri(tracking, net, x):
    from ledgerflow import pyfunc

    with lf.start_run() as run:
        info = ledgerflow.pytorch.log_model(net, name="model", input_example=x)

    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    assert "pytorch" in info.flavors
    assert Model.load(Path(lf.Client().download_artifacts(run.info.run_id, "model"))).run_id == (
        run.info.run_id
    )
    np.testing.assert_allclose(pyfunc.load_model(info.model_uri).predict(x), expected(net, x))
    native = ledgerflow.pytorch.load_model(info.model_uri)
    with torch.no_grad():
        np.testing.assert_allclose(native(torch.from_numpy(x)).numpy(), expected(net, x))


# pickle policy --------------------------------------------------------------------------
def test_pickled_models_are_refused_when_pickle_is_not_allowed(
    tracking, monkeypatch, net, x, tmp_path
):
    from ledgerflow import pyfunc

    ledgerflow.pytorch.save_model(net, tmp_path / "pickled", serialization_format="pickle")
    ledgerflow.pytorch.save_model(
        torch.jit.script(net), tmp_path / "scripted", serialization_format="pickle"
    )
    ledgerflow.pytorch.save_model(net, tmp_path / "pt2", input_example=x)
    refuse_pickle(monkeypatch, tracking)

    for name in ("pickled", "scripted"):
        with pytest.raises(InvalidInput, match="LEDGERFLOW_ALLOW_PICKLE=false"):
            ledgerflow.pytorch.load_model(tmp_path / name)
        with pytest.raises(InvalidInput, match="LEDGERFLOW_ALLOW_PICKLE=false"):
            pyfunc.load_model(tmp_path / name)
    # a torch.export archive holds raw tensors only: it still loads
    np.testing.assert_allclose(pyfunc.load_model(tmp_path / "pt2").predict(x), expected(net, x))


class _Boom:
    def __reduce__(self):
        return (print, ("unpickled",))


def test_a_pt2_archive_carrying_a_pickle_is_refused_when_pickle_is_not_allowed(
    tracking, monkeypatch, net, x, tmp_path
):
    ledgerflow.pytorch.save_model(net, tmp_path / "m", input_example=x)
    archive = tmp_path / "m" / "data" / "model.pt2"
    with zipfile.ZipFile(archive) as z:
        root = z.namelist()[0].split("/")[0]
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr(f"{root}/data/constants/evil", pickle.dumps(_Boom()))
    refuse_pickle(monkeypatch, tracking)

    with pytest.raises(InvalidInput, match="evil"):
        ledgerflow.pytorch.load_model(tmp_path / "m")


# interchange with MLflow ----------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["pt2", "pickle"])
def test_mlflow_loads_a_model_ledgerflow_saved(net, x, tmp_path, fmt):
    import mlflow.pyfunc
    import mlflow.pytorch

    kwargs = {"input_example": x} if fmt == "pt2" else {"serialization_format": "pickle"}
    ledgerflow.pytorch.save_model(net, tmp_path / "m", **kwargs)

    np.testing.assert_allclose(
        mlflow.pyfunc.load_model(str(tmp_path / "m")).predict(x), expected(net, x), rtol=1e-6
    )
    native = (
        mlflow.pytorch.load_model(str(tmp_path / "m"), weights_only=False)
        if fmt == "pickle"
        else mlflow.pytorch.load_model(str(tmp_path / "m"))
    )
    with torch.no_grad():
        np.testing.assert_allclose(native(torch.from_numpy(x)).numpy(), expected(net, x), rtol=1e-6)


@pytest.mark.parametrize("fmt", ["pt2", "pickle"])
def test_ledgerflow_loads_a_model_mlflow_saved(net, x, tmp_path, fmt):
    import mlflow.pytorch

    from ledgerflow import pyfunc

    kwargs = {"input_example": x} if fmt == "pt2" else {"serialization_format": "pickle"}
    # pip_requirements given: MLflow would otherwise infer them in a subprocess (~10 s)
    mlflow.pytorch.save_model(net, str(tmp_path / "m"), pip_requirements=["torch"], **kwargs)

    np.testing.assert_allclose(
        pyfunc.load_model(tmp_path / "m").predict(x), expected(net, x), rtol=1e-6
    )
    native = ledgerflow.pytorch.load_model(tmp_path / "m")
    with torch.no_grad():
        np.testing.assert_allclose(native(torch.from_numpy(x)).numpy(), expected(net, x), rtol=1e-6)


# Lightning autolog -----------------------------------------------------------------------
@pytest.fixture
def autologging():
    ledgerflow.pytorch.autolog()
    yield
    ledgerflow.pytorch.autolog(disable=True)


def tiny_fit(max_epochs=2, **trainer_kwargs):
    """A 2-epoch fit of a 4->1 linear regression on 16 rows: well under a second."""
    import lightning as L

    from tests.integration._lightning_models import TinyRegressor

    torch.manual_seed(0)
    xs = torch.rand(16, 4)
    data = torch.utils.data.TensorDataset(xs, xs.sum(dim=1, keepdim=True))
    trainer = L.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_kwargs,
    )
    model = TinyRegressor()
    trainer.fit(model, torch.utils.data.DataLoader(data, batch_size=8))
    return model, xs.numpy()


def test_lightning_autolog_logs_params_metrics_summary_and_the_model(tracking, autologging):
    from ledgerflow import pyfunc

    with lf.start_run() as run:
        model, xs = tiny_fit()

    got = lf.get_run(run.info.run_id)
    assert got.data.params["epochs"] == "2"
    assert got.data.params["optimizer_name"] == "SGD"
    assert got.data.params["lr"] == "0.1"
    assert got.data.tags["Mode"] == "training"
    history = lf.Client().get_metric_history(run.info.run_id, "train_loss")
    assert [m.step for m in history] == [0, 1]
    names = {f.path for f in lf.Client().list_artifacts(run.info.run_id)}
    assert {"model", "model_summary.txt", "tensorboard_logs"} <= names
    events = logged_events(run.info.run_id, "train_loss")
    assert [s for s, _ in events] == [m.step for m in history]
    np.testing.assert_allclose([v for _, v in events], [m.value for m in history], rtol=1e-6)
    loaded = pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert loaded.metadata.signature.inputs.inputs[0].shape == (-1, 4)
    model.eval()
    with torch.no_grad():
        want = model(torch.from_numpy(xs)).numpy()
    np.testing.assert_allclose(loaded.predict(xs), want, rtol=1e-6)
    assert "forward" not in vars(model)  # the first-batch capture is undone


def test_lightning_autolog_records_early_stopping_settings(tracking, autologging):
    import lightning as L

    stop = L.pytorch.callbacks.EarlyStopping(monitor="train_loss", patience=1)
    with lf.start_run() as run:
        tiny_fit(callbacks=[stop])

    params = lf.get_run(run.info.run_id).data.params
    assert params["monitor"] == "train_loss"
    assert params["patience"] == "1"


_LF_AUTOLOG_SCRIPT = """
import sys
import ledgerflow as lf
lf.autolog()  # before lightning is imported: the patch goes in when it is
assert "lightning" not in sys.modules
from tests.integration.test_models_pytorch import tiny_fit
with lf.start_run() as run:
    tiny_fit()
print(lf.get_run(run.info.run_id).data.params["optimizer_name"])
print(sorted(f.path for f in lf.Client().list_artifacts(run.info.run_id)))
"""


@pytest.mark.slow
def test_lf_autolog_enables_lightning_autologging_when_lightning_is_imported_later(data_dir):
    import subprocess

    from tests.conftest import PYTHON, ROOT, python_env

    out = subprocess.run(
        [PYTHON, "-c", _LF_AUTOLOG_SCRIPT],
        cwd=ROOT,
        env=python_env(data_dir),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    artifacts = "['model', 'model_summary.txt', 'tensorboard_logs']"
    assert out.stdout.splitlines()[-2:] == ["SGD", artifacts]


def test_lightning_autolog_starts_and_ends_a_run_when_none_is_active(tracking, autologging):
    tiny_fit()

    assert lf.active_run() is None
    run = lf.last_active_run()
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.autologging"] == "pytorch"
    assert run.data.params["epochs"] == "2"


def test_a_logging_failure_during_lightning_autolog_is_a_warning_not_a_failed_fit(
    tracking, autologging, caplog
):
    with lf.start_run() as run:
        lf.log_param("epochs", 99)  # autolog's epochs=2 now conflicts with a recorded param
        with caplog.at_level(logging.WARNING, logger="ledgerflow.autolog"):
            model, _ = tiny_fit()

    assert "logging params failed; training is not affected" in caplog.text

    assert model.trainer.current_epoch == 2  # training ran to the end
    got = lf.get_run(run.info.run_id)
    assert got.data.params["epochs"] == "99"
    assert [m.step for m in lf.Client().get_metric_history(run.info.run_id, "train_loss")] == [0, 1]
    assert "model" in {f.path for f in lf.Client().list_artifacts(run.info.run_id)}


def test_an_error_raised_by_training_still_propagates_under_autolog(tracking, autologging):
    with pytest.raises(RuntimeError, match="diverged"):
        tiny_fit(callbacks=[_Diverge()])

    assert lf.last_active_run().info.status == "FAILED"


class _Diverge:
    """A Lightning callback (made one lazily: lightning is imported only by these tests)."""

    def __new__(cls):
        import lightning as L

        class Diverge(L.Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                raise RuntimeError("loss diverged")

        return Diverge()


class _Untraceable(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.export cannot trace it
            return x * 2
        return x


def test_a_model_torch_export_cannot_trace_is_reported_and_leaves_the_path_reusable(x, tmp_path):
    with pytest.raises(InvalidInput, match="torch.export could not trace the model.*pickle"):
        ledgerflow.pytorch.save_model(_Untraceable(), tmp_path / "m", input_example=x)

    assert list((tmp_path / "m").iterdir()) == []
    ledgerflow.pytorch.save_model(_Untraceable(), tmp_path / "m", serialization_format="pickle")


def test_a_model_registered_by_log_model_loads_through_a_models_uri(tracking, net, x):
    with lf.start_run():
        info = ledgerflow.pytorch.log_model(
            net, name="model", input_example=x, registered_model_name="tiny-net"
        )

    assert info.registered_model_version == 1
    native = ledgerflow.pytorch.load_model("models:/tiny-net/1")
    with torch.no_grad():
        np.testing.assert_allclose(native(torch.from_numpy(x)).numpy(), expected(net, x))
