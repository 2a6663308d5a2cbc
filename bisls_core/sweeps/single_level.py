"""The single-level pages: Figures 4 and 10 (two quadratics) and Figures 5 and 17
(logistic regression on w8a).

The sizes that Figures 5 and 17 share (:data:`W8A_PRESETS`), the check of every
single-level page's sizes against each other (:func:`sizes`), the runs through the
results cache (:func:`run`) and the two-panel loss and step-size figure of w8a
(:func:`loss_and_step_figure`). The runner is :func:`bisls_core.single_level.run_single_level`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..data import W8A_SHAPE
from . import at_most

__all__ = ["W8A_PRESETS", "W8A_ROWS", "loss_and_step_figure", "run", "sizes", "tail_mean",
           "w8a_sizes"]

#: Samples of w8a (:data:`bisls_core.data.W8A_SHAPE`).
W8A_ROWS: int = W8A_SHAPE[0]

#: Sizes of Figures 5 and 17 (the same problem and horizon, so that their 1-sample runs
#: are the same cache entries): ``K`` iterations, mini-batches of ``batch`` samples (the
#: paper gives neither), the full training loss every ``eval_every`` iterations,
#: ``n_runs`` runs, ``tune_runs`` runs per method on the tuning seeds
#: (:data:`bisls_core.experiments.TUNING_SEED_OFFSET`) where a page chooses the best of
#: several methods (Figure 5's "lowest").
W8A_PRESETS: dict[str, dict] = {
    "smoke": {"K": 60, "batch": 100, "eval_every": 20, "n_runs": 1, "tune_runs": 1},
    "cpu": {"K": 1000, "batch": 100, "eval_every": 50, "n_runs": 5, "tune_runs": 3},
    "paper": {"K": 10000, "batch": 100, "eval_every": 100, "n_runs": 5, "tune_runs": 3},
}


def sizes(scale: str, presets: Mapping[str, Mapping], **overrides) -> dict:
    """:func:`bisls_core.experiments.scaled` with the page's overrides, checked: the loss
    is evaluated at least once before the end (``eval_every`` at most ``K``)."""
    from ..experiments import scaled

    out = scaled(scale, presets, **overrides)
    if "eval_every" in out:
        at_most(out, "eval_every", "K", "the training loss is evaluated every eval_every "
                "iterations of the K; lower eval_every or raise K")
    return out


def w8a_sizes(scale: str, **overrides) -> dict:
    """:func:`sizes` of :data:`W8A_PRESETS`; a batch is drawn from the :data:`W8A_ROWS`
    samples (a larger one would silently be the full objective)."""
    out = sizes(scale, W8A_PRESETS, **overrides)
    at_most(out, "batch", W8A_ROWS, "the samples of w8a (a mini-batch is drawn from them)")
    return out


def run(configs: dict, *, name: str, n_runs: int, scale: str, seed: int = 0,
        device: str = "auto", recompute: bool = False):
    """Run labelled configurations of :func:`bisls_core.single_level.run_single_level`
    through the cache ``name`` (the page's own folder of the results cache). The keyword
    arguments are those :func:`bisls_core.sweeps.start` returns."""
    from ..experiments import run_grid
    from ..single_level import run_single_level

    return run_grid(run_single_level, configs, name=name, scale=scale, n_runs=n_runs, seed=seed,
                    device=device, recompute=recompute)


def tail_mean(record: Mapping[str, np.ndarray], key: str = "loss",
              fraction: float | None = None) -> np.ndarray:
    """Per run, the mean over the last ``fraction`` of the evaluations of ``record[key]``
    (at least one; by default the book-wide window,
    :data:`bisls_core.registry.FINAL_FRACTION`: the last 10 %,
    :func:`bisls_core.registry.final_window`): the "final loss" of Figures 5 and 17, less
    noisy than the last value."""
    from ..registry import FINAL_FRACTION, final_window

    return final_window(record[key], FINAL_FRACTION if fraction is None else fraction)


def loss_and_step_figure(grid, *, step_kw: dict | None = None, dashed: str | None = None):
    """Figures 5 and 17: the training loss (left, mean ± std over runs, on the evaluation
    grid) and the step size (right) of every method of ``grid``, on log axes. ``step_kw``:
    keyword arguments of the step curves (:func:`bisls_core.plotting.plot_runs`); labels
    containing ``dashed`` are drawn dashed in both panels. Returns the figure."""
    from .. import plotting

    fig, axes = plotting.new_figure(ncols=2, width=4.2)
    for label, rec in grid.items():
        style = {"ls": "--"} if dashed is not None and dashed in label else {}
        plotting.plot_runs(axes[0], rec["loss"], label, x=rec["eval_at"][0], log=True, **style)
        plotting.plot_runs(axes[1], rec["step"], label, log=True, **(step_kw or {}), **style)
    axes[0].set(xlabel="iteration $k$", ylabel="train loss $f(x^k)$")
    axes[1].set(xlabel="iteration $k$", ylabel="step size $\\gamma_k$")
    axes[0].legend()
    return fig
