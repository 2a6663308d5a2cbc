"""The book's claims, each with its analysis fixed before any run is read (issue 25).

One entry per claim id a page records (:func:`bisls_core.records.record_claim` refuses
any other): the per-run statistic, the final-value window (the book-wide
:data:`~bisls_core.registry.FINAL_WINDOW` unless the entry says why not), the rule of
each part (direction and decision point, or the margin of an equivalence), how the
parts combine and whether the runs are paired by seed. The shared rules:

* a comparison of two methods is the per-seed log-ratio of their final values (lower
  is better, a diverged run the worst outcome: :func:`bisls_core.verdicts.paired_log_ratios`),
  below 0;
* "these end alike" is an equivalence of the per-seed log-ratios of every pair of arms
  within :data:`ALIKE_MARGIN` (5 %; two one-sided tests, a seed where both runs diverged
  left out and counted);
* a conjunction ("A and B", "for every alpha_b0") combines with "all";
* a rate claim tests the slope its theorem's bound implies over the page's horizons,
  log factor included (:func:`bisls_core.registry.rate_threshold`): the least-squares
  slope of log(bound(K)) against log K, the bound being the K-dependence of the
  theorem's leading term, the same way for Theorems 1-3.

:func:`rules_table` lists them (the scorecard's protocol section).
"""

from __future__ import annotations

import math

from .registry import FINAL_WINDOW, NO_WINDOW, REGISTRY, Rule, register

__all__ = ["ALIKE", "ALIKE_MARGIN", "rules_table"]

#: The margin of every "alike" claim: final values within 5 % of each other (a log-ratio).
ALIKE_MARGIN = math.log1p(0.05)
#: The rule of an "alike" part.
ALIKE = Rule("equivalent", margin=ALIKE_MARGIN)
_LR = "per-seed log-ratio of the final values"


def _register(**fields) -> None:
    register(**fields)


# ------------------------------------------------------------------ single level
_register(id="fig04-spsb-fast", page="fig04_quadratics",
       text="Quadratics: SPSB converges fastest (before DecSPS, SPS_max, decaying SGD)",
       statistic="log first-k ratio SPSB / rival (first evaluated k with a gap below 1e-4)",
       window=f"{NO_WINDOW}: a first-hitting time", direction="below",
       reason="the claim is about speed: the first evaluated k with a gap below 1e-4 "
              "(never: infinitely late)")
_register(id="fig04-spsmax-unstable", page="fig04_quadratics",
       text="Quadratics: SPS_max is unstable (stalls with erratic steps)",
       statistic="log final-gap ratio SPS_max / SPSB", direction="above",
       threshold=math.log(10))
_register(id="fig05-spsb-slsb-best", page="fig05_w8a_logistic",
       text="w8a: SPSB and SLSB reach the lowest loss with similar steps; SLS is poor; "
            "DecSPS's step is much smaller than SPSB's",
       statistic=_LR, direction="below",
       parts={"similar": ALIKE, "SLS poor": Rule("above"),
              "DecSPS step small": Rule("below", math.log(0.1)), "lowest": Rule("below")},
       reason="'lowest': the better of SPSB/SLSB against the best rival, both chosen on "
              "tuning seeds; 'DecSPS step small' compares the median step over the last "
              "10 % of the iterations")
_register(id="fig05-decsps-worse-than-spsmax", page="fig05_w8a_logistic",
       text="w8a: DecSPS performs worse than SPS_max", statistic="log final loss DecSPS / SPS_max",
       direction="above")
_register(id="fig10-spsb-converges", page="fig10_quadratic_trajectories",
       text="SPSB with 1 or 2 samples converges to x* from every starting point",
       statistic="log10 worst final/initial distance", direction="below", threshold=-2.0,
       reason="per seed the worst of the starts and sample counts (they share the seed)")
