"""The traffic fold: counts, latency quantiles, feedback joins, windows, merge and JSON."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerflow.events.deployment_payloads import (
    FeedbackRecorded,
    InferenceRecord,
    InferenceRecorded,
)
from ledgerflow.services.analytics.histogram import LatencyHistogram
from ledgerflow.services.analytics.window import TrafficPayload, TrafficStats


def _inference(dep: str, *records: InferenceRecord) -> InferenceRecorded:
    return InferenceRecorded(deployment=dep, replica="r1", records=records)


def _rec(rid: str, variant: str, time: int, latency: float = 5.0, **kw: object) -> InferenceRecord:
    return InferenceRecord(request_id=rid, variant=variant, time=time, latency_ms=latency, **kw)


def _feedback(rid: str, time: int, value: float = 1.0, **kw: object) -> FeedbackRecorded:
    return FeedbackRecorded(deployment="web", request_id=rid, value=value, time=time, **kw)


def test_latency_quantiles_are_within_two_percent_of_the_exact_ones() -> None:
    values = np.random.default_rng(5).lognormal(3.0, 1.2, 20_000)
    h = LatencyHistogram()
    for v in values:
        h.add(float(v))
    for q in (0.5, 0.9, 0.99):
        assert h.quantile(q) == pytest.approx(np.quantile(values, q), rel=0.02)
    assert LatencyHistogram().quantile(0.5) is None
    assert LatencyHistogram.from_dict(json.loads(json.dumps(h.to_dict()))) == h


def test_requests_errors_latency_and_shadow_agreement_are_counted_per_variant() -> None:
    t = TrafficStats()
    t.apply(
        _inference(
            "web",
            _rec("q1", "a", 1000, 10.0),
            _rec("q1", "s", 1000, 30.0, shadow=True, agreed=True),
            _rec("q2", "b", 1500, 20.0, ok=False, error="boom"),
            _rec("q2", "s", 1500, 30.0, shadow=True, agreed=False),
        )
    )
    snap = t.snapshot("web")
    assert (snap["a"].requests, snap["a"].errors) == (1, 0)
    assert (snap["b"].requests, snap["b"].errors, snap["b"].error_rate) == (1, 1, 1.0)
    assert snap["s"].shadow and (snap["s"].compared, snap["s"].agreed) == (2, 1)
    assert snap["a"].latency_p99_ms == pytest.approx(10.0, rel=0.01)
    assert t.snapshot("other") == {}


def test_feedback_joins_the_variant_that_served_the_request_even_when_it_comes_first() -> None:
    t = TrafficStats()
    t.apply(_feedback("early", 900, 1.0))
    assert t.pending == 1
    t.apply(_inference("web", _rec("early", "b", 800), _rec("late", "a", 800)))
    t.apply(_feedback("late", 950, 0.0))
    t.apply(_feedback("named", 960, 3.5, metric="revenue", kind="reward", variant="a"))
    snap = t.snapshot("web")
    assert t.pending == 0
    assert snap["b"].outcomes["conversion"].n == 1 and snap["b"].outcomes["conversion"].mean == 1
    assert snap["a"].outcomes["conversion"].mean == 0
    assert snap["a"].outcomes["revenue"].mean == 3.5


def test_feedback_that_never_finds_its_request_is_counted_as_unjoined() -> None:
    t = TrafficStats(max_pending=2)
    for i in range(5):
        t.apply(_feedback(f"ghost{i}", i))
    assert (t.pending, t.unjoined) == (2, 3)


def test_requests_since_counts_only_windows_starting_at_or_after_the_time() -> None:
    t = TrafficStats(window_ms=1000)
    t.apply(_inference("web", *[_rec(f"q{i}", "b", i * 100) for i in range(50)]))
    assert t.requests_since("web", "b", 0) == 50
    assert t.requests_since("web", "b", 2000) == 30  # windows 2000..4999
    assert t.requests_since("web", "b", 2500) == 20  # never the 2000 window's, before 2500
    assert t.requests_since("web", "b", 5000) == 0
    assert t.requests_since("web", "zzz", 0) == 0
    assert t.snapshot("web", since_ms=4000)["b"].requests == 10
    assert t.snapshot("web", since_ms=3500)["b"].requests == 20  # the window containing it


def test_old_windows_are_compacted_but_still_count_for_all_time() -> None:
    t = TrafficStats(window_ms=1000, retention_ms=10_000)
    for s in range(40):
        t.apply(_inference("web", _rec(f"q{s}", "a", s * 1000)))
    series = t.deployments["web"].variants["a"]
    assert len(series.windows) <= 20 and series.past.requests > 0
    assert t.snapshot("web")["a"].requests == 40
    assert t.requests_since("web", "a", 39_000) == 1


def _random_traffic(seed: int, n: int) -> list[TrafficPayload]:
    rng = random.Random(seed)
    out: list[TrafficPayload] = []
    for i in range(n):
        v = rng.choice(["a", "b", "c"])
        out.append(
            _inference(
                "web",
                _rec(f"q{i}", v, i * 37, rng.expovariate(0.1), ok=rng.random() > 0.1),
            )
        )
        out.append(_feedback(f"q{i}", i * 37 + 5, float(rng.random() < 0.3), variant=v))
        out.append(
            _feedback(f"q{i}", i * 37 + 5, rng.gauss(2, 1), metric="rev", kind="reward", variant=v)
        )
    return out


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), cut=st.integers(0, 120))
def test_folding_in_two_partitions_and_merging_equals_folding_all_at_once(
    seed: int, cut: int
) -> None:
    events = _random_traffic(seed, 40)
    whole = TrafficStats(window_ms=500)
    whole.apply_all(events)
    left, right = TrafficStats(window_ms=500), TrafficStats(window_ms=500)
    left.apply_all(events[:cut])
    right.apply_all(events[cut:])
    left.merge(TrafficStats.from_dict(json.loads(json.dumps(right.to_dict()))))
    a, b = whole.snapshot("web"), left.snapshot("web")
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name].requests, a[name].errors) == (b[name].requests, b[name].errors)
        assert a[name].latency_p99_ms == b[name].latency_p99_ms
        for metric, o in a[name].outcomes.items():
            other = b[name].outcomes[metric]
            assert other.n == o.n
            assert other.mean == pytest.approx(o.mean, abs=1e-12)
            assert other.m2 == pytest.approx(o.m2, rel=1e-9, abs=1e-12)


def test_bad_window_settings_are_rejected() -> None:
    with pytest.raises(Exception, match="window_ms"):
        TrafficStats(window_ms=0)


def test_drained_changes_restore_the_same_statistics_in_a_fresh_fold() -> None:
    events = _random_traffic(1, 60)
    live = TrafficStats(window_ms=500, retention_ms=1000)
    table: dict[tuple[str, str, int | None], dict[str, object]] = {}
    for i, e in enumerate(events):
        live.apply(e)
        if i % 7 == 0:
            for key, value in live.drain_changes():
                if value is None:
                    table.pop(key, None)
                else:
                    table[key] = json.loads(json.dumps(value))
    for key, value in live.drain_changes():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
    assert any(k[2] is None for k in table)  # the compacted past is in the table too
    restored = TrafficStats(window_ms=500, retention_ms=1000)
    for key, value in table.items():
        restored.restore(key, value)
    assert restored.snapshot("web") == live.snapshot("web")
    assert restored.requests_since("web", "a", 2000) == live.requests_since("web", "a", 2000)


def test_a_repeated_outcome_for_the_same_request_and_metric_counts_once() -> None:
    t = TrafficStats(window_ms=1000)
    t.apply(_inference("web", _rec("q1", "b", 100), _rec("q2", "b", 100)))
    for _ in range(3):  # a client retrying
        t.apply(_feedback("q1", 200, value=1.0))
    t.apply(_feedback("q1", 200, value=9.5, metric="revenue", kind="reward"))
    t.apply(_feedback("q2", 200, value=0.0))
    outcomes = t.snapshot("web")["b"].outcomes
    assert (outcomes["conversion"].n, outcomes["conversion"].successes) == (2, 1)
    assert outcomes["revenue"].n == 1
    assert t.duplicates == 2


def _joinable_traffic(seed: int, n: int) -> list[TrafficPayload]:
    """Requests and their outcomes as clients send them: outcomes late, early (before the
    inference, replicas flush in batches), retried, for unknown requests, some naming the
    variant."""
    rng = random.Random(seed)
    out: list[TrafficPayload] = []
    late: list[TrafficPayload] = []
    for i in range(n):
        variant = rng.choice(["a", "b"])
        fb = _feedback(
            f"q{i}", 10 * i + 5, float(rng.random() < 0.4),
            variant=variant if rng.random() < 0.2 else None,
        )  # fmt: skip
        if rng.random() < 0.2:
            out.append(fb)
        else:
            late.append(fb)
        if rng.random() < 0.2:
            late.append(fb)  # a retry
        if rng.random() < 0.1:
            out.append(_feedback(f"ghost{i}", 10 * i, 1.0))
        out.append(_inference("web", _rec(f"q{i}", variant, 10 * i)))
        while late and rng.random() < 0.5:
            out.append(late.pop(0))
    return out + late


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cut=st.integers(0, 200),
    max_recent=st.integers(1, 12),
    max_pending=st.integers(1, 4),
)
def test_a_fold_restored_from_its_entries_joins_and_counts_as_if_it_never_stopped(
    seed: int, cut: int, max_recent: int, max_pending: int
) -> None:
    """The feedback join is part of the entries: an outcome after a restart finds its
    request's variant, one that waited gets it, a retry counts once, and the bounds evict
    the same requests in the same order."""
    events = _joinable_traffic(seed, 60)
    bounds = {"max_recent": max_recent, "max_pending": max_pending}
    whole = TrafficStats(window_ms=500, retention_ms=1000, **bounds)
    whole.apply_all(events)
    live = TrafficStats(window_ms=500, retention_ms=1000, **bounds)
    table: dict[tuple[str, str, int | None], dict[str, object]] = {}
    joins: dict[tuple[str, str], dict[str, object]] = {}
    for e in events[:cut]:
        live.apply(e)
        for key, value in live.drain_changes():  # what a table holds, written as it goes
            _put(table, key, value)
        for name, rid, entry in live.drain_requests():
            _put(joins, (name, rid), entry)
    restarted = TrafficStats(window_ms=500, retention_ms=1000, **bounds)
    for key, value in table.items():
        restarted.restore(key, json.loads(json.dumps(value)))
    restarted.restore_requests(
        "web", [(rid, json.loads(json.dumps(v))) for (_, rid), v in reversed(joins.items())]
    )
    restarted.apply_all(events[cut:])
    assert restarted.snapshot("web") == whole.snapshot("web")
    assert (restarted.pending, restarted.duplicates) == (
        whole.pending,
        whole.duplicates - live.duplicates,
    )
    assert restarted.unjoined == whole.unjoined - live.unjoined
    for fold in (whole, restarted):  # the running count is the feedback held
        join = fold.join("web")
        assert join.pending == sum(len(r.waiting) for r in join._requests.values())


def _put(table: dict[Any, Any], key: Any, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
