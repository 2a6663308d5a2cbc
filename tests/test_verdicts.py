"""The verdict rules of bisls_core.verdicts, checked against hand-computed cases."""

import math

import numpy as np
import pytest
from scipy import stats

from bisls_core import verdicts as V


def test_t_interval_matches_formula():
    x = np.array([1.0, 2.0, 4.0, 3.0, 5.0])
    iv = V.mean_interval(x, "x")
    half = stats.t.ppf(0.975, 4) * x.std(ddof=1) / math.sqrt(5)
    assert iv.runs == 5 and iv.statistic == "mean x"
    assert iv.low == pytest.approx(3.0 - half) and iv.high == pytest.approx(3.0 + half)


def test_interval_covers_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(2000):
        iv = V.mean_interval(rng.normal(2.0, 1.0, 5), "x")
        covered += iv.low <= 2.0 <= iv.high
    assert 0.93 < covered / 2000 < 0.97


def test_one_run_is_refused():
    with pytest.raises(ValueError, match="at least 2 runs"):
        V.mean_interval([1.0], "x")


def test_diverged_runs_count_against_their_method():
    a = [0.1, 0.2, np.nan, 0.15, 0.12]       # one diverged run of five
    b = [0.3, 0.35, 0.3, 0.32, 0.31]
    iv = V.paired_difference(a, b, "final loss difference")
    assert iv.statistic.startswith("median")  # an infinite value -> bootstrap of the median
    assert iv.high == math.inf                # 1/5 diverged: resamples with 3 of them exist
    assert V.decide(iv, claim="below") == "inconclusive"
    iv = V.paired_difference(a * 4, b * 4, "final loss difference")  # 4 of 20 diverged
    assert iv.high < 0 and V.decide(iv, claim="below") == "held"
    rec = V.paired_difference([np.nan] * 3 + [0.1] * 2, [0.2] * 5, "d").as_record()
    assert rec["interval"][1] == "inf"        # JSON-safe


def test_bootstrap_is_deterministic():
    a = [0.1, np.inf, 0.3, 0.2, 0.25]
    assert V.mean_interval(a, "x") == V.mean_interval(a, "x")


@pytest.mark.parametrize("low, high, claim, expected", [
    (-2.0, -1.0, "below", "held"), (1.0, 2.0, "below", "not held"), (-1.0, 1.0, "below", "inconclusive"),
    (1.0, 2.0, "above", "held"), (-2.0, -1.0, "above", "not held"), (-1.0, 1.0, "above", "inconclusive"),
])
def test_decide(low, high, claim, expected):
    assert V.decide(V.Interval("q", low, high, 5), claim=claim) == expected


def test_decide_within():
    assert V.decide_within(V.Interval("q", -0.01, 0.02, 5), 0.05) == "held"
    assert V.decide_within(V.Interval("q", 0.06, 0.2, 5), 0.05) == "not held"
    assert V.decide_within(V.Interval("q", 0.01, 0.2, 5), 0.05) == "inconclusive"
    with pytest.raises(ValueError):
        V.decide_within(V.Interval("q", 0, 0, 5), 0.0)


def test_combine():
    assert V.combine(["held", "held"]) == "held"
    assert V.combine({"a": "held", "b": "not held"}) == "partly"
    assert V.combine(["held", "inconclusive"]) == "inconclusive"
    assert V.combine(["not held", "not held"]) == "not held"
    with pytest.raises(ValueError, match="unknown verdict"):
        V.combine(["maybe"])


def test_wilson_interval():
    iv = V.proportion_interval(0, 5, "diverged")
    assert iv.low == 0.0 and 0.4 < iv.high < 0.45   # Wilson upper bound for 0/5 is 0.434
    iv = V.proportion_interval(5, 5, "diverged")
    assert iv.high == 1.0 and 0.56 < iv.low < 0.57
    with pytest.raises(ValueError):
        V.proportion_interval(6, 5, "diverged")


def test_log_ratio_interval():
    iv = V.log_ratio_interval([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], "cost")
    assert iv.low == pytest.approx(2.0) and iv.high == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        V.log_ratio_interval([1.0, -1.0], [1.0, 1.0], "cost")


def test_paired_log_ratios_use_the_diverged_as_worst_rule():
    """One rule for a diverged run in every paired comparison: the worst outcome."""
    from bisls_core.sweeps import claims

    a = np.array([1.0, np.nan, 2.0, np.nan])
    b = np.array([2.0, 1.0, np.nan, np.nan])
    out = V.paired_log_ratios(a, b)
    assert out[0] == pytest.approx(np.log(0.5)) and out[1] == np.inf and out[2] == -np.inf
    assert out[3] == 0.0
    assert claims.log_ratios is V.paired_log_ratios
    diff = V.paired_difference(a[:1].repeat(3), b[:1].repeat(3) + [0, 1, 2], "d")
    assert diff.estimate == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="paired runs must match"):
        V.paired_log_ratios([1.0], [1.0, 2.0])
