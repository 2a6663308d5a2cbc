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
# # Theorem 3: BiSPS reaches the $\tilde O(1/\sqrt K)$ rate of bilevel SGD
#
# **Theorem 3** (paper, Section 3.2). Suppose $g$ is $\mu_g$-strongly convex in $y$
# with $L_g$-Lipschitz gradient and $L_G$-Lipschitz Hessian and a bounded cross derivative
# (Assumption 3), $f$ and $\nabla f$ are Lipschitz with $\|\nabla_y f\| \le C_f$
# (Assumption 4), the stochastic oracles are unbiased with bounded variance
# (Assumption 5), every sampled $g(x, \cdot\,; \psi)$ is convex and (15) holds. Take the
# envelope step (10) with the BiSPS choice (12), bounds
# $\alpha_{b,k} = \alpha_{b,0}/\sqrt{k+1}$, $\alpha_{l,k} = \alpha_{l,0}/\sqrt{k+1}$ with
# $\alpha_{l,0} \le \alpha_{b,0}$ and $\alpha_{b,0}^2/\alpha_{l,0} \le 1/(L_F + 4L_y^2)$,
# the SPS lower step (11) with $\beta_{b,k} = \beta_{b,0}/(k+1)$ and $p \ge 1/2$, $\alpha_k$
# independent of $h_f^k$ (two samples), and $T$ large enough. Then
#
# $$\frac1K \sum_{k=0}^{K-1} \mathbb E\,\|\nabla F(x^k)\|^2 \le
#   \tilde O\!\left(\frac{\kappa^3}{\sqrt K} + \frac{\kappa^2 \log K}{\sqrt K}\right).$$
#
# **What we check.** On a synthetic quadratic bilevel problem that meets Assumptions 3-5
# and (15) (`bisls_core.problems.quadratic_bilevel`: $y^*(x)$ is linear, every sampled
# $g_i$ is a strongly convex quadratic with minimum 0, $f$ is quadratic, so the bounds
# of Assumption 4 hold on the bounded region the iterates stay in), we run BiSPS with two
# samples and measure the running average of $\|\nabla F(x^k)\|^2$ (exact $\nabla F$ from the
# closed form) against $K$. The theorem is an upper bound: a log-log slope as steep as the
# bound's or steeper is consistent with it. The verdict's decision point is the least-squares
# slope of $\log(\log K/\sqrt K)$ (the bound's $\kappa^2 \log K/\sqrt K$ term, which the
# $\tilde O$ hides) against $\log K$ over the fitted horizons, the log factor included (above
# $-1/2$, printed below; the rule of every rate claim, registered in
# `bisls_core.claims_registry`).
#
# ```{admonition} What does not meet the theorem literally
# :class: warning
# The theorem asks for $T \ge \log(\alpha_{b,0}L_f^2 + 2) / (-\log(1 - \mu_g C_{K-1}))$
# with $C_{K-1} = \min\{1/(2pL_g), \beta_{b,K-1}\}$; with $\beta_{b,k} = \beta_{b,0}/(k+1)$ this
# grows linearly with $K$. We keep $T = 10$ fixed (as any practical run does); the
# warm start keeps $y^k$ close to $y^*(x^k)$ and the page prints the final lower-level error.
# ```

# %% tags=["parameters"]
scale = None  # None: the book's scale ($BISLS_BOOK_SCALE, else "cpu")
device = "auto"
n_runs = None
seed = 0
recompute = False
K = None
T = None

# %%
import numpy as np
import torch

from bisls_core import experiments, plotting, problems, sweeps
from bisls_core.bilevel import run_config
from bisls_core.sweeps import claims, theory

opts = sweeps.start(scale, device, n_runs, seed, recompute)
scale = opts["scale"]  # the book's scale when the parameter is None
PRESETS = {
    "smoke": {"K": 40, "T": 3, "n_runs": 2},
    "cpu": {"K": 1500, "T": 10, "n_runs": 5},
    "paper": {"K": 10000, "T": 10, "n_runs": 5},
}
sizes = theory.sizes(scale, PRESETS, K=K, T=T, n_runs=n_runs)
sizes

# %% [markdown]
# The constants of the theorem for this problem: $L_y = \|A\|$ where $y^*(x) = Ax + b$,
# and $L_F$ the largest eigenvalue of the (constant) Hessian of $F$. We take
# $\alpha_{l,0} = \alpha_{b,0}/2$ and the largest $\alpha_{b,0}$ that satisfies
# $\alpha_{b,0}^2/\alpha_{l,0} = 2\,\alpha_{b,0} \le 1/(L_F + 4L_y^2)$.

# %%
problem = problems.make("quadratic_bilevel", seed=0, batch=10)
info = problem.info
L_y = float(torch.linalg.matrix_norm(info["A"], ord=2))
hess_F = torch.autograd.functional.hessian(info["F"], problem.x0)
L_F = float(torch.linalg.eigvalsh(hess_F).max())
alpha_b0 = 1.0 / (2 * (L_F + 4 * L_y**2))
print(f"L_y = {L_y:.3f}, L_F = {L_F:.3f}, mu_g = {info['mu_g']:.3f}, L_g = {info['L_g']:.3f}")
print(f"alpha_b0 = {alpha_b0:.4g}, alpha_l0 = {alpha_b0 / 2:.4g}, beta_b0 = 1, p = 0.5")

