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
# # Figure 7: BiSLS against tuned SGD and Adam, and the steps it finds
#
# Hyper-representation learning on MNIST (the problem of
# {ref}`Figure 3 <fig-fig03_sgd_instability>`). Panel (a) compares the validation loss of
# BiSLS-SGD and BiSLS-Adam, whose upper search starts at $\alpha_{b,0} = 10$, with
# fixed-step SGD and Adam whose pair $(\alpha, \beta)$ was tuned on the grids of Section 4.
# Panels (b) and (c) show the upper and lower learning rates $\alpha_k$, $\beta_k$ that
# BiSLS-Adam finds from starting points $\alpha_{b,0}$, $\beta_{b,0}$ three decades apart.
# The paper's claims (Section 2): BiSLS-Adam outperforms the tuned Adam and SGD although
# its search starts five decades above the tuned step ($O(10^{-4})$); it finds large
# $\alpha$ and $\beta$ early, for every starting point, and the steps decay with training.
#
# ```{admonition} Note on the paper's text and our choices
# :class: note
# The paper does not say how the pairs were tuned, nor $\beta_{b,0}$ here, nor the
# backtracking factor $w$. We tune each fixed-step method on `tune_runs` runs per pair (three
# at the `cpu` and `paper` scales) over the full horizon and keep the pair with the lowest
# mean final validation loss (a diverged run the worst); the winner is then
# run `n_runs` times on other seeds (the tuning runs use seeds from 1000 on, so the
# winner is never judged on the run that chose it). BiSLS uses option 3 of
# Algorithm 3 with $\eta = 2$ upstairs, option 1 with $\beta_{b,0} = 100$ downstairs
# (as in Figures 8 and 11-15), $\delta = 0$, $p = 0.1$ in (14) and $\bar c = 0.5$ in (8),
# BiSLS-Adam's trial along $A_k^{-1}h_f$ (the book's primary reading of the paper's open
# choices, `paper-evidence`: see the [open choices page](open_choices.ipynb)), Adam's
# $(\beta_1, \beta_2, \epsilon) = (0.9, 0.999, 10^{-8})$.
# **Reduced at the `cpu` scale:** every other value of the paper's grids
# ($\beta \in \{10, 1, 0.1, 0.01\}$, $\alpha \in \{0.001, 0.005, 0.05\}$ for SGD and
# $\{10^{-5}, 10^{-4}, 10^{-3}\}$ for Adam), $K = 150$, $w = 0.5$, and 20 runs per curve
# (5, then 15 more by the scorecard's rule of more runs where a verdict was undecided),
# starting points in (b)-(c) with $\alpha_{b,0} \in \{1, 10, 1000\}$, $\beta_{b,0} \in \{1, 100, 1000\}$
# (the `paper` preset uses the full grids and four starting points per level).
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
n_runs = experiments.decided_runs("fig07_bisls_vs_tuned", scale, n_runs)  # more runs where undecided (scorecard)
sz = hyperrep.sizes(scale, K=K, T=T, batch=batch, n_train=n_train, n_runs=n_runs, data_root=data_root)
sz["data_root"] = data.mnist_root(data_root)  # None: the shipped subset (cache keys unchanged)
print(data.mnist_in_use(sz["data_root"]))
{k: sz[k] for k in ("n_train", "n_val", "batch", "T", "cg", "K", "w", "max_rounds", "n_runs")}

# %% [markdown]
# Tuning: final validation loss of each pair (mean over its `tune_runs` tuning runs, on
# seeds that no evaluation run uses; `div`: a run diverged).

# %%
won_sgd, cfg_sgd, tune_sgd = hyperrep.tune(sz, "SGD", **opts)
won_adam, cfg_adam, tune_adam = hyperrep.tune(sz, "Adam", **opts)
print(hyperrep.tuning_table(sz, "SGD", tune_sgd))
print(hyperrep.tuning_table(sz, "Adam", tune_adam))
print(f"tuned pairs: {won_sgd}; {won_adam}")

# %% [markdown]
# Panel (a): the four methods over `n_runs` runs; panels (b)-(c): BiSLS-Adam from
# several starting points (the run with $\alpha_{b,0} = 10$, $\beta_{b,0} = 100$ is the
# BiSLS-Adam of panel (a)).

# %%
main = {"BiSLS-SGD": hyperrep.bisls(sz, "BiSLS-SGD"), "BiSLS-Adam": hyperrep.bisls(sz, "BiSLS-Adam"),
        "SGD": cfg_sgd, "Adam": cfg_adam}
