"""Significance tests, intervals, multiple-comparison correction and sample sizes, from
sufficient statistics (counts, means, variances) so that aggregates never need the raw
observations. Only `math` at run time; the tests check every number against scipy.stats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.analytics.distributions import norm_ppf, t_ppf, t_two_sided


@dataclass(frozen=True)
class TestResult:
    """A comparison of a variant with the baseline; `effect` is variant minus baseline."""

    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    df: float | None = None


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion: sane at rates near 0 or 1, unlike Wald's."""
    check_alpha(alpha)
    if n <= 0:
        return (0.0, 1.0)
    z = norm_ppf(1 - alpha / 2)
    p = successes / n
    z2n = z * z / n
    center = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    return (max(0.0, center - half), min(1.0, center + half))


def t_interval(mean: float, variance: float, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Student t interval of a mean from its sample variance (ddof 1)."""
    check_alpha(alpha)
    if n < 2:
        return (-math.inf, math.inf)
    half = t_ppf(1 - alpha / 2, n - 1) * math.sqrt(variance / n)
    return (mean - half, mean + half)


def two_proportion_ztest(
    x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05
) -> TestResult | None:
    """Pooled two-proportion z-test of arm 2 against arm 1, with the unpooled Wald interval
    of the difference. None when the pooled rate is 0 or 1 (nothing to test)."""
    if n1 <= 0 or n2 <= 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se0 == 0:
        return None
    z = (p2 - p1) / se0
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    half = norm_ppf(1 - alpha / 2) * se
    p_value = math.erfc(abs(z) / math.sqrt(2))
    return TestResult(z, p_value, p2 - p1, p2 - p1 - half, p2 - p1 + half)


def welch_ttest(
    mean1: float,
    var1: float,
    n1: int,
    mean2: float,
    var2: float,
    n2: int,
    alpha: float = 0.05,
) -> TestResult | None:
    """Welch's t-test of arm 2 against arm 1 (unequal variances), degrees of freedom by
    Welch-Satterthwaite. None below two observations per arm or with zero variance."""
    if n1 < 2 or n2 < 2:
        return None
    a, b = var1 / n1, var2 / n2
    se = math.sqrt(a + b)
    if se == 0:
        return None
    df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1))
    effect = mean2 - mean1
    t = effect / se
    half = t_ppf(1 - alpha / 2, df) * se
    return TestResult(t, t_two_sided(t, df), effect, effect - half, effect + half, df)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in input order.
    Controls the family-wise error rate over all comparisons with the baseline."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def sample_size_proportion(
    baseline_rate: float, mde: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Observations per arm for a two-sided two-proportion test to detect an absolute change
    of `mde` from `baseline_rate` with the given power."""
    check_alpha(alpha)
    check_power(power)
    p1, p2 = baseline_rate, baseline_rate + mde
    if mde == 0 or not 0 <= p1 <= 1 or not 0 <= p2 <= 1:
        raise InvalidInput(
            f"the rates {p1!r} and {p1!r} + mde {mde!r} must both lie in [0, 1] and differ",
            field="mde",
        )
    bar = (p1 + p2) / 2
    za, zb = norm_ppf(1 - alpha / 2), norm_ppf(power)
    root = za * math.sqrt(2 * bar * (1 - bar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root * root / (mde * mde))


def sample_size_mean(std: float, mde: float, *, alpha: float = 0.05, power: float = 0.8) -> int:
    """Observations per arm for a two-sided test of means to detect a change of `mde` when
    the outcome has standard deviation `std` (normal approximation)."""
    check_alpha(alpha)
    check_power(power)
    if mde == 0 or std < 0:
        raise InvalidInput(f"need mde != 0 and std >= 0, got mde={mde}, std={std}", field="mde")
    z = norm_ppf(1 - alpha / 2) + norm_ppf(power)
    return max(2, math.ceil(2 * (z * std / mde) ** 2))


def check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be in (0, 1), got {alpha!r}", field="alpha")


def check_power(power: float) -> None:
    if not 0 < power < 1:
        raise InvalidInput(f"power must be in (0, 1), got {power!r}", field="power")
