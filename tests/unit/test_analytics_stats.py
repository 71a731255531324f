"""The deployer's statistics agree with scipy.stats on known data, and the analysis says
"not enough data" until it can conclude."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from ledgerflow.events.errors import InvalidInput
from ledgerflow.services.analytics import distributions as d
from ledgerflow.services.analytics.stats import (
    MIN_OBSERVATIONS,
    Outcome,
    VariantStats,
    analyze,
    holm,
    sample_size_mean,
    sample_size_proportion,
    t_interval,
    two_proportion_ztest,
    welch_ttest,
    wilson_interval,
)

TOL = 1e-9


@pytest.mark.parametrize("p", [1e-12, 1e-6, 0.001, 0.0242, 0.025, 0.2, 0.5, 0.8, 0.975, 0.9999])
def test_the_normal_quantile_and_cdf_match_scipy(p: float) -> None:
    assert d.norm_ppf(p) == pytest.approx(stats.norm.ppf(p), abs=TOL)
    x = stats.norm.ppf(p)
    assert d.norm_cdf(x) == pytest.approx(stats.norm.cdf(x), abs=1e-15)
    assert d.norm_sf(x) == pytest.approx(stats.norm.sf(x), rel=1e-12)


@pytest.mark.parametrize("df", [1, 2, 3.7, 9, 29.5, 150, 4321, 2.5e5])
def test_the_t_cdf_two_sided_p_value_and_quantile_match_scipy(df: float) -> None:
    for t in (-30.0, -4.2, -1.96, -0.1, 0.0, 0.7, 2.5, 9.0):
        assert d.t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=TOL)
        assert d.t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), abs=TOL)
        assert d.t_pdf(t, df) == pytest.approx(stats.t.pdf(t, df), abs=TOL)
    for p in (1e-4, 0.025, 0.3, 0.5, 0.9, 0.975):
        assert d.t_ppf(p, df) == pytest.approx(stats.t.ppf(p, df), abs=TOL, rel=TOL)


@settings(max_examples=60, deadline=None)
@given(
    a=st.floats(0.05, 5000),
    b=st.floats(0.05, 5000),
    x=st.floats(0.0, 1.0),
)
def test_the_regularized_incomplete_beta_matches_scipy(a: float, b: float, x: float) -> None:
    assert d.betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), abs=1e-10)


def test_welchs_t_test_matches_scipy_on_known_data() -> None:
    rng = np.random.default_rng(42)
    x = rng.normal(10.0, 2.0, 57)
    y = rng.normal(10.9, 3.5, 83)
    ref = stats.ttest_ind(y, x, equal_var=False)
    got = welch_ttest(x.mean(), x.var(ddof=1), len(x), y.mean(), y.var(ddof=1), len(y))
    assert got is not None
    assert got.statistic == pytest.approx(ref.statistic, abs=TOL)
    assert got.p_value == pytest.approx(ref.pvalue, abs=TOL)
    assert got.df == pytest.approx(ref.df, abs=TOL)
    ci = ref.confidence_interval(0.95)
    assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high), abs=TOL)


def test_welch_from_merged_welford_outcomes_equals_welch_on_the_raw_values() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.exponential(3.0, 400), rng.exponential(3.3, 350)
    ox = Outcome.of("reward", x[:150]).merge(Outcome.of("reward", x[150:]))
    oy = Outcome.of("reward", y)
    assert ox.mean == pytest.approx(x.mean(), abs=1e-12)
    assert ox.variance == pytest.approx(x.var(ddof=1), rel=1e-12)
    got = welch_ttest(ox.mean, ox.variance or 0, ox.n, oy.mean, oy.variance or 0, oy.n)
    assert got is not None
    assert got.p_value == pytest.approx(stats.ttest_ind(y, x, equal_var=False).pvalue, abs=TOL)


def test_the_pooled_two_proportion_z_test_matches_its_formula_with_scipy_norm() -> None:
    x1, n1, x2, n2 = 120, 1000, 152, 1010
    p = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    got = two_proportion_ztest(x1, n1, x2, n2)
    assert got is not None
    assert got.statistic == pytest.approx(z, abs=TOL)
    assert got.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), abs=TOL)
    se = math.sqrt(0.12 * 0.88 / n1 + (x2 / n2) * (1 - x2 / n2) / n2)
    half = stats.norm.ppf(0.975) * se
    assert (got.ci_low, got.ci_high) == pytest.approx(
        (x2 / n2 - 0.12 - half, x2 / n2 - 0.12 + half), abs=TOL
    )
    assert two_proportion_ztest(0, 10, 0, 10) is None


def test_the_wilson_and_t_intervals_match_scipy() -> None:
    ref = stats.binomtest(37, 250).proportion_ci(0.95, method="wilson")
    assert wilson_interval(37, 250) == pytest.approx((ref.low, ref.high), abs=TOL)
    values = np.array([3.1, 2.7, 4.4, 3.9, 3.3, 2.2, 5.0])
    lo, hi = stats.t.interval(0.9, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert t_interval(values.mean(), values.var(ddof=1), len(values), 0.1) == pytest.approx(
        (lo, hi), abs=TOL
    )


def test_holm_adjustment_is_step_down_monotone_and_capped() -> None:
    p = [0.01, 0.04, 0.03, 0.5]
    # sorted: 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> max(0.09, 0.08)=0.09, 0.5*1 -> 0.5
    assert holm(p) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.9, 0.8]) == [1.0, 1.0]
    assert holm([]) == []


def test_sample_sizes_follow_the_textbook_formulas() -> None:
    za, zb = stats.norm.ppf(0.975), stats.norm.ppf(0.8)
    p1, p2 = 0.10, 0.12
    bar = 0.11
    root = za * math.sqrt(2 * bar * (1 - bar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    assert sample_size_proportion(0.10, 0.02) == math.ceil(root**2 / 0.02**2) == 3841
    assert sample_size_mean(2.0, 0.5) == math.ceil(2 * ((za + zb) * 2.0 / 0.5) ** 2)
    with pytest.raises(InvalidInput):
        sample_size_proportion(0.95, 0.1)
    with pytest.raises(InvalidInput):
        sample_size_mean(1.0, 0.2, alpha=1.5)


def _conversions(variant: str, n: int, k: int, *, requests: int | None = None) -> VariantStats:
    return VariantStats(
        variant,
        requests=requests if requests is not None else n,
        outcomes={"conversion": Outcome.of("conversion", [1.0] * k + [0.0] * (n - k))},
    )


def test_a_tiny_sample_is_not_enough_data_and_says_how_many_more_are_needed() -> None:
    result = analyze({"a": _conversions("a", 12, 3), "b": _conversions("b", 10, 6)}, "a")
    row = result.row("b")
    assert row.state == "not_enough_data"
    assert row.more_needed >= MIN_OBSERVATIONS - 10
    assert result.row("a").state == "baseline"


def test_a_clear_winner_is_better_with_corrected_p_values_over_three_arms() -> None:
    stats_ = {
        "a": _conversions("a", 5000, 500),
        "b": _conversions("b", 5000, 650),
        "c": _conversions("c", 5000, 505),
    }
    result = analyze(stats_, "a", mde=0.02)
    b, c = result.row("b"), result.row("c")
    assert result.comparisons == 2 and result.metric == "conversion"
    assert b.state == "better" and b.significant
    assert b.adjusted_p_value == pytest.approx(min(1.0, 2 * (b.p_value or 1)))
    assert c.state == "no_difference" and c.more_needed == 0
    assert b.value_ci is not None and b.value_ci[0] < 0.13 < b.value_ci[1]
    json.dumps(result.to_dict())


def test_no_difference_is_not_claimed_before_the_arms_reach_the_needed_sample_size() -> None:
    result = analyze({"a": _conversions("a", 400, 40), "b": _conversions("b", 400, 42)}, "a")
    row = result.row("b")
    assert row.required_per_arm is not None and row.required_per_arm > 400
    assert row.state == "not_enough_data"
    assert row.more_needed == row.required_per_arm - 400


def test_rewards_are_compared_with_welchs_t_test_and_a_worse_variant_is_worse() -> None:
    rng = np.random.default_rng(11)
    xa, xb = rng.normal(5.0, 1.0, 500), rng.normal(4.6, 1.2, 500)
    stats_ = {
        "a": VariantStats("a", 500, outcomes={"revenue": Outcome.of("reward", xa)}),
        "b": VariantStats("b", 500, outcomes={"revenue": Outcome.of("reward", xb)}),
    }
    row = analyze(stats_, "a").row("b")
    assert row.state == "worse"
    assert row.p_value == pytest.approx(stats.ttest_ind(xb, xa, equal_var=False).pvalue, abs=TOL)


def test_without_feedback_the_error_rate_is_compared_and_lower_is_better() -> None:
    stats_ = {
        "a": VariantStats("a", requests=2000, errors=100),
        "b": VariantStats("b", requests=2000, errors=20),
        "shadow": VariantStats("shadow", requests=2000, errors=300, shadow=True),
    }
    result = analyze(stats_, "a")
    assert result.metric == "error_rate" and not result.higher_is_better
    assert result.row("b").state == "better"
    assert result.row("shadow").state == "worse"


def test_variant_stats_round_trip_through_json() -> None:
    vs = VariantStats("b", 10, 1, 2.0, 3.0, 9.5, {"m": Outcome("reward", 3, 1.5, 0.2)}, True, 4, 3)
    assert VariantStats.from_dict(json.loads(json.dumps(vs.to_dict()))) == vs
