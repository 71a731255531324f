"""`ledgerflow.crate`: an R model trained and saved by R with the helper shipped in the
package, predicted from Python through one long-lived Rscript worker, logged, registered,
loaded in a fresh process and served by `ledgerflow serve`. Needs Rscript with jsonlite
(scripts/ensure-r.sh installs them)."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml

import ledgerflow as lf
from ledgerflow import crate, pyfunc
from ledgerflow.crate import flavor as crate_flavor
from ledgerflow.events.errors import InvalidInput, Unavailable
from tests.conftest import PYTHON
from tests.e2e.test_cli import cli_env
from tests.e2e.test_serve_process import serving_all

pytestmark = pytest.mark.slow

# R fits y ~ x + g on TRAIN and predicts NEW; the same rows are written here as in R.
TRAIN_R = """
train <- data.frame(x = c(1, 2, 3, 4, 5, 6), g = c("a", "b", "a", "b", "a", "b"),
                    n = 1:6, stringsAsFactors = FALSE)
train$y <- 2 * train$x + ifelse(train$g == "a", 1, -1) + c(0.1, -0.2, 0.05, 0.3, -0.1, 0.2)
new <- data.frame(x = c(0.5, 2.25, 7), g = c("b", "a", "a"), n = c(1L, 2L, 3L),
                  stringsAsFactors = FALSE)
"""
NEW = pd.DataFrame({"x": [0.5, 2.25, 7.0], "g": ["b", "a", "a"], "n": [1, 2, 3]})

SAVE_R = """
source(HELPER)
fit <- lm(y ~ x + g, data = train)
check <- function(df) if (any(df$x < 0)) stop("x must not be negative, got ", min(df$x))
ledgerflow_save_model(function(df) { check(df); predict(fit, newdata = df) },
                      file.path(OUT, "lm"), input_example = head(train[, c("x", "g", "n")], 2))
writeLines(sprintf("%.17g", predict(fit, newdata = new)), file.path(OUT, "expected.txt"))
ledgerflow_save_model(function(df) as.data.frame(predict(fit, df, interval = "confidence")),
                      file.path(OUT, "interval"))