_register(id="fig17-one-vs-two", page="fig17_one_vs_two_samples",
       text="w8a: SPSB/SLSB with 2 independent samples perform like 1 sample",
       statistic="log final loss 2 samples / 1 sample", direction="equivalent",
       margin=ALIKE_MARGIN)

# ------------------------------------------------------------------ theorems
_SLOPE = f"{NO_WINDOW}: a slope fitted over horizons"
_RATE_WHY = ("the statistic is a per-run least-squares slope of the theorem's quantity "
             "against K over the page's horizons; decision point: the same fit's slope of "
             "the bound's K-dependence ({}), log factor included")
_register(id="thm1-rate", page="thm1_convex_rate",
       text="Theorem 1: envelope step, convex: E[f(xbar_K) - f*] = O(log K / sqrt(K))",
       statistic="log-log slope per run", window=_SLOPE, direction="below",
       rate="log K / sqrt K", paired=False, reason=_RATE_WHY.format("log K / sqrt K"))
_register(id="thm2-rate", page="thm2_strongly_convex_rate",
       text="Theorem 2: envelope step, strongly convex: E[f(xbar_K) - f*] = O(log K / K)",
       statistic="log-log slope per run", window=_SLOPE, direction="below", rate="log K / K",
       paired=False, reason=_RATE_WHY.format("log K / K; the shift of K by k0 in the bound "
                                             "moves it by less than 0.01 over the fit"))
_register(id="thm3-rate", page="thm3_bisps_nonconvex_rate",
       text="Theorem 3: BiSPS's average squared hypergradient norm decays as O~(1/sqrt(K))",
       statistic="log-log slope per run", window=_SLOPE, direction="below",
       rate="log K / sqrt K", paired=False,
       reason=_RATE_WHY.format("log K / sqrt K, the bound's kappa^2 log K / sqrt K term "
                               "that the O~ hides"))

# ------------------------------------------------------------------ hyper-representation
_register(id="fig03-sgd-unstable", page="fig03_sgd_instability",
       text="Hyper-representation: fixed-step SGD diverges when beta or alpha is large",
       statistic="share of runs diverged at the largest step",
       window=f"{NO_WINDOW}: a count of the runs diverged by the last iteration",
       direction="above", paired=False,
       reason="a divergence is read at the end of the run, not from a final value")
_register(id="fig07-bisls-beats-tuned", page="fig07_bisls_vs_tuned",
       text="Hyper-representation: BiSLS-Adam (search from 5 decades above the tuned step) "
            "outperforms tuned Adam/SGD", statistic="log final val loss BiSLS-Adam / tuned",
       direction="below", parts={"vs tuned Adam": Rule("below"), "vs tuned SGD": Rule("below")})
_register(id="fig07-robust-large-steps", page="fig07_bisls_vs_tuned",
       text="BiSLS-Adam finds large alpha and beta early from starting points 3 decades apart; "
            "the steps then decay",
       statistic="log final val loss (alike); log steps (large, decay)", direction="above",
       parts={"alike": ALIKE, "large": Rule("above"), "decay": Rule("above")},
       reason="'large' and 'decay' compare the median accepted steps of the first and the "
              "last fifth of the iterations (per seed, the worst start)")
_register(id="fig08-upper-search-essential", page="fig08_ablations",
       text="Line search at the upper level is essential for the best performance",
       statistic="log final val loss best with / best without the upper search",
       direction="below", parts={"SGD": Rule("below"), "Adam": Rule("below")},
       reason="the best with (both, upper only) and without (lower only, neither) the "
              "upper search are chosen on tuning seeds, then compared on the evaluation seeds")
_register(id="fig08-generalises", page="fig08_ablations",
       text="BiSLS-Adam/SGD converge fast and generalise well (accuracy at least the tuned "
            "methods')", statistic="test accuracy BiSLS - tuned", direction="above",
       threshold=-0.01, parts={"SGD": Rule("above", -0.01), "Adam": Rule("above", -0.01)})
