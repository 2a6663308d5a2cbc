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
    assert V.combine({"a": "held", "b": "not held"}) == "not held"   # a conjunction fails
    assert V.combine(["held", "inconclusive"]) == "inconclusive"
    assert V.combine(["not held", "not held"]) == "not held"
    assert V.combine(["inconclusive", "not held"]) == "not held"
    with pytest.raises(ValueError, match="unknown verdict"):
        V.combine(["maybe"])
    with pytest.raises(ValueError, match="mode"):
        V.combine(["held"], mode="some")


@pytest.mark.parametrize("parts, expected", [
    (["held", "not held"], "held"), (["inconclusive", "held"], "held"),
    (["not held", "not held"], "not held"), (["not held", "inconclusive"], "inconclusive"),
    (["inconclusive"], "inconclusive")])
def test_combine_any_is_a_disjunction(parts, expected):
    assert V.combine(parts, mode="any") == expected


def test_combine_never_says_partly_but_reads_it_as_not_held():
    """"partly" stays readable (old records) and means a conjunction with a failed part."""
    import itertools

    assert "partly" in V.VERDICTS and "partly" not in V.PRODUCED
    for parts in itertools.product(V.VERDICTS, repeat=3):
        for mode in V.MODES:
            assert V.combine(parts, mode=mode) in V.PRODUCED
    assert V.combine(["held", "partly"]) == "not held"
    assert V.combine(["partly", "partly"], mode="any") == "not held"


def test_claims_judge_takes_the_mode_and_names_the_deciding_part():
    from bisls_core.sweeps import claims

    iv = {v: V.Interval(v, i, i + 1.0, 5, i + 0.5) for i, v in enumerate(V.PRODUCED)}
    parts = {"a": ("inconclusive", iv["inconclusive"]), "b": ("not held", iv["not held"]),
             "c": ("held", iv["held"])}
    out = claims.judge(parts)
    assert out["verdict"] == "not held" and out["interval"] is iv["not held"]
    assert out["why"] == "a inconclusive; b not held"
    out = claims.judge(parts, mode="any")
    assert out["verdict"] == "held" and out["interval"] is iv["held"]
    out = claims.judge({"a": ("held", iv["held"]), "b": ("inconclusive", iv["inconclusive"])})
    assert out["verdict"] == "inconclusive" and out["interval"] is iv["inconclusive"]


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
    np.testing.assert_array_equal(claims.log_ratios(a, b), V.paired_log_ratios(a, b))  # the same rule
    diff = V.paired_difference(a[:1].repeat(3), b[:1].repeat(3) + [0, 1, 2], "d")
    assert diff.estimate == pytest.approx(-2.0)
    with pytest.raises(ValueError, match="paired runs must match"):
        V.paired_log_ratios([1.0], [1.0, 2.0])


# ------------------------------------------------------------------ divergence, bootstrap median


def test_finite_bootstrap_limit_values_and_the_documented_example():
    assert [V.finite_bootstrap_limit(n) for n in (2, 5, 10, 20)] == [0, 0, 1, 5]
    iv = V.mean_interval([-0.3, -0.2, -0.25, -0.1, np.inf], "x")   # the module docstring's case
    assert (iv.low, iv.high) == (-0.3, math.inf)
    doc = " ".join(V.__doc__.split())
    assert "**none** at n = 5" in doc and "one at n = 10 and five at n = 20" in doc
    assert "``[-0.3, -0.2, -0.25, -0.1, inf]`` give ``[-0.3, inf]``" in doc
    with pytest.raises(ValueError):
        V.finite_bootstrap_limit(0)


def test_finite_bootstrap_limit_is_the_exact_chance_of_an_infinite_median():
    """The binomial formula against enumerating every resample of 5 runs, 1 diverged."""
    import itertools

    runs = [0.1, 0.2, 0.3, 0.4, np.inf]
    medians = [np.median([runs[i] for i in idx]) for idx in itertools.product(range(5), repeat=5)]
    share = np.mean(np.isinf(medians))
    assert share == pytest.approx(stats.binom.sf(2, 5, 0.2)) and share > 0.025
    assert V.finite_bootstrap_limit(5) == 0


@pytest.mark.parametrize("n", range(2, 21))
def test_finite_bootstrap_limit_matches_mean_interval(n):
    limit = V.finite_bootstrap_limit(n)
    for k, finite in ((limit, True), (limit + 1, False)):
        if k < n:                                  # some finite run left to resample
            values = [0.1 * i for i in range(n - k)] + [np.inf] * k
            assert math.isfinite(V.mean_interval(values, "x").high) == finite, (n, k)
            worst = [-v for v in values]            # the other sign: the lower end
            assert math.isfinite(V.mean_interval(worst, "x").low) == finite, (n, k)


