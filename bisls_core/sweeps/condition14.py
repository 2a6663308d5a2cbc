"""The page on condition (14) (``notebooks/search_condition14``): why BiSLS's upper
search fails on hyper-representation, measured. The three readings of the trial
point x the slack delta x BiSLS-SGD/Adam x reset options 1 and 3, with the search
diagnostics on and the early exit on; and, on a subset, the same runs with the early
exit off (to count how often its prediction is wrong and what it saves).

It sits above :mod:`bisls_core.sweeps.hyperrep` (its problem, its configurations).
"""

from __future__ import annotations

import math

import numpy as np

from ..stepsizes import OUTCOME_CODES
from . import at_least, at_most
from . import hyperrep as H

__all__ = ["PRESETS", "READINGS", "RESETS", "configs", "compare_configs", "decades",
           "label", "outcome_shares", "run", "sizes", "summary", "slope_ratios",
           "prediction_errors", "table", "by_reading", "slope_figure", "exit_comparison"]

#: The readings of Algorithm 2's line 8 (``BilevelConfig.reference``).
READINGS = ("paper", "one_step", "penultimate")
#: Reset options of Algorithm 3 upstairs: option 1 and option 3 with eta = 2.
RESETS = {"option 1": dict(reset_upper="reset"), "option 3": dict(reset_upper="grow", eta=2.0)}

#: Sizes of the page. ``cpu`` keeps the whole page within about 20 CPU-minutes on one
#: core: 300 training / 150 validation / 300 test digits, batches of 32, T = 3 lower
#: steps, 3 CG steps, K = 20 outer iterations, metrics every 10, w = 0.5 with a budget
#: of 50 rounds (15 decades), 5 seeds for the grid and 3 for the early-exit comparison
#: (``n_compare``). ``smoke`` checks the plumbing in seconds. ``paper`` runs the grid
#: at the sizes of the paper preset of :mod:`bisls_core.sweeps.hyperrep`.
PRESETS: dict[str, dict] = {
    "smoke": dict(n_train=100, n_val=64, n_test=100, batch=32, T=2, cg=2, K=3, eval_every=3,
                  w=0.5, max_rounds=20, n_runs=1, n_compare=1, deltas=(0.0, 1e-3)),
    "cpu": dict(n_train=300, n_val=150, n_test=300, batch=32, T=3, cg=3, K=20, eval_every=10,
                w=0.5, max_rounds=50, n_runs=5, n_compare=5, deltas=(0.0, 1e-6, 1e-3)),
    "paper": {**{k: v for k, v in H.PRESETS["paper"].items()
                 if k in ("n_train", "n_val", "n_test", "batch", "T", "cg", "K", "eval_every",
                          "w", "max_rounds")},
              "n_runs": 5, "n_compare": 5, "deltas": (0.0, 1e-6, 1e-3)},
}


def sizes(scale: str, **overrides) -> dict:
    """``PRESETS[scale]`` with the notebook's overrides (``None`` = preset), checked."""
    from ..experiments import scaled

    out = scaled(scale, PRESETS, **overrides)
    if overrides.get("n_runs") is not None and overrides.get("n_compare") is None:
        out["n_compare"] = min(out["n_compare"], out["n_runs"])
    at_most(out, "batch", "n_train", "each lower batch is drawn from the n_train digits")
    at_most(out, "batch", "n_val", "each upper batch is drawn from the n_val digits")
    at_most(out, "n_compare", "n_runs", "the early-exit comparison reruns some of the grid's "
            "seeds with the exit off")
    at_least(out, "K", 2, "a run needs at least two searches to show a memory of Algorithm 3")
    return out


def label(method: str, reading: str, delta: float, option: str) -> str:
    return f"{method}, {reading}, δ = {delta:g}, {option}"


def configs(sz: dict) -> dict[str, dict]:
    """The grid: every reading x delta x method x reset option, early exit on."""
    return {label(m, r, d, o): H.bisls(sz, m, reference=r, delta=float(d), early_exit=True,
                                       diagnostics=True, **reset)
            for m in ("BiSLS-SGD", "BiSLS-Adam") for r in READINGS for d in sz["deltas"]
            for o, reset in RESETS.items()}


def compare_configs(sz: dict) -> dict[str, dict]:
    """The early-exit comparison: delta = 0, option 3, every reading and method, exit off
    (labels end in ``", exit off"``); their exit-on twins are in :func:`configs`."""
    return {label(m, r, 0.0, "option 3") + ", exit off":
            H.bisls(sz, m, reference=r, delta=0.0, early_exit=False, diagnostics=True,
                    **RESETS["option 3"])
            for m in ("BiSLS-SGD", "BiSLS-Adam") for r in READINGS}


def run(sz: dict, **opts):
    """Both grids through the cache ``"search_condition14"``: ``(grid, compare)``."""
    from ..bilevel import run_config
    from ..experiments import run_unique

    grid = run_unique(run_config, configs(sz), name="search_condition14", n_runs=sz["n_runs"],
                      **opts)
    compare = run_unique(run_config, compare_configs(sz), name="search_condition14",
                         n_runs=sz["n_compare"], **opts)
    return grid, compare


def decades(rounds, w: float):
    """Search cost in decades of step size: ``rounds * log10(1/w)``."""
    return np.asarray(rounds, float) * math.log10(1.0 / w)


def outcome_shares(rec) -> dict[str, float]:
    """Share of searches per outcome (accepted by (14), round-off guard, failed)."""
    codes = np.asarray(rec["upper_outcome"], float)
    codes = codes[np.isfinite(codes)]
    return {name: float(np.mean(codes == OUTCOME_CODES[name])) if codes.size else math.nan
            for name in ("accepted", "guard", "failed")}


