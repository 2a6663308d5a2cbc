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
# # Figure 18: BiSPS with one or two samples (hyper-representation)
#
# BiSPS takes the envelope step (Eqs. (10), (12))
# $\alpha_k = \min\{\max\{\alpha_{l,k}, \tilde\alpha_k\}, \alpha_{b,k}\}$ with the Polyak ratio
# $\tilde\alpha_k = (f(x^k, y^{k+1}) - l^*_f)/(p\|h_f^k\|^2)$ and the bounds
# $\alpha_{l,k} = \alpha_{l,0}/\sqrt{k+1}$, $\alpha_{b,k} = \alpha_{b,0}/\sqrt{k+1}$.
# Theorem 3 assumes $\alpha_k$ independent of the hypergradient sample: the **2-sample**
# version computes $\tilde\alpha_k$ on a second, independent pair of batches. The figure
# compares the 1- and 2-sample versions with decaying-step SGD
# ($\alpha_k = \alpha_{b,0}/\sqrt{k+1}$) on the hyper-representation problem
# ({ref}`Figure 3 <fig-fig03_sgd_instability>`), for several $\alpha_{b,0}$, with a fixed
# lower step $\beta$ and the hypergradient by conjugate gradient. The paper's claim
# (Appendix A.4): both versions perform similarly (at $\alpha_{b,0} = 0.1$ the 2-sample
# version even does better).
#
# ```{admonition} Note on the paper's text and our choices
# :class: note
# The paper fixes $\beta = 10$ and names $\alpha_{b,0} = 0.1$ but not its other values; we
# take $\alpha_{b,0} \in \{0.01, 0.1, 1\}$, $\alpha_{l,0} = \alpha_{b,0}/10$, $p = 0.5$,
# $l^*_f = 0$ (the squared loss is non-negative). **In our problem $\beta = 10$ is at the
# edge of stability** (Figure 3: $\beta = 10$ diverges within $K$, $\beta = 20$ at once; the
# lower search of {ref}`Figure 13 <fig-fig13_search_cost>` accepts steps of order 1, where
# the paper's accepts its start $\beta_{b,0} = 100$ in one round): at the `cpu` scale most
# runs with $\beta = 10$ diverge (see the numbers below). We therefore also run $\beta = 1$,
# the lower step tuned for SGD in {ref}`Figure 7 <fig-fig07_bisls_vs_tuned>`, and judge the
# claim on those runs. At the `cpu` scale: the problem of Figure 3, $K = 150$,
# 20 runs (5, then 15 more by the scorecard's rule of more runs where a verdict was undecided).
# ```

# %% tags=["parameters"]
scale = None  # None: the book's scale ($BISLS_BOOK_SCALE, else "cpu")
device = "auto"
n_runs = None
seed = 0
recompute = False
K = None
T = None
batch = None
n_train = None
data_root = None

# %%
import numpy as np

from bisls_core import data, experiments, plotting, sweeps
from bisls_core.sweeps import claims, hyperrep

opts = sweeps.start(scale, device, n_runs, seed, recompute)
scale = opts["scale"]  # the book's scale when the parameter is None
n_runs = experiments.decided_runs("fig18_bisps_one_vs_two_samples", scale, n_runs)  # more runs where undecided (scorecard)
sz = hyperrep.sizes(scale, K=K, T=T, batch=batch, n_train=n_train, n_runs=n_runs, data_root=data_root)
sz["data_root"] = data.mnist_root(data_root)  # None: the shipped subset (cache keys unchanged)
print(data.mnist_in_use(sz["data_root"]))
{k: sz[k] for k in ("n_train", "n_val", "batch", "T", "cg", "K", "n_runs", "bisps_alphas")}

# %%
BETAS = (10.0, 1.0)
VARIANTS = {"BiSPS (1 sample)": ("BiSPS", {"samples": 1}),
            "BiSPS (2 samples)": ("BiSPS", {"samples": 2}),
            "decaying-step SGD": ("decaying-step SGD", {})}
configs = {f"{v}, α_b0 = {a:g}, β = {b:g}": hyperrep.config(sz, m, alpha=float(a), beta=b,
                                                            lower="fixed", **kw)
           for b in BETAS for a in sz["bisps_alphas"] for v, (m, kw) in VARIANTS.items()}
grid = hyperrep.run(configs, n_runs=sz["n_runs"], **opts)

# %% [markdown]
# One column per $\alpha_{b,0}$, one row per lower step $\beta$: validation loss, mean ± std
# over runs; a cross marks a run that diverged.

# %%
n = len(sz["bisps_alphas"])
fig, axes = plotting.new_figure(ncols=n, nrows=len(BETAS), width=3.6, height=2.8)
for r, b in enumerate(BETAS):
    for j, a in enumerate(sz["bisps_alphas"]):
        ax = axes[r * n + j]
        for v in VARIANTS:
            x, y = experiments.curve(grid[f"{v}, α_b0 = {a:g}, β = {b:g}"], "val_loss", sz["eval_every"])
            plotting.plot_runs(ax, np.where(y > 0.75, np.nan, y), v, x=x,
                               ls="--" if "2 samples" in v else "-")
        ax.set(title=f"$\\alpha_{{b,0}} = {a:g}$, $\\beta = {b:g}$", ylim=(None, 0.75), xlim=(0, sz["K"]),
               xlabel="upper-level iteration $k$", ylabel="validation loss $F(w^k)$")
