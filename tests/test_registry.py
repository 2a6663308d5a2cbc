"""The claims registry (issue 25): a claim's analysis fixed in advance, and judged by it."""

import json
import math

import numpy as np
import pytest

from bisls_core import registry as R
from bisls_core import verdicts as V


def claim(**fields):
    base = {"id": "t-claim", "page": "fig00_test", "text": "A ends below B",
            "statistic": "log A / B", "direction": "below"}
    return R.Claim(**{**base, **fields})


# ------------------------------------------------------------------ the final-value window


def test_final_window_is_the_mean_of_the_last_tenth():
    assert R.FINAL_WINDOW == "mean over the last 10 % of evaluations" and R.FINAL_FRACTION == 0.1
    curves = np.arange(60.0).reshape(2, 30)
    assert np.allclose(R.final_window(curves), [28.0, 58.0])          # last 3 of 30, not 4
    assert np.allclose(R.final_window(np.arange(11.0)[None]), [9.5])  # ceil(1.1) = 2
    assert np.allclose(R.final_window(np.arange(5.0)[None]), [4.0])   # at least one
    assert np.allclose(R.final_window(np.arange(1000.0)[None]), [np.arange(900.0, 1000.0).mean()])
    assert np.allclose(R.final_window(np.arange(10.0), fraction=0.5), [7.0])  # 1-D: one run


def test_final_window_keeps_a_diverged_run_diverged():
    curves = [[1.0, 2.0, np.nan], [1.0, np.inf, 2.0], [np.nan, 1.0, 1.0]]
    out = R.final_window(curves, fraction=0.5)                 # the last 2 of 3
    assert np.isnan(out[0]) and out[1] == np.inf and out[2] == 1.0  # a NaN before it: no matter
    with pytest.raises(ValueError, match="fraction"):
        R.final_window([[1.0]], fraction=0.0)
    with pytest.raises(ValueError, match="runs x evaluations"):
        R.final_window(np.zeros((2, 0)))


# ------------------------------------------------------------------ claims and the registry


def test_claim_defaults_and_checks():
    c = claim()
    assert (c.window, c.threshold, c.margin, c.combine, c.paired, c.reason) == \
        (R.FINAL_WINDOW, 0.0, None, "all", True, "")
    with pytest.raises(AttributeError):
        c.threshold = 1.0                                     # frozen
    with pytest.raises(ValueError, match="needs a reason"):
        claim(window="last evaluation")
    assert claim(window="last evaluation", reason="the paper reads the last point").reason
    with pytest.raises(ValueError, match="direction"):
        claim(direction="lower")
    with pytest.raises(ValueError, match="margin"):
        claim(direction="equivalent")
    with pytest.raises(ValueError, match="margin"):
        claim(direction="within", margin=0.05, threshold=1.0)
    with pytest.raises(ValueError, match="margin is for"):
        claim(margin=0.05)
    with pytest.raises(ValueError, match="paired"):
        claim(direction="equivalent", margin=0.05, paired=False)
    with pytest.raises(ValueError, match="combine"):
        claim(combine="most")
    with pytest.raises(ValueError, match="id"):
        claim(id="")
    with pytest.raises(TypeError):
        R.Claim("t", "p", "x", "s", direction="below")        # keywords only


def test_register_and_lookup():
    reg = R.Registry()
    c = reg.register(claim())
    assert reg.lookup("t-claim") is c and "t-claim" in reg and len(reg) == 1
    assert reg.register(claim()) == c                          # the same again: harmless
    with pytest.raises(ValueError, match="already registered with other threshold"):
        reg.register(claim(threshold=1.0))
    d = reg.register(id="t-other", page="p", text="x", statistic="s", direction="above")
    assert list(reg) == ["t-claim", "t-other"] and d.direction == "above"
    with pytest.raises(TypeError):
        reg.register()
    with pytest.raises(TypeError):
        reg.register(claim(), id="x")


def test_lookup_of_an_unknown_claim_is_a_clear_error():
    reg = R.Registry()
    with pytest.raises(R.UnknownClaimError, match="unknown claim id 'x'; no claim is registered"):
        reg.lookup("x")
    reg.register(claim())
    with pytest.raises(R.UnknownClaimError, match="did you mean 't-claim'"):
        reg.lookup("t-claims")
    with pytest.raises(LookupError, match="1 claims are registered"):
        reg.lookup("fig99")


def test_the_book_registry():
    c = claim(id="t-book-registry-test")
    try:
        assert R.register(c) is c and R.lookup(c.id) is c and R.judge(c.id, [-1.0, -1.1, -0.9])
    finally:
        R.REGISTRY._claims.pop(c.id, None)
    with pytest.raises(R.UnknownClaimError):
        R.lookup(c.id)


# ------------------------------------------------------------------ judging


