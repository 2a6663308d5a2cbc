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
# # Figure 19: BiSPS with one or two samples on data distillation
#
# Theorem 3 assumes that BiSPS's upper step $\alpha_k$ is independent of the hypergradient
# $h_f^k$ it multiplies: its Polyak ratio $f/(p\|h\|^2)$ must be computed on a second,
# independent pair of batches ("2 samples"), whereas the experiments of the paper reuse
# the batch of $h_f^k$ ("1 sample"). On the distillation problem of
# {ref}`Figure 9 <fig-fig09_distillation>`, with the identity in place of the inverse
# Hessian and a fixed lower step $10^{-4}$, this page runs both versions and decaying-step
# SGD for $\alpha_{b,0} \in \{10, 50, 100\}$. The paper's claim (Appendix A.4): the
# performances of 1-sample and 2-samples BiSPS are similar when $\alpha_{b,0} = 10$ or 50,
# and in general the difference between the two is small.
#
# ```{admonition} Note on our choices
# :class: note
# The second sample is a fresh upper batch (10 real digits) and a fresh lower batch (the
# 10 distilled images, i.e. all of them) at which both $f$ and the hypergradient are
# evaluated again; its hypergradient is used only in the step. $\alpha_{l,0} = \alpha_{b,0}/10$,
# $p = 0.5$, $l^* = 0$ as in {ref}`Figure 6 <fig-fig06_bisps_vs_decaying>`.
# **Reduced at the `cpu` scale:** K = 1000, 20 runs (5, then 15 more by the scorecard's rule of more runs where a verdict was undecided).
# ```

# %% tags=["parameters"]
scale = None  # None: the book's scale ($BISLS_BOOK_SCALE, else "cpu")
device = "auto"
n_runs = None
seed = 0
recompute = False
K = None
n_real = None
data_root = None

# %%
from bisls_core import data, experiments, plotting, sweeps
from bisls_core.sweeps import claims, distillation

opts = sweeps.start(scale, device, n_runs, seed, recompute)
scale = opts["scale"]  # the book's scale when the parameter is None
n_runs = experiments.decided_runs("fig19_bisps_one_vs_two_samples", scale, n_runs)  # more runs where undecided (scorecard)
sz = distillation.sizes(scale, K=K, n_real=n_real, n_runs=n_runs, data_root=data_root)
sz["data_root"] = data.mnist_root(data_root)  # None: the shipped subset (cache keys unchanged)
print(data.mnist_in_use(sz["data_root"]))
{k: sz[k] for k in ("n_real", "K", "T", "sample_alphas", "n_runs")}

# %% [markdown]
# Three methods for each $\alpha_{b,0}$, each over `n_runs` runs (the 1-sample BiSPS and
# decaying-step SGD runs at $\alpha_{b,0} = 10$ and 100 are those of Figure 6).

# %%
VARIANTS = {"BiSPS (1 sample)": ("BiSPS", 1), "BiSPS (2 samples)": ("BiSPS", 2),
            "decaying-step SGD": ("decaying-step SGD", 1)}
configs = {(label, a): distillation.config(sz, m, alpha=a, **({"samples": 2} if s == 2 else {}))
           for a in sz["sample_alphas"] for label, (m, s) in VARIANTS.items()}
rec = distillation.run(configs, n_runs=sz["n_runs"], label=lambda key: f"{key[0]} α_b0={key[1]:g}", **opts)

# %% [markdown]
# Mean ± std of the validation loss over runs, one panel per $\alpha_{b,0}$.

# %%
fig, axes = plotting.new_figure(ncols=len(sz["sample_alphas"]), width=3.6, height=3.0)
for (label, a), r in rec.items():
    x, y = experiments.curve(r, "val_loss", sz["eval_every"])
    plotting.plot_runs(axes[sz["sample_alphas"].index(a)], y, label, x=x)
for ax, a in zip(axes, sz["sample_alphas"]):
    ax.set(xlabel="upper-level iteration $k$", ylabel="validation loss",
           title=f"$\\alpha_{{b,0}} = {a:g}$")
axes[0].legend()
plotting.publish(fig, "fig19_bisps_one_vs_two_samples")