_register(id="fig08-robust-starts", page="fig08_ablations",
       text="BiSLS-Adam/SGD are highly robust to the search starts alpha_b0 and beta_b0",
       statistic="log final val loss", direction="equivalent", margin=ALIKE_MARGIN,
       parts={"*α_b0": ALIKE, "*β_b0": ALIKE})
_register(id="fig11-option2-worse", page="fig11_reset_options",
       text="Reset option 2 (monotone step) is worse than options 1 and 3, which perform "
            "nearly the same", statistic="log final val loss", direction="above",
       parts={"*: option 2 worse": Rule("above"), "*: options 1, 3 alike": ALIKE})
_register(id="fig12-eta-robust", page="fig12_eta_sweep",
       text="BiSLS is robust to the growth factor eta of reset option 3",
       statistic="log final val loss over eta > 1", direction="equivalent", margin=ALIKE_MARGIN)
_COUNTS = f"{NO_WINDOW}: a mean over every iteration"
_register(id="fig13-option3-cheaper", page="fig13_search_cost",
       text="Reset option 3 (eta = 2) costs far fewer upper-level rounds than option 1; "
            "option 2 costs the fewest", statistic="log rounds ratio", window=_COUNTS,
       direction="below", parts={"*option 3 / option 1": Rule("below", math.log(0.5)),
                                 "*option 2 / option 3": Rule("below")},
       reason="the cost of a search is its rounds per iteration over the whole run; 'far "
              "fewer': below half")
_register(id="fig13-lower-one-round", page="fig13_search_cost",
       text="The lower-level search costs about 1 round per step (option 1, beta_b0 = 100)",
       statistic="lower rounds per step", window=_COUNTS, direction="below", threshold=1.5,
       paired=False, reason="the rounds per step over the whole run; 'about 1': below 1.5")
for _fig, _option in (("fig14", "reset option 1"), ("fig15", "reset option 3, eta = 10")):
    _page = {"fig14": "fig14_delta_reset1", "fig15": "fig15_delta_reset3"}[_fig]
    _register(id=f"{_fig}-delta-robust", page=_page,
           text=f"BiSLS ({_option}) performs similarly for delta over 6 orders of magnitude",
           statistic="log final val loss", direction="equivalent", margin=ALIKE_MARGIN)
    _register(id=f"{_fig}-delta-safeguard", page=_page,
           text="delta > 0 is a safeguard that ensures an upper step size can be found",
           statistic="share of failed searches, largest delta minus 0", window=_COUNTS,
           direction="below", reason="the share of failed searches over the whole run")
_register(id="fig18-one-vs-two", page="fig18_bisps_one_vs_two_samples",
       text="Hyper-representation: BiSPS with 2 independent samples performs like 1 sample",
       statistic="log final val loss 2 / 1 sample", direction="equivalent",
       margin=ALIKE_MARGIN)
_register(id="cond14-delta0-search", page="search_condition14",
       text="with delta = 0 the upper search finds a step satisfying (14)",
       statistic="share of failed upper searches", window=_COUNTS, direction="below",
       threshold=0.1, paired=False, parts={"*, paper": Rule("below", 0.1)},
       reason="the share of failed searches over the whole run; judged under the printed "
              "reading of (14)")

# ------------------------------------------------------------------ data distillation
for _hg in ("identity", "neumann"):
    _register(id=f"fig06-bisps-vs-decaying-{_hg}", page="fig06_bisps_vs_decaying",
           text=f"Data distillation ({_hg} hypergradient): BiSPS performs better than "
                "decaying-step SGD, with less variation across alpha_b0",
           statistic="log final loss BiSPS / decaying-step SGD; spread over alpha_b0",
           direction="below", parts={"better at alpha_b0 = *": Rule("below"),
                                     "steadier": Rule("below")},
           reason="a run that ends above the zero model's loss (log 10) counts as diverged")
    _register(id=f"fig09-bisls-faster-{_hg}", page="fig09_distillation",
           text=f"Data distillation ({_hg} hypergradient): BiSLS-SGD converges significantly "
                "faster than fine-tuned Adam/SGD",
           statistic="log final loss BiSLS-SGD / tuned (the better of SGD/Adam on tuning seeds)",
           direction="below", parts={"lower": Rule("below"), "fast": Rule("below")},
           reason="'fast' reads BiSLS-SGD's loss over the same window of its first K/2 "
                  "iterations")
