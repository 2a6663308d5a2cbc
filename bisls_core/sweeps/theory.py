"""The rate checks of Theorems 1-3: the horizons they share, the checks of those sizes,
the log-log fit of a gap against the horizon :math:`K`, and the two-panel figure and
the printed numbers of Theorems 1 and 2 (the gap of the averaged iterate with its fit
and reference slope; the step, its bound and, for Theorem 2, :math:`\\omega` and
:math:`k_0`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np

__all__ = ["PRESETS", "check_fit", "fit", "rate_figure", "rate_report", "sizes"]

#: Horizons of Theorems 1 and 2 (single level): ``K`` iterations of one run, whose
#: prefixes give every shorter horizon; ``eval_every``: the averaged iterate's gap is
#: evaluated every this many iterations; ``n_runs`` runs.
PRESETS: dict[str, dict] = {
    "smoke": {"K": 400, "eval_every": 20, "n_runs": 2},
    "cpu": {"K": 4000, "eval_every": 50, "n_runs": 5},
    "paper": {"K": 40000, "eval_every": 200, "n_runs": 5},
}


def sizes(scale: str, presets: Mapping[str, Mapping] = PRESETS, **overrides) -> dict:
    """:func:`bisls_core.experiments.scaled` with the page's overrides, checked so that a
    slope can be fitted: at least two evaluations (``K >= 2 eval_every``) when the page
    evaluates every ``eval_every`` iterations, at least two horizons (``K >= 3``) when it
    reads every iteration."""
    from ..experiments import scaled

    out = scaled(scale, presets, **overrides)
    if "eval_every" in out:
        check_fit(out)
    elif out["K"] < 3:
        raise ValueError(f"K = {out['K']} is too small: the slope is fitted over the horizons "
                         "from 2 to K, so K must be at least 3")
    return out


def check_fit(sizes: Mapping, start: int = 0) -> None:
    """``ValueError`` naming ``K`` and ``eval_every`` unless the fit of :func:`fit` (from
    the horizon ``start`` on) has at least two evaluations."""
    K, every = sizes["K"], sizes["eval_every"]
    first = max(every, start)
    if K < first + every:
        raise ValueError(f"K = {K} is too small for eval_every = {every}: the slope is fitted "
                         f"on the evaluations from K = {first} on and needs two of them, so K "
                         f"must be at least {first + every}")


def fit(record: Mapping[str, np.ndarray], start: int = 0) -> SimpleNamespace:
    """The log-log fit of the gap of the averaged iterate (``record["avg_loss"]``) against
    the horizon, on the evaluations with :math:`K \\ge \\max(K_1, K_{\\max}/20,` ``start``)
    (past the first transient): per run (``slopes``) and on the mean over runs (``slope``,
    ``intercept``). Also returns the horizons ``Ks``, the selection ``sel`` and the mean
    gap ``mean_gap``."""
    Ks = record["eval_at"][0]
    sel = Ks >= max(Ks[1], Ks[-1] // 20, start)
    slopes = np.polyfit(np.log(Ks[sel]), np.log(record["avg_loss"][:, sel]).T, 1)[0]
    mean_gap = record["avg_loss"].mean(axis=0)
    slope, intercept = np.polyfit(np.log(Ks[sel]), np.log(mean_gap[sel]), 1)
    return SimpleNamespace(Ks=Ks, sel=sel, slopes=slopes, mean_gap=mean_gap, slope=slope,
                           intercept=intercept)


def rate_figure(record: Mapping[str, np.ndarray], f: SimpleNamespace, label: str, *,
                reference: float, ylabel: str, omega: float | None = None, k0: int = 0):
    """Left: the gap of the averaged iterate against :math:`K` (mean ± std over runs, from
    :math:`K > k_0`) with the fit ``f`` of :func:`fit` and a line of slope ``reference``;
    right: the step, its bound :math:`\\gamma_{b,k}` and, when ``omega`` is given, the
    level :math:`\\omega` and the transition :math:`k_0` (Theorem 2). Returns the figure."""
    from .. import plotting

    Ks, sel = f.Ks, f.sel
    fig, axes = plotting.new_figure(ncols=2, width=4.0)
    plotting.plot_runs(axes[0], record["avg_loss"][:, Ks > k0], label, x=Ks[Ks > k0], log=True)
    axes[0].plot(Ks[sel], np.exp(f.intercept) * Ks[sel] ** f.slope, "k--", lw=1,
                 label=f"fit: slope {f.slope:.2f}")
    slope_text = {-0.5: "$-1/2$", -1.0: "$-1$"}.get(reference, f"${reference:g}$")
    axes[0].plot(Ks[sel], f.mean_gap[sel][0] * (Ks[sel] / Ks[sel][0]) ** reference, "k:", lw=1,
                 label=f"slope {slope_text}")
    axes[0].set(xscale="log", xlabel="$K$", ylabel=ylabel)
    axes[0].legend()
    it = np.arange(1, record["step"].shape[1] + 1)
    plotting.plot_runs(axes[1], record["step"], label, x=it, log=True, lw=0.6, band=False)
    axes[1].plot(it, record["bound"][0], "k--", lw=1, label="$\\gamma_{b,k}$")
    if omega is not None:
        axes[1].axhline(omega, color="k", lw=0.8, ls=":", label="$\\omega$")
        axes[1].axvline(k0 + 1, color="tab:red", lw=1, label=f"$k_0 = {k0}$")
    axes[1].set(xscale="log", xlabel="iteration $k + 1$", ylabel="step size $\\gamma_k$")
    if omega is not None:
        axes[1].legend(loc="lower left")
    else:
        axes[1].legend()
    return fig


def rate_report(f: SimpleNamespace, reference: float) -> None:
    """Print the fit of :func:`fit`: its range, the gap at both ends, the slope of the
    mean and the slopes per run, against the theorem's ``reference`` slope (an upper
    bound: the measured slope should be ``reference`` or steeper)."""
    Ks, sel = f.Ks, f.sel
    print(f"K range of the fit: {Ks[sel][0]} .. {Ks[sel][-1]}")
    print(f"E[f(xbar_K) - f*] at K = {Ks[sel][0]}: {f.mean_gap[sel][0]:.3g}, "
          f"at K = {Ks[-1]}: {f.mean_gap[-1]:.3g}")
    print(f"log-log slope of the mean: {f.slope:.2f}")
    print(f"slope per run: {np.mean(f.slopes):.2f} ± {np.std(f.slopes):.2f} "
          f"(expected: {reference:g} or steeper)")


def judge_rate(claim_id: str, slopes, horizons) -> dict:
    """:func:`bisls_core.sweeps.claims.judge` of a registered rate claim (Theorems 1-3) on
    its per-run log-log ``slopes`` fitted over ``horizons``: below the decision point
    the theorem's bound implies over those horizons, log factor included
    (:func:`bisls_core.registry.rate_threshold` of the claim's ``rate``). Returns the
    judged dict with ``rate`` (the bound's K-dependence) and ``rate_threshold``."""
    from .. import registry
    from . import claims

    rate = registry.lookup(claim_id).rate
    threshold = registry.rate_threshold(rate, horizons)
    part = claims.part(slopes, "log-log slope per run", claim="below", threshold=threshold,
                       horizons=np.asarray(horizons, dtype=float))
    return {**claims.judge({"slope": part}, claim=claim_id), "rate": rate,
            "rate_threshold": threshold}


__all__ += ["judge_rate"]
