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
# # Figure 3: fixed-step SGD is unstable in bi-level optimisation
#
# Hyper-representation learning on MNIST (Section 4 and Appendix A.2): the upper level
# learns the embedding layers $w$ of a LeNet on validation digits, the lower level the
# last, linear layer $c$ (a ridge regression) on training digits. Both levels take
# fixed-step SGD steps: $T$ lower steps of size $\beta$, then one hypergradient step of
# size $\alpha$. The figure shows the validation loss $F(w^k)$ for several $\beta$ at
# $\alpha = 0.005$ (left) and several $\alpha$ at $\beta = 0.01$ (right). The paper's
# claim (Section 1): the algorithm diverges when either $\alpha$ or $\beta$ is large;
# "unless carefully tuned, vanilla SGD-based methods for BO are very unstable".
#
# ```{admonition} Note on the paper's text
# :class: note
# The paper gives neither the values of $\beta$ and $\alpha$ of this figure nor the
# sizes of the experiment. We take $\beta \in \{0.01, 0.1, 1, 10, 20\}$ and
# $\alpha \in \{0.005, 0.01, 0.05, 0.1, 0.5\}$ (the same decades as the tuning grids of
# Section 4, plus one value beyond them), and the problem and sizes of
# `bisls_core.problems.hyperrep` (LeNet-5 embedding, ridge $\lambda = 0.01$, one-hot
# targets, $c^0 = 0$ so that $F(w^0) = 0.5$; conjugate gradient for the hypergradient).
# At the `cpu` scale the problem is smaller than the paper's (1,000 training and 500
# validation digits, batches of 128, $T = 5$, 5 CG steps, $K = 150$, 5 runs).
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
sz = hyperrep.sizes(scale, K=K, T=T, batch=batch, n_train=n_train, n_runs=n_runs, data_root=data_root)
sz["data_root"] = data.mnist_root(data_root)  # None: the shipped subset (cache keys unchanged)
print(data.mnist_in_use(sz["data_root"]))
{k: sz[k] for k in ("n_train", "n_val", "batch", "T", "cg", "K", "n_runs")}

# %% [markdown]
# One configuration per step size; the run with $\alpha = 0.005$, $\beta = 0.01$ belongs
# to both panels (it is computed once). Each run draws its own initialisation and batches.

# %%
BETAS = (0.01, 0.1, 1.0, 10.0, 20.0)
ALPHAS = (0.005, 0.01, 0.05, 0.1, 0.5)
left = {f"β = {b:g}": hyperrep.config(sz, "SGD", alpha=0.005, beta=b) for b in BETAS}
right = {f"α = {a:g}": hyperrep.config(sz, "SGD", alpha=a, beta=0.01) for a in ALPHAS}
grid = hyperrep.run({**left, **right}, n_runs=sz["n_runs"], **opts)

# %% [markdown]
# Mean ± std over runs of the validation loss (full validation set, every
# `eval_every` iterations). A run that diverges (a loss becomes inf/NaN) or leaves the
# plotted range ($F > 0.75$, 1.5 times the starting value) ends with a cross.

# %%
CAP = 0.75  # 1.5 times the starting value F(w^0) = 0.5
fig, axes = plotting.new_figure(ncols=2, width=4.2)
for ax, panel in zip(axes, (left, right)):
    for i, label in enumerate(panel):
        x, y = experiments.curve(grid[label], "val_loss", sz["eval_every"])
        n_div = int(grid[label]["diverged"][:, -1].sum())
        name = f"{label} ({n_div}/{len(y)} diverged)" if n_div else label
        plotting.plot_runs(ax, np.where(y > CAP, np.nan, y), name, x=x, i=i)
    ax.set(xlabel="upper-level iteration $k$", ylabel="validation loss $F(w^k)$", ylim=(None, CAP))
    ax.legend()
axes[0].set_title("$\\alpha = 0.005$", fontsize=10)
axes[1].set_title("$\\beta = 0.01$", fontsize=10)
plotting.publish(fig, "fig03_sgd_instability")

# %% [markdown]
# ```{glue:figure} fig03_sgd_instability
# :name: fig-fig03_sgd_instability
#
# Hyper-representation learning with fixed-step SGD at both levels: validation loss
# against upper-level iterations for several lower-level steps $\beta$ at
# $\alpha = 0.005$ (left) and several upper-level steps $\alpha$ at $\beta = 0.01$ (right);
# mean ± std over runs. Crosses: a run diverged (or left the plotted range).
# ```

# %% [markdown]
# The numbers behind the claim: per step size, the final validation loss and the
# iteration at which each run diverged.

# %%
def diverged_at(rec):
    d = rec["diverged"]
    return [int(np.argmax(r)) if r.any() else None for r in d]


for label, rec in grid.items():
    print(f"{label:12s} final val loss: {experiments.summarize(experiments.final_values(rec, 'val_loss'), 3):32s}"
          f" diverged at k = {diverged_at(rec)}")
div = {label: bool(rec["diverged"][:, -1].all()) for label, rec in grid.items()}
stable = {label: not rec["diverged"].any() for label, rec in grid.items()}
panels = [(list(left), "β"), (list(right), "α")]
n_div = {lab: int(rec["diverged"][:, -1].sum()) for lab, rec in grid.items()}
j = claims.judge({f"{name} = {labels[-1].split(' = ')[1]}": claims.share(
    n_div[labels[-1]], len(grid[labels[-1]]["diverged"]), "of runs diverged") for labels, name in panels},
    claim="fig03-sgd-unstable")
print(experiments.record_claim(
    "fig03_sgd_instability", "fig03-sgd-unstable", scale=scale, judged=j, why=j["why"],
    claim="Hyper-representation: fixed-step SGD diverges when beta or alpha is large",
    paper="qualitative (Figure 3)",
    ours="; ".join(f"{name} diverging in every run: "
                   + (", ".join(lab.split(" = ")[1] for lab in labels if div[lab]) or "none")
                   for labels, name in panels) + f"; share diverged at the largest step: {j['text']}"))