_register(id="fig09-realistic-digits", page="fig09_distillation",
       text="BiSLS-SGD generates realistic MNIST images",
       statistic="per run: images most like their own digit; own-digit correlation",
       window=f"{NO_WINDOW}: the images of the last iterate", direction="above",
       paired=False, parts={"own digit": Rule("above", 7.5), "not noise": Rule("above", 0.5)},
       reason="the claim is about the distilled images themselves, read at the end of the run")
_register(id="fig16a-bisls-beats-bisps", page="fig16_bisps_vs_bisls_T50",
       text="Data distillation: BiSLS-SGD performs better than BiSPS (for every alpha_b0)",
       statistic="log final loss BiSLS-SGD / BiSPS", direction="below")
_register(id="fig16b-bisls-beats-tuned-T50", page="fig16_bisps_vs_bisls_T50",
       text="Data distillation with T = 50: BiSLS-SGD outperforms fine-tuned Adam/SGD",
       statistic="log final loss BiSLS-SGD / tuned (the better of SGD/Adam on tuning seeds)",
       direction="below", parts={"lower": Rule("below"), "fast": Rule("below")})
_register(id="fig19-bisps-one-vs-two-samples", page="fig19_bisps_one_vs_two_samples",
       text="Data distillation: 1-sample and 2-samples BiSPS perform similarly for "
            "alpha_b0 = 10 and 50", statistic="log final val loss 2 / 1 sample",
       direction="equivalent", margin=ALIKE_MARGIN)

# ------------------------------------------------------------------ beyond the paper
_BUDGET = f"{NO_WINDOW}: the last evaluation within the oracle budget"
for _problem in ("hyperrep", "distillation"):
    _register(id=f"beyond-{_problem}-budget", page="beyond_parameter_free",
           text=f"Beyond the paper ({_problem}): at an equal oracle budget the best of "
                "BiSLS-SGD/Adam and BiSPS reaches a validation loss at least as low as the "
                "best parameter-free baseline at its defaults",
           statistic="log val loss at the budget, ours / baseline (each chosen on tuning seeds)",
           window=_BUDGET, direction="below",
           reason="the methods are compared where the cheapest one's budget ends")
_register(id="beyond-baselines-stable", page="beyond_parameter_free",
       text="Beyond the paper: the parameter-free baselines run stably at their package "
            "defaults on both bilevel problems (no divergence, every run ends below its start)",
       statistic="share of baseline runs unstable",
       window=f"{NO_WINDOW}: a count of unstable runs", direction="below", threshold=0.5,
       paired=False, reason="a run is unstable when it diverged or ended above its start")


def rules_table() -> list[str]:
    """The registered rules as Markdown table rows: id, statistic, window, rule per part,
    combine, paired."""
    rows = ["| claim | statistic | window | rule | combine | paired |",
            "| --- | --- | --- | --- | --- | --- |"]
    for cid in sorted(REGISTRY):
        c = REGISTRY.lookup(cid)
        rules = "; ".join([f"`{p}`: {r.text()}" for p, r in c.parts] +
                          ([f"other parts: {c.rule.text()}"] if c.parts else [c.rule.text()]))
        window = "book-wide" if c.window == FINAL_WINDOW else c.window
        rows.append(f"| `{cid}` | {c.statistic} | {window} | {rules} | {c.combine} | "
                    f"{'yes' if c.paired else 'no'} |")
    return rows
