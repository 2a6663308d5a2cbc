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
# # Figure 5: logistic regression on w8a
#
# Binary logistic regression on LIBSVM's w8a (49,749 samples, 300 features), which is not
# linearly separable: the model does not interpolate. The figure shows the training loss
# $f(x^k)$ and the step size $\gamma_k$ against the iterations for SPS$_{\max}$, DecSPS,
# SPSB, SLS, SLSB and decaying-step SGD, all started from $\gamma_{b,0} = 1000$.
# The paper's claim (Section 2): SPSB and SLSB converge fastest and have similar losses and
# step sizes; SLS (no decaying bound) performs poorly; DecSPS's monotone step ends up as small
# as decaying SGD's (much smaller than SPSB's), and it loses the early adaptivity.
#
# ```{admonition} Note on the paper's text
# :class: note
# The caption's last item reads "$\bar c = 0.1$ and $\gamma_{b,k} = \gamma_{b,0}/\sqrt{k+1}$
# for decaying-step SGD"; these are the settings of **SLSB** (otherwise missing from the
# caption), and decaying-step SGD uses the step $\gamma_{b,0}/\sqrt{k+1}$ (as Figure 17's
# caption says). The paper gives no batch size nor number of iterations; we use mini-batches
# of 100 samples, $x^0 = 0$, $l_i^* = 0$, and the sizes printed below
# (`W8A_PRESETS` in `bisls_core.sweeps.single_level`, shared with Figure 17).
# ```

# %% tags=["parameters"]
scale = None  # None: the book's scale ($BISLS_BOOK_SCALE, else "cpu")
device = "auto"
n_runs = None
seed = 0
recompute = False
K = None
batch = None
eval_every = None

# %%
import numpy as np

from bisls_core import experiments, plotting, sweeps
from bisls_core.sweeps import claims, single_level

opts = sweeps.start(scale, device, n_runs, seed, recompute)
scale = opts["scale"]  # the book's scale when the parameter is None
n_runs = experiments.decided_runs("fig05_w8a_logistic", scale, n_runs)  # more runs where undecided (scorecard)
sizes = single_level.w8a_sizes(scale, K=K, batch=batch, eval_every=eval_every, n_runs=n_runs)
sizes

# %% [markdown]
# The caption's settings, one configuration per legend name.

# %%
common = {"problem": "logistic", "problem_args": {"batch": sizes["batch"]}, "K": sizes["K"],
          "eval_every": sizes["eval_every"], "gamma_b0": 1000.0}
configs = {
    "SPS_max": {**common, "method": "SPS_max", "c": 1.0},
    "DecSPS": {**common, "method": "DecSPS", "c": 1.0},
    "SPSB": {**common, "method": "SPSB", "c": 1.0, "schedule": "inv_sqrt"},
    "SLS": {**common, "method": "SLS", "c": 1.0, "schedule": "constant"},
    "SLSB": {**common, "method": "SLSB", "c": 0.1, "schedule": "inv_sqrt"},
    "decaying-step SGD": {**common, "method": "decaying-step SGD", "schedule": "inv_sqrt"},
}
grid = single_level.run(configs, name="fig05_w8a_logistic", n_runs=sizes["n_runs"], **opts)

# %%
fig = single_level.loss_and_step_figure(grid, step_kw=dict(lw=0.8))
plotting.publish(fig, "fig05_w8a_logistic")

# %% [markdown]
# ```{glue:figure} fig05_w8a_logistic
# :name: fig-fig05_w8a_logistic
#
# Logistic regression on w8a, mean ± std over runs: training loss (left) and step size
# (right) against the iterations, $\gamma_{b,0} = 1000$ for every method. SPSB and SLSB
# take large adaptive steps under their decaying bound $\gamma_{b,0}/\sqrt{k+1}$ and reach
# the lowest loss; SLS's Armijo step with $\bar c = 1$ collapses; SPS$_{\max}$ keeps erratic
# steps; DecSPS's monotone step shrinks like $1/\sqrt{k}$.
# ```