# %% [markdown]
# ```{glue:figure} fig19_bisps_one_vs_two_samples
# :name: fig-fig19_bisps_one_vs_two_samples
#
# Data distillation: BiSPS with its step computed on the batch of the hypergradient
# (1 sample) or on an independent one (2 samples), and decaying-step SGD, for
# $\alpha_{b,0} = 10, 50, 100$ (left to right); lower step fixed at $10^{-4}$, identity in
# place of the inverse Hessian. Mean ± std of the validation loss over runs.
# ```

# %% [markdown]
# The numbers behind the claim: the final validation loss (mean over the last 10% of the
# iterations), the share of iterations where BiSPS's Polyak step is below its upper bound
# $\alpha_{b,0}/\sqrt{k+1}$ (elsewhere BiSPS takes the bound, i.e. it *is* decaying-step SGD,
# and the two versions can only differ through their batches), and whether the two
# versions end alike, i.e. their means differ by less than 5% or than the runs' own scatter
# (`experiments.similar`). The claim itself is an equivalence: the 90 % interval of the
# per-seed log-ratio of the final losses lies within $\pm\log 1.05$ (two one-sided tests).

# %%
fin = {key: distillation.tail_values(r) for key, r in rec.items()}
active = {key: distillation.below_bound(r, key[1]) for key, r in rec.items()}
for (label, a), v in fin.items():
    print(f"α_b0={a:<5g} {label:18s} final val loss {experiments.summarize(v, 3):18s}"
          + (f" Polyak step below the bound in {active[(label, a)]:.0%} of iterations" if "BiSPS" in label else ""))
alike = {a: experiments.similar([fin[("BiSPS (1 sample)", a)], fin[("BiSPS (2 samples)", a)]])
         for a in sz["sample_alphas"]}
for a, (same, spread, noise) in alike.items():
    print(f"α_b0={a:<5g} 1 vs 2 samples: relative difference {spread:.1%} (run scatter {noise:.1%}) -> "
          + ("alike" if same else "different"))

# %%
named = [a for a in sz["sample_alphas"] if a in (10.0, 50.0)]


def one_vs_two(fin):
    return {a: claims.alike({s: fin[(f"BiSPS ({s})", a)] for s in ("2 samples", "1 sample")},
                            "log final val loss 2 / 1 sample") for a in named}  # paired by seed

# %%
near = {key: distillation.tail_values(r, frac=claims.NEIGHBOUR_FRACTION) for key, r in rec.items()}
parts = one_vs_two(fin)
j = claims.judge({f"alpha_b0 = {a:g}": v for a, v in parts.items()}, claim="fig19-bisps-one-vs-two-samples",
                 window={f"alpha_b0 = {a:g}": v for a, v in one_vs_two(near).items()})
held = [a for a, (v, _) in parts.items() if v == "held"]
print(experiments.record_claim(
    "fig19_bisps_one_vs_two_samples", "fig19-bisps-one-vs-two-samples", scale=scale, judged=j,
    claim="Data distillation: 1-sample and 2-samples BiSPS perform similarly for alpha_b0 = 10 and 50",
    paper="qualitative (Figure 19, Appendix A.4)",
    ours="relative difference of the final val loss: " + ", ".join(
        f"alpha_b0={a:g}: {alike[a][1]:.1%}" for a in sz["sample_alphas"]) + "; share of iterations "
        "where the Polyak step is below its bound (1 / 2 samples): " + ", ".join(
        f"alpha_b0={a:g}: {active[('BiSPS (1 sample)', a)]:.0%} / {active[('BiSPS (2 samples)', a)]:.0%}"
        for a in sz["sample_alphas"]) + f"; per seed (equivalent within 5 %, 90 % interval): {j['text']}",
    why=(f"{j['why']}: not shown within 5 % at alpha_b0 = {sorted(set(named) - set(held))}"
         if len(held) < len(named) else "") + (
        "; " if len(held) < len(named) and max(active.values()) < 0.1 else "") + (
        f"a weak test at this scale: the Polyak step is below its bound in at most "
        f"{max(active.values()):.0%} of the iterations, so both versions mostly take the decaying-SGD step"
        if max(active.values()) < 0.1 else "")))
