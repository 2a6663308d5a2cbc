# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -papermill,-execution,-ExecuteTime
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Beyond the paper: why BiSLS's upper search fails, condition (14) measured
#
# The scorecard's sharpest findings come from one mechanism: with $\delta = 0$ many of
# BiSLS's upper searches on hyper-representation fail (without the early exit, after
# spending their whole budget) and take a negligible step. This page measures that mechanism. The search tests condition (14),
#
# $$\varphi(\alpha) = f\big(x^k - \alpha d_k,\ \hat y(x^k - \alpha d_k)\big) \le f_{\text{ref}} - p\,\alpha\,\|d_k\|^2_* + \delta,$$
#
# where $\hat y$ is one lower step. Near $\alpha = 0$ the test reads
# $\varphi(0) - f_{\text{ref}} + \big(\varphi'(0) + p\|d_k\|^2_*\big)\alpha \le \delta$: it can
# pass for small steps only if the **offset** $\varphi(0) - f_{\text{ref}}$ is below
# $\delta$, and, when the offset is zero, only if the **slope** $\varphi'(0)$ is steeper
# than the $-p\|d_k\|^2_*$ that (14) asks. We record both at every search
# (`diagnostics=True`: one more forward pass and one backward), with each search's
# **outcome**: accepted by (14), accepted by the round-off guard (the decrease asked,
# or the margin, is below the resolution of $f$: a success decided by rounding), or
# failed. Three readings of Algorithm 2's garbled line 8 give $\hat y$ and
# $f_{\text{ref}}$ (`reference`): `paper`, one step from $y^{k+1}$ compared with
# $f(x^k, y^{k+1})$ as printed (an offset); `one_step`, the same step compared with the
# trial at $\alpha = 0$ (no offset, one more evaluation); `penultimate`, the last lower
# step redone from $y^{k,T-1}$ on its batch and step (no offset, no extra cost).
#
# Why the slope is shallow: with $\hat y(\alpha) = y^+ - \beta\nabla_y g(x^k - \alpha d, y^+)$
# the chain rule gives $\varphi'(0) = -\langle h_\beta, d\rangle$ with
# $h_\beta = \nabla_x f - \beta\nabla^2_{xy} g\,\nabla_y f$, the hypergradient with
# $[\nabla^2_{yy} g]^{-1}$ replaced by $\beta I$ (checked against autograd in
# `tests/test_condition14.py`). With the identity estimator and $f$ independent of $x$,
# $h_\beta = \beta h_f$, and the search passes at small steps iff $\beta > p$; near a
# stationary point of $F$, $h_f \to 0$ while $h_f - h_\beta$ does not, so a fixed share of
# searches fails for any $p$ unless $\beta\nabla^2_{yy} g = I$. The paper gives no $p$ for
# (14): the [choices page](../book/en/choices.md) lists the readings of it and of the
# other open constants.
#
# ```{admonition} Settings
# :class: note
# Hyper-representation at the page's own `cpu` sizes (`bisls_core.sweeps.condition14`):
# 300 training, 150 validation and 300 test digits, batches of 32, $T = 3$, 3 CG steps,
# $K = 20$, metrics every 10 iterations, $w = 0.5$ with 50 rounds (15 decades), 5 seeds;
# BiSLS's book settings ($\alpha_{b,0} = 10$, $\beta_{b,0} = 100$, $p$ and $\bar c$ of the
# reading in use, option 1 downstairs). The grid: 3 readings × $\delta \in \{0, 10^{-6}, 10^{-3}\}$ ×
# BiSLS-SGD/Adam × upper reset option 1 or 3 ($\eta = 2$), with the early exit on
# (`early_exit=True`, `on_failure="floor"`); the exit-off comparison reruns
# $\delta = 0$, option 3 on the first `n_compare` seeds (all 5). A smaller problem than the figure pages,
# so that the whole page computes within about 20 CPU-minutes on one core.
# ```

# %% tags=["parameters"]
scale = None  # None: the book's scale ($BISLS_BOOK_SCALE, else "cpu")
device = "auto"
n_runs = None
seed = 0
recompute = False
reading = None  # a reading of the paper's open choices (bisls_core.readings); None: the primary one
K = None
n_compare = None
data_root = None

# %%
import numpy as np

from bisls_core import data, experiments, plotting, sweeps
from bisls_core.sweeps import claims
from bisls_core.sweeps import condition14 as C

