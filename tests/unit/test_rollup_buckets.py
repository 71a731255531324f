"""The rollups' two ways of summarising a batch (numpy for large batches, plain Python for
small ones) give the same rows, for any points: out of order, repeated steps and
timestamps, NaN and infinities."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerflow.services.projector import rollups

values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
points = st.lists(
    st.tuples(st.just("m"), values, st.integers(0, 5_000), st.integers(-300, 70_000)),
    min_size=1,
    max_size=120,
)


def _vectorised(batch: list[tuple[str, float, int, int]]) -> list[dict]:
    import numpy as np

    out: list[dict] = []
    vs = np.array([p[1] for p in batch], dtype=np.float64)
    ts = np.array([p[2] for p in batch], dtype=np.int64)
    steps = np.array([p[3] for p in batch], dtype=np.int64)
    for axis, x, other in (("step", steps, ts), ("time", ts, steps)):
        order = np.lexsort((np.arange(len(x)), other, x))
        for width in rollups.TIERS[axis]:
            out += rollups._buckets("r", "m", axis, width, x[order], other[order], vs[order])
    return out


def _plain(rows: list[dict]) -> list[tuple]:
    def same_nan(v: object) -> object:
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return sorted(tuple(same_nan(r[c]) for c in rollups.COLUMNS) for r in rows)


@settings(max_examples=200, deadline=None)
@given(points)
def test_small_batches_summarise_like_large_ones(batch: list[tuple[str, float, int, int]]) -> None:
    assert _plain(rollups._small_buckets("r", "m", batch)) == _plain(_vectorised(batch))


@settings(max_examples=100, deadline=None)
@given(points.map(lambda batch: batch[:1]))
def test_a_lone_point_gets_one_bucket_per_tier_like_any_batch(
    batch: list[tuple[str, float, int, int]],
) -> None:
    rows = rollups._small_buckets("r", "m", batch)
    assert len(rows) == len(rollups.TIERS["step"]) + len(rollups.TIERS["time"])
    assert _plain(rows) == _plain(_vectorised(batch))
