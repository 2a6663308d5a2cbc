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
# # Figure 11: where the upper-level search starts (Algorithm 3)
#
# At iteration $k$ the upper-level search of BiSLS starts from $\alpha_{b,0}$ (option 1,
# "reset"), from the last accepted step $\alpha_{k-1}$ (option 2, "keep": the steps can
# only decrease) or from $\eta\,\alpha_{k-1}$ (option 3, "grow", here $\eta = 2$). The
# figure shows the validation loss of the hyper-representation problem
# ({ref}`Figure 3 <fig-fig03_sgd_instability>`) for the three options, with BiSLS-SGD (a)
# and BiSLS-Adam (b); the lower-level search uses option 1 from $\beta_{b,0} = 100$.
# The paper's claim (Appendix A.2): the monotone option 2 performs worse than options 1
# and 3, which perform nearly the same.
#
# ```{admonition} Our choices
# :class: note
# $\alpha_{b,0} = 10$, $\delta = 0$, $p = 0.1$ in (14), $\bar c = 0.5$ in (8) as in {ref}`Figure 7 <fig-fig07_bisls_vs_tuned>`
# (the paper does not give $\alpha_{b,0}$ here). At the `cpu` scale: the smaller problem
# of Figure 3, $K = 150$, $w = 0.5$, 20 runs (5, then 15 more by the scorecard's rule of
# more runs where a verdict was undecided). A search that fails (it exhausts its budget,
# or stops early once it cannot succeed) takes the smallest step of its budget and does
# not become the memory of options 2 and 3 (see
# `BilevelConfig.max_rounds`). The search costs of these runs are in
# {ref}`Figure 13 <fig-fig13_search_cost>`.
# ```

# %% tags=["parameters"]
scale = None  # None: the book's scale ($BISLS_BOOK_SCALE, else "cpu")
device = "auto"
n_runs = None
seed = 0
recompute = False
reading = None  # a reading of the paper's open choices (bisls_core.readings); None: the primary one
K = None
T = None
batch = None
n_train = None
data_root = None

# %%
import numpy as np

from bisls_core import data, experiments, plotting, sweeps
from bisls_core.sweeps import claims, hyperrep

opts = sweeps.start(scale, device, n_runs, seed, recompute, reading)
scale = opts["scale"]  # the book's scale when the parameter is None
n_runs = experiments.decided_runs("fig11_reset_options", scale, n_runs)  # more runs where undecided (scorecard)
sz = hyperrep.sizes(scale, K=K, T=T, batch=batch, n_train=n_train, n_runs=n_runs, data_root=data_root)
sz["data_root"] = data.mnist_root(data_root)  # None: the shipped subset (cache keys unchanged)
print(data.mnist_in_use(sz["data_root"]))
{k: sz[k] for k in ("n_train", "n_val", "batch", "T", "cg", "K", "w", "max_rounds", "n_runs")}

# %%
METHODS = ("BiSLS-SGD", "BiSLS-Adam")
OPTIONS = {"option 1 (reset)": "reset", "option 2 (keep)": "keep", "option 3 (grow, η = 2)": "grow"}
configs = {f"{m}, {opt}": hyperrep.bisls(sz, m, reset_upper=name, eta=2.0)
           for m in METHODS for opt, name in OPTIONS.items()}
grid = hyperrep.run(configs, n_runs=sz["n_runs"], **opts)

# %%
plotting.publish(hyperrep.variant_figure(grid, sz, METHODS, OPTIONS), "fig11_reset_options")

# %% [markdown]
# ```{glue:figure} fig11_reset_options
# :name: fig-fig11_reset_options
#
# Validation loss of BiSLS-SGD (a) and BiSLS-Adam (b) when the upper-level search starts
# from $\alpha_{b,0} = 10$ (option 1), from the last step (option 2) or from twice the last
# step (option 3); lower-level search with option 1 from $\beta_{b,0} = 100$. Mean ± std
# over runs.
# ```

# %% [markdown]
# The numbers behind the claim: final validation loss, median accepted upper step and the
# share of failed upper searches per option. Two options "perform nearly the same" when
# their final losses are equivalent within 5%: the 90 % interval of the per-seed log-ratio
# lies within $\pm\log 1.05$ (two one-sided tests, `claims.alike`). A diverged run is the
# worst outcome.

# %%
fin, m = hyperrep.finals(grid)
for label, rec in grid.items():
    ok = rec["upper_failures"] == 0
    print(f"{label:36s} final val loss {experiments.summarize(fin[label], 3):20s} median step "
          f"{np.median(rec['alpha'][ok]) if ok.any() else np.nan:8.2g}  failed searches "
          f"{np.mean(rec['upper_failures']):.0%}")
o1, o2, o3 = OPTIONS
worse = {d: m[f"{d}, {o2}"] > max(m[f"{d}, {o1}"], m[f"{d}, {o3}"]) for d in METHODS}
alike = {d: experiments.similar([fin[f"{d}, {o1}"], fin[f"{d}, {o3}"]]) for d in METHODS}
close = {d: alike[d][0] for d in METHODS}

# %%
def option_parts(fin):
    return {**{f"{d}: option 2 worse": claims.part(
        claims.log_ratios(fin[f"{d}, {o2}"], claims.worst_of(fin[f"{d}, {o1}"], fin[f"{d}, {o3}"])),
        "log final val loss option 2 / worse of 1, 3", claim="above") for d in METHODS},
        **{f"{d}: options 1, 3 alike": claims.alike({o1: fin[f"{d}, {o1}"], o3: fin[f"{d}, {o3}"]},
                                                     "log final val loss") for d in METHODS}}


j = claims.judge(option_parts(fin), claim="fig11-option2-worse",
                 window=option_parts(hyperrep.finals(grid, claims.NEIGHBOUR_FRACTION)[0]))
why = j["why"]
print(experiments.record_claim(
    "fig11_reset_options", "fig11-option2-worse", scale=scale, judged=j,
    claim="Reset option 2 (monotone step) is worse than options 1 and 3, which perform "
          "nearly the same", paper="qualitative (Figure 11)",
    ours="; ".join(f"{d}: option 1/2/3 final val loss {m[f'{d}, {o1}']:.4f}/{m[f'{d}, {o2}']:.4f}/"
                   f"{m[f'{d}, {o3}']:.4f}" for d in METHODS) + f"; per seed: {j['text']}", why=why))
