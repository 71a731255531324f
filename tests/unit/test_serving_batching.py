"""Dynamic batching: concatenation and splitting, one predict for concurrent requests, and
errors that stay with the request that caused them. Also the Prometheus exposition."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ledgerflow.services.serving.batching import Batcher, Unsplittable, concatenate, split
from ledgerflow.services.serving.metrics import ServingMetrics
from ledgerflow.services.serving.scoring import ModelRequest
from tests.metrics_text import kinds, sample


def test_arrays_dicts_and_frames_concatenate_along_axis_0_and_split_back() -> None:
    a, b = np.arange(6.0).reshape(3, 2), np.arange(4.0).reshape(2, 2)
    joined = concatenate([a, b])
    assert joined.shape == (5, 2)
    first, second = split(joined * 10, [3, 2])
    assert first.tolist() == (a * 10).tolist() and second.tolist() == (b * 10).tolist()
    d = concatenate([{"x": a}, {"x": b}])
    assert d["x"].shape == (5, 2)
    parts = split({"p": np.arange(5), "q": list("abcde")}, [3, 2])
    assert parts[1]["p"].tolist() == [3, 4] and parts[1]["q"] == ["d", "e"]
    frames = concatenate([pd.DataFrame({"c": [1]}), pd.DataFrame({"c": [2, 3]})])
    assert frames["c"].tolist() == [1, 2, 3]
    assert split(pd.Series([7, 8, 9]), [1, 2])[1].tolist() == [8, 9]


def test_inputs_that_differ_in_dtype_width_or_columns_are_not_joined() -> None:
    assert concatenate([np.zeros((1, 2)), np.zeros((1, 3))]) is None
    assert concatenate([np.zeros((1, 2)), np.zeros((1, 2), np.float32)]) is None
    assert concatenate([{"a": np.zeros(1)}, {"b": np.zeros(1)}]) is None
    assert concatenate([pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]})]) is None
    assert concatenate([np.float64(1.0), np.float64(2.0)]) is None


def test_predictions_without_one_row_per_input_row_cannot_be_split() -> None:
    for predictions in (np.zeros(4), [1, 2], 3.0, np.float64(1)):
        with pytest.raises(Unsplittable):
            split(predictions, [2, 1])


class Recorder:
    """A model that doubles its input, records each call's rows, and fails on a -1."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gate = threading.Event()

    def predict(self, data: Any, params: Any) -> Any:
        self.gate.wait(5)
        self.calls.append(len(data))
        if (np.asarray(data) == -1).any():
            raise ValueError("-1 is not a digit")
        return np.asarray(data) * 2


def run_batched(requests: list[np.ndarray], max_batch_size: int = 64) -> tuple[list[Any], Recorder]:
    model = Recorder()

    async def main() -> list[Any]:
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher(model.predict, pool, max_batch_size=max_batch_size, max_wait_ms=50)
            tasks = [asyncio.ensure_future(batcher.submit(ModelRequest(r))) for r in requests]
            await asyncio.sleep(0.01)  # every request queued before the model answers
            model.gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            await batcher.close()
            return results

    return asyncio.run(main()), model


def test_concurrent_requests_are_predicted_once_and_answered_individually() -> None:
    requests = [np.full((n, 2), n, dtype=float) for n in (1, 2, 3)]
    results, model = run_batched(requests)
    assert model.calls == [6]  # all three queued before the first batch closed: one predict
    for r, got in zip(requests, results, strict=True):
        assert got.tolist() == (r * 2).tolist()


def test_a_failing_request_gets_its_error_and_the_others_their_predictions() -> None:
    requests = [np.ones((1, 2)), np.ones((2, 2)), -np.ones((1, 2)), np.ones((1, 2)) * 3]
    results, model = run_batched(requests)
    assert model.calls == [5, 1, 2, 1, 1]  # the batch failed, then each request on its own
    assert isinstance(results[2], ValueError) and "-1" in str(results[2])
    for i in (0, 1, 3):
        assert results[i].tolist() == (requests[i] * 2).tolist()


