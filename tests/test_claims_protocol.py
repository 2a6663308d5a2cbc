"""The verdict protocol fixed in advance (issue 25): the claims registry, the parts a page
hands it, what a claim record stores, the choices made on tuning seeds and the
scorecard's Holm-adjusted counts."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bisls_core import claims_registry as CR
from bisls_core import experiments as E
from bisls_core import registry as R
from bisls_core.records import JUDGED_KEYS, check_claims
from bisls_core.sweeps import claims, distillation, hyperrep, parameter_free, single_level

from _scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ the registry is the only way


def test_record_claim_refuses_a_claim_outside_the_registry(tmp_path, monkeypatch):
    """A page that computes a verdict outside the registry cannot record it."""
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    with pytest.raises(R.UnknownClaimError, match="unknown claim id 'fig99-made-up'"):
        E.record_claim("fig99", "fig99-made-up", claim="c", paper="p", ours="o",
                       verdict="held", scale="smoke")
    assert not list(tmp_path.rglob("*.json"))


def _recorded_ids() -> set[str]:
    ids = set()
    for path in (ROOT / "results").glob("*/claims/**/*.json"):
        ids |= set(json.loads(path.read_text(encoding="utf-8")))
    return ids


def test_every_recorded_claim_is_registered():
    ids = _recorded_ids()
    assert ids, "no claim records: run `make results`"
    assert not sorted(ids - set(R.REGISTRY)), "register these claims in bisls_core/claims_registry.py"


def _record_claim_calls():
    files = sorted((ROOT / "notebooks").glob("*.py")) + sorted((ROOT / "bisls_core").rglob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) \
                    == "record_claim":
                yield path, node


def test_every_page_records_a_judged_claim():
    """Each ``record_claim`` call of the pages passes what ``claims.judge(..., claim=id)``
    returned: no verdict reaches a record without the registered analysis."""
    calls = list(_record_claim_calls())
    assert len(calls) >= 25
    bare = [f"{p.relative_to(ROOT)}:{n.lineno}" for p, n in calls
            if "judged" not in {k.arg for k in n.keywords}]
    assert not bare, f"record_claim without judged= at {bare}"


def test_the_registry_declares_every_rule():
    assert len(R.REGISTRY) >= 36
    for cid in R.REGISTRY:
        c = R.lookup(cid)
        assert c.window == R.FINAL_WINDOW or c.reason, cid
        assert c.combine in ("all", "any")
        for _, rule in c.parts:
            assert isinstance(rule, R.Rule)
    alike = [cid for cid in R.REGISTRY if R.lookup(cid).direction == "equivalent"
             or any(r.direction == "equivalent" for _, r in R.lookup(cid).parts)]
    assert {"fig07-robust-large-steps", "fig08-robust-starts", "fig11-option2-worse",
            "fig12-eta-robust", "fig14-delta-robust", "fig15-delta-robust", "fig17-one-vs-two",
            "fig18-one-vs-two", "fig19-bisps-one-vs-two-samples"} <= set(alike)
    for cid in alike:  # one margin for every "alike"
        c = R.lookup(cid)
        margins = {r.margin for _, r in c.parts if r.direction == "equivalent"} | \
            ({c.margin} if c.direction == "equivalent" else set())
        assert margins == {CR.ALIKE_MARGIN} and c.paired
    assert "within" not in {R.lookup(cid).direction for cid in R.REGISTRY}
    assert "| `thm1-rate` |" in "\n".join(CR.rules_table())


def test_the_rate_claims_follow_one_rule():
    rates = {cid: R.lookup(cid).rate for cid in ("thm1-rate", "thm2-rate", "thm3-rate")}
    assert rates == {"thm1-rate": "log K / sqrt K", "thm2-rate": "log K / K",
                     "thm3-rate": "log K / sqrt K"}
    K = np.geomspace(200, 4000, 20)
    expect = np.polyfit(np.log(K), np.log(np.log(K) / np.sqrt(K)), 1)[0]
    assert R.rate_threshold("log K / sqrt K", K) == pytest.approx(expect)
    assert -0.5 < R.rate_threshold("log K / sqrt K", K) < -0.3   # the log factor, included
    assert -1.0 < R.rate_threshold("log K / K", K) < -0.8
    with pytest.raises(ValueError, match="unknown rate"):
        R.rate_threshold("1 / K", K)


# ------------------------------------------------------------------ parts and judge


def test_a_part_unpacks_as_before_and_carries_its_values():
    p = claims.part([-0.4, -0.5, -0.45], "log A / B")
    verdict, iv = p
    assert (verdict, p.verdict, iv is p.interval) == ("held", "held", True)
    assert p.rule == R.Rule("below", 0.0) and np.allclose(p.values, [-0.4, -0.5, -0.45])
    s = claims.share(3, 5, "runs diverged")
    assert s.values == R.Count(3, 5) and s.direction == "above" and len(s) == 2
    a = claims.alike({"x": [1.0, 2.0, np.nan], "y": [1.01, 2.0, np.nan]}, "log loss")
    assert a.direction == "equivalent" and a.margin == pytest.approx(math.log(1.05))
    assert np.allclose(a.values["y"][:2], np.log([1.01, 2.0])) and np.isnan(a.values["x"][2])
    one = claims.part([0.3], "x")
    assert tuple(one) == ("inconclusive", None)


def _fig07_parts(fin, rule_alike=True):
    large = claims.part([1.0, 2.0, 1.5, 1.2, 1.8], "log step", claim="above")
    alike = claims.alike(fin, "log final val loss") if rule_alike else \
        claims.spread(list(fin.values()))
    return {"alike": alike, "large": large, "decay": large}


FIN = {"a": np.exp([0.1, 0.2, 0.3, 0.4, 0.5]), "b": np.exp([0.105, 0.2, 0.3, 0.41, 0.5])}


def test_judge_with_a_claim_id_returns_the_registered_analysis():
    res = claims.judge(_fig07_parts(FIN), claim="fig07-robust-large-steps",
                       window={"alike": claims.alike(FIN, "log final val loss")})
    assert {"verdict", "interval", "text", "why", *JUDGED_KEYS} <= set(res)
    assert res["verdict"] == "held" and res["claim"] == "fig07-robust-large-steps"
    part = res["parts"]["alike"]
    assert part["direction"] == "equivalent" and part["margin"] == pytest.approx(CR.ALIKE_MARGIN)
    assert part["window_verdict"] == "held" and "pairs" in part and part["excluded"] == 0
    assert res["parts"]["large"]["threshold"] == 0.0 and res["parts"]["large"]["runs"] == 5
    assert 0 <= res["p_value"] <= 1 and res["window_alternative"] == R.NEIGHBOUR_WINDOW
    assert res["fragile"] is False
    json.dumps({k: res[k] for k in JUDGED_KEYS}, allow_nan=False)


def test_judge_refuses_a_rule_other_than_the_registered_one():
    with pytest.raises(R.RuleMismatchError, match="fig07-robust-large-steps', part 'alike'"):
        claims.judge(_fig07_parts(FIN, rule_alike=False), claim="fig07-robust-large-steps",
                     window={})
    parts = _fig07_parts(FIN)
    with pytest.raises(R.RuleMismatchError, match="no part matches the registered pattern 'decay'"):
        claims.judge({k: v for k, v in parts.items() if k != "decay"},
                     claim="fig07-robust-large-steps", window={})
    with pytest.raises(R.RuleMismatchError, match="mode 'any'"):
        claims.judge(parts, claim="fig07-robust-large-steps", mode="any", window={})
    with pytest.raises(TypeError, match="per-run values"):
        claims.judge({"alike": tuple(parts["alike"]), "large": parts["large"],
                      "decay": parts["decay"]}, claim="fig07-robust-large-steps", window={})
    with pytest.raises(ValueError, match="neighbouring window"):
        claims.judge(parts, claim="fig07-robust-large-steps")
    slope = claims.part([-0.6, -0.7], "slope", threshold=-0.5, horizons=[100, 1000])
    with pytest.raises(R.RuleMismatchError, match="thm1-rate"):
        claims.judge({"slope": slope}, claim="thm1-rate")
    right = claims.part([-0.6, -0.7], "slope", horizons=[100, 1000],
                        threshold=R.rate_threshold("log K / sqrt K", [100, 1000]))
    assert claims.judge({"slope": right}, claim="thm1-rate")["parts"]["slope"]["threshold"] == \
        pytest.approx(right.threshold)
    with pytest.raises(ValueError, match="no window alternative"):
        claims.judge({"slope": right}, claim="thm1-rate", window={})


def test_an_alike_part_leaves_out_and_counts_seeds_where_both_diverged():
    fin = {"1 sample": [1.0, 2.0, 3.0, np.nan, 5.0], "2 samples": [1.01, 2.0, 3.0, np.nan, 5.02]}
    res = claims.judge({"x": claims.alike(fin, "log loss")}, claim="fig17-one-vs-two",
                       window={"x": claims.alike(fin, "log loss")})
    part = res["parts"]["x"]
    assert part["excluded"] == 1 and part["runs"] == 4 and res["verdict"] == "held"
    fin["2 samples"][0] = np.nan                           # one diverged: not alike there
    assert claims.judge({"x": claims.alike(fin, "l")}, claim="fig17-one-vs-two",
                        window={})["verdict"] != "held"


def test_the_window_alternative_can_make_a_verdict_fragile():
    held = claims.part([-0.4, -0.5, -0.45, -0.42, -0.48], "log loss")
    straddles = claims.part([-0.4, 0.5, -0.45, 0.42, -0.48], "log loss")
    res = claims.judge({"x": held}, claim="fig16a-bisls-beats-bisps", window={"x": straddles})
    assert (res["verdict"], res["window_verdict"], res["fragile"]) == ("held", "inconclusive", True)


def test_record_claim_stores_the_judged_analysis(tmp_path, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    res = claims.judge({"x": claims.part([-0.4, -0.5, -0.45, -0.42, -0.48], "log loss")},
                       claim="fig16a-bisls-beats-bisps",
                       window={"x": claims.part([-0.4, -0.5, -0.45, -0.4, -0.5], "log loss")})
    args = dict(claim="c", paper="p", ours="o", scale="smoke")
    E.record_claim("fig16_bisps_vs_bisls_T50", "fig16a-bisls-beats-bisps", judged=res, **args)
    path = tmp_path / "smoke" / "claims" / "fig16_bisps_vs_bisls_T50.json"
    rec = json.loads(path.read_text())["fig16a-bisls-beats-bisps"]
    assert rec["verdict"] == "held" and rec["runs"] == 5 and set(JUDGED_KEYS) <= set(rec)
    assert rec["parts"]["x"]["p_held"] < 0.05 and rec["window_verdict"] == "held"
    assert rec["fragile"] is False and rec["combine"] == "all" and rec["paired"] is True
    with pytest.raises(ValueError, match="differs from the judged"):
        E.record_claim("fig16_bisps_vs_bisls_T50", "fig16a-bisls-beats-bisps", judged=res,
                       verdict="not held", **args)
    with pytest.raises(ValueError, match="judged as 'fig16a-bisls-beats-bisps'"):
        E.record_claim("fig16_bisps_vs_bisls_T50", "fig16b-bisls-beats-tuned-T50", judged=res,
                       **args)
    with pytest.raises(ValueError, match="registered for the page 'fig16_bisps_vs_bisls_T50'"):
        E.record_claim("fig17_one_vs_two_samples", "fig16a-bisls-beats-bisps", judged=res, **args)
    with pytest.raises(ValueError, match="lacks"):
        E.record_claim("fig16_bisps_vs_bisls_T50", "fig16a-bisls-beats-bisps",
                       judged={"claim": "fig16a-bisls-beats-bisps", "verdict": "held"}, **args)


def test_an_old_record_without_the_analysis_stays_readable():
    old = {"x-1": {"claim": "c", "paper": "p", "ours": "o", "verdict": "partly", "scale": "cpu",
                   "why": "", "notebook": "nb", "runs": 5, "interval": [0.0, 1.0],
                   "statistic": "s"}}
    assert check_claims(old, "nb.json") == old
    half = {"x-1": {**old["x-1"], "p_value": 0.01}}          # the analysis comes whole
    with pytest.raises(Exception, match="p_value"):
        check_claims(half, "nb.json")


# ------------------------------------------------------------------ windows and choices


def test_final_values_take_the_book_wide_window():
    rec = {"val_loss": np.array([[np.nan if k % 5 else float(k) for k in range(150)]] * 2),
           "diverged": np.zeros((2, 150), bool)}
    evaluated = np.arange(0, 150, 5)                         # 30 evaluations: the last 3
    assert E.final_values(rec, "val_loss") == pytest.approx([evaluated[-3:].mean()] * 2)
    assert E.final_values(rec, "val_loss", claims.NEIGHBOUR_FRACTION)[0] == \
        pytest.approx(evaluated[-6:].mean())
    curve = {"loss": np.arange(40.0).reshape(2, 20)}
    assert np.allclose(single_level.tail_mean(curve), [18.5, 38.5])       # last 2 of 20
    assert np.allclose(single_level.tail_mean(curve, fraction=0.2), [17.5, 37.5])
    grid = {"a": {"val_loss": rec["val_loss"], "diverged": rec["diverged"]}}
    assert hyperrep.finals(grid)[0]["a"] == pytest.approx(E.final_values(rec, "val_loss"))


def test_every_choice_is_made_on_at_least_three_tuning_runs():
    for presets in (hyperrep.PRESETS, distillation.PRESETS, single_level.W8A_PRESETS):
        assert presets["cpu"]["tune_runs"] >= 3 and presets["paper"]["tune_runs"] >= 3
    page = (ROOT / "notebooks" / "beyond_parameter_free.py").read_text(encoding="utf-8")
    assert page.count('"tune_runs": 3') == 2
    from bisls_core import sweeps

    opts = {"scale": "smoke", "seed": 3, "device": "cpu", "recompute": False}
    assert sweeps.tuning(opts)["seed"] == 3 + E.TUNING_SEED_OFFSET


def test_the_tuned_winner_is_chosen_on_its_tuning_runs_with_a_diverged_run_the_worst():
    def rec(values, diverged=False):
        v = np.array(values, dtype=float)[:, None]
        return {"val_loss": v, "diverged": np.full(v.shape, diverged)}

    tuned = {"SGD": ("SGD α=1", {}, {"SGD α=1": rec([1.0, 1.0, 1.0])}),
             "Adam": ("Adam α=0.1", {}, {"Adam α=0.1": rec([0.5, 0.5, 0.5], diverged=True)})}
    assert distillation.tuned_best(tuned) == "SGD"
    grid = {f"p/{m}": {"n_grad": np.ones((3, 2)), "n_hvp": np.zeros((3, 2)),
                       "val_loss": np.full((3, 2), v), "initial_val_loss": np.ones(3),
                       "diverged": np.zeros((3, 2), bool)} for m, v in (("A", 0.5), ("B", 0.4))}
    grid["p/B"]["diverged"][1, 1] = True                     # B diverged once: the worst
    assert parameter_free.choose(grid, "p", ("A", "B"), ("A", "B")) == "A"


def test_worst_of_and_differences_count_a_diverged_run_as_the_worst():
    assert np.array_equal(claims.worst_of([1.0, np.nan, 3.0], [2.0, 1.0, np.nan]),
                          [2.0, np.inf, np.inf])
    d = claims.differences([0.9, np.nan, np.nan, 0.8], [0.8, 0.7, np.nan, np.nan],
                           lower_is_better=False)
    assert np.allclose(d[[0, 2]], [0.1, 0.0]) and d[1] == -np.inf and d[3] == np.inf


# ------------------------------------------------------------------ the scorecard


def _record(verdict, p_value=None, fragile=False, **extra):
    rec = {"claim": "c", "paper": "p", "ours": "o", "verdict": verdict, "why": ""}
    if p_value is not None:
        rec |= {"p_value": p_value, "fragile": fragile, "combine": "all", "paired": True,
                "bootstrap_verdict": verdict, "window_verdict": verdict,
                "window_alternative": R.NEIGHBOUR_WINDOW, "window": R.FINAL_WINDOW,
                "parts": {"x": {"verdict": verdict, "direction": "below", "threshold": 0.0,
                                "margin": None}}}
    return rec | extra


def test_scorecard_shows_unadjusted_and_holm_adjusted_verdicts():
    card = load_script("scorecard")
    found = {"fig04_quadratics": ("cpu", {
        "fig04-a": _record("held", 0.001), "fig04-b": _record("not held", 0.011),
        "fig04-c": _record("held", 0.03, fragile=True), "fig04-d": _record("inconclusive", 0.4),
        "fig04-e": _record("partly")}),
        "beyond_parameter_free": ("cpu", {"beyond-x": _record("held", 0.2)})}
    assert card.holm_verdicts(found) == {"fig04-a": "held", "fig04-b": "not held",
                                         "fig04-c": "inconclusive", "fig04-d": "inconclusive",
                                         "fig04-e": None}
    page = card.render(found)
    assert ("**Summary** (each claim's registered verdict, unadjusted): {bdg-success}`2 held` "
            "{bdg-warning}`1 partly` {bdg-danger}`1 not held` {bdg-muted}`1 inconclusive` of 5") in page
    assert ("**After Holm's adjustment** across the 4 claims of the paper with a stored p-value"
            in page)
    assert ("{bdg-success}`1 held` {bdg-warning}`1 partly` {bdg-danger}`1 not held` "
            "{bdg-muted}`2 inconclusive`") in page
    assert "1 claim(s) without a p-value" in page and "Holm: no p-value" in page
    assert "Holm: {bdg-muted}`inconclusive`" in page and "{bdg-warning-line}`fragile`" in page
    assert "recorded before the claims registry" in page
    assert "beyond the paper: not in Holm's family" in page
    assert "## The protocol, fixed in advance" in page and "The registered rules" in page
    assert ":widths: 12 17 71" in page


def test_scorecard_of_records_from_before_the_registry():
    card = load_script("scorecard")
    page = card.render({"fig04_quadratics": ("cpu", {"fig04-a": _record("held")})})
    assert "no claim of the paper stores a p-value yet" in page and "Holm: no p-value" in page


# --------------------------------------------------------------------------- Holm, stored
def test_the_adjustment_is_written_into_the_records_and_reversible(tmp_path, monkeypatch):
    """adjust_claims writes Holm's verdict into every record of the family: a held claim
    whose p-value Holm does not reject becomes inconclusive; a page beyond the paper keeps
    its own verdict with no adjusted p-value; a second call changes nothing."""
    from bisls_core.records import adjust_claims, read_claims

    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    monkeypatch.setenv("BISLS_WRITE_BOOK", "1")
    args = dict(claim="c", paper="p", ours="o", scale="smoke")
    def judged(values):
        part = {"x": claims.part(values, "log loss")}
        return claims.judge(part, claim="fig16a-bisls-beats-bisps", window=part)

    strong = judged([-0.4, -0.5, -0.45, -0.42, -0.48])
    weak = judged([-0.1, -0.5, -0.02, -0.3, -0.25])
    E.record_claim("fig16_bisps_vs_bisls_T50", "fig16a-bisls-beats-bisps", judged=strong, **args)
    path = tmp_path / "smoke" / "claims" / "fig16_bisps_vs_bisls_T50.json"
    assert adjust_claims("smoke") == [path]
    rec = read_claims(path)["fig16a-bisls-beats-bisps"]
    assert rec["adjusted_verdict"] == "held" and rec["p_adjusted"] == pytest.approx(rec["p_value"])
    assert adjust_claims("smoke") == []
    E.record_claim("fig16_bisps_vs_bisls_T50", "fig16a-bisls-beats-bisps", judged=weak, **args)
    assert weak["verdict"] == "held" and weak["p_value"] > 0.01
    # a family of two with the weak claim and a stronger one: Holm tests weak at 0.05
    E.record_claim("fig16_bisps_vs_bisls_T50", "fig16b-bisls-beats-tuned-T50",
                   judged={**strong, "claim": "fig16b-bisls-beats-tuned-T50"}, **args)
    adjust_claims("smoke")
    stored = read_claims(path)
    expected = "held" if weak["p_value"] <= 0.05 else "inconclusive"
    assert stored["fig16a-bisls-beats-bisps"]["adjusted_verdict"] == expected


def test_the_committed_records_carry_the_adjustment_the_scorecard_computes():
    from bisls_core.records import holm_family, read_claims

    folder = Path(__file__).resolve().parents[1] / "results" / "cpu" / "claims"
    by_page = {p.stem: read_claims(p) for p in sorted(folder.glob("*.json"))}
    adjusted, p_adj = holm_family(by_page)
    for page, recs in by_page.items():
        for cid, rec in recs.items():
            assert "adjusted_verdict" in rec, f"{cid}: run make notebooks (Holm's adjustment)"
            assert rec["adjusted_verdict"] == adjusted.get(cid, rec["verdict"]), cid
            assert rec["p_adjusted"] == p_adj.get(cid), cid


def test_a_paired_part_stores_the_per_seed_correlation_of_its_arms():
    a = np.array([0.30, 0.25, 0.40, 0.35, 0.28])
    b = a * np.array([1.10, 1.12, 1.09, 1.11, 1.10])  # paired: b follows a seed by seed
    lr = claims.log_ratios(a, b)
    assert lr.correlation == pytest.approx(np.corrcoef(np.log(a), np.log(b))[0, 1])
    assert lr.correlation > 0.99
    part = claims.part(lr, "log loss")
    res = claims.judge({"x": part}, claim="fig16a-bisls-beats-bisps", window={"x": part})
    assert res["parts"]["x"]["correlation"] == pytest.approx(lr.correlation)
    assert claims.log_ratios([1.0, np.nan, 2.0], [1.0, 2.0, 3.0]).correlation is None  # < 3 seeds
    assert "correlation" not in claims.judge(
        {"x": claims.part([-0.4, -0.5, -0.45, -0.42, -0.48], "log loss")},
        claim="fig16a-bisls-beats-bisps",
        window={"x": claims.part([-0.4, -0.5, -0.45, -0.42, -0.48], "log loss")})["parts"]["x"]
