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
# # Your own bi-level problem: tuning ridge penalties on w8a
#
# This page shows what a user writes to solve a bi-level problem of their own with
# BiSLS-Adam and BiSPS: the two objectives $f$ and $g$ as plain functions, a
# `bisls_core.problems.BilevelProblem` that holds them with their sizes, and one
# call of `bisls_core.bilevel.run_bilevel` per method. The example is small enough
# for its hypergradient to be computed exactly, so we first check the library's estimate
# against that closed form.
#
# **The problem.** A logistic regression $y \in \mathbb R^{d}$ is fitted on a training
# split $(a_i, b_i)_{i \le n}$ of LIBSVM's w8a (300 binary features, labels
# $b_i = \pm 1$, and a constant feature for the intercept: $d = 301$) with one ridge
# penalty $\lambda_j = e^{x_j}$ per feature; the penalties are tuned for the logistic loss
# on a disjoint validation split $(a'_j, b'_j)_{j \le m}$:
#
# $$
# \begin{aligned}
# &\min_{x \in \mathbb R^d} F(x) = f(x, y^*(x)), \qquad y^*(x) = \arg\min_y\ g(x, y),\\
# &f(x, y) = \frac1m \sum_{j=1}^m \log\big(1 + e^{-b'_j a_j'^\top y}\big),\\
# &g(x, y) = \frac1n \sum_{i=1}^n \log\big(1 + e^{-b_i a_i^\top y}\big)
#   + \frac12 \sum_{j=1}^d e^{x_j} y_j^2 .
# \end{aligned}
# $$
#
# Writing $\lambda = e^{x}$ keeps every penalty positive, so $g$ is strongly convex in $y$
# and $y^*(x)$ is unique. Both losses are non-negative: 0 is a valid lower bound for the
# Polyak steps of BiSPS.
#
# **The hypergradient in closed form.** The implicit function theorem gives
#
# $$
# \nabla F(x) = \nabla_x f - \nabla^2_{xy} g\,\big[\nabla^2_{yy} g\big]^{-1} \nabla_y f
# = -\, e^{x} \odot y^* \odot \Big(\big[\nabla^2_{yy} g\big]^{-1} \nabla_y f\Big),
# $$
#
# all at $(x, y^*(x))$, since $\nabla_x f = 0$ and
#
# $$
# \nabla^2_{xy} g = \operatorname{diag}(e^{x} \odot y), \qquad
# \nabla^2_{yy} g = \frac1n A^\top \operatorname{diag}\big(\sigma(z) \odot \sigma(-z)\big) A
#   + \operatorname{diag}(e^{x}),
# $$
#
# where $A$ holds the training rows $a_i^\top$, $z_i = b_i a_i^\top y$ and $\sigma$ is the
# logistic function. For $d = 301$ the Hessian is a small dense matrix: this is the closed
# form the library's estimate is checked against.
#
# ```{admonition} Note on the paper's text
# :class: note
# Eq. (2) of the paper prints a $+$ in front of the second term; it is a minus (Eq. (13)
# has it, and differentiating $\nabla_y g(x, y^*(x)) = 0$ gives
# $\mathrm{d}y^*/\mathrm{d}x = -[\nabla^2_{yy} g]^{-1}\nabla^2_{yx} g$). The library uses the
# minus; with the printed sign the estimate below would point the other way.
# ```
#
# The runs go through the results cache, like those of the figure pages:
# `bisls_core.experiments.run_grid` takes any function `(config, seed, device) -> record`,
# here one that closes over this page's problem, computes the runs missing from
# `results/<scale>/bilevel_own_problem/` and reads the others back (`recompute=True` computes
# them again). Without the cache the numbers below could change from one execution to the
# next: the last bits of a linear solve depend on the math library's code path (the memory
# alignment of its arrays), and the fixed-step baseline sits at the edge of divergence,
# where such bits decide which runs diverge. The same problem is in the library as
# `bisls_core.problems.ridge` (`problems.make("ridge", ...)`), with the closed forms
# used below and the tests that check them.

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
n_val = None

# %%
import math
from concurrent.futures import ThreadPoolExecutor

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from myst_nb import glue

