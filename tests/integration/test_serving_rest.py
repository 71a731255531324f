"""The model server's REST app (MLflow scoring + OIP v2 + metrics) against a real sklearn
model, in-process over httpx's ASGI transport."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ledgerflow.services.serving.app import create_app
from ledgerflow.services.serving.loading import LoadedModel, load
from ledgerflow.services.serving.repository import ModelRepository
from tests.metrics_text import sample

Check = Callable[[httpx.AsyncClient, ModelRepository], Awaitable[None]]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, np.ndarray, Any]:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    x, y = load_digits(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    path = tmp_path_factory.mktemp("serving") / "digits"
    ledgerflow.sklearn.save_model(model, path, input_example=x[:2])
    return path, model, x, y


@pytest.fixture(scope="module")
def loaded(digits: tuple[Path, Any, np.ndarray, Any]) -> LoadedModel:
    return load(str(digits[0]), name="digits")


def serve(loaded: LoadedModel, check: Check, *, warm: bool = True, batch: int = 1) -> None:
    """Run `check` against a fresh repository serving the model (one event loop per test)."""

    async def main() -> None:
        repository = ModelRepository(max_batch_size=batch, max_wait_ms=5.0)
        served = repository.add(loaded.name, loaded.predictor, version=loaded.version)
        if warm:
            await served.warm()
        transport = httpx.ASGITransport(app=create_app(repository))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
                await check(client, repository)
        finally:
            await repository.close()

    asyncio.run(main())


def test_every_readiness_probe_answers_503_until_the_model_is_warmed(loaded: LoadedModel) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        probes = ["/ping", "/health", "/v2/health/ready", "/v2/models/digits/ready"]
        assert [(await client.get(p)).status_code for p in probes] == [503] * 4
        assert (await client.get("/v2/health/live")).status_code == 200
        r = await client.post("/invocations", json={"inputs": [[0.0] * 64]})
        assert r.status_code == 503
        await repository.get("digits").warm()
        assert [(await client.get(p)).status_code for p in probes] == [200] * 4

    serve(loaded, check, warm=False)


def test_invocations_accepts_every_mlflow_json_format_and_csv(
    loaded: LoadedModel, digits: tuple[Path, Any, np.ndarray, Any]
) -> None:
    _, model, x, _ = digits
    want = model.predict(x[:3]).tolist()
    cols = [f"c{i}" for i in range(64)]
    bodies = [
        {"inputs": x[:3].tolist()},
        {"instances": x[:3].tolist()},
        {"dataframe_split": {"columns": cols, "data": x[:3].tolist()}},
        {"dataframe_records": [dict(zip(cols, row, strict=True)) for row in x[:3].tolist()]},
    ]
    csv = ",".join(cols) + "\n" + "\n".join(",".join(map(str, r)) for r in x[:3].tolist())

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        for body in bodies:
            r = await client.post("/invocations", json=body)
            assert r.status_code == 200, (body.keys(), r.text)
            assert r.json() == {"predictions": want}
        r = await client.post(
            "/invocations", content=csv, headers={"Content-Type": "text/csv; charset=utf-8"}
        )
        assert r.status_code == 200 and r.json() == {"predictions": want}

    serve(loaded, check)


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"inputs": [[1.0, 2.0]]}, 400, "shape"),
        ({"inputs": [[1.0], [1.0, 2.0]]}, 400, "inputs"),
        ({"inputs": [["a"] * 64]}, 400, "inputs"),
        ({"features": [[1.0] * 64]}, 400, "features"),
        ({"inputs": [[1.0] * 64], "instances": [[1.0] * 64]}, 400, "instances"),
        ({"inputs": [[1.0] * 64], "params": [1]}, 400, "params"),
        ({"dataframe_split": {"columns": ["a"]}}, 400, "dataframe_split"),
    ],
)
def test_bad_scoring_input_gets_400_with_a_message_naming_the_field(
    loaded: LoadedModel, body: dict[str, Any], status: int, names: str
) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/invocations", json=body)
        assert r.status_code == status, r.text
        assert r.json()["error_code"] == "BAD_REQUEST"
        assert names in r.json()["message"]

    serve(loaded, check)


def test_malformed_json_and_unknown_content_types_are_rejected_not_crashed(
    loaded: LoadedModel,
) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post(
            "/invocations", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400 and "not valid JSON" in r.json()["message"]
        r = await client.post("/invocations", content=b"x", headers={"Content-Type": "text/xml"})
        assert r.status_code == 415 and "text/xml" in r.json()["message"]
        r = await client.post(
            "/invocations",
            content=b"{}",
            headers={"Content-Type": "application/json; charset=latin-1"},
        )
        assert r.status_code == 415

    serve(loaded, check)


def test_request_ids_are_echoed_and_generated_when_absent(loaded: LoadedModel) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        body = {"inputs": [[0.0] * 64]}
        r = await client.post("/invocations", json=body, headers={"X-Request-Id": "req-7"})
        assert r.headers["x-request-id"] == "req-7"
        r = await client.post("/invocations", json=body)
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])

    serve(loaded, check)


def test_oip_metadata_describes_the_model_from_its_signature(loaded: LoadedModel) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.get("/v2")
        assert r.json()["name"] == "ledgerflow" and "version" in r.json()
        meta = (await client.get("/v2/models/digits")).json()
        assert meta == (await client.get("/v2/models/digits/versions/1")).json()
        assert meta["name"] == "digits" and meta["versions"] == ["1"]
        assert meta["platform"] == "ledgerflow_sklearn"
        assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 64]}]
        assert meta["outputs"][0]["datatype"] == "INT64"
        assert (await client.get("/v2/models/other")).status_code == 404
        assert (await client.get("/v2/models/digits/versions/9")).status_code == 404

    serve(loaded, check)


def test_oip_infer_answers_named_typed_outputs_with_the_request_id(
    loaded: LoadedModel, digits: tuple[Path, Any, np.ndarray, Any]
) -> None:
    _, model, x, _ = digits

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        body = {
            "id": "abc",
            "inputs": [
                {
                    "name": "input",
                    "shape": [3, 64],
                    "datatype": "FP64",
                    "data": x[:3].ravel().tolist(),
                }
            ],
            "outputs": [{"name": "predictions"}],
        }
        r = await client.post("/v2/models/digits/versions/1/infer", json=body)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert (doc["model_name"], doc["model_version"], doc["id"]) == ("digits", "1", "abc")
        assert doc["outputs"] == [
            {
                "name": "predictions",
                "datatype": "INT64",
                "shape": [3],
                "data": model.predict(x[:3]).tolist(),
            }
        ]

    serve(loaded, check)


@pytest.mark.parametrize(
    ("tensor", "names"),
    [
        ({"name": "input", "shape": [1, 64], "datatype": "FP99", "data": [0] * 64}, "datatype"),
        ({"name": "input", "shape": [2, 64], "datatype": "FP64", "data": [0] * 64}, "'input'"),
        ({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}, "dtype"),
        ({"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [0, 1]}, "shape"),
        ({"name": "input", "shape": [-1], "datatype": "FP64", "data": [0]}, "shape"),
        ({"name": "input", "shape": [1], "datatype": "FP64", "data": ["x"]}, "'input'"),
        ({"shape": [1], "datatype": "FP64", "data": [0]}, "inputs[0]"),
        ({"name": "input", "shape": [1, 64], "datatype": "FP64"}, "data"),
    ],
)
def test_bad_oip_tensors_get_400_naming_the_tensor(
    loaded: LoadedModel, tensor: dict[str, Any], names: str
) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/v2/models/digits/infer", json={"inputs": [tensor]})
        assert r.status_code == 400, r.text
        assert names in r.json()["error"]

    serve(loaded, check)


def test_oip_infer_on_an_unknown_model_is_404_and_an_unknown_output_400(
    loaded: LoadedModel,
) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        tensor = {"name": "input", "shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64}
        r = await client.post("/v2/models/nope/infer", json={"inputs": [tensor]})
        assert r.status_code == 404 and "nope" in r.json()["error"]
        body = {"inputs": [tensor], "outputs": [{"name": "proba"}]}
        r = await client.post("/v2/models/digits/infer", json=body)
        assert r.status_code == 400 and "'proba'" in r.json()["error"]

    serve(loaded, check)


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(
    loaded: LoadedModel, digits: tuple[Path, Any, np.ndarray, Any]
) -> None:
    _, model, x, _ = digits

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        slices = [x[i : i + 1 + i % 3] for i in range(24)]
        bad = 5
        bodies: list[dict[str, Any]] = [{"inputs": s.tolist()} for s in slices]
        bodies[bad] = {"inputs": [[0.0] * 3]}  # the wrong width: fails alone
        answers = await asyncio.gather(*(client.post("/invocations", json=b) for b in bodies))
        for i, (s, r) in enumerate(zip(slices, answers, strict=True)):
            if i == bad:
                assert r.status_code == 400
            else:
                assert r.status_code == 200, r.text
                assert r.json()["predictions"] == model.predict(s).tolist()
        calls = repository.metrics.registry.get_sample_value(
            "ledgerflow_serving_batch_requests_count",
            {"model": "digits", "version": "1", "variant": ""},
        )
        assert calls is not None and calls < len(bodies)  # some calls served several requests

    serve(loaded, check, batch=64)


def test_metrics_count_requests_errors_and_latency_per_model_version_and_variant(
    loaded: LoadedModel,
) -> None:
    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        await client.post("/invocations", json={"inputs": [[0.0] * 64]})
        await client.post("/invocations", json={"inputs": [[0.0] * 2]})
        r = await client.get("/metrics")
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        labels = {"model": "digits", "version": "1", "variant": ""}
        text = r.text
        assert sample(text, "ledgerflow_serving_requests_total", **labels, protocol="rest") == 2
        assert sample(text, "ledgerflow_serving_errors_total", **labels, reason="bad_input") == 1
        assert sample(text, "ledgerflow_serving_request_duration_seconds_count", **labels) == 2
        assert sample(text, "ledgerflow_serving_batch_rows_bucket", **labels, le="+Inf") == 2
        assert sample(text, "ledgerflow_serving_model_ready", **labels) == 1

    serve(loaded, check)


def test_an_onnx_bundle_is_served_with_its_manifest_io(
    digits: tuple[Path, Any, np.ndarray, Any], tmp_path: Path
) -> None:
    from ledgerflow.workers.bundles.build import BuildRequest, build_bundle

    path, model, x, _ = digits
    out = tmp_path / "bundle"
    built = build_bundle(
        BuildRequest("b1", "digits", 3, "onnx", "models:/digits/3", str(path), str(out))
    )
    assert "manifest" in built, built
    bundle = load(str(out))
    assert (bundle.name, bundle.version, bundle.predictor.platform) == (
        "digits",
        "3",
        "onnxruntime_onnx",
    )

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/invocations", json={"inputs": x[:4].tolist()})
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == model.predict(x[:4]).tolist()
        meta = (await client.get("/v2/models/digits")).json()
        assert meta["inputs"][0]["shape"] == [-1, 64]
        r = await client.post("/invocations", json={"inputs": [[1.0, 2.0]]})
        assert r.status_code == 400 and "'input'" in r.json()["message"]

    serve(bundle, check)


def test_params_reach_a_model_that_declares_them_and_protocol_parameters_are_ignored(
    tmp_path: Path,
) -> None:
    import ledgerflow.pyfunc
    from ledgerflow.models.signature import infer_signature

    class Scale(ledgerflow.pyfunc.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return np.asarray(model_input) * (params or {}).get("scale", 1.0)

    x = np.ones((1, 2))
    signature = infer_signature(x, x, params={"scale": 1.0})
    ledgerflow.pyfunc.save_model(tmp_path / "scale", python_model=Scale(), signature=signature)
    scale = load(str(tmp_path / "scale"), name="scale")

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/invocations", json={"inputs": [[1, 2]], "params": {"scale": 3}})
        assert r.json() == {"predictions": [[3.0, 6.0]]}
        tensor = {"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}
        body = {"inputs": [tensor], "parameters": {"scale": 2, "content_type": "np"}}
        r = await client.post("/v2/models/scale/infer", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [2.0, 4.0]
        r = await client.post("/invocations", json={"inputs": [[1, 2]], "params": {"bad": 1}})
        assert r.status_code == 400 and "bad" in r.json()["message"]

    serve(scale, check, batch=8)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated upstream
def test_a_torchscript_bundle_is_served_with_torch_jit(tmp_path: Path) -> None:
    import torch

    from ledgerflow.workers.bundles.manifest import TensorInfo, build_manifest

    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    torch.jit.trace(net, torch.from_numpy(x)).save(str(tmp_path / "model.pt"))
    build_manifest(
        tmp_path,
        bundle_id="b2",
        target="torchscript",
        source={"name": "mlp", "version": 2},
        runtime={"name": "torch", "version": torch.__version__},
        inputs=[TensorInfo("input", "float32", (-1, 4))],
        outputs=[TensorInfo("output", "float32", (-1, 3))],
        parity={},
        entrypoint="serve.py",
    )
    bundle = load(str(tmp_path))
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        r = await client.post("/invocations", json={"inputs": x.tolist()})
        assert r.status_code == 200, r.text
        assert np.allclose(r.json()["predictions"], want, atol=1e-5)
        tensor = {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": x.ravel().tolist()}
        r = await client.post("/v2/models/mlp/versions/2/infer", json={"inputs": [tensor]})
        (out,) = r.json()["outputs"]
        assert (out["name"], out["datatype"], out["shape"]) == ("output", "FP32", [2, 3])

    serve(bundle, check, batch=16)


def test_a_model_with_a_column_signature_takes_one_oip_tensor_per_column(tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import ledgerflow.sklearn

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    ledgerflow.sklearn.save_model(model, tmp_path / "cols", input_example=frame.head(2))
    cols = load(str(tmp_path / "cols"), name="cols")
    want = model.predict(frame).tolist()

    async def check(client: httpx.AsyncClient, repository: ModelRepository) -> None:
        meta = (await client.get("/v2/models/cols")).json()
        assert [(i["name"], i["datatype"], i["shape"]) for i in meta["inputs"]] == [
            ("a", "FP64", [-1]),
            ("b", "FP64", [-1]),
        ]
        tensors = [
            {"name": c, "shape": [4], "datatype": "FP64", "data": frame[c].tolist()}
            for c in ("a", "b")
        ]
        r = await client.post("/v2/models/cols/infer", json={"inputs": tensors})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == want
        r = await client.post("/v2/models/cols/infer", json={"inputs": tensors[:1]})
        assert r.status_code == 400 and "b" in r.json()["error"]
        records = frame.to_dict(orient="records")
        r = await client.post("/invocations", json={"dataframe_records": records})
        assert r.json() == {"predictions": want}

    serve(cols, check, batch=8)


def test_the_server_loads_under_the_pickle_policy_and_from_the_source_it_was_given(
    digits: tuple[Path, Any, np.ndarray, Any], tmp_path: Path
) -> None:
    """Nothing is read from the process environment: the caller's policy and source."""
    import ledgerflow.sklearn
    from ledgerflow.events.errors import InvalidInput

    path, model, _, _ = digits
    pickled = tmp_path / "pickled"
    ledgerflow.sklearn.save_model(model, pickled, serialization_format="cloudpickle")
    with pytest.raises(InvalidInput, match="refused: LEDGERFLOW_ALLOW_PICKLE=false"):
        load(str(pickled), allow_pickle=False)
    assert load(str(path), allow_pickle=False).version == "1"  # skops: nothing to refuse
    for uri in ("models:/digits/1", "models:/digits@champion", "runs:/abc/model", "bundle:b1"):
        with pytest.raises(InvalidInput, match="backend"):
            load(uri)