opts = sweeps.start(scale, device, n_runs, seed, recompute, reading)
scale = opts["scale"]  # the book's scale when the parameter is None
sz = C.sizes(scale, K=K, n_runs=n_runs, n_compare=n_compare)
sz["data_root"] = data.mnist_root(data_root)  # None: the shipped subset (cache keys unchanged)
print(data.mnist_in_use(sz["data_root"]))
{k: v for k, v in sz.items() if k != "data_root"}

# %%
grid, compare = C.run(sz, **opts)

# %% [markdown]
# ## Outcomes, cost and result of every configuration
#
# Per configuration (means over the runs): the share of searches accepted by
# condition (14), by the round-off guard, and failed; rounds per search and the
# **decades** of step size they span ($\text{rounds}\cdot\log_{10}(1/w)$, a unit that does
# not depend on $w$); the median accepted step (searches accepted by (14)); the final
# validation loss and test accuracy. With the early exit on, a failed search costs
# only the rounds it took to see that it cannot succeed. Two tables, so that each fits
# the page: the searches, then the step and the result.

# %%
rows = C.summary(grid, sz)
print(f"{'configuration':44s} {'(14)':>5s} {'guard':>5s} {'fail':>5s} {'rounds':>6s} "
      f"{'decades':>7s}")
for r in rows:
    print(f"{r['label']:44s} {r['accepted']:5.0%} {r['guard']:5.0%} {r['failed']:5.0%} "
          f"{r['rounds']:6.1f} {r['decades']:7.1f}")
print(f"\n{'configuration':44s} {'median α':>9s} {'val loss':>8s} {'test acc':>8s}")
for r in rows:
    print(f"{r['label']:44s} {r['alpha']:9.2g} {r['val_loss']:8.4f} {r['test_acc']:8.1%}")

# %% [markdown]
# ## The slope against what (14) asks
#
# The distribution of $\varphi'(0)/(-p\|d_k\|^2_*)$ over every search: at 1 the slope is
# exactly what (14) asks to first order; above 1 small steps pass when there is no
# offset; below 1 (below 0: the trial *rises* along the search direction) no small step
# passes, whatever the reading.

# %%
fig = C.slope_figure(grid)
plotting.publish(fig, "search_condition14")
ratios = C.by_reading(grid, C.slope_ratios)
offsets = C.by_reading(grid, lambda rec: np.asarray(rec["upper_offset"], float))
for r in C.READINGS:
    v, o = ratios[r], offsets[r][np.isfinite(offsets[r])]
    print(f"{r:12s} searches {v.size:5d}: slope ratio < 1 in {np.mean(v < 1):4.0%}, < 0 "
          f"in {np.mean(v < 0):4.0%};\n{'':12s} offset > 0 in {np.mean(o > 0):4.0%} "
          f"(median |offset| {np.median(np.abs(o)):.2g})")

# %% [markdown]
# ```{glue:figure} search_condition14
# :name: fig-search_condition14
#
# Slope of the trial function at $\alpha = 0$ over the slope that condition (14) asks,
# $\varphi'(0)/(-p\|d_k\|^2_*)$, for every upper search of the grid, per reading of the
# trial point; left BiSLS-SGD, right BiSLS-Adam. Dotted: 1 (below it no small step can
# pass); solid: 0 (below it the trial rises along the search direction).
# ```

# %% [markdown]
# ## Stopping hopeless searches
#
# The early exit stops a search when the linear model of the trial says no step at or
# below the next one can pass (a proof when $\varphi$ is convex along the direction, a
# prediction otherwise), or when the trial value stopped changing above
# $f_{\text{ref}} + \delta$. With `on_failure="floor"` it returns the step the full budget
# would have ended on. The runs with the exit off record when the test *would* have
# fired: a prediction is wrong when condition (14) then accepted the search. Below, per
# method and reading ($\delta = 0$, option 3, same seeds): how often the test fired and
# what became of those searches, the upper rounds and function evaluations per
# iteration (off -> on), and the final validation loss (off -> on).

# %%
for line in C.exit_comparison(grid, compare):  # one line per method and reading, cut to fit
    print(line.replace("; ", ";\n    ").replace(" | ", "\n    "))

# %% [markdown]
# ## The claims this bears on
#
# Section 2 says that "simply setting $\delta = 0$ works well", and Algorithm 2 takes
# for granted that the upper search finds a step. Below, per seed, the share of the
# upper searches that failed with $\delta = 0$ (option 3, the paper's recommendation), for
# each reading; the claim is read as "held" when the 95 % interval of that share lies
# below 10 %.

# %%
zero = {f"{m}, {r}": C.label(m, r, 0.0, "option 3")
        for m in ("BiSLS-SGD", "BiSLS-Adam") for r in C.READINGS}
