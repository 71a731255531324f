"""Does the converted bundle answer like the original model?

Both run on the model's input example and on a few generated inputs of the same
shape and dtype (other batch sizes included, since a conversion that froze the
batch dimension is a classic failure). Floats must agree within
`|a - b| <= atol + rtol * |b|`; integer and label outputs must be equal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
Predict = Callable[[Array], Array]


class ParityError(Exception):
    """The bundle's outputs differ from the original's beyond the tolerances."""


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-4
    atol: float = 1e-5


def generated_inputs(example: Array, count: int = 3, seed: int = 0) -> list[Array]:
    """`count` inputs shaped like `example` but with batch sizes 1, 7, 64..., values drawn
    from the example's own range (so a classifier sees plausible features)."""
    if example.ndim == 0:
        raise ParityError("the input example is a scalar; parity needs a batch of inputs")
    rng = np.random.default_rng(seed)
    batches = [1, 7, 64, 3, 16][:count]
    out: list[Array] = []
    finite = example[np.isfinite(example)] if example.dtype.kind == "f" else example
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 1.0
    for n in batches:
        shape = (n, *example.shape[1:])
        if example.dtype.kind in "iu":
            x: Array = rng.integers(int(low), int(high) + 1, size=shape).astype(example.dtype)
        else:
            x = rng.uniform(low, high if high > low else low + 1.0, size=shape)
            x = x.astype(example.dtype)
        out.append(x)
    return out


def max_abs_diff(expected: Array, actual: Array) -> float:
    """The largest elementwise difference; inf when the shapes do not even match."""
    e, a = np.asarray(expected), np.asarray(actual)
    if e.shape != a.shape:
        return float("inf")
    if e.size == 0:
        return 0.0
    if e.dtype.kind not in "fiub" or a.dtype.kind not in "fiub":
        return 0.0 if np.array_equal(e, a) else float("inf")
    return float(np.max(np.abs(e.astype(np.float64) - a.astype(np.float64))))


def within(expected: Array, actual: Array, tol: Tolerance) -> bool:
    e, a = np.asarray(expected), np.asarray(actual)
    if e.shape != a.shape:
        return False
    if e.dtype.kind == "f" or a.dtype.kind == "f":
        return bool(np.allclose(a, e, rtol=tol.rtol, atol=tol.atol, equal_nan=True))
    return bool(np.array_equal(e, a))


def check(
    original: Predict, bundle: Predict, inputs: Sequence[Array], tol: Tolerance
) -> dict[str, Any]:
    """Run both on every input; the parity record for the manifest, or ParityError naming
    the first input that disagrees and by how much."""
    worst = 0.0
    for i, x in enumerate(inputs):
        expected, actual = np.asarray(original(x)), np.asarray(bundle(x))
        if expected.shape != actual.shape and expected.size == actual.size:
            actual = actual.reshape(expected.shape)  # (n,) against (n, 1): same answers
        diff = max_abs_diff(expected, actual)
        if not within(expected, actual, tol):
            raise ParityError(
                f"parity broken on input {i} (shape {x.shape}): outputs "
                f"{expected.shape} vs {actual.shape}, max |diff| {diff:.3g} beyond "
                f"rtol={tol.rtol:g}, atol={tol.atol:g}"
            )
        worst = max(worst, diff)
    return {
        "rtol": tol.rtol,
        "atol": tol.atol,
        "max_abs_diff": worst,
        "inputs": len(inputs),
        "passed": True,
    }
