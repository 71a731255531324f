"""OpenTelemetry: one trace from an SDK call through the log to the projector, in real processes."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import PYTHON, python_env

TRACED = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
"""
"""A child process's first lines: its spans go to memory (`exporter`)."""

SPANS = """spans = [
    {
        "name": s.name,
        "trace": f"{s.context.trace_id:032x}",
        "span": f"{s.context.span_id:016x}",
        "parent": f"{s.parent.span_id:016x}" if s.parent else None,
        "attributes": dict(s.attributes or {}),
    }
    for s in exporter.get_finished_spans()
]
"""
"""Its spans as JSON-able dicts (`spans`)."""

IN_MEMORY = (
    TRACED
    + """

import ledgerflow as lf
from ledgerflow import session

lf.set_tracking_uri(sys.argv[1])
with trace.get_tracer("test").start_as_current_span("train"):
    with lf.start_run():
        lf.log_metric("loss", 0.5, step=1)
        lf.flush()
events = [
    {"type": i.event.type, "trace": i.event.trace}
    for i in session.backend().log.read()
]
"""
    + SPANS
    + """print(json.dumps({"spans": spans, "events": events}))
"""
)

GATEWAY = (
    TRACED
    + """

from fastapi.testclient import TestClient
from ledgerflow.events.settings import Settings
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.gateway.app import create_app

parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
with TestClient(create_app(bootstrap(Settings(tracking_uri=sys.argv[1])))) as http:
    created = http.post(
        "/api/v1/experiments", json={"name": "traced"}, headers={"traceparent": parent}
    )
    missing = http.get("/api/v1/experiments/12345")
"""
    + SPANS
    + """print(json.dumps({"statuses": [created.status_code, missing.status_code], "spans": spans}))
"""
)

UNTRACED = """
import sys
import ledgerflow as lf
from ledgerflow import session

lf.set_tracking_uri(sys.argv[1])
with lf.start_run():
    lf.log_metric("loss", 0.5, step=1)
traces = {i.event.trace for i in session.backend().log.read()}
print(sorted(str(t) for t in traces), "opentelemetry" in sys.modules)
"""


def run(code: str, data_dir: Path, **env: str) -> str:
    proc = subprocess.run(
        [PYTHON, "-c", code, str(data_dir)], env=python_env() | env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_one_trace_follows_a_metric_from_the_sdk_through_the_log_to_the_view(
    tmp_path: Path,
) -> None:
    out = json.loads(run(IN_MEMORY, tmp_path / "data").splitlines()[-1])
    spans = {s["name"]: s for s in out["spans"] if s["name"] != "ledgerflow.project"}
    root = spans["train"]
    flush = spans["ledgerflow.sdk.flush_metrics"]
    assert flush["trace"] == root["trace"]
    projected = [
        s for s in out["spans"]
        if s["name"] == "ledgerflow.project"
        and s["attributes"]["event.type"] == "run.metrics_logged"
    ]  # fmt: skip
    assert len(projected) == 1 and projected[0]["trace"] == root["trace"]
    commits = [
        s for s in out["spans"] if s["name"] == "ledgerflow.commit"
        and s["attributes"]["event.types"] == ["run.metrics_logged"]
    ]  # fmt: skip
    assert projected[0]["parent"] == commits[0]["span"]  # the event carried the commit's context
    assert {"ledgerflow.sdk.start_run", "ledgerflow.append"} <= {s["name"] for s in out["spans"]}
    metric_event = next(e for e in out["events"] if e["type"] == "run.metrics_logged")
    assert metric_event["trace"].split("-")[1] == root["trace"]


def test_without_a_tracer_events_carry_no_trace_and_opentelemetry_is_never_imported(
    tmp_path: Path,
) -> None:
    assert run(UNTRACED, tmp_path / "data").strip() == "['None'] False"


class Collector(BaseHTTPRequestHandler):
    received: list[Any] = []

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                self.received += [(self.path, service, s.name) for s in scope.spans]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        run(UNTRACED, tmp_path / "data", LEDGERFLOW_OTLP_ENDPOINT=endpoint)
    finally:
        server.shutdown()
    names = {name for path, service, name in Collector.received}
    assert {path for path, _, _ in Collector.received} == {"/v1/traces"}
    assert {service for _, service, _ in Collector.received} == {"ledgerflow-sdk"}
    assert {"ledgerflow.sdk.start_run", "ledgerflow.commit", "ledgerflow.project"} <= names


def test_each_gateway_request_is_a_span_continuing_the_callers_trace(tmp_path: Path) -> None:
    out = json.loads(run(GATEWAY, tmp_path / "data").splitlines()[-1])
    assert out["statuses"] == [201, 404]
    requests = [s for s in out["spans"] if s["name"].startswith("ledgerflow.gateway")]
    post, get = requests
    assert (post["name"], post["trace"], post["parent"]) == (
        "ledgerflow.gateway POST", "ab" * 16, "cd" * 8,
    )  # fmt: skip
    assert post["attributes"] == {
        "http.method": "POST", "http.target": "/api/v1/experiments", "http.status_code": 201,
    }  # fmt: skip
    # a request without a traceparent starts its own trace
    assert get["trace"] != post["trace"] and get["attributes"]["http.status_code"] == 404
    # the command the route ran (in a worker thread) is in the request's trace, under it
    spans = {s["span"]: s for s in out["spans"]}
    commit = next(s for s in out["spans"] if s["name"] == "ledgerflow.commit")
    above = commit
    while above["parent"] in spans and above is not post:
        above = spans[above["parent"]]
    assert (commit["trace"], above) == (post["trace"], post)
