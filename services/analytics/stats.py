"""The statistics of an A/B test: tests against the baseline, intervals, multiple-comparison
correction and sample sizes, over the per-variant aggregates (`aggregates.py`).

Everything is computed from sufficient statistics (counts, and for rewards the Welford
mean and sum of squared deviations), so aggregates from several stream partitions or
replicas merge exactly and the analysis never needs the raw observations. Only `math`
is used at run time; the tests check every number against scipy.stats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ledgerflow.events.deployment_payloads import ERROR_RATE, OutcomeKind
from ledgerflow.services.analytics.aggregates import Outcome, VariantStats
from ledgerflow.services.analytics.significance import (
    TestResult,
    check_alpha,
    check_power,
    holm,
    sample_size_mean,
    sample_size_proportion,
    t_interval,
    two_proportion_ztest,
    welch_ttest,
    wilson_interval,
)

__all__ = [
    "MIN_EVENTS",
    "MIN_OBSERVATIONS",
    "Analysis",
    "Outcome",
    "TestResult",
    "VariantAnalysis",
    "VariantStats",
    "analyze",
    "holm",
    "sample_size_mean",
    "sample_size_proportion",
    "t_interval",
    "two_proportion_ztest",
    "welch_ttest",
    "wilson_interval",
]

State = Literal["baseline", "not_enough_data", "no_difference", "better", "worse"]
DEFAULT_RELATIVE_MDE = 0.1
"""Without an explicit minimum detectable effect: 10% of the baseline's rate or mean."""

MIN_OBSERVATIONS = 30
"""Fewer observations than this in an arm: the normal approximations are not trusted."""
MIN_EVENTS = 5
"""Fewer successes (or failures) than this in an arm: a rate test is not trusted."""


Interval = tuple[float, float]


@dataclass(frozen=True)
class VariantAnalysis:
    """One row of the analysis: what the variant did, and how it compares with the baseline.

    `state` is `baseline` for the baseline's own row; otherwise `not_enough_data` until each
    arm has the minimum observations (and, when nothing is significant yet, until the arms
    reach the sample size needed to detect the minimum effect: "no difference" is only
    claimed when the test had the power to see one), then `better`, `worse` or
    `no_difference`. `more_needed` is how many more observations each arm still needs.
    """

    variant: str
    state: State
    count: int
    errors: int
    error_rate: float | None
    error_rate_ci: Interval | None
    latency_p50_ms: float | None
    latency_p90_ms: float | None
    latency_p99_ms: float | None
    n: int
    """Observations of the analysed metric."""
    value: float | None
    """The rate (conversions, errors) or the mean (rewards)."""
    value_ci: Interval | None
    shadow: bool = False
    effect: float | None = None
    """Variant minus baseline."""
    effect_ci: Interval | None = None
    statistic: float | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = None
    significant: bool = False
    required_per_arm: int | None = None
    more_needed: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            out[name] = list(v) if isinstance(v, tuple) else v
        return out