per_run = {k: np.mean(np.asarray(grid[lab]["upper_outcome"]) >= 2, axis=1) for k, lab in zero.items()}
paper_parts = {k: claims.part(v, "share of failed upper searches", claim="below", threshold=0.1)
               for k, v in per_run.items() if k.endswith(", paper")}
res = claims.judge(paper_parts, claim="cond14-delta0-search")
others = "; ".join(f"{k}: {np.mean(v):.0%}" for k, v in per_run.items() if not k.endswith(", paper"))
shares = {k: C.outcome_shares(grid[lab]) for k, lab in zero.items()}
split = "; ".join(f"{k}: {s['accepted']:.0%} / {s['guard']:.0%}" for k, s in shares.items())
print(experiments.record_claim(
    "search_condition14", "cond14-delta0-search", scale=scale, judged=res, why=res["why"],
    claim="with delta = 0 the upper search finds a step satisfying (14)",
    paper="qualitative (Section 2: 'simply setting delta = 0 works well'; Algorithm 2)",
    ours=f"paper reading, per seed: {res['text']}; other readings (mean share failed): {others}; "
         f"searches accepted by (14) / by the round-off guard: {split}"))

# %% [markdown]
# ## What this means for the claims it bears on
#
# The numbers below are those printed above (5 seeds, the exit comparison included),
# under the book's primary reading of the paper's open choices (`paper-evidence`:
# $p = 0.1$ in (14), BiSLS-Adam's trial along $A_k^{-1}h_f$; see the
# [open choices page](open_choices.ipynb)). Under the earlier constants (`as-before`,
# $p = 0.5$, the trial along $A_k^{-1}\hat m$) the slope was shallower than (14) asks in
# 99-100 % of the searches and about half of them failed with $\delta = 0$; the claims'
# verdicts under both readings are on the open choices page.
#
# - **The mechanism.** With $p = 0.1$ the slope of the trial is shallower than the
#   $-p\|d_k\|^2_*$ that (14) asks in 36-46 % of the searches (below 0, the trial rising
#   along the direction, in 10-19 %): the trial holds one lower step, so its slope is
#   that of a hypergradient with $[\nabla^2_{yy} g]^{-1}$ replaced by $\beta I$, not that
#   of the CG direction $d_k$ (the derivation is on the choices page). With the printed
#   reading the offset is positive in 43 % of the searches: the one lower step inside
#   $\hat y$ raises $f$, and no small step can pass with $\delta = 0$. About 40 % of the
#   searches fail with $\delta = 0$ (the claim below), under every reading.
# - **Figures 7a and 8a** (BiSLS against tuned steps; the upper search is essential):
#   with the primary reading the failed searches no longer keep BiSLS-Adam behind the
#   tuned steps; the early exit does not change the steps with the printed reading and
#   `on_failure="floor"` (its prediction was never wrong there: the same final losses),
#   only the cost.
# - **Figure 13** (search cost): with the exit on, option 3 costs 1.7-2.2 upper rounds per
#   iteration (0.5-0.7 decades at $w = 0.5$) instead of 21-22 with the exit off, the order
#   of the paper's ~9 rounds at $w = 0.9$ (0.4 decades).
# - **Figures 14 and 15** ($\delta$ over orders of magnitude; $\delta > 0$ as a safeguard):
#   with the printed reading the offset dwarfs small slacks, so $\delta = 10^{-6}$ changes
#   nothing and $10^{-3}$ little here (38-40 % failed searches at $\delta = 0$, 33-35 % at
#   $10^{-3}$). With a zero-offset reading any $\delta > 0$ makes every search
#   satisfiable, but the accepted steps are then what $\delta$ buys (with option 3, median
#   $\alpha$ $1.5\cdot 10^{-4}$ at $\delta = 10^{-6}$ against $0.039$ at $10^{-3}$ for
#   BiSLS-SGD with `one_step`, and a test accuracy near 21 % against 40 %), and at
#   $\delta = 10^{-6}$ the round-off guard accepts 10-40 % of them with the penultimate
#   reading.
# - **The early exit's predictions.** With the printed reading the exit stopped no search
#   that (14) would have accepted. With the zero-offset readings it did: of the searches
#   where its test fired, 20-24 % (`one_step`) and 0-5 % (`penultimate`) would have been
#   accepted by (14), and 41-64 % by the round-off guard at steps below the resolution of
#   $f$ (with the exit off, option 3 then starts every later search there and stalls); the
#   exit turns such a search into a failure, which Algorithm 3 does not remember, and so
#   changes the final losses of these readings (printed above). The book's figures use
#   the printed reading.