# ------------------------------------------------------------------ equivalence


def test_equivalence_held_not_held_and_undecided():
    near = [0.01, -0.02, 0.0, 0.015, -0.005]
    e = V.equivalence(near, 0.05, "d")
    ref = V.mean_interval(near, "d", level=0.90)
    assert e.verdict == "held" and (e.interval.low, e.interval.high) == (ref.low, ref.high)
    assert e.outer.high == pytest.approx(V.mean_interval(near, "d").high)
    assert (e.runs, e.excluded, e.one_sided) == (5, 0, 0)
    assert V.equivalence([0.3, 0.35, 0.28, 0.31, 0.33], 0.05, "d").verdict == "not held"
    assert V.equivalence([-0.3, -0.35, -0.28, -0.31, -0.33], 0.05, "d").verdict == "not held"
    undecided = V.equivalence([0.0, 0.1, -0.08, 0.05, 0.02], 0.05, "d")
    assert undecided.verdict == "inconclusive"
    with pytest.raises(ValueError, match="margin"):
        V.equivalence(near, 0.0, "d")


def test_equivalence_held_on_the_90_percent_interval_not_the_95():
    """TOST: each side at 5 %, so a 90 % interval inside the margin holds the claim even
    when the 95 % interval pokes out (and that one cannot make it not held)."""
    x = np.array([0.02, 0.05, 0.0, 0.03, 0.045])
    m = (V.mean_interval(x, "d", level=0.90).high + V.mean_interval(x, "d").high) / 2
    assert V.decide_within(V.mean_interval(x, "d"), m) == "inconclusive"
    assert V.equivalence(x, m, "d").verdict == "held"


def test_equivalent_excludes_and_counts_pairs_that_both_diverged():
    a = [1.00, 2.00, 3.00, 4.00, np.nan, np.inf]
    b = [1.01, 1.99, 3.02, 3.98, np.nan, np.nan]
    e = V.equivalent(a, b, np.log(1.05), "log final loss")
    assert e.excluded == 2 and e.runs == 4 and e.one_sided == 0
    ref = V.equivalent(a[:4], b[:4], np.log(1.05), "log final loss")
    assert e.verdict == ref.verdict == "held" and e.interval == ref.interval
    assert e.as_record()["excluded"] == 2


def test_a_one_sided_divergence_opens_the_interval_and_cannot_be_held():
    a = [1.00, 2.00, 3.00, 4.00, np.nan]           # a diverged at seed 4, b did not
    b = [1.01, 1.99, 3.02, 3.98, 5.00]
    e = V.equivalent(a, b, np.log(1.05), "x")
    assert e.one_sided == 1 and e.excluded == 0 and e.runs == 5
    assert e.interval.high == math.inf and math.isfinite(e.interval.low)
    assert e.verdict == "inconclusive" and e.p_held == 1.0
    e = V.equivalent(b, a, np.log(1.05), "x")        # b diverged: open below
    assert e.interval.low == -math.inf and e.verdict == "inconclusive"
    far = V.equivalent([2.0, 4.1, 6.0, 8.2, np.nan], b, np.log(1.05), "x")
    assert far.verdict == "not held" and far.interval.high == math.inf  # outside, same side
    other = V.equivalent([0.5, 1.0, 1.5, 2.0, np.nan], b, np.log(1.05), "x")
    assert other.verdict == "inconclusive"                              # outside, other side
    assert other.as_record()["interval"][1] == "inf"


def test_equivalence_needs_two_finite_pairs():
    e = V.equivalent([1.0, np.nan, np.nan], [1.0, np.nan, 2.0], 0.05, "x")
    assert (e.verdict, e.interval) == ("inconclusive", None)
    assert (e.excluded, e.one_sided, e.runs) == (1, 1, 2)
    with pytest.raises(ValueError, match="positive"):
        V.equivalent([1.0, -1.0], [1.0, 1.0], 0.05, "x")
    with pytest.raises(ValueError, match="paired runs must match"):
        V.equivalent([1.0], [1.0, 2.0], 0.05, "x")
    assert V.equivalent([1.0, 2.0], [1.0, 2.0], 0.05, "x", log=False).verdict == "held"


