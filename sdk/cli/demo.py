"""`ledgerflow demo`: the guided example, run against the CLI's tracking URI."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerflow.cli.context import state


def demo(
    ctx: typer.Context,
    epochs: Annotated[
        int, typer.Option("--epochs", min=1, help="How many epochs each model trains.")
    ] = 5,
) -> None:
    """Train a Keras and a PyTorch CNN on digits as two jobs on Ray (LEDGERFLOW_RAY_ADDRESS,
    a local Ray by default), register both, alias the better one champion, build bundles
    of both versions (TorchScript and ONNX, SavedModel and ONNX) checked for parity, load
    the champion in a fresh process to predict, and A/B test champion against challenger
    on simulated traffic, promoting a winner only when the difference is significant."""
    from ledgerflow.demo import run_demo

    run_demo(epochs=epochs, tracking_uri=state(ctx).settings().tracking_uri)