axes[-1].legend()
plotting.publish(fig, "fig18_bisps_one_vs_two_samples")

# %% [markdown]
# ```{glue:figure} fig18_bisps_one_vs_two_samples
# :name: fig-fig18_bisps_one_vs_two_samples
#
# Hyper-representation learning: BiSPS with one sample (solid) or two independent samples
# (dashed) for the step, and decaying-step SGD, for several $\alpha_{b,0}$ (columns), with
# the lower step fixed at the paper's $\beta = 10$ (top) or at $\beta = 1$ (bottom);
# hypergradient by conjugate gradient. Validation loss, mean ± std over runs; crosses: runs
# that diverged (or left the plotted range, $F > 0.75$). Where BiSPS takes the decaying step
# at every iteration, decaying-step SGD (grey, drawn last) hides BiSPS with one sample.
# ```

# %% [markdown]
# The numbers behind the claim: final validation loss per variant, and the share of
# iterations at which BiSPS's step is its upper bound $\alpha_{b,k}$ (then BiSPS takes the
# decaying step, whatever the sample). The 2- and 1-sample versions "perform similarly" when
# their final losses (the mean over the last 10% of the evaluations) are equivalent within 5%:
# the 90 % interval of the per-seed log-ratio lies within $\pm\log 1.05$ (two one-sided
# tests; a seed where both versions diverged says nothing and is left out, and counted; a
# seed where one diverged is not alike).

# %%
fin = {lab: experiments.final_values(rec, "val_loss") for lab, rec in grid.items()}
at_bound = {}
for label, rec in grid.items():
    bound = float(label.split("α_b0 = ")[1].split(",")[0]) / np.sqrt(np.arange(1, sz["K"] + 1))
    at_bound[label] = np.isclose(rec["alpha"], bound, rtol=1e-9)[np.isfinite(rec["alpha"])].mean()
    print(f"{label:40s} final val loss {experiments.summarize(fin[label], 3):30s} step at its "
          f"upper bound {at_bound[label]:4.0%}")

# %% [markdown]
# The claim is judged at $\beta = 1$, where more runs are stable (not all: see the numbers
# above); the runs with the paper's $\beta = 10$ are reported beside it.

# %%
stable_bisps = [lab for lab in grid if lab.startswith("BiSPS") and np.isfinite(fin[lab]).all()]
bound_share = float(np.mean([at_bound[lab] for lab in stable_bisps])) if stable_bisps else np.nan
pairs = {(a, b): [fin[f"BiSPS ({s}), α_b0 = {a:g}, β = {b:g}"] for s in ("1 sample", "2 samples")]
         for b in BETAS for a in sz["bisps_alphas"]}
alike = {key: experiments.similar(v) for key, v in pairs.items()}
both_diverged = {key: not any(np.isfinite(x).any() for x in v) for key, v in pairs.items()}

# %%
def one_vs_two(fin):
    return {f"alpha_b0 = {a:g}": claims.alike(
        {s: fin[f"BiSPS ({s}), α_b0 = {a:g}, β = 1"] for s in ("2 samples", "1 sample")},
        "log final val loss 2 / 1 sample") for a in sz["bisps_alphas"]}  # paired by seed, at beta = 1


near = {lab: experiments.final_values(rec, "val_loss", claims.NEIGHBOUR_FRACTION) for lab, rec in grid.items()}
j = claims.judge(one_vs_two(fin), claim="fig18-one-vs-two", window=one_vs_two(near))
excluded = sum(j["parts"][p]["excluded"] for p in j["parts"])
unstable10 = [a for a in sz["bisps_alphas"] if not all(np.isfinite(v).all() for v in pairs[a, 10.0])]
print(experiments.record_claim(
    "fig18_bisps_one_vs_two_samples", "fig18-one-vs-two", scale=scale, judged=j,
    claim="Hyper-representation: BiSPS with 2 independent samples performs like 1 sample",
    paper="similar (Figure 18, beta = 10); 2 samples better at alpha_b0 = 0.1",
    ours="beta = 1: " + "; ".join(
        f"alpha_b0 = {a:g}: " + " vs ".join(experiments.mean_text(v) for v in pairs[a, 1.0])
        for a in sz["bisps_alphas"]) + "; beta = 10: "
    + ", ".join(f"{np.mean([np.isfinite(v).mean() for v in pairs[a, 10.0]]):.0%} of runs finite at "
                f"alpha_b0 = {a:g}" for a in sz["bisps_alphas"]) + f"; per seed at beta = 1: {j['text']}",
    why=(j["why"] + "; " if j["why"] else "") + f"judged at beta = 1 ({excluded} seed(s) where both versions "
    f"diverged left out of the equivalence); in the stable runs BiSPS's "
    f"step is its upper bound (the decaying step) at {bound_share:.0%} of the iterations" + (
        f"; with the paper's beta = 10 the runs diverge at alpha_b0 >= {min(unstable10):g}" if unstable10 else "")))
