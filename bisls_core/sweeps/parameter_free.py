"""The page beyond the paper: BiSLS and BiSPS against parameter-free optimizers at an
equal budget of oracle calls (gradients plus Hessian-vector products, the record's
``n_grad + n_hvp``).

:func:`run` runs a problem's methods through the cache ``"beyond_parameter_free"``;
:func:`oracle_calls`, :func:`total_calls` and :func:`at_budget` read a record against
its oracle calls; :func:`stable`, :func:`calls_text` and :func:`mean_finite` are the
page's table and claims.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["all_calls", "at_budget", "calls_text", "function_evals", "mean_finite",
           "oracle_calls", "run", "stable", "total_calls"]


def run(problem: str, configs: Mapping[str, dict], *, n_runs: int, scale: str, seed: int = 0,
        device: str = "auto", recompute: bool = False):
    """Run the configurations of one problem (legend name -> configuration for
    :func:`bisls_core.bilevel.run_config`) under the labels ``"<problem>/<method>"``. The
    keyword arguments are those :func:`bisls_core.sweeps.start` returns."""
    from ..bilevel import run_config
    from ..experiments import run_grid

    return run_grid(run_config, {f"{problem}/{m}": c for m, c in configs.items()},
                    name="beyond_parameter_free", scale=scale, n_runs=n_runs, seed=seed,
                    device=device, recompute=recompute)


def oracle_calls(rec: Mapping[str, np.ndarray]) -> np.ndarray:
    """Cumulative gradient + Hessian-vector products after each iteration, per run."""
    return np.nancumsum(rec["n_grad"] + rec["n_hvp"], axis=1)


def function_evals(rec: Mapping[str, np.ndarray], T: int, *, one_step: bool = False) -> np.ndarray:
    """Cumulative function evaluations after each iteration, per run, that
    :func:`oracle_calls` leaves out: the upper search's trials evaluate :math:`f` once
    each (``upper_rounds``, plus the trial at :math:`\\alpha = 0` per iteration with
    ``reference="one_step"``: ``one_step``), the lower search's rounds evaluate
    :math:`g` (``lower_rounds`` per lower step, times ``T`` steps). Their gradients
    (one per upper trial) are already in ``n_grad``. Zero for the methods without a search."""
    up = np.asarray(rec["upper_rounds"], dtype=float)
    f = up + (one_step * (up > 0))
    return np.nancumsum(f + np.asarray(rec["lower_rounds"], dtype=float) * T, axis=1)


def all_calls(rec: Mapping[str, np.ndarray], T: int, *, one_step: bool = False) -> np.ndarray:
    """:func:`oracle_calls` plus :func:`function_evals`, each counted as one call (an
    upper bound on the search's cost: a function value is cheaper than a gradient)."""
    return oracle_calls(rec) + function_evals(rec, T, one_step=one_step)


def total_calls(rec: Mapping[str, np.ndarray], calls: np.ndarray | None = None) -> float:
    """Mean oracle calls (or ``calls``, cumulative per run) of the runs that finished
    (NaN if every run diverged)."""
    done = ~rec["diverged"][:, -1]
    calls = oracle_calls(rec) if calls is None else calls
    return float(np.mean(calls[done, -1])) if done.any() else np.nan


def at_budget(rec: Mapping[str, np.ndarray], budget: float,
              calls: np.ndarray | None = None) -> np.ndarray:
    """Per run, the validation loss at its last evaluation within ``budget`` oracle calls
    (or within ``budget`` of ``calls``, cumulative per run, e.g. :func:`all_calls`; the
    start if none); NaN if the run diverged within the budget."""
    calls = oracle_calls(rec) if calls is None else calls
    vals = rec["val_loss"]
    out = np.array(rec["initial_val_loss"], dtype=float)
    for i in range(len(vals)):
        within = calls[i] <= budget
        if np.any(rec["diverged"][i] & within):
            out[i] = np.nan
            continue
        ok = np.flatnonzero(within & ~np.isnan(vals[i]))
        if ok.size:
            out[i] = vals[i, ok[-1]]
    return out


def stable(rec: Mapping[str, np.ndarray]) -> bool:
    """No divergence, and every run ends below its starting validation loss."""
    from ..experiments import final_values

    last = final_values(rec, "val_loss")
    return bool(np.all(np.isfinite(last)) and np.all(last < rec["initial_val_loss"]))


def calls_text(rec: Mapping[str, np.ndarray]) -> str:
    """:func:`total_calls` as a table entry (``"diverged"`` when every run did)."""
    calls = total_calls(rec)
    return f"{calls:.0f}" if np.isfinite(calls) else "diverged"


def mean_finite(values: np.ndarray) -> float:
    """Mean over the runs that did not diverge (``inf`` if none did)."""
    values = np.asarray(values, dtype=float)
    ok = np.isfinite(values)
    return float(np.mean(values[ok])) if ok.any() else np.inf


def choose(grid, problem: str, names, methods) -> str:
    """The best of ``names`` at the equal budget, chosen on a grid of tuning runs (seeds
    that no evaluation run uses, :func:`bisls_core.sweeps.tuning`): the lowest mean
    :func:`at_budget` validation loss at the tuning grid's own budget (the smallest
    :func:`total_calls` over ``methods``), a run that diverged within it the worst."""
    from ..experiments import best_label

    budget = np.nanmin([total_calls(grid[f"{problem}/{m}"]) for m in methods])
    return best_label({m: grid[f"{problem}/{m}"] for m in names}, "val_loss",
                      per_run=lambda rec, _key: at_budget(rec, budget))


__all__ += ["choose"]