# %%
config = {"problem": "quadratic_bilevel", "problem_args": {"batch": 10}, "problem_seed": 0,
          "method": "BiSPS", "K": sizes["K"], "T": sizes["T"], "samples": 2, "p": 0.5,
          "alpha": alpha_b0, "alpha_l0": alpha_b0 / 2, "beta": 1.0, "beta_schedule": "inv",
          "hypergrad": "cg", "hypergrad_steps": 10}
grid = experiments.run_grid(run_config, {"BiSPS (2 samples)": config}, name="thm3_bisps_nonconvex_rate",
                            n_runs=sizes["n_runs"], **opts)
rec = grid["BiSPS (2 samples)"]

# %% [markdown]
# The running average $\frac1K\sum_{k<K}\|\nabla F(x^k)\|^2$ (each run's prefix of length
# $K$ is a run of length $K$: no schedule depends on the horizon), with the $1/\sqrt K$
# reference line, and the steps BiSPS took.
#
# At the `cpu` scale $\alpha_k$ sat on its upper envelope $\alpha_{b,0}/\sqrt{k+1}$ in
# 100 % of the steps (printed below): the Polyak ratio never fell below the cap, so the
# upper level took exactly the decaying step of bilevel SGD and $\alpha_k$ was trivially
# independent of $h_f^k$. The check is therefore a weak test of Theorem 3, as Figures 18
# and 19 are of the one- and two-sample comparison: it measures the rate of decaying-step
# bilevel SGD (with BiSPS's lower step), not what the adaptive upper step adds.

# %%
sq = np.concatenate([rec["initial_grad_norm"][:, None], rec["grad_norm"][:, :-1]], axis=1) ** 2
avg = np.cumsum(sq, axis=1) / np.arange(1, sq.shape[1] + 1)
Ks = np.unique(np.geomspace(max(2, sizes["K"] // 30), sizes["K"], 8).astype(int))
slopes = np.array([np.polyfit(np.log(Ks), np.log(a[Ks - 1]), 1)[0] for a in avg])
k = np.arange(1, sizes["K"] + 1)
fig, axes = plotting.new_figure(ncols=2, width=3.8)
plotting.plot_runs(axes[0], avg, "BiSPS (2 samples)", x=k, log=True)
axes[0].plot(k, avg[:, 0].mean() / np.sqrt(k), "k--", lw=1, label="$\\propto 1/\\sqrt{K}$")
axes[0].set(xscale="log", xlabel="$K$", ylabel="$\\frac{1}{K}\\sum_{k<K}\\|\\nabla F(x^k)\\|^2$")
axes[0].legend()
plotting.plot_runs(axes[1], rec["alpha"], "$\\alpha_k$", x=k, log=True, i=1)
plotting.plot_runs(axes[1], rec["beta"], "$\\beta_k$ (mean over $t$)", x=k, log=True, i=2)
axes[1].plot(k, alpha_b0 / np.sqrt(k), ":", color="gray", label="$\\alpha_{b,k}$")
axes[1].set(xscale="log", xlabel="iteration $k + 1$", ylabel="step size")
axes[1].legend()
plotting.publish(fig, "thm3_bisps_nonconvex_rate")

# %% [markdown]
# ```{glue:figure} thm3_bisps_nonconvex_rate
# :name: fig-thm3_bisps_nonconvex_rate
#
# BiSPS (two samples) on a quadratic bilevel problem meeting Theorem 3's assumptions.
# Left: the average squared hypergradient norm against the horizon $K$ (mean ± std over
# runs) beside a $1/\sqrt K$ line. Right: the upper and lower steps BiSPS took.
# ```

# %%
print(f"log-log slope of the average squared gradient norm over K in {Ks.tolist()}")
print("(the first K // 30 iterations, a transient, are left out of the fit):")
print(f"  {slopes.mean():.2f} ± {slopes.std():.2f} over {len(slopes)} runs (theorem: <= -0.5 up to logs)")
print(f"final average ||grad F||^2: {experiments.summarize(avg[:, -1])}")
print(f"final lower-level error ||y - y*(x)||: {experiments.summarize(rec['y_error'][:, -1])}")
print(f"alpha_k on its upper envelope in {np.mean(np.isclose(rec['alpha'], alpha_b0 / np.sqrt(k))):.0%} of the steps, "
      f"on its lower envelope in {np.mean(np.isclose(rec['alpha'], alpha_b0 / 2 / np.sqrt(k))):.0%}")
res = theory.judge_rate("thm3-rate", slopes, Ks)  # the registered rule
verdict, iv, bound = res["verdict"], res["interval"], res["rate_threshold"]
print(f"decision point: slope of {res['rate']} over K in {Ks.tolist()}: {bound:.3f}")
print(experiments.record_claim(
    "thm3_bisps_nonconvex_rate", "thm3-rate", scale=scale, judged=res,
    claim="Theorem 3: BiSPS's average squared hypergradient norm decays as O~(1/sqrt(K))",
    paper="O~(1/sqrt(K)) (upper bound): slope -1/2 up to the log factor",
    ours=f"slope {claims.show(iv, '.2f')}",
    why=f"decision point {bound:.2f}: the slope of log K / sqrt(K) (the bound's kappa^2 log K / "
        "sqrt(K) term) over the fitted K; T fixed at 10 rather than growing with K"))