# %% [markdown]
# The numbers behind the claim: the final training loss (the book-wide final value: the mean
# of the last 10% of the evaluations per run, mean ± std over runs) and the median step size
# over the last 10% of the iterations.

# %%
n_it = sizes["K"]
final = {lab: single_level.tail_mean(rec) for lab, rec in grid.items()}


def late_steps(fraction=0.1):
    return {lab: np.median(rec["step"][:, -max(1, int(np.ceil(fraction * n_it))):], axis=1)
            for lab, rec in grid.items()}


steps = late_steps()
for label in grid:
    print(f"{label:18s} final loss: {experiments.summarize(final[label], 3):22s} "
          f"late step: {experiments.summarize(steps[label], 2)}")
m = {lab: float(np.mean(v)) for lab, v in final.items()}
print(f"DecSPS loss < SPS_max loss: {m['DecSPS'] < m['SPS_max']} (the paper has the reverse)")

# %% [markdown]
# "The lowest loss" needs a choice: which of SPSB/SLSB is the better and which rival is the
# best. Both are chosen on tuning runs (`tune_runs` per method on seeds that no evaluation
# run uses, by their mean final loss, a diverged run the worst), then compared on the
# evaluation runs.

# %%
tuning = single_level.run(configs, name="fig05_w8a_logistic", n_runs=sizes["tune_runs"],
                          **sweeps.tuning(opts))
ours_m = experiments.best_label({m: tuning[m] for m in ("SPSB", "SLSB")}, "loss",
                                per_run=single_level.tail_mean)
rival_m = experiments.best_label({m: r for m, r in tuning.items() if m not in ("SPSB", "SLSB")},
                                 "loss", per_run=single_level.tail_mean)
print(f"chosen on {sizes['tune_runs']} tuning runs: {ours_m} (of SPSB, SLSB) against {rival_m} (of the rivals)")

# %% [markdown]
# The verdict judges each part of the claim on the runs paired by seed (the same batches):
# the log-ratio of the chosen one of SPSB/SLSB to the chosen rival (below 0), SPSB and SLSB
# alike (an equivalence of their log-ratio within 5 %), the log-ratio of SLS to the worse of
# SPSB/SLSB (above 0), and of DecSPS's late step to SPSB's (below $\log 0.1$).

# %%
def best_parts(final, steps):
    return {
        "lowest": claims.part(claims.log_ratios(final[ours_m], final[rival_m]),
                              f"log final loss {ours_m} / {rival_m} (chosen on tuning seeds)"),
        "similar": claims.alike({"SPSB": final["SPSB"], "SLSB": final["SLSB"]}, "log final loss SPSB / SLSB"),
        "SLS poor": claims.part(claims.log_ratios(final["SLS"], np.maximum(final["SPSB"], final["SLSB"])),
                                "log SLS / worse of SPSB, SLSB", claim="above"),
        "DecSPS step small": claims.part(claims.log_ratios(steps["DecSPS"], steps["SPSB"]),
                                         "log late step DecSPS / SPSB", threshold=np.log(0.1))}


neighbour = {lab: single_level.tail_mean(rec, fraction=claims.NEIGHBOUR_FRACTION) for lab, rec in grid.items()}
j = claims.judge(best_parts(final, steps), claim="fig05-spsb-slsb-best",
                 window=best_parts(neighbour, late_steps(claims.NEIGHBOUR_FRACTION)))
print(experiments.record_claim(
    "fig05_w8a_logistic", "fig05-spsb-slsb-best", scale=scale, judged=j, why=j["why"],
    claim="w8a: SPSB and SLSB reach the lowest loss with similar steps; SLS is poor; "
    "DecSPS's step is much smaller than SPSB's",
    paper="qualitative (Figure 5)",
    ours=f"final loss SPSB {m['SPSB']:.3g}, SLSB {m['SLSB']:.3g}, SLS {m['SLS']:.3g}, "
    f"SPS_max {m['SPS_max']:.3g}, DecSPS {m['DecSPS']:.3g}; {ours_m} against {rival_m}, both chosen "
    f"on tuning seeds; per run: {j['text']}"))