def test_equivalent_all_pairwise_and_against_a_reference():
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    arms = {"A": base, "B": base * 1.005, "C": base * 1.04}
    v, tests = V.equivalent_all(arms, np.log(1.05), "x")
    assert list(tests) == ["A vs B", "A vs C", "B vs C"] and v == "held"
    arms["D"] = base * 1.3
    v, tests = V.equivalent_all(arms, np.log(1.05), "x")
    assert v == "not held" and tests["A vs D"].verdict == "not held"
    v, tests = V.equivalent_all(arms, np.log(1.05), "x", reference="D")
    assert list(tests) == ["D vs A", "D vs B", "D vs C"]
    v, tests = V.equivalent_all([base, base], 0.05, "x", reference=0)
    assert list(tests) == ["0 vs 1"]
    with pytest.raises(ValueError, match="two arms"):
        V.equivalent_all([base], 0.05, "x")
    with pytest.raises(ValueError, match="unknown reference"):
        V.equivalent_all(arms, 0.05, "x", reference="E")


def test_claims_alike_is_the_equivalence_of_log_finals():
    from bisls_core.sweeps import claims

    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    verdict, iv = claims.alike([base, base * 1.01, base * 0.99])
    assert verdict == "held" and iv.high < np.log(1.05)
    assert claims.alike([base, base * 1.2])[0] == "not held"


# ------------------------------------------------------------------ p-values and Holm


@pytest.mark.parametrize("claim", ["below", "above"])
def test_p_value_is_the_one_sided_t_test(claim):
    x = np.array([0.3, -0.1, 0.2, 0.5, 0.1])
    alternative = "less" if claim == "below" else "greater"
    ref = stats.ttest_1samp(x, 0.05, alternative=alternative).pvalue
    assert V.p_value(x, claim, 0.05) == pytest.approx(ref)


def test_p_value_of_an_equivalence_is_the_larger_one_sided():
    x = np.array([0.01, -0.02, 0.0, 0.015, -0.005])
    low = stats.ttest_1samp(x, -0.05, alternative="greater").pvalue
    high = stats.ttest_1samp(x, 0.05, alternative="less").pvalue
    assert V.p_value(x, "equivalent", margin=0.05) == pytest.approx(max(low, high))
    assert V.p_value(x, "within", margin=0.05) == pytest.approx(max(low, high))
    with pytest.raises(ValueError, match="margin"):
        V.p_value(x, "within")


def test_p_value_with_a_diverged_run_is_a_sign_test():
    x = [-0.3, -0.2, -0.25, -0.1, np.inf]
    assert V.p_value(x, "below", 0.0) == pytest.approx(stats.binom.sf(3, 5, 0.5))   # 4 of 5 below
    assert V.p_value(x, "above", 0.0) == pytest.approx(stats.binom.sf(0, 5, 0.5))   # 1 of 5 above


def test_proportion_p_value_is_exact():
    assert V.proportion_p_value(15, 20, "below", 0.5) == pytest.approx(stats.binom.cdf(15, 20, 0.5))
    assert V.proportion_p_value(15, 20, "above", 0.5) == pytest.approx(
        stats.binomtest(15, 20, 0.5, alternative="greater").pvalue)
    assert V.proportion_p_value(1, 5, "above", 0.0) == 0.0
    held, not_held = V.proportion_decision_p_values(15, 20, "below", 0.5)
    assert not_held < 0.05 < held     # as the Wilson interval decides: not held
    assert V.decide(V.proportion_interval(15, 20, "x"), claim="below", threshold=0.5) == "not held"
    with pytest.raises(ValueError):
        V.proportion_p_value(6, 5, "below", 0.5)


@pytest.mark.parametrize("claim, threshold", [("below", 0.0), ("above", 0.2), ("within", 0.0)])
def test_decision_p_values_agree_with_the_intervals(claim, threshold):
    """Unadjusted, "p < 0.05" is the interval's rule (Holm with one claim changes nothing)."""
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(300):
        x = rng.normal(rng.uniform(-0.4, 0.4), rng.uniform(0.05, 0.4), 5)
        iv = V.mean_interval(x, "x")
        verdict = V.decide_within(iv, 0.25) if claim == "within" else \
            V.decide(iv, claim=claim, threshold=threshold)
        margin = 0.25 if claim == "within" else None
        held, not_held = V.decision_p_values(x, claim, threshold, margin=margin)
        assert (held < 0.05) == (verdict == "held") and (not_held < 0.05) == (verdict == "not held")
        alone = V.holm({"c": V.combined_p_value([(held, not_held)], verdict)})["c"]
        assert V.adjusted_verdict(verdict, alone) == verdict
        seen.add(verdict)
    assert seen == set(V.PRODUCED)