def test_judge_below_parts_and_the_record():
    c = claim()
    out = R.judge(c, {"SGD": [-0.4, -0.5, -0.45, -0.42, -0.48],
                      "Adam": [0.4, 0.3, 0.5, 0.45, 0.35]})
    json.dumps(out, allow_nan=False)                          # JSON-safe
    sgd, adam = out["parts"]["SGD"], out["parts"]["Adam"]
    iv = V.mean_interval([-0.4, -0.5, -0.45, -0.42, -0.48], "log A / B")
    assert sgd["interval"] == [iv.low, iv.high] and sgd["runs"] == 5 and sgd["verdict"] == "held"
    assert sgd["statistic"] == "mean log A / B" and sgd["direction"] == "below"
    assert sgd["threshold"] == 0.0 and sgd["estimate"] == pytest.approx(-0.45)
    assert adam["verdict"] == "not held" and out["verdict"] == "not held"
    assert out["p_value"] == pytest.approx(2 * adam["p_not_held"])   # one of two parts: Bonferroni
    assert out["bootstrap_verdict"] == "not held" and out["fragile"] is False
    assert (out["claim"], out["window"], out["combine"]) == ("t-claim", R.FINAL_WINDOW, "all")
    either = R.judge(claim(combine="any"), {"SGD": [-0.4, -0.5, -0.45], "Adam": [0.4, 0.3, 0.5]})
    assert either["verdict"] == "held"


def test_judge_one_part_one_run_and_a_diverged_run():
    out = R.judge(claim(), [-0.4, -0.5, -0.45])     # a single part, named by its statistic
    assert list(out["parts"]) == ["log A / B"] and out["verdict"] == "held"
    one = R.judge(claim(), {"a": [-0.4]})["parts"]["a"]
    assert (one["verdict"], one["interval"], one["p_held"]) == ("inconclusive", None, 1.0)
    part = R.judge(claim(), {"a": [-0.3, -0.2, -0.25, -0.1, np.inf]})["parts"]["a"]
    assert part["interval"] == [-0.3, "inf"] and part["statistic"] == "median log A / B"
    assert part["verdict"] == "inconclusive"


def test_judge_within_and_a_count():
    c = claim(direction="within", margin=0.05)
    assert R.judge(c, [0.01, -0.02, 0.0, 0.015, -0.005])["verdict"] == "held"
    share = claim(direction="below", threshold=0.5, statistic="runs unstable")
    out = R.judge(share, {"hyperrep": R.Count(15, 20), "distillation": R.Count(9, 20)})
    assert out["parts"]["hyperrep"]["verdict"] == "not held"
    assert out["parts"]["distillation"]["verdict"] == "inconclusive"
    assert out["verdict"] == "not held" and out["parts"]["hyperrep"]["runs"] == 20
    with pytest.raises(ValueError, match="Count"):
        R.judge(c, {"x": R.Count(1, 5)})


def test_judge_an_equivalence_of_arms():
    base = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    c = claim(direction="equivalent", margin=math.log(1.05), statistic="log final loss")
    out = R.judge(c, {"two": [np.log(base), np.log(base * 1.01)]})
    part = out["parts"]["two"]
    assert out["verdict"] == "held" and part["excluded"] == 0 and list(part["pairs"]) == ["0 vs 1"]
    three = {"o1": np.log(base), "o2": np.log(base * 1.3), "o3": np.log(base * 1.01)}
    part = R.judge(c, {"options": three})["parts"]["options"]
    assert part["verdict"] == "not held"
    assert set(part["pairs"]) == {"o1 vs o2", "o1 vs o3", "o2 vs o3"}
    assert part["pairs"]["o1 vs o3"]["verdict"] == "held"
    assert part["p_not_held"] == pytest.approx(3 * min(
        V.equivalent(three[x], three[y], c.margin, "s", log=False).p_not_held
        for x, y in (("o1", "o2"), ("o1", "o3"), ("o2", "o3"))))
    json.dumps(out, allow_nan=False)


def test_judge_an_equivalence_of_differences_with_diverged_pairs():
    c = claim(direction="equivalent", margin=0.05)
    part = R.judge(c, [0.01, -0.02, 0.0, 0.015, np.nan, np.nan])["parts"]["log A / B"]
    assert (part["verdict"], part["excluded"], part["runs"], part["one_sided"]) == ("held", 2, 4, 0)
    part = R.judge(c, [0.01, -0.02, 0.0, 0.015, np.inf])["parts"]["log A / B"]
    assert part["verdict"] == "inconclusive" and part["one_sided"] == 1
    assert part["interval"][1] == "inf"


def test_judge_marks_a_verdict_fragile():
    """Three runs: the t-quantile is wide, the bootstrap percentile interval is not."""
    out = R.judge(claim(direction="above", threshold=0.9), [1.0, 1.2, 1.1])
    assert out["verdict"] == "inconclusive" and out["bootstrap_verdict"] == "held"
    assert out["fragile"] is True


def test_adjust_applies_holm_over_the_family():
    judged = {"a": {"verdict": "held", "p_value": 0.001},
              "b": {"verdict": "not held", "p_value": 0.011},
              "c": {"verdict": "held", "p_value": 0.03},
              "d": {"verdict": "inconclusive", "p_value": 0.4}}
    # sorted: 0.001 <= 0.05/4; 0.011 <= 0.05/3; 0.03 > 0.05/2: stop (c would stand alone)
    assert R.adjust(judged) == {"a": "held", "b": "not held", "c": "inconclusive",
                                "d": "inconclusive"}
    assert R.adjust({"c": judged["c"]}) == {"c": "held"}
