"""Guardrails: bounds on a variant's error rate, p99 latency or a feedback metric.

`evaluate` is pure: given the guardrails and the live per-variant statistics it lists the
breaches; the deployer decides what a breach does (roll back to the baseline at once).

Which variants are judged is the caller's choice (`variants`): the deployer passes every
non-baseline variant that served traffic, shadows included. A shadow's answers are never
returned, so a shadow breach does not hurt users, but it does say the version is not fit
to promote, and shadows are judged on error rate and latency like any other arm (they
never have feedback, so feedback guardrails skip them for want of samples).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from ledgerflow.events.deployment_payloads import ERROR_RATE, LATENCY_P99, Guardrail
from ledgerflow.services.analytics.aggregates import VariantStats


@dataclass(frozen=True)
class Breach:
    """A guardrail a variant broke: what was observed, the limit, and on how many samples."""

    variant: str
    guardrail: Guardrail
    observed: float
    limit: float
    baseline: float | None
    samples: int

    def describe(self) -> str:
        g = self.guardrail
        side = "above" if g.bound == "max" else "below"
        relative = f" ({g.threshold}x the baseline's {self.baseline:g})" if g.relative else ""
        return (
            f"variant {self.variant!r}: {g.metric} {self.observed:g} is {side} the limit "
            f"{self.limit:g}{relative} over {self.samples} samples"
        )


def measure(stats: VariantStats, metric: str) -> tuple[float | None, int]:
    """A variant's value of a guardrail metric and how many observations it rests on.

    Error rate and p99 latency rest on the requests served; a feedback metric on its
    outcomes (a conversion's rate, a reward's mean)."""
    if metric == ERROR_RATE:
        return stats.error_rate, stats.requests
    if metric == LATENCY_P99:
        return stats.latency_p99_ms, stats.requests
    outcome = stats.outcomes.get(metric)
    if outcome is None or outcome.n == 0:
        return None, 0
    return outcome.mean, outcome.n


def evaluate(
    guardrails: Sequence[Guardrail],
    stats: Mapping[str, VariantStats],
    baseline: str,
    variants: Collection[str],
) -> list[Breach]:
    """Every breach of `guardrails` by the non-baseline `variants`, in a stable order.

    A guardrail is skipped for a variant until it has `min_samples` observations of the
    metric; a relative one also until the baseline has them (a limit computed from a
    handful of baseline requests would trip on noise)."""
    breaches: list[Breach] = []
    base_stats = stats.get(baseline)
    for variant in sorted(v for v in variants if v != baseline):
        vs = stats.get(variant)
        if vs is None:
            continue
        for g in guardrails:
            observed, samples = measure(vs, g.metric)
            if observed is None or samples < g.min_samples:
                continue
            base_value: float | None = None
            if g.relative:
                if base_stats is None:
                    continue
                base_value, base_samples = measure(base_stats, g.metric)
                if base_value is None or base_samples < g.min_samples:
                    continue
                limit = g.threshold * base_value
            else:
                limit = g.threshold
            broken = observed > limit if g.bound == "max" else observed < limit
            if broken:
                breaches.append(Breach(variant, g, observed, limit, base_value, samples))
    return breaches
