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
# # Figure 8: which search matters, generalisation, and the starting points
#
# Hyper-representation learning on MNIST ({ref}`Figure 3 <fig-fig03_sgd_instability>`).
# (a) Validation loss with a line search at both levels (BiSLS), at the upper level only,
# at the lower level only, or at neither (the tuned fixed steps of
# {ref}`Figure 7 <fig-fig07_bisls_vs_tuned>`). (b) Validation accuracy of BiSLS-Adam/SGD and
# the tuned Adam/SGD. (c) Validation loss for several upper search starts $\alpha_{b,0}$
# ($\beta_{b,0} = 100$); (d) for several lower search starts $\beta_{b,0}$
# ($\alpha_{b,0} = 10$). The paper's claims (Section 4): the upper-level search is
# essential for the best performance; BiSLS-Adam/SGD converge fast and generalise well;
# they are highly robust to $\alpha_{b,0}$ and $\beta_{b,0}$.
#
# ```{admonition} Our choices
# :class: note
# The paper does not define its ablations further. "Upper only" is BiSLS with the lower
# step fixed at the tuned $\beta$ of the same direction; "lower only" is SGD/Adam with the
# tuned $\alpha$ and the Armijo lower search (option 1 from $\beta_{b,0} = 100$). The paper
# does not list its starting points; we take them 3 decades apart. **At the `cpu` scale:**
# $K = 150$, $w = 0.5$, the tuning grid of Figure 7 (every other value of the paper's),
# 5 runs in (a)-(b) and per starting point in (c)-(d), with
# $\alpha_{b,0} \in \{1, 10, 1000\}$ and $\beta_{b,0} \in \{1, 100, 1000\}$.
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
n_runs = experiments.decided_runs("fig08_ablations", scale, n_runs)  # more runs where undecided (scorecard)
sz = hyperrep.sizes(scale, K=K, T=T, batch=batch, n_train=n_train, n_runs=n_runs, data_root=data_root)
sz["data_root"] = data.mnist_root(data_root)  # None: the shipped subset (cache keys unchanged)
print(data.mnist_in_use(sz["data_root"]))
{k: sz[k] for k in ("n_train", "n_val", "batch", "T", "cg", "K", "w", "max_rounds", "n_runs", "n_sweep")}

# %% [markdown]
# The tuned pairs (from the results cache when Figure 7 has run).

# %%
tuned = {"SGD": hyperrep.tune(sz, "SGD", **opts)[1], "Adam": hyperrep.tune(sz, "Adam", **opts)[1]}
print({d: (c["alpha"], c["beta"]) for d, c in tuned.items()})

# %%
DIRS = {"SGD": "BiSLS-SGD", "Adam": "BiSLS-Adam"}
ABLATIONS = ("both", "upper only", "lower only", "neither")
g_abl = hyperrep.run(hyperrep.ablation_configs(sz, tuned), n_runs=sz["n_runs"], **opts)
starts = {f"{m}, α_b0 = {a:g}": hyperrep.bisls(sz, m, alpha=float(a)) for m in DIRS.values()
          for a in sz["alpha_starts"]}
starts |= {f"{m}, β_b0 = {b:g}": hyperrep.bisls(sz, m, beta=float(b)) for m in DIRS.values()
           for b in sz["beta_starts"]}
g_st = hyperrep.run(starts, n_runs=sz["n_sweep"], **opts)

# %% [markdown]
# Solid lines: Adam direction; dashed: SGD direction. In (c)-(d) the colour is the starting
# point.

# %%
fig, axes = plotting.new_figure(ncols=4, width=3.6)
for label, rec in g_abl.items():
    d, abl = label.split(": ")
    ls, i = ("-" if d == "Adam" else "--"), ABLATIONS.index(abl)
    x, y = experiments.curve(rec, "val_loss", sz["eval_every"])
    plotting.plot_runs(axes[0], y, label, x=x, i=i, ls=ls, color=plotting.color("", i))
    if abl in ("both", "neither"):
        x, y = experiments.curve(rec, "val_acc", sz["eval_every"])
        name = DIRS[d] if abl == "both" else d
        plotting.plot_runs(axes[1], y, name if abl == "both" else f"tuned {d}", x=x, ls=ls,
                           color=plotting.color(name))