def test_batches_never_hold_more_rows_than_max_batch_size() -> None:
    requests = [np.ones((2, 1)) * i for i in range(6)]
    results, model = run_batched(requests, max_batch_size=4)
    assert max(model.calls) <= 4
    assert [r.ravel().tolist() for r in results] == [[2.0 * i] * 2 for i in range(6)]


def test_with_batching_off_each_request_is_its_own_predict() -> None:
    results, model = run_batched([np.ones((1, 1)), np.ones((2, 1))], max_batch_size=1)
    assert sorted(model.calls) == [1, 2] and results[1].tolist() == [[2.0], [2.0]]


def test_without_batching_a_fast_model_is_predicted_on_the_loop_and_a_slow_one_on_threads() -> None:
    import time

    def threads_used(delay_s: float) -> set[str]:
        seen: list[str] = []

        def predict(data: Any, params: Any) -> Any:
            seen.append(threading.current_thread().name)
            time.sleep(delay_s)
            return data

        async def main() -> None:
            with ThreadPoolExecutor(1, thread_name_prefix="worker") as pool:
                batcher = Batcher(predict, pool, inline_below_ms=20)
                await batcher.measure(np.zeros((1, 2)))
                for _ in range(3):
                    await batcher.submit(ModelRequest(np.zeros((1, 2))))
                await batcher.submit(ModelRequest(np.zeros((100, 2))))  # big: always a thread

        asyncio.run(main())
        return {"loop" if name == "MainThread" else "thread" for name in seen[1:4]} | {
            "big on thread" if seen[4].startswith("worker") else "big inline"
        }

    assert threads_used(0.0) == {"loop", "big on thread"}
    assert threads_used(0.05) == {"thread", "big on thread"}


def test_prometheus_exposition_has_help_type_and_labelled_cumulative_buckets() -> None:
    family = ServingMetrics()
    m = family.model("digits", "3", "canary")
    m.observe_request("rest", 0.002, None)
    m.observe_request("grpc", 0.02, "bad_input")
    m.observe_batch(2, 5)
    m.observe_rejected("rest")
    m.observe_queued(0.003)
    body, content_type = family.text()
    text = body.decode()
    assert content_type.startswith("text/plain; version=0.0.4")
    base = {"model": "digits", "version": "3", "variant": "canary"}
    assert kinds(text)["ledgerflow_serving_requests"] == "counter"
    assert kinds(text)["ledgerflow_serving_request_duration_seconds"] == "histogram"
    assert sample(text, "ledgerflow_serving_requests_total", **base, protocol="grpc") == 1
    assert sample(text, "ledgerflow_serving_requests_total", **base, protocol="rest") == 2
    assert sample(text, "ledgerflow_serving_errors_total", **base, reason="bad_input") == 2
    assert sample(text, "ledgerflow_serving_errors_total", **base, reason="model_error") == 0
    latency = "ledgerflow_serving_request_duration_seconds"
    assert sample(text, f"{latency}_bucket", **base, le="0.0025") == 1
    assert sample(text, f"{latency}_bucket", **base, le="+Inf") == 2
    assert sample(text, f"{latency}_sum", **base) == pytest.approx(0.022)
    assert sample(text, "ledgerflow_serving_batch_rows_bucket", **base, le="4.0") == 0
    assert sample(text, "ledgerflow_serving_batch_rows_bucket", **base, le="8.0") == 1
    assert sample(text, "ledgerflow_serving_queue_seconds_bucket", **base, le="0.005") == 1
    assert sample(text, "ledgerflow_serving_model_ready", **base) == 0
    assert "_created" not in text
    assert text.endswith("\n")


def test_label_values_are_escaped() -> None:
    family = ServingMetrics()
    family.model('a"b\\c', "1")
    assert 'model="a\\"b\\\\c"' in family.text()[0].decode()


def test_a_model_no_longer_served_leaves_no_series() -> None:
    family = ServingMetrics()
    m = family.model("digits", "3", "canary")
    m.observe_request("rest", 0.002, "model_error")
    family.forget(m)
    assert "digits" not in family.text()[0].decode()