grid = hyperrep.run(main, n_runs=sz["n_runs"], **opts)
starts = {f"α_b0 = {a:g}": hyperrep.bisls(sz, alpha=a) for a in sz["alpha_starts"]}
starts |= {f"β_b0 = {b:g}": hyperrep.bisls(sz, beta=b) for b in sz["beta_starts"]}
sweep = hyperrep.run(starts, n_runs=sz["n_sweep"], **opts)

# %% [markdown]
# In (b) a line joins the steps of the searches that succeeded (first run); a tick at the
# bottom marks an iteration whose search failed (condition (14) could not hold within the
# budget, so the smallest step of the budget was taken). In (c) the step is the mean of the $T$
# lower steps of the iteration.

# %%
fig, axes = plotting.new_figure(ncols=3, width=3.8)
for label, rec in grid.items():
    x, y = experiments.curve(rec, "val_loss", sz["eval_every"])
    plotting.plot_runs(axes[0], y, label, x=x)
for i, (label, rec) in enumerate(sweep.items()):
    ax, key = (axes[1], "alpha") if label.startswith("α") else (axes[2], "beta")
    ok = rec["upper_failures"][0] == 0 if key == "alpha" else np.ones(sz["K"], bool)
    k = np.arange(1, sz["K"] + 1)
    ax.plot(k[ok], rec[key][0][ok], color=plotting.color(label, i), label=label, lw=1)
    ax.plot(k[~ok], np.full((~ok).sum(), 0.02 + 0.03 * (i % 3)), "|", color=plotting.color(label, i),
            transform=ax.get_xaxis_transform())
axes[0].set(xlabel="upper-level iteration $k$", ylabel="validation loss $F(w^k)$")
axes[1].set(xlabel="iteration $k$", ylabel="upper step $\\alpha_k$", yscale="log")
axes[2].set(xlabel="iteration $k$", ylabel="lower step $\\beta_k$", yscale="log")
[ax.legend() for ax in axes]
plotting.publish(fig, "fig07_bisls_vs_tuned")

# %% [markdown]
# ```{glue:figure} fig07_bisls_vs_tuned
# :name: fig-fig07_bisls_vs_tuned
#
# (a) Validation loss of BiSLS-SGD and BiSLS-Adam ($\alpha_{b,0} = 10$,
# $\beta_{b,0} = 100$) and of SGD and Adam with their tuned pair $(\alpha, \beta)$; mean
# ± std over runs. (b) Upper steps $\alpha_k$ of BiSLS-Adam for several $\alpha_{b,0}$
# ($\beta_{b,0} = 100$); ticks at the bottom: failed searches. (c) Lower steps
# $\beta_k$ for several $\beta_{b,0}$ ($\alpha_{b,0} = 10$).
# ```

# %% [markdown]
# The numbers behind the claims: final validation loss and accuracy; for BiSLS-Adam, the
# median accepted steps over the first and the last fifth of the iterations, and the share
# of failed upper searches.

# %%
fin, m = hyperrep.finals(grid)
for label, rec in grid.items():
    print(f"{label:11s} final val loss {experiments.summarize(fin[label], 3):18s} val acc "
          f"{experiments.summarize(experiments.final_values(rec, 'val_acc'), 3):18s} "
          f"failed upper searches {np.nanmean(rec['upper_failures']):.0%}")