# %% [markdown]
# **Why DecSPS does not end worse than SPS$_{\max}$ here.** DecSPS (6) caps its step by
# $c_{k-1}\gamma_{k-1}/c_k$: once the Polyak ratio exceeds that cap, its step is
# $\gamma_0\sqrt{1/(k+1)}$ with $c_k = \sqrt{k+1}$, i.e. decaying-step SGD started from its
# first Polyak step $\gamma_0$, not from $\gamma_{b,0} = 1000$. On batches of 100 at $x^0 = 0$
# this happens from the first iteration on (printed below), and $\gamma_0 \approx 2$ is a
# well-sized step for this problem: DecSPS keeps lowering the loss, slowly, while SPS$_{\max}$
# reaches its noise level within 50 iterations and stays there. DecSPS is above SPS$_{\max}$
# early and passes below it within the horizon, so the ordering depends on the horizon and,
# above all, on the batch, neither of which the paper gives. With one sample per step (rerun
# this page with `-p batch 1 -p n_runs 5`; our check, outside the book's cache: one sample
# gives much smaller Polyak ratios than a batch, the cap keeps catching them, and the step
# falls to about $3 \times 10^{-3}$ by $K = 1000$) DecSPS ends at 0.31 against 0.27 for
# SPS$_{\max}$ (mean of 5 runs, worse in 4 of them): the paper's ordering. With batches of 10 it ends better again
# (0.21 against 0.32). We keep the book's batch of 100 and report the claim as measured.

# %%
dec = grid["DecSPS"]["step"]
first = dec[:, :1]  # gamma_0: the first Polyak step (capped by gamma_b0)
on_schedule = float(np.isclose(dec, first / np.sqrt(np.arange(1, n_it + 1)), rtol=1e-9).mean())
mean_dec = grid["DecSPS"]["loss"].mean(axis=0)
below = np.flatnonzero(mean_dec < m["SPS_max"])
cross = int(grid["DecSPS"]["eval_at"][0][below[0]]) if below.size else None
print(f"DecSPS: first Polyak step {experiments.summarize(first, 2)}; step = gamma_0 / sqrt(k + 1) at "
      f"{on_schedule:.0%} of the iterations; mean loss below SPS_max's final loss from k = {cross}")

# %%
def worse_part(final):
    return claims.part(claims.log_ratios(final["DecSPS"], final["SPS_max"]),
                       "log final loss DecSPS / SPS_max", claim="above")


res = claims.judge({"DecSPS / SPS_max": worse_part(final)}, claim="fig05-decsps-worse-than-spsmax",
                   window={"DecSPS / SPS_max": worse_part(neighbour)})
verdict, iv = res["verdict"], res["interval"]
held = verdict == "held"
print(experiments.record_claim(
    "fig05_w8a_logistic", "fig05-decsps-worse-than-spsmax", scale=scale, judged=res,
    claim="w8a: DecSPS performs worse than SPS_max", paper="qualitative (Section 2)",
    ours=f"DecSPS {m['DecSPS']:.3g} vs SPS_max {m['SPS_max']:.3g}; per run: {claims.show(iv)}",
    why="" if held else f"on batches of {sizes['batch']}, DecSPS's step is its first Polyak step "
    f"({np.mean(first):.2g}) times 1/sqrt(k+1) at {on_schedule:.0%} of the iterations: decaying-step "
    f"SGD from a well-sized step, which passes below SPS_max's noise level at k = {cross} of "
    f"{n_it}; the paper gives no batch size, and with one sample per step DecSPS's step "
    "collapses and it ends worse (see the page)"))