from bisls_core import experiments, plotting, sweeps
from bisls_core.bilevel import key_config, make_config, run_bilevel
from bisls_core.hypergrad import hypergradient
from bisls_core.problems import BilevelProblem, ridge

scale = sweeps.start(scale, device, n_runs, seed, recompute)["scale"]  # checked; 1 thread
PRESETS = {
    "smoke": {"K": 15, "T": 3, "batch": 50, "n_train": 300, "n_val": 300, "n_runs": 1},
    "cpu": {"K": 200, "T": 5, "batch": 100, "n_train": 1000, "n_val": 1000, "n_runs": 5},
    "paper": {"K": 1000, "T": 10, "batch": 100, "n_train": 5000, "n_val": 5000, "n_runs": 5},
}
sz = experiments.scaled(scale, PRESETS, K=K, T=T, batch=batch, n_train=n_train, n_val=n_val,
                        n_runs=n_runs)
ridge.check_sizes(sz["n_train"], sz["n_val"], sz["batch"])
dev = experiments.resolve_device(device)
sz

# %% [markdown]
# ## 1. The user's part: the two objectives and the problem
#
# Both objectives take the upper variable `x`, the lower variable `y` and the indices `idx`
# of a batch of their own samples (`None` for all of them); the loop draws the batches.
# The data are two disjoint random parts of w8a (a split fixed once, seed 0), in float64.

# %%
A_tr, b_tr, A_val, b_val = ridge.split_w8a(sz["n_train"], sz["n_val"], seed=0, device=dev)


def logistic(A, b, y, idx):
    A, b = (A, b) if idx is None else (A[idx], b[idx])
    return F.softplus(-b * (A @ y)).mean()


def g(x, y, idx=None):  # lower level: training loss + one ridge penalty e^{x_j} per feature
    return logistic(A_tr, b_tr, y, idx) + 0.5 * (torch.exp(x) * y * y).sum()


def f(x, y, idx=None):  # upper level: validation loss
    return logistic(A_val, b_val, y, idx)


d = A_tr.shape[1]  # 300 features + the intercept
problem = BilevelProblem(
    "ridge-w8a", f, g,
    x0=torch.full((d,), math.log(0.1), dtype=torch.float64, device=dev),  # lambda_j = 0.1
    y0=torch.zeros(d, dtype=torch.float64, device=dev),
    n_upper=sz["n_val"], n_lower=sz["n_train"], batch_upper=sz["batch"], batch_lower=sz["batch"],
    f_lower_bound=0.0, g_lower_bound=0.0,
    metrics=lambda x, y: {"val_loss": float(f(x, y))},  # recorded at every iteration
)

# %% [markdown]
# ## 2. Check the hypergradient against the closed form
#
# At a point $x = \log 0.1 + \xi$ ($\xi$ standard normal: penalties spread around 0.1),
# the closed form (`bisls_core.problems.ridge`, written out with $\sigma$ and a dense
# $d \times d$ Hessian, $y^*(x)$ by Newton's method) against what
# `bisls_core.hypergrad.hypergradient` computes from `f` and `g` above by automatic
# differentiation: with the dense Hessian (`"exact"`) and with 10 conjugate-gradient steps
# (`"cg"`, what the runs below use). A central difference of $F$ along a random direction
# checks the closed form itself.

# %%
reference = ridge.make_ridge(n_train=sz["n_train"], n_val=sz["n_val"], batch=sz["batch"],
                             lam0=0.1, device=dev)
gen = torch.Generator().manual_seed(seed)
x = problem.x0 + torch.randn(d, generator=gen, dtype=torch.float64).to(dev)
y_star = reference.info["y_star"](x)
closed = reference.info["hypergrad"](x)


def shown(err):
    return "< 1e-12" if err < 1e-12 else f"{err:.1e}"


for method, steps in (("exact", 0), ("cg", 10)):
    h = hypergradient(f, g, x, y_star, method=method, steps=steps).h
    err = float(torch.linalg.vector_norm(h - closed) / torch.linalg.vector_norm(closed))
    print(f"{method:5s}: relative error {shown(err)}")