@dataclass(frozen=True)
class Analysis:
    baseline: str
    metric: str
    kind: OutcomeKind
    higher_is_better: bool
    alpha: float
    power: float
    mde: float | None
    """The minimum detectable effect the sample sizes are for (absolute), None if unknown."""
    comparisons: int
    """Variants compared with the baseline: the Holm correction's family size."""
    rows: tuple[VariantAnalysis, ...]

    def row(self, variant: str) -> VariantAnalysis:
        for r in self.rows:
            if r.variant == variant:
                return r
        raise KeyError(variant)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "metric": self.metric,
            "kind": self.kind,
            "higher_is_better": self.higher_is_better,
            "alpha": self.alpha,
            "power": self.power,
            "mde": self.mde,
            "comparisons": self.comparisons,
            "correction": "holm" if self.comparisons > 1 else "none",
            "variants": [r.to_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class _Sample:
    n: int
    mean: float
    variance: float | None
    successes: int | None


def analyze(
    stats: Mapping[str, VariantStats],
    baseline: str,
    *,
    metric: str | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    mde: float | None = None,
) -> Analysis:
    """Compare every variant with `baseline` on `metric`.

    `metric` is a feedback metric (a conversion: two-proportion z-test; a reward: Welch's
    t-test) or `error_rate` (z-test, lower is better). By default the `conversion` metric
    if any variant has one, else the first feedback metric by name, else the error rate.
    With more than one variant compared, p-values are Holm-adjusted; sample sizes then use
    alpha / comparisons (the Bonferroni bound Holm's first step uses). Shadow variants are
    compared on the error rate only, as they never receive feedback.
    """
    check_alpha(alpha)
    check_power(power)
    metric = metric or _default_metric(stats)
    kind: OutcomeKind = "conversion"
    if metric != ERROR_RATE:
        kind = next((s.outcomes[metric].kind for s in stats.values() if metric in s.outcomes), kind)
    rate = kind == "conversion"
    base_stats = stats.get(baseline, VariantStats(baseline))
    base = _sample(base_stats, metric)
    family = [
        name
        for name in sorted(stats)
        if name != baseline and (metric == ERROR_RATE or not stats[name].shadow)
    ]
    m = len(family)
    tests = {name: _test(base, _sample(stats[name], metric), rate, alpha) for name in family}
    adjusted = dict(
        zip(family, holm([t.p_value if t else 1.0 for t in tests.values()]), strict=True)
    )
    effective_mde, required = _required(base, rate, mde, alpha / max(m, 1), power)
    rows = [_row(base_stats, base, "baseline", rate, alpha)]
    for name in sorted(stats):
        if name == baseline:
            continue
        vs = stats[name]
        sample = _sample(vs, metric)
        row = _row(vs, sample, "not_enough_data", rate, alpha)
        if name not in tests:
            rows.append(row)
            continue
        test = tests[name]
        more = _more_needed(base, sample, rate, required)
        significant = test is not None and adjusted[name] < alpha
        state: State = "not_enough_data"
        if test is not None and _enough(base, rate) and _enough(sample, rate):
            if significant:
                better = (test.effect > 0) == (metric != ERROR_RATE)
                state = "better" if better else "worse"
            elif more == 0:
                state = "no_difference"
        rows.append(
            replace(
                row,
                state=state,
                effect=test.effect if test else None,
                effect_ci=(test.ci_low, test.ci_high) if test else None,
                statistic=test.statistic if test else None,
                p_value=test.p_value if test else None,
                adjusted_p_value=adjusted[name] if test else None,
                significant=significant,
                required_per_arm=required,
                more_needed=more,
            )
        )
    return Analysis(
        baseline=baseline,
        metric=metric,
        kind=kind,
        higher_is_better=metric != ERROR_RATE,
        alpha=alpha,
        power=power,
        mde=effective_mde,
        comparisons=m,
        rows=tuple(rows),
    )


def _default_metric(stats: Mapping[str, VariantStats]) -> str:
    names = sorted({k for s in stats.values() for k in s.outcomes})
    if "conversion" in names:
        return "conversion"
    return names[0] if names else ERROR_RATE


def _sample(vs: VariantStats, metric: str) -> _Sample:
    if metric == ERROR_RATE:
        n = vs.requests
        return _Sample(n, vs.errors / n if n else 0.0, None, vs.errors)
    o = vs.outcomes.get(metric)
    if o is None:
        return _Sample(0, 0.0, None, 0)
    return _Sample(o.n, o.mean, o.variance, o.successes if o.kind == "conversion" else None)


def _test(base: _Sample, var: _Sample, rate: bool, alpha: float) -> TestResult | None:
    if rate:
        return two_proportion_ztest(base.successes or 0, base.n, var.successes or 0, var.n, alpha)
    if base.variance is None or var.variance is None:
        return None
    return welch_ttest(base.mean, base.variance, base.n, var.mean, var.variance, var.n, alpha)


def _row(vs: VariantStats, s: _Sample, state: State, rate: bool, alpha: float) -> VariantAnalysis:
    value_ci: Interval | None = None
    if s.n and rate:
        value_ci = wilson_interval(s.successes or 0, s.n, alpha)
    elif s.n > 1 and s.variance is not None:
        value_ci = t_interval(s.mean, s.variance, s.n, alpha)
    return VariantAnalysis(
        variant=vs.variant,
        state=state,
        count=vs.requests,
        errors=vs.errors,
        error_rate=vs.error_rate,
        error_rate_ci=wilson_interval(vs.errors, vs.requests, alpha) if vs.requests else None,
        latency_p50_ms=vs.latency_p50_ms,
        latency_p90_ms=vs.latency_p90_ms,
        latency_p99_ms=vs.latency_p99_ms,
        n=s.n,
        value=s.mean if s.n else None,
        value_ci=value_ci,
        shadow=vs.shadow,
    )


def _required(
    base: _Sample, rate: bool, mde: float | None, alpha: float, power: float
) -> tuple[float | None, int | None]:
    """The absolute MDE used and the sample size per arm it needs (None: unknown yet)."""
    if base.n == 0:
        return mde, None
    effect = abs(mde) if mde is not None else DEFAULT_RELATIVE_MDE * abs(base.mean)
    if effect == 0:
        return None, None
    if rate:
        up = base.mean + effect <= 1
        return effect, sample_size_proportion(
            base.mean, effect if up else -effect, alpha=alpha, power=power
        )
    if base.variance is None:
        return effect, None
    return effect, sample_size_mean(math.sqrt(base.variance), effect, alpha=alpha, power=power)


def _enough(s: _Sample, rate: bool) -> bool:
    if s.n < MIN_OBSERVATIONS:
        return False
    if rate:
        k = s.successes or 0
        return k >= MIN_EVENTS and s.n - k >= MIN_EVENTS
    return True


def _more_needed(base: _Sample, var: _Sample, rate: bool, required: int | None) -> int:
    """More observations per arm before the comparison can conclude."""
    have = min(base.n, var.n)
    target = max(MIN_OBSERVATIONS, required or 0)
    if rate:
        n = base.n + var.n
        pooled = ((base.successes or 0) + (var.successes or 0)) / n if n else 0.0
        if 0 < pooled < 1:
            target = max(target, math.ceil(MIN_EVENTS / min(pooled, 1 - pooled)))
    return max(0, target - have)