for label, rec in g_st.items():
    m, start = label.split(", ")
    ax, vals = (axes[2], sz["alpha_starts"]) if start.startswith("α") else (axes[3], sz["beta_starts"])
    i = list(vals).index(float(start.split(" = ")[1]))
    x, y = experiments.curve(rec, "val_loss", sz["eval_every"])
    plotting.plot_runs(ax, y, label, x=x, i=i, color=plotting.color("", i),
                       ls="-" if m == "BiSLS-Adam" else "--")
for ax, name in zip(axes, ("(a) where to search", "(b) generalisation", "(c) $\\beta_{b,0} = 100$",
                           "(d) $\\alpha_{b,0} = 10$")):
    ax.set(title=name, xlabel="upper-level iteration $k$", ylabel="validation loss $F(w^k)$")
    ax.legend(fontsize=6)
axes[1].set(ylabel="validation accuracy")
plotting.publish(fig, "fig08_ablations")

# %% [markdown]
# ```{glue:figure} fig08_ablations
# :name: fig-fig08_ablations
#
# (a) Validation loss with the line search at both levels (BiSLS), at the upper level only
# (lower step fixed at the tuned $\beta$), at the lower level only (upper step fixed at the
# tuned $\alpha$) or at neither (tuned SGD/Adam); solid: Adam direction, dashed: SGD.
# (b) Validation accuracy of BiSLS-Adam/SGD and of the tuned Adam/SGD. (c) Validation loss
# of BiSLS for several $\alpha_{b,0}$ with $\beta_{b,0} = 100$, (d) for several
# $\beta_{b,0}$ with $\alpha_{b,0} = 10$. Mean ± std over runs in (a)-(b).
# ```

# %% [markdown]
# The numbers behind the claims: final validation loss per ablation, final validation and
# test accuracy, and the spread of the final validation loss over the starting points.

# %%
fin = {lab: float(np.mean(experiments.final_values(rec, "val_loss"))) for lab, rec in g_abl.items()}
for label, rec in g_abl.items():
    print(f"{label:18s} final val loss {experiments.summarize(experiments.final_values(rec, 'val_loss'), 3):18s}"
          f" val acc {experiments.summarize(experiments.final_values(rec, 'val_acc'), 3):18s}"
          f" test acc {experiments.summarize(experiments.final_values(rec, 'test_acc'), 3)}")
spread = {}
for m in DIRS.values():
    for sym in ("α", "β"):
        v = [experiments.final_values(rec, "val_loss") for lab, rec in g_st.items()
             if lab.startswith(f"{m}, {sym}")]
        spread[m, sym] = experiments.similar(v)
        print(f"{m:10s} {sym}_b0 sweep: final val loss " + ", ".join(f"{np.mean(x):.4f}" for x in v)
              + f"; spread {spread[m, sym][1]:.1%}")

# %%
fin = {k: (v if np.isfinite(v) else np.inf) for k, v in fin.items()}
show = {lab: experiments.mean_text(experiments.final_values(rec, "val_loss")) for lab, rec in g_abl.items()}
fail = float(np.mean([g_abl[f"{d}: both"]["upper_failures"] for d in DIRS]))

# %% [markdown]
# "The best performance with and without the upper search" needs a choice among two
# ablations each. It is made on tuning runs (`tune_runs` per ablation, on seeds that no
# evaluation run uses, by the mean final validation loss, a diverged run the worst); the two
# chosen ablations are then compared on the evaluation runs, paired by seed (a diverged run
# the worst outcome).

# %%
g_tune = hyperrep.run(hyperrep.ablation_configs(sz, tuned), n_runs=sz["tune_runs"], **sweeps.tuning(opts))
choice = {d: tuple(experiments.best_label({a: g_tune[f"{d}: {a}"] for a in side}, "val_loss")
                   for side in (("both", "upper only"), ("lower only", "neither"))) for d in DIRS}
print("chosen on the tuning runs (with / without the upper search): "
      + "; ".join(f"{d}: {w} / {wo}" for d, (w, wo) in choice.items()))

