"""`ledgerflow deployments analysis NAME`: the A/B test's live statistics, per variant.

`analysis_table` is shared with the demo, so both print an analysis the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

COLUMNS = (
    "variant", "weight", "requests", "errors", "p50 ms", "p99 ms", "n", "value", "95% CI",
    "effect", "p (adj.)", "state", "more needed",
)  # fmt: skip


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _interval(ci: Sequence[float] | None, rate: bool) -> str:
    if not ci:
        return "-"
    show = _percent if rate else _number
    return f"[{show(ci[0])}, {show(ci[1])}]"


def analysis_table(doc: Mapping[str, Any]) -> tuple[tuple[str, ...], list[list[str]]]:
    """The columns and rows of an analysis (`lf.deployments.analysis`) for a table."""
    rate = doc["kind"] == "conversion" or doc["metric"] == "error_rate"
    rows = []
    for r in doc["variants"]:
        state_text = r["state"] + (" (shadow)" if r.get("shadow") else "")
        rows.append([
            r["variant"],
            _percent(r.get("weight")),
            str(r["count"]),
            _percent(r["error_rate"]),
            _number(r["latency_p50_ms"]),
            _number(r["latency_p99_ms"]),
            str(r["n"]),
            (_percent if rate else _number)(r["value"]),
            _interval(r["value_ci"], rate),
            "-" if r["effect"] is None else (
                f"{100 * r['effect']:+.1f} pts" if rate else f"{r['effect']:+.3g}"
            ),
            _number(r["adjusted_p_value"], 2),
            state_text,
            str(r["more_needed"]) if r["state"] == "not_enough_data" else "",
        ])  # fmt: skip
    return COLUMNS, rows


def verdict(doc: Mapping[str, Any]) -> str:
    """One line saying what the analysis shows."""
    rows = [r for r in doc["variants"] if r["state"] not in ("baseline",) and not r.get("shadow")]
    better = [r["variant"] for r in rows if r["state"] == "better"]
    worse = [r["variant"] for r in rows if r["state"] == "worse"]
    waiting = [r for r in rows if r["state"] == "not_enough_data"]
    metric = doc["metric"]
    if better:
        return f"{', '.join(better)} beat the baseline {doc['baseline']} on {metric}"
    if worse:
        return f"{', '.join(worse)} did worse than the baseline {doc['baseline']} on {metric}"
    if waiting:
        most = max(r["more_needed"] for r in waiting)
        return f"not enough data yet on {metric}: about {most} more observations per arm needed"
    return f"no significant difference from the baseline {doc['baseline']} on {metric}"


def analysis(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The deployment's name.")],
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric", "-m", help="A feedback metric, or error_rate (default: conversion)."
        ),
    ] = None,
    alpha: Annotated[
        float,
        typer.Option("--alpha", min=0.0, max=1.0, help="Significance level of the tests."),
    ] = 0.05,
    mde: Annotated[
        float | None,
        typer.Option("--mde", min=0.0, help="The minimum effect worth detecting (absolute)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Live statistics per variant and each variant's significance against the baseline
    (z-test for conversions, Welch's t-test for rewards, Holm-corrected for several arms)."""
    doc = state(ctx).client().get_deployment_analysis(name, metric, alpha=alpha, mde=mde)
    if as_json:
        output.print_json(doc)
        return
    columns, rows = analysis_table(doc)
    title = f"{name}: {doc['metric']} ({doc['kind']}), alpha {doc['alpha']:g}, " + (
        "Holm-corrected" if doc["comparisons"] > 1 else "one comparison"
    )
    output.table(columns, rows, title=title, no_wrap=["variant"])
    output.line(verdict(doc))