u = torch.randn(d, generator=gen, dtype=torch.float64).to(dev)
u /= torch.linalg.vector_norm(u)
eps = 1e-3  # F(x) is exact to about 1e-11 (y* from an ill-conditioned solve): 3 digits
fd = float(reference.info["F"](x + eps * u) - reference.info["F"](x - eps * u)) / (2 * eps)
print(f"closed form along u: {float(closed @ u):.3g}; central difference of F: {fd:.3g}")

# %% [markdown]
# ## 3. Solve it with BiSLS-Adam, BiSPS and a fixed-step baseline
#
# One `bisls_core.bilevel.BilevelConfig` per method, built from its name by
# `bisls_core.bilevel.make_config`, each run over `n_runs` seeds (the seed draws the
# batches). All three start from $\lambda_j = 0.1$ and $y = 0$ and use 10 CG steps for the
# hypergradient. What we set:
#
# * **BiSLS-Adam** searches both step sizes (Armijo on $g$ below, condition (14) above) from
#   its default starts $\alpha_{b,0} = \beta_{b,0} = 1$, with a slack $\delta = 10^{-3}$ in
#   (14), whose right-hand side is taken at $\alpha = 0$ (`reference="one_step"`). With
#   $\delta = 0$ the condition often cannot hold here: its trial point takes one lower step
#   of size $\beta$, which stands for $[\nabla^2_{yy} g]^{-1}$ by $\beta I$, while the
#   penalties (0.1 and less) make the smallest eigenvalues of $\nabla^2_{yy} g$ ten or
#   more times smaller than $1/\beta$ (see the notes of `bisls_core.bilevel.run_bilevel`).
#   In our trials at the `cpu` sizes (one run), $\delta = 0$ with (14) as printed ran out of
#   budget in 87 of the 200 searches and ended at $F(x^K) = 0.131$, and with
#   `reference="one_step"` in all 200.
# * **BiSPS** takes the Polyak step (12) clipped to
#   $[\alpha_{b,0}/(10\sqrt{k+1}),\ \alpha_{b,0}/\sqrt{k+1}]$ with $\alpha_{b,0} = 1000$, a step
#   at which fixed-step SGD diverges, and the SPS step (11) below, bounded by
#   $\beta_{b,k} = 1$ (`beta_schedule="constant"`; with the default
#   $\beta_{b,k} = \beta_{b,0}/(k+1)$ of Theorem 3 the lower steps are below 0.01 after 100
#   iterations and the lower level falls behind: validation loss 0.144 after 200
#   iterations in our trial).
# * **Fixed-step SGD**, the baseline: $\beta = 1$ and $\alpha = 300$, tuned by hand: the
#   hypergradient in $x = \log\lambda$ is small, $\alpha = 10$ hardly moves $x$, $\alpha = 100$
#   is slower, and $\alpha = 500$ and $1000$ diverged in our trials (some penalties fall to
#   0 and the lower iterate blows up). $\alpha = 300$ sits at that edge: over this page's
#   runs it diverges too, late, in some of them (counted below), so the baseline's
#   mean is over the runs that finished.

# %%
kw = dict(K=sz["K"], T=sz["T"], hypergrad="cg", hypergrad_steps=10, keep_final=True)
settings = {  # each method's name and what differs from its defaults
    "BiSLS-Adam": dict(method="BiSLS-Adam", delta=1e-3, reference="one_step", **kw),
    "BiSPS": dict(method="BiSPS", alpha=1000.0, beta=1.0, beta_schedule="constant", **kw),
    "fixed-step SGD": dict(method="SGD", alpha=300.0, beta=1.0, **kw),
}
configs = {label: make_config(**s) for label, s in settings.items()}
data = {"n_train": sz["n_train"], "n_val": sz["n_val"], "batch": sz["batch"], "lam0": 0.1}


def run_own(setting, seed, device):
    """One run (one method, one seed) of this page's problem: what the cache stores."""
    setting = dict(setting)
    setting.pop("data")  # in the cache key only: the problem above was built from it
    return run_bilevel(problem, make_config(**setting), seed=seed)


run_own.cache_id = "bilevel_own_problem.ridge_w8a"  # the runner's name in the cache key
run_own.key_config = key_config  # the key sees the constants of the reading make_config applies
grid = experiments.run_grid(
    run_own, {label: {**s, "data": data} for label, s in settings.items()},
    name="bilevel_own_problem", scale=scale, n_runs=sz["n_runs"], seed=seed, device=device,
    recompute=recompute,
    executor=ThreadPoolExecutor(max_workers=1),  # in this process: run_own uses its data
)