def slope_ratios(rec) -> np.ndarray:
    """:math:`\\varphi'(0)/(-p\\|d\\|^2)` of every search (finite ones): above 1 the slope
    is steeper than (14) asks (small steps pass when there is no offset); below 1,
    and in particular below 0 (an ascent), no small step passes."""
    ratio = np.asarray(rec["upper_slope"], float) / np.asarray(rec["upper_asked"], float)
    return ratio[np.isfinite(ratio)]


def prediction_errors(rec) -> dict[str, float]:
    """In runs with the exit off: of the searches the exit test called hopeless, the
    share that condition (14) then accepted (a wrong prediction), that the round-off
    guard accepted, and that failed; and the share of searches it was asked about."""
    fired = np.isfinite(np.asarray(rec["upper_exit_round"], float))
    codes = np.asarray(rec["upper_outcome"], float)
    n = max(int(fired.sum()), 1)
    return {"fired": float(fired.mean()),
            "wrong": float((fired & (codes == 0)).sum() / n),
            "guard": float((fired & (codes == 1)).sum() / n),
            "failed": float((fired & (codes == 2)).sum() / n)}


def summary(grid, sz: dict) -> list[dict]:
    """One row per label: outcome shares, rounds and decades per search, the median
    accepted step, final validation loss and test accuracy (means over the runs)."""
    from ..experiments import final_values

    rows = []
    for lab, rec in grid.items():
        shares = outcome_shares(rec)
        ok = np.asarray(rec["upper_outcome"]) == 0
        alpha = np.asarray(rec["alpha"], float)[ok]
        rounds = float(np.nanmean(rec["upper_rounds"]))
        rows.append({"label": lab, **shares, "rounds": rounds,
                     "decades": float(decades(rounds, sz["w"])),
                     "alpha": float(np.median(alpha)) if alpha.size else math.nan,
                     "val_loss": float(np.mean(final_values(rec, "val_loss"))),
                     "test_acc": float(np.mean(final_values(rec, "test_acc")))})
    return rows


def table(grid, sz: dict) -> str:
    """:func:`summary` as text, one line per label."""
    head = (f"{'configuration':44s} {'(14)':>5s} {'guard':>5s} {'fail':>5s} {'rounds':>6s} "
            f"{'decades':>7s} {'median α':>9s} {'val loss':>8s} {'test acc':>8s}")
    lines = [head]
    for r in summary(grid, sz):
        lines.append(f"{r['label']:44s} {r['accepted']:5.0%} {r['guard']:5.0%} {r['failed']:5.0%} "
                     f"{r['rounds']:6.1f} {r['decades']:7.1f} {r['alpha']:9.2g} "
                     f"{r['val_loss']:8.4f} {r['test_acc']:8.1%}")
    return "\n".join(lines)


def by_reading(grid, fn) -> dict[str, np.ndarray]:
    """``fn(rec)`` (an array) pooled over every label of each reading."""
    return {r: np.concatenate([np.ravel(fn(rec)) for lab, rec in grid.items()
                               if f", {r}," in lab]) for r in READINGS}


def slope_figure(grid):
    """Histogram of :math:`\\varphi'(0)/(-p\\|d\\|^2)` per reading, one panel per method
    (every search of the grid; the line at 1 is what condition (14) asks to first order)."""
    from .. import plotting

    fig, axes = plotting.new_figure(ncols=2, width=4.2)
    bins = np.linspace(-3, 5, 41)
    for ax, m in zip(axes, ("BiSLS-SGD", "BiSLS-Adam")):
        sub = {lab: rec for lab, rec in grid.items() if lab.startswith(m + ",")}
        for i, (r, v) in enumerate(by_reading(sub, slope_ratios).items()):
            ax.hist(np.clip(v, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.2,
                    color=plotting.color(r, i), label=f"{r} (median {np.median(v):.2f})")
        ax.axvline(1.0, color="gray", ls=":", lw=1)
        ax.axvline(0.0, color="gray", ls="-", lw=0.5)
        ax.set(title=m, xlabel="φ'(0) / (−p‖d‖²)  (clipped to [−3, 5])", ylabel="searches")
        ax.legend(fontsize=7)
    return fig


def exit_comparison(grid, compare) -> list[str]:
    """Exit off against exit on, paired by seed (the first ``n_compare`` seeds): the
    prediction errors, rounds and function evaluations per iteration, and the final
    validation losses."""
    from ..experiments import final_values

    lines = []
    for lab, off in compare.items():
        on = grid[lab.removesuffix(", exit off")]
        n = np.asarray(off["upper_rounds"]).shape[0]
        err = prediction_errors(off)
        lines.append(
            f"{lab.removesuffix(', δ = 0, option 3, exit off'):26s} test fired on {err['fired']:4.0%}"
            f" of searches; of those, accepted by (14) {err['wrong']:4.0%}, by round-off "
            f"{err['guard']:4.0%}, failed {err['failed']:4.0%} | rounds/iter "
            f"{np.nanmean(off['upper_rounds']):5.1f} -> {np.nanmean(on['upper_rounds'][:n]):5.1f}"
            f" | n_fun/iter {np.nanmean(off['n_fun']):5.1f} -> {np.nanmean(on['n_fun'][:n]):5.1f}"
            f" | val loss {np.mean(final_values(off, 'val_loss')):.4f} -> "
            f"{np.mean(final_values(on, 'val_loss')[:n]):.4f}")
    return lines