ledgerflow_save_model(function(df) { Sys.sleep(df$x[1]); df$x }, file.path(OUT, "sleepy"))
# What MLflow's R package writes for mlflow_save_model(crate(...)): the crate block only.
dir.create(file.path(OUT, "mlflow"))
saveRDS(serialize(function(df) df$x * 10, NULL), file.path(OUT, "mlflow", "crate.bin"))
writeLines(c("flavors:", "  crate:", "    version: 0.1.0", "    model: crate.bin",
             "utc_time_created: '2026-01-02 03:04:05.000000'"), file.path(OUT, "mlflow", "MLmodel"))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The models R saved (lm, interval, mlflow) and R's own predictions on NEW."""
    out = tmp_path_factory.mktemp("r-models")
    script = out / "save.R"
    script.write_text(
        f"HELPER <- {json.dumps(str(crate.helper_path()))}\nOUT <- {json.dumps(str(out))}\n"
        + TRAIN_R
        + SAVE_R
    )
    done = subprocess.run(
        ["Rscript", "--vanilla", str(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return out


def _expected(saved: Path) -> np.ndarray:
    return np.array([float(v) for v in (saved / "expected.txt").read_text().split()])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_an_r_lm_predicts_in_python_exactly_what_r_predicts(saved: Path) -> None:
    mlmodel = yaml.safe_load((saved / "lm" / "MLmodel").read_text())
    assert mlmodel["flavors"]["crate"] == {
        "version": "0.1.0", "model": "crate.bin", "r_version": mlmodel["flavors"]["crate"]["r_version"],
        "r_packages": {},
    }  # fmt: skip
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "ledgerflow.crate"
    assert (saved / "lm" / "r_requirements.txt").read_text().startswith("R==")
    model = pyfunc.load_model(saved / "lm")
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["x", "g", "n"]
    assert model.input_example.shape == (2, 3)
    got = model.predict(NEW)
    assert got.dtype == np.float64 and np.array_equal(got, _expected(saved))  # bit for bit
    frame = pyfunc.load_model(saved / "interval").predict(NEW)
    assert list(frame.columns) == ["fit", "lwr", "upr"]
    assert np.allclose(frame["fit"], _expected(saved), rtol=1e-12)
    assert (frame["lwr"] < frame["fit"]).all() and (frame["fit"] < frame["upr"]).all()


def test_predictions_reuse_one_r_process_from_many_threads_until_collected(saved: Path) -> None:
    model = pyfunc.load_model(saved / "lm")
    raw = model.get_raw_model()
    assert raw.pid is None  # started at the first predict
    expected = _expected(saved)
    model.predict(NEW)
    pid = raw.pid
    assert pid is not None and "worker.R" in Path(f"/proc/{pid}/cmdline").read_text()
    failures: list[BaseException] = []

    def predict_many(shared: pyfunc.PyFuncModel) -> None:
        try:
            for _ in range(25):
                assert np.array_equal(shared.predict(NEW), expected)
        except BaseException as e:  # reported by the test thread
            failures.append(e)

    threads = [threading.Thread(target=predict_many, args=(model,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures and raw.pid == pid
    del model, raw, threads
    gc.collect()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_an_error_in_r_is_invalid_input_with_rs_message_and_the_worker_lives_on(
    saved: Path,
) -> None:
    model = crate.load_model(saved / "lm")
    model.predict(NEW)
    pid = model.pid
    with pytest.raises(
        InvalidInput, match="predict function failed .*x must not be negative, got -1"
    ):
        model.predict(NEW.assign(x=[-1.0, 2.0, 3.0]))
    with pytest.raises(InvalidInput, match="factor g has new levels? zz"):
        model.predict(NEW.assign(g=["zz", "a", "b"]))
    with pytest.raises(InvalidInput, match="column 'g' holds dict"):
        model.predict(NEW.assign(g=[{}, "a", "b"]))
    assert model.pid == pid
    model.close()
    assert model.pid is None and not _alive(pid)


def test_a_killed_worker_is_started_again_at_the_next_predict(saved: Path) -> None:
    model = crate.load_model(saved / "lm")
    model.predict(NEW)
    pid = model.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # the worker this test started
    deadline = time.monotonic() + 10
    while model.pid is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert np.array_equal(model.predict(NEW), _expected(saved))
    assert model.pid not in (None, pid)
    model.close()


def test_a_predict_past_the_timeout_stops_the_worker_instead_of_hanging(saved: Path) -> None:
    model = pyfunc.load_model(saved / "sleepy", model_config={"timeout_s": 1})
    assert model.predict(pd.DataFrame({"x": [0.0]})).tolist() == [0.0]
    pid = model.get_raw_model().pid
    with pytest.raises(Unavailable, match="was not done answering after 1 s; it was stopped"):
        model.predict(pd.DataFrame({"x": [30.0]}))
    assert not _alive(pid)
    assert model.predict(pd.DataFrame({"x": [0.0]})).tolist() == [0.0]
    assert model.get_raw_model().pid not in (None, pid)


def test_without_rscript_the_flavor_says_what_to_install(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = crate.load_model(saved / "lm")
    monkeypatch.setenv("PATH", str(tmp_path))  # a folder without Rscript
    with pytest.raises(
        Unavailable, match="apt-get install -y --no-install-recommends r-base-core r-cran-jsonlite"
    ):
        model.predict(NEW)


def test_loading_r_code_obeys_the_pickle_policy(saved: Path) -> None:
    with pytest.raises(InvalidInput, match="LEDGERFLOW_ALLOW_PICKLE=false"):
        crate_flavor.load(saved / "lm", allow_pickle=False)


def test_a_crate_saved_by_mlflows_r_package_gets_a_pyfunc_block_when_logged(
    tracking: Path, saved: Path, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="save the R model with ledgerflow_save_model"):
        crate_flavor.save_model(tmp_path, tmp_path / "copy")
    with lf.start_run():
        info = crate.log_model(saved / "mlflow", name="r")
    assert info.flavors["python_function"]["loader_module"] == "ledgerflow.crate"
    got = pyfunc.load_model(info.model_uri).predict(pd.DataFrame({"x": [1.5, -2.0]}))
    assert got.tolist() == [15.0, -20.0]


def test_logged_registered_loaded_in_a_fresh_process_and_served(
    tracking: Path, saved: Path
) -> None:
    with lf.start_run():
        info = crate.log_model(saved / "lm", name="model", registered_model_name="r-lm")
    assert info.registered_model_version == 1 and info.signature is not None
    script = (
        "import ledgerflow as lf, pandas as pd, json, sys;"
        "df = pd.DataFrame(json.load(sys.stdin));"
        "m = lf.pyfunc.load_model('r-lm', version=1);"
        "print(json.dumps(m.predict(df).tolist()))"
    )
    fresh = subprocess.run(
        [PYTHON, "-c", script], input=NEW.to_json(orient="columns"), capture_output=True,
        text=True, env=cli_env(tracking), timeout=60,
    )  # fmt: skip
    assert fresh.returncode == 0, fresh.stderr
    expected = _expected(saved).tolist()
    assert json.loads(fresh.stdout) == expected
    lf.flush()
    log = tracking.parent / "serve-r.log"
    with serving_all(tracking, (log, ["-m", "models:/r-lm/1"])) as [url]:
        body = {"dataframe_split": NEW.to_dict(orient="split")}
        r = httpx.post(url + "/invocations", json=body, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": expected}
        bad = NEW.assign(x=[-3.0, 1.0, 2.0]).to_dict(orient="split")
        r = httpx.post(url + "/invocations", json={"dataframe_split": bad}, timeout=30)
        assert r.status_code == 400 and "x must not be negative, got -3" in r.text, r.text