# %%
def essential(per):  # paired by seed
    return {d: claims.part(claims.log_ratios(per[f"{d}: {w}"], per[f"{d}: {wo}"]),
                           "log final val loss best with / best without the upper search")
            for d, (w, wo) in choice.items()}


per = {lab: experiments.final_values(rec, "val_loss") for lab, rec in g_abl.items()}
near = {lab: experiments.final_values(rec, "val_loss", claims.NEIGHBOUR_FRACTION) for lab, rec in g_abl.items()}
ess = claims.judge(essential(per), claim="fig08-upper-search-essential", window=essential(near))
print(experiments.record_claim(
    "fig08_ablations", "fig08-upper-search-essential", scale=scale, judged=ess,
    claim="Line search at the upper level is essential for the best performance",
    paper="qualitative (Figure 8a)",
    ours="; ".join(f"{d}: both/upper/lower/neither " + " / ".join(show[f"{d}: {a}"] for a in ABLATIONS)
                   for d in DIRS) + "; best with / without the upper search (chosen on tuning seeds): "
    + ", ".join(f"{d} {w} / {wo}" for d, (w, wo) in choice.items()) + f"; per seed: {ess['text']}",
    why="" if ess["verdict"] == "held" else f"{ess['why']}: failed upper searches (delta = 0: {fail:.0%} of the BiSLS "
    "iterations) leave the upper level behind a tuned fixed step; the trial's slope is shallower "
    "than (14) asks in almost every search (search_condition14)"))

# %%
acc = {lab: experiments.final_values(rec, "test_acc") for lab, rec in g_abl.items()}


def generalises(acc):  # "at least": no worse than 1 point, paired by seed, a diverged run the worst
    return {d: claims.part(claims.differences(acc[f"{d}: both"], acc[f"{d}: neither"], lower_is_better=False),
                           "test accuracy BiSLS - tuned", claim="above", threshold=-0.01) for d in DIRS}


acc_near = {lab: experiments.final_values(rec, "test_acc", claims.NEIGHBOUR_FRACTION) for lab, rec in g_abl.items()}
gen = claims.judge(generalises(acc), claim="fig08-generalises", window=generalises(acc_near))
print(experiments.record_claim(
    "fig08_ablations", "fig08-generalises", scale=scale, judged=gen, why=gen["why"],
    claim="BiSLS-Adam/SGD converge fast and generalise well (accuracy at least the tuned "
          "methods')", paper="qualitative (Figure 8b)",
    ours="; ".join(f"test acc {DIRS[d]} {experiments.mean_text(acc[f'{d}: both'], '.3f')} vs tuned "
                   f"{d} {experiments.mean_text(acc[f'{d}: neither'], '.3f')}" for d in DIRS)
    + f"; per seed (margin 0.01): {gen['text']}"))

# %%
worst = max(spread, key=lambda key: spread[key][1])
rob = spread[worst][1]


def starts_alike(frac=None):  # every pair of starts equivalent within 5 %, paired by seed
    kw = {} if frac is None else {"frac": frac}
    return {f"{m} {sym}_b0": claims.alike(
        {lab: experiments.final_values(rec, "val_loss", **kw) for lab, rec in g_st.items()
         if lab.startswith(f"{m}, {sym}")}, "log final val loss") for m in DIRS.values() for sym in ("α", "β")}


robust = claims.judge(starts_alike(), claim="fig08-robust-starts",
                      window=starts_alike(claims.NEIGHBOUR_FRACTION))
print(experiments.record_claim(
    "fig08_ablations", "fig08-robust-starts", scale=scale, judged=robust,
    claim="BiSLS-Adam/SGD are highly robust to the search starts alpha_b0 and beta_b0",
    paper="qualitative (Figures 8c-d)",
    ours=f"largest spread of the final val loss over 3 decades of starts: {rob:.1%}",
    why=claims.ONE_RUN if robust["interval"] is None else "" if robust["verdict"] == "held" else
    f"the {worst[0]} {worst[1]}_b0 sweep spreads {spread[worst][1]:.1%}"
    + (": with option 1 downstairs the lower step never exceeds beta_b0, so a small beta_b0 caps it"
       if worst[1] == "β" else "")))