# %% [markdown]
# For reference, the best *single* penalty shared by all features: $F$ on a grid of
# $\lambda$ (closed form, exact $y^*$).

# %%
lams = 10.0 ** np.arange(-5.0, 0.5, 0.5)
F_grid = [float(reference.info["F"](torch.full((d,), math.log(lam), dtype=torch.float64,
                                                device=dev))) for lam in lams]
best = int(np.argmin(F_grid))
F_start = float(reference.info["F"](problem.x0))
print(f"best shared lambda on the grid: {lams[best]:.2g}, F = {F_grid[best]:.4f}\n"
      f"at the start, lambda = 0.1: F = {F_start:.4f}")

# %%
fig, ax = plotting.new_figure(width=5.0, height=3.4)
for label, rec in grid.items():
    it, val = experiments.curve(rec, "val_loss")
    plotting.plot_runs(ax, val, label, x=it,
                       color=plotting.color("SGD" if "SGD" in label else label))
ax.axhline(F_grid[best], color="k", ls="--", lw=0.8,
           label=f"best shared $\\lambda$ ({lams[best]:.0e})")
ax.set(xlabel="upper-level iteration $k$", ylabel="validation loss $f(x^k, y^{k+1})$",
       ylim=(0.05, 0.25))
ax.legend()
plotting.save(fig, "bilevel_own_problem", scale=scale)  # figures/ only at the book's scale
glue("bilevel_own_problem", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} bilevel_own_problem
# :name: fig-bilevel_own_problem
#
# Tuning 301 ridge penalties of a logistic regression on w8a: validation loss at the
# current lower iterate, mean ± std over runs, for BiSLS-Adam, BiSPS and fixed-step SGD.
# Dashed: the validation loss of the best single penalty on a grid (at the exact lower
# solution). The first point ($y = 0$, loss $\log 2$) is above the axis.
# ```

# %% [markdown]
# The numbers: the final validation loss at the lower iterate, $F(x^K) = f(x^K, y^*(x^K))$
# at the exact lower solution, and the geometric mean of the tuned penalties (mean ± std
# over runs); then what the automatic steps did: BiSLS-Adam's condition evaluations per
# upper search and the searches that ran out of budget, and the share of iterations in
# which BiSPS's Polyak step was below its upper bound $\alpha_{b,0}/\sqrt{k+1}$ (elsewhere
# BiSPS takes the bound, i.e. it is decaying-step SGD). BiSLS-Adam also differs from the
# other two by its direction (Adam's, scaled per coordinate, which suits 301 penalties of
# very different sizes); this page does not separate the effect of the direction from
# that of the search.

# %%
def mean_std(values):  # over runs, 3 decimals (nbval compares them); diverged runs said
    v = np.asarray(values, dtype=float)
    ok = v[np.isfinite(v)]
    text = f"{ok.mean():.3f} ± {ok.std():.3f}" if ok.size else "diverged"
    return text + (f" ({v.size - ok.size}/{v.size} runs diverged)" if 0 < ok.size < v.size else "")


k = np.arange(1, sz["K"] + 1)
for label, rec in grid.items():
    F_final = [float(reference.info["F"](torch.as_tensor(xk, device=dev))) for xk in rec["x_final"]]
    print(f"{label}:\n  final val loss {mean_std(experiments.final_values(rec, 'val_loss'))}\n"
          f"  F(x^K) {mean_std(F_final)}\n"
          f"  geometric mean of lambda {mean_std(np.exp(rec['x_final'].mean(axis=1)))}")
bisls, bisps = grid["BiSLS-Adam"], grid["BiSPS"]
print(f"BiSLS-Adam: {bisls['upper_rounds'].mean():.1f} evaluations of (14) per search, "
      f"{bisls['upper_failures'].sum(axis=1).mean():.0f} of {sz['K']} searches failed")
below = np.mean(bisps["alpha"] < configs["BiSPS"].alpha / np.sqrt(k) * (1 - 1e-9))
print(f"BiSPS: Polyak step below its bound in {below:.0%} of the iterations")
