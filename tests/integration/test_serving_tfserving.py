"""TensorFlow Serving's REST API on the model server's app, as a TF Serving client calls it,
against real scikit-learn models in-process over httpx's ASGI transport: predictions equal
to MLflow scoring's for the same rows, row and columnar formats, status, metadata, labels,
and every error in TF Serving's `{"error": ...}` shape."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ledgerflow.events import model_payloads as m
from ledgerflow.events.envelope import Event
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.serving.app import create_app
from ledgerflow.services.serving.labels import Aliases
from ledgerflow.services.serving.loading import LoadedModel, load
from ledgerflow.services.serving.repository import ModelRepository
from tests.metrics_text import sample

Check = Callable[[httpx.AsyncClient, ModelRepository], Awaitable[None]]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, Any, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    path = tmp_path_factory.mktemp("tfserving") / "digits"
    ledgerflow.sklearn.save_model(model, path, input_example=x[:2])
    return load(str(path), name="digits"), model, x


def serve(
    loaded: LoadedModel,
    check: Check,
    *,
    warm: bool = True,
    labels: tuple[str, ...] = (),
    aliases: Aliases | None = None,
) -> None:
    """Run `check` against a fresh repository serving the model (one event loop per test);
    with `aliases`, as a version of the registered model of its name."""

    async def main() -> None:
        repository = ModelRepository(max_batch_size=8, max_wait_ms=2.0, aliases=aliases)
        served = repository.add(
            loaded.name,
            loaded.predictor,
            version=loaded.version,
            labels=labels,
            registered=loaded.name if aliases is not None else None,
        )
        if warm:
            await served.warm()
        transport = httpx.ASGITransport(app=create_app(repository))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
                await check(client, repository)
        finally:
            await repository.close()

    asyncio.run(main())


def test_row_and_columnar_predict_answer_what_invocations_answers_for_the_same_rows(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded, model, x = digits
    rows = x[:5].tolist()
    want = model.predict(x[:5]).tolist()

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        mlflow = (await client.post("/invocations", json={"inputs": rows})).json()
        assert mlflow == {"predictions": want}
        for path in ("digits", "digits/versions/1", "digits/labels/champion"):
            r = await client.post(f"/v1/models/{path}:predict", json={"instances": rows})
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": want}
        body = {"signature_name": "serving_default", "inputs": rows}
        r = await client.post("/v1/models/digits:predict", json=body)
        assert r.status_code == 200 and r.json() == {"outputs": want}
        r = await client.post("/v1/models/digits:predict", json={"inputs": {"input": rows}})
        assert r.json() == {"outputs": want}
        metrics = (await client.get("/metrics")).text
        labels = {"model": "digits", "version": "1", "variant": "", "protocol": "tfserving"}
        assert sample(metrics, "ledgerflow_serving_requests_total", **labels) == 5

    serve(loaded, check, labels=("champion",))


def test_named_inputs_as_row_objects_or_columns_reach_a_column_signature(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    ledgerflow.sklearn.save_model(model, tmp_path / "cols", input_example=frame.head(2))
    cols = load(str(tmp_path / "cols"), name="cols")
    want = model.predict(frame).tolist()

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        records = frame.to_dict(orient="records")
        r = await client.post("/v1/models/cols:predict", json={"instances": records})
        assert r.status_code == 200, r.text
        assert r.json() == {"predictions": want}
        columns = {c: frame[c].tolist() for c in frame.columns}
        r = await client.post("/v1/models/cols:predict", json={"inputs": columns})
        assert r.json() == {"outputs": want}
        r = await client.post("/v1/models/cols:predict", json={"inputs": {"a": columns["a"]}})
        assert r.status_code == 400 and "b" in r.json()["error"]
        meta = (await client.get("/v1/models/cols/metadata")).json()
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert sig["inputs"]["a"]["dtype"] == "DT_DOUBLE"
        assert sig["inputs"]["a"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]

    serve(cols, check)


def test_status_and_metadata_show_the_served_version_as_tf_serving_does(
    digits: tuple[LoadedModel, Any, np.ndarray],
) -> None:
    loaded = digits[0]

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        loading = (await client.get("/v1/models/digits")).json()
        assert loading["model_version_status"][0]["state"] == "LOADING"
        await repository.get("digits").warm()
        r = await client.post("/v1/models/digits:predict", json={"instances": [[0.0] * 64]})
        assert r.status_code == 200
        want = {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }
        for path in ("digits", "digits/versions/1", "digits/labels/prod"):
            assert (await client.get(f"/v1/models/{path}")).json() == want
        meta = (await client.get("/v1/models/digits/versions/1/metadata")).json()
        assert meta["model_spec"] == {"name": "digits", "signature_name": "", "version": "1"}
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert sig["method_name"] == "tensorflow/serving/predict"
        assert sig["inputs"] == {
            "input": {
                "dtype": "DT_DOUBLE",
                "tensor_shape": {
                    "dim": [{"size": "-1", "name": ""}, {"size": "64", "name": ""}],
                    "unknown_rank": False,
                },
                "name": "input:0",
            }
        }
        assert sig["outputs"]["predictions"]["dtype"] == "DT_INT64"

    async def loading_then_ready(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/v1/models/digits:predict", json={"instances": [[0.0] * 64]})
        assert r.status_code == 503 and "loading" in r.json()["error"]
        await check(client, repository)

    serve(loaded, loading_then_ready, warm=False, labels=("prod",))


def test_a_label_follows_its_alias_moved_or_deleted_after_the_model_was_loaded(
    digits: tuple[LoadedModel, Any, np.ndarray], tmp_path: Path
) -> None:
    log = SQLiteEventLog(str(tmp_path / "events.db"))
    rows = {"instances": [[0.0] * 64]}

    def registry(*payloads: Any) -> None:
        log.append([Event.of(p, actor="test") for p in payloads])

    registry(
        m.ModelAliasSet(name="digits", alias="champion", version=1),
        m.ModelAliasSet(name="digits", alias="next", version=2),
    )
    aliases = Aliases(log).start()

    async def answer(client: httpx.AsyncClient, label: str, status: int) -> str:
        """What `/labels/<label>` answers once it answers `status` (the follower is a
        thread: it catches up within a moment)."""
        for _ in range(100):
            r = await client.get(f"/v1/models/digits/labels/{label}")
            if r.status_code == status:
                return str(r.json().get("error", ""))
            await asyncio.sleep(0.05)
        raise AssertionError(f"/labels/{label} answered {r.status_code}: {r.text}")

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/v1/models/digits/labels/champion:predict", json=rows)
        assert r.status_code == 200, r.text
        moved = await answer(client, "next", 404)
        assert "'next' now points at version 2 of 'digits'" in moved, moved
        assert "does not serve (it serves version 1)" in moved

        registry(m.ModelAliasSet(name="digits", alias="champion", version=2))
        moved = await answer(client, "champion", 404)
        assert moved.startswith("Servable not found for request: Label(digits, champion)")
        assert "now points at version 2" in moved
        r = await client.post("/v1/models/digits/labels/champion:predict", json=rows)
        assert r.status_code == 404 and list(r.json()) == ["error"]

        registry(m.ModelAliasSet(name="digits", alias="next", version=1))
        assert await answer(client, "next", 200) == ""
        r = await client.post("/v1/models/digits/labels/next:predict", json=rows)
        assert r.status_code == 200, r.text

        registry(m.ModelAliasDeleted(name="digits", alias="next"))
        gone = await answer(client, "next", 400)
        assert "Unrecognized servable version label: next" in gone, gone

    try:
        serve(digits[0], check, aliases=aliases)
    finally:
        aliases.stop()
        log.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("POST", "nope:predict", {"instances": [[0.0] * 64]}, 404, "Latest(nope)"),
        ("POST", "digits/versions/2:predict", {"instances": [[0.0] * 64]}, 404, "(digits, 2)"),
        ("POST", "digits/labels/x:predict", {"instances": [[0.0] * 64]}, 400, "label: x"),
        ("GET", "nope", None, 404, "Servable not found"),
        ("GET", "digits/versions/7/metadata", None, 404, "Specific(digits, 7)"),
        ("GET", "digits/labels/x", None, 400, "Unrecognized servable version label"),
        ("POST", "digits:explain", {"instances": []}, 404, "Malformed request"),
        ("POST", "digits/metadata", {}, 404, "Malformed request"),
        ("GET", "digits:predict", None, 404, "Malformed request"),
        ("GET", "digits/extra/thing", None, 404, "Malformed request"),
        ("POST", "digits:predict", b"{not json", 400, "JSON Parse error"),
        ("POST", "digits:predict", [1, 2], 400, "JSON object"),
        ("POST", "digits:predict", {}, 400, "Missing 'inputs' or 'instances'"),
        ("POST", "digits:predict", {"instances": [[1]], "inputs": [[1]]}, 400, "Not both"),
        ("POST", "digits:predict", {"instances": []}, 400, "'instances'"),
        ("POST", "digits:predict", {"instances": 3}, 400, "'instances'"),
        ("POST", "digits:predict", {"inputs": 3}, 400, "'inputs'"),
        ("POST", "digits:predict", {"instances": [[1, 2]]}, 400, "shape"),
        ("POST", "digits:predict", {"instances": [["a"] * 64]}, 400, "instances"),
        ("POST", "digits:predict", {"instances": [{"x": 1}, {"y": 2}]}, 400, "same fields"),
        ("POST", "digits:predict", {"instances": [[{"b64": "!!"}]]}, 400, "base64"),
        ("POST", "digits:predict", {"instances": [[{"b64": 1}]]}, 400, "b64"),
        (
            "POST",
            "digits:predict",
            {"signature_name": "predict_proba", "instances": [[0.0] * 64]},
            400,
            'signature name: "predict_proba" not found',
        ),
        (
            "POST",
            "digits:classify",
            {"examples": [{"x": 1.0}]},
            400,
            "Expected classification signature method_name to be tensorflow/serving/classify",
        ),
        (
            "POST",
            "digits:regress",
            {"examples": [{"x": 1.0}]},
            400,
            "Expected regression signature method_name to be tensorflow/serving/regress",
        ),
        ("POST", "digits:regress", {"instances": [[1.0]]}, 400, "'examples'"),
        ("POST", "nope:classify", {"examples": []}, 404, "Latest(nope)"),
    ],
)
def test_every_error_is_answered_in_tf_serving_shape_with_its_status(
    digits: tuple[LoadedModel, Any, np.ndarray],
    method: str,
    path: str,
    body: Any,
    status: int,
    words: str,
) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        content = body if isinstance(body, bytes) or body is None else httpx_json(body)
        r = await client.request(method, f"/v1/models/{path}", content=content)
        assert r.status_code == status, r.text
        doc = r.json()
        assert list(doc) == ["error"] and words in doc["error"], doc

    serve(digits[0], check, labels=("prod",))


def httpx_json(doc: Any) -> bytes:
    import json

    return json.dumps(doc).encode()


def test_b64_values_reach_a_model_as_bytes_and_binary_outputs_come_back_as_b64(
    tmp_path: Path,
) -> None:
    import ledgerflow.pyfunc

    class Echo(ledgerflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            values = np.asarray(model_input).ravel().tolist()
            return {
                "length": np.array([len(v) for v in values]),
                "echo_bytes": np.array([bytes(v) for v in values], dtype=object),
            }

    ledgerflow.pyfunc.save_model(tmp_path / "echo", python_model=Echo())
    echo = load(str(tmp_path / "echo"), name="echo")
    raw = [b"\x00\xffabc", b"hello"]
    encoded = [{"b64": base64.b64encode(v).decode()} for v in raw]

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/v1/models/echo:predict", json={"instances": encoded})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "predictions": [
                {"length": 5, "echo_bytes": encoded[0]},
                {"length": 5, "echo_bytes": encoded[1]},
            ]
        }
        r = await client.post("/v1/models/echo:predict", json={"inputs": encoded})
        assert r.json() == {"outputs": {"length": [5, 5], "echo_bytes": encoded}}

    serve(echo, check)