def test_decision_p_values_of_an_equivalence_agree_with_tost():
    rng = np.random.default_rng(4)
    seen = set()
    for _ in range(300):
        x = rng.normal(rng.uniform(-0.3, 0.3), rng.uniform(0.02, 0.3), 5)
        e = V.equivalence(x, 0.1, "x")
        assert (e.p_held < 0.05) == (e.verdict == "held")
        assert (e.p_not_held < 0.05) == (e.verdict == "not held")
        assert V.decision_p_values(x, "equivalent", margin=0.1) == (e.p_held, e.p_not_held)
        seen.add(e.verdict)
    assert seen == set(V.PRODUCED)


def test_a_tie_without_spread_is_not_held_by_both_rules():
    zeros = np.zeros(5)           # e.g. two methods that take the same steps
    assert V.decide(V.mean_interval(zeros, "x"), claim="below") == "not held"
    assert V.decision_p_values(zeros, "below") == (1.0, 0.0)


def test_holm_against_a_hand_computation():
    p = {"a": 0.001, "b": 0.011, "c": 0.02, "d": 0.04, "e": 0.30}
    # sorted: 0.001 <= 0.05/5; 0.011 <= 0.05/4 = 0.0125; 0.02 > 0.05/3 = 0.0167: stop
    assert V.holm(p) == {"a": True, "b": True, "c": False, "d": False, "e": False}
    adjusted = V.holm_adjusted(p)   # 5p, max(., 4p), max(., 3p), max(., 2p), max(., p)
    assert adjusted == pytest.approx({"a": 0.005, "b": 0.044, "c": 0.06, "d": 0.08, "e": 0.30})
    # Bonferroni (0.05 / 5 = 0.01) would reject only "a"; Holm at 0.10 rejects a-d
    assert V.holm(p, alpha=0.10) == {"a": True, "b": True, "c": True, "d": True, "e": False}
    assert V.holm({}) == {} and V.holm({"x": 0.05}) == {"x": True}
    assert V.holm({"x": 0.02, "y": 0.02}) == {"x": True, "y": True}   # ties: 0.02 <= 0.025
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        V.holm({"x": 1.5})


def test_adjusted_verdict():
    assert V.adjusted_verdict("held", True) == "held"
    assert V.adjusted_verdict("held", False) == "inconclusive"
    assert V.adjusted_verdict("not held", True) == "not held"
    assert V.adjusted_verdict("not held", False) == "inconclusive"
    assert V.adjusted_verdict("inconclusive", True) == "inconclusive"
    assert V.adjusted_verdict("partly", True) == "not held"
    with pytest.raises(ValueError):
        V.adjusted_verdict("maybe", True)


def test_combined_p_value():
    parts = [(0.01, 0.9), (0.03, 0.02)]
    assert V.combined_p_value(parts, "held") == 0.03                 # all held: the largest
    assert V.combined_p_value(parts, "not held") == pytest.approx(0.04)   # any of 2: 2 x min
    assert V.combined_p_value(parts, "inconclusive") == 0.03
    assert V.combined_p_value(parts, "held", mode="any") == pytest.approx(0.02)
    assert V.combined_p_value(parts, "not held", mode="any") == 0.9
    assert V.combined_p_value({"only": (0.2, 0.7)}, "inconclusive") == 0.2


# ------------------------------------------------------------------ fragility


def test_bootstrap_mean_interval():
    rng = np.random.default_rng(5)
    x = rng.normal(1.0, 0.5, 40)
    iv, t = V.bootstrap_mean_interval(x, "x"), V.mean_interval(x, "x")
    assert iv == V.bootstrap_mean_interval(x, "x")
    assert iv != V.bootstrap_mean_interval(x, "x", seed=1)
    assert iv.low == pytest.approx(t.low, abs=0.05) and iv.high == pytest.approx(t.high, abs=0.05)
    assert iv.estimate == pytest.approx(x.mean()) and iv.statistic == "bootstrap mean x"
    assert V.bootstrap_mean_interval([0.1, 0.2, np.inf, 0.3, 0.2], "x").high == math.inf
    narrow = V.bootstrap_mean_interval(x, "x", level=0.5)
    assert iv.low < narrow.low < narrow.high < iv.high


def test_fragile():
    assert not V.fragile(["held"])
    assert not V.fragile(["held", "held"])
    assert V.fragile(["held", "inconclusive"])
    assert V.fragile(["not held", "not held", "held"])
    with pytest.raises(ValueError):
        V.fragile([])
    with pytest.raises(ValueError, match="unknown verdict"):
        V.fragile(["held", "nope"])