q = max(1, sz["K"] // 5)
steps = {}
for label, rec in sweep.items():
    key = "alpha" if label.startswith("α") else "beta"
    ok = rec["upper_failures"] == 0 if key == "alpha" else np.isfinite(rec[key])
    steps[label] = [float(np.median(v)) if (v := rec[key][:, s][ok[:, s]]).size else np.nan
                    for s in (slice(0, q), slice(-q, None))]
    print(f"{label:22s} {key} early {steps[label][0]:9.3g} late {steps[label][1]:9.3g}  final val loss "
          f"{experiments.summarize(experiments.final_values(rec, 'val_loss'), 3):14s} failed upper "
          f"searches {np.nanmean(rec['upper_failures']):.0%}")

# %%
show = {lab: experiments.mean_text(v) for lab, v in fin.items()}
best_tuned = min(m["SGD"], m["Adam"])
fail = float(np.mean(grid["BiSLS-Adam"]["upper_failures"]))

# %%
def beats_parts(fin):  # paired by seed
    return {f"vs tuned {t}": claims.part(claims.log_ratios(fin["BiSLS-Adam"], fin[t]),
                                         f"log final val loss BiSLS-Adam / tuned {t}")
            for t in ("Adam", "SGD")}


beats = claims.judge(beats_parts(fin), claim="fig07-bisls-beats-tuned",
                     window=beats_parts(hyperrep.finals(grid, claims.NEIGHBOUR_FRACTION)[0]))
verdict = beats["verdict"]
decades = np.log10(hyperrep.BISLS_BASE["alpha"] / cfg_adam["alpha"])
print(experiments.record_claim(
    "fig07_bisls_vs_tuned", "fig07-bisls-beats-tuned", scale=scale, judged=beats,
    claim="Hyper-representation: BiSLS-Adam (search from 5 decades above the tuned step) "
          "outperforms tuned Adam/SGD", paper="qualitative (Figure 7a)",
    ours=f"final val loss BiSLS-Adam {show['BiSLS-Adam']}, BiSLS-SGD {show['BiSLS-SGD']}, "
         f"tuned Adam {show['Adam']}, tuned SGD {show['SGD']}; "
         f"alpha_b0 is {decades:.1f} decades above tuned Adam's alpha; per seed: {beats['text']}",
    why="" if verdict == "held" else f"{beats['why']}; BiSLS-Adam's upper search failed in {fail:.0%} of the "
    "iterations (delta = 0), where it takes a negligible step; the trial's slope is shallower than "
    "(14) asks in almost every search, so a search passes only where the trial's own lower step "
    "happens to lower f (search_condition14)"))

# %% [markdown]
# Panels (b)-(c): how far apart the starting points end, and whether the early steps are
# large and then decay.

# %%
finals = [experiments.final_values(rec, "val_loss") for rec in sweep.values()]
near = {lab: experiments.final_values(rec, "val_loss", claims.NEIGHBOUR_FRACTION) for lab, rec in sweep.items()}
stable = bool(np.isfinite(np.concatenate(finals)).all())
spread = experiments.similar(finals)[1]
large = all(s[0] >= cfg_adam["alpha" if lab.startswith("α") else "beta"] for lab, s in steps.items())
decay = all(s[1] < s[0] for s in steps.values())

# %%
per_run = {}  # per start and run: the median early and late step
for label, rec in sweep.items():
    key = "alpha" if label.startswith("α") else "beta"
    ok = rec["upper_failures"] == 0 if key == "alpha" else np.isfinite(rec[key])
    per_run[label] = np.array([[np.median(v[o][s]) if o[s].any() else np.nan for s in (slice(0, q), slice(-q, None))]
                               for v, o in zip(rec[key], ok)])
tuned = {lab: cfg_adam["alpha" if lab.startswith("α") else "beta"] for lab in per_run}
worst = lambda x: np.nan_to_num(np.min(x, axis=0), nan=-np.inf)  # per seed, over the starts
alike_starts = lambda fin: claims.alike(dict(zip(sweep, fin)), "log final val loss over the starts")  # noqa: E731
robust = claims.judge({
    "alike": alike_starts(finals),
    "large": claims.part(worst([np.log(v[:, 0] / tuned[lab]) for lab, v in per_run.items()]),
                         "log early step / tuned Adam's, worst start", claim="above"),
    "decay": claims.part(worst([np.log(v[:, 0] / v[:, 1]) for v in per_run.values()]),
                         "log early / late step, worst start", claim="above")},
    claim="fig07-robust-large-steps", window={"alike": alike_starts(near.values())})
print(experiments.record_claim(
    "fig07_bisls_vs_tuned", "fig07-robust-large-steps", scale=scale, judged=robust,
    claim="BiSLS-Adam finds large alpha and beta early from starting points 3 decades apart; "
          "the steps then decay", paper="qualitative (Figures 7b-c)",
    ours=f"all stable: {stable}; final val losses within {spread:.1%}; early steps >= tuned "
         f"Adam's: {large}; late < early for every start: {decay}",
    why=claims.ONE_RUN if robust["interval"] is None else ", ".join(w for w, bad in (("a run diverged", not stable), ("final losses not shown equivalent within 5%", robust["parts"]["alike"]["verdict"] != "held"),
                                   ("early steps below the tuned ones", not large),
                                   (f"some steps do not decay within K = {sz['K']}", not decay)) if bad)))
