"""What every flavor's converter returns, and how it says a conversion cannot be done."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ledgerflow.workers.bundles.manifest import TensorInfo
from ledgerflow.workers.bundles.parity import Array, Predict, Tolerance


class ConversionFailed(Exception):
    """This model cannot become this target; the message is the reason users read."""


@dataclass(frozen=True)
class Converted:
    """A written bundle: `predict` runs the bundle's own files (reloaded from disk, as a
    server would), so parity checks what ships, not the object in memory."""

    runtime: dict[str, str]
    requirements: list[str]
    predict: Predict
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    tolerance: Tolerance = field(default_factory=Tolerance)


def tensor_info(name: str, x: Array, batch_free: bool = True) -> TensorInfo:
    """Describe an array as a signature entry, its first (batch) dimension left free."""
    shape = tuple(int(d) for d in np.shape(x))
    if batch_free and shape:
        shape = (-1, *shape[1:])
    return TensorInfo(name, str(np.asarray(x).dtype), shape)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Converters warn loudly about things users cannot act on (deprecations, tracer
    hints); parity is what tells whether the result is right."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def unsupported(flavor: str, target: str, supported: tuple[str, ...]) -> ConversionFailed:
    return ConversionFailed(
        f"a {flavor} model cannot be converted to {target}; its targets are {', '.join(supported)}"
    )


def first_output(result: Any) -> Array:
    """The one output of a model that may answer with a tuple, list or dict of them."""
    if isinstance(result, dict):
        result = next(iter(result.values()))
    if isinstance(result, list | tuple):
        result = result[0]
    return np.asarray(result)
