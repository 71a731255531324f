"""How to serve a bundle: a Dockerfile, a requirements.txt and, for ONNX and
TorchScript, a small HTTP server (`serve.py`, standard library plus the runtime).

SavedModel bundles are served by TensorFlow Serving itself, which expects
`/models/<name>/<version>/saved_model.pb`: the bundle already has that layout.
The server answers `POST /predict` with `{"inputs": [[...], ...]}` and
`GET /health`, on port 8080 (or $PORT, on $HOST).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PORT = 8080


def pinned(dist: str) -> str:
    """`dist==<installed version>`, so the bundle runs on what it was checked with."""
    try:
        return f"{dist}=={version(dist)}"
    except PackageNotFoundError:
        return dist


_SERVER = '''"""Serve this bundle: POST /predict {"inputs": [[...]]} -> {"outputs": [...]}."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

MANIFEST = json.load(open(os.path.join(os.path.dirname(__file__), "manifest.json")))
DTYPE = MANIFEST["inputs"][0]["dtype"]
@LOADER@


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self._answer(200, {"status": "ok"} if self.path == "/health" else {"error": "no route"})

    def do_POST(self):
        if self.path != "/predict":
            return self._answer(404, {"error": "no route"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            x = np.asarray(body["inputs"], dtype=DTYPE)
        except (ValueError, KeyError, TypeError) as e:
            return self._answer(400, {"error": f"expected a JSON body with inputs: {e}"})
        self._answer(200, {"outputs": np.asarray(predict(x)).tolist()})

    def _answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "@PORT@"))
    ThreadingHTTPServer((os.environ.get("HOST", "0.0.0.0"), port), Handler).serve_forever()
'''

_ONNX_LOADER = """import onnxruntime as ort

_session = ort.InferenceSession(
    os.path.join(os.path.dirname(__file__), "model.onnx"), providers=["CPUExecutionProvider"]
)
_input = _session.get_inputs()[0].name


def predict(x):
    return _session.run(None, {_input: x})[0]"""

_TORCHSCRIPT_LOADER = """import torch

_module = torch.jit.load(os.path.join(os.path.dirname(__file__), "model.pt"), map_location="cpu")
_module.eval()


def predict(x):
    with torch.no_grad():
        return _module(torch.from_numpy(x)).numpy()"""

_PYTHON_DOCKERFILE = f"""FROM python:3.11-slim
WORKDIR /bundle
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
EXPOSE {PORT}
CMD ["python", "serve.py"]
"""

_TF_SERVING_DOCKERFILE = """FROM tensorflow/serving:{tf_version}
COPY {name} /models/{name}
ENV MODEL_NAME={name}
EXPOSE 8501 8500
"""


def write_python_server(root: Path, target: str, requirements: list[str]) -> str:
    """serve.py, Dockerfile and requirements.txt for an ONNX or TorchScript bundle; the
    entrypoint the manifest names."""
    loader = _ONNX_LOADER if target == "onnx" else _TORCHSCRIPT_LOADER
    (root / "serve.py").write_text(_SERVER.replace("@LOADER@", loader).replace("@PORT@", str(PORT)))
    (root / "Dockerfile").write_text(_PYTHON_DOCKERFILE)
    (root / "requirements.txt").write_text("\n".join([pinned("numpy"), *requirements]) + "\n")
    return "serve.py"


def write_tf_serving(root: Path, name: str) -> str:
    """A Dockerfile running TensorFlow Serving on the bundle's `<name>/<version>` folder,
    and the requirements to load the SavedModel in Python instead."""
    tf = pinned("tensorflow-cpu") if "==" in pinned("tensorflow-cpu") else pinned("tensorflow")
    tf_version = tf.partition("==")[2] or "latest"
    (root / "Dockerfile").write_text(
        _TF_SERVING_DOCKERFILE.format(tf_version=tf_version, name=name)
    )
    (root / "requirements.txt").write_text(f"{pinned('numpy')}\n{tf}\n")
    return f"tensorflow_model_server (MODEL_NAME={name})"
