"""The sweeps of Figures 3, 7, 8, 11-15 and 18 (hyper-representation learning): scale presets, the
configurations the figure notebooks name, tuning and the shared reports.

The problem itself (objective, data, metrics) is :mod:`bisls_core.problems.hyperrep`;
this module sits above it and above :mod:`bisls_core.bilevel` and
:mod:`bisls_core.experiments`, so that the problems never import the loop.
"""

from __future__ import annotations

import numpy as np

from ..problems.hyperrep import make
from . import at_most

__all__ = [
    "BISLS_BASE", "PRESETS", "bisls", "config", "delta_labels", "delta_report",
    "delta_sweep_configs", "make", "sizes", "tune", "tuning_configs", "tuning_table",
]

# ------------------------------------------------------------------ the notebooks' shared sweeps
#: Sizes and sweep values of the hyper-representation notebooks (Figures 3, 7, 8,
#: 11-15, 18), one entry per scale of :func:`bisls_core.experiments.scaled`.
#: Every notebook builds its configurations with :func:`config` from these sizes,
#: so a configuration that two figures share is one cache entry.
#:
#: ``n_train``/``n_val``/``n_test``: digits of the lower level's training set, the
#: upper level's validation set and the test set; ``batch``: samples per stochastic
#: evaluation at both levels; ``T``: lower steps per outer iteration; ``cg``:
#: conjugate-gradient steps of the hypergradient; ``K``: outer iterations;
#: ``eval_every``: metrics (full validation/test sets) every this many iterations;
#: ``w``/``max_rounds``: backtracking factor and budget of every line search;
#: ``n_runs``: runs of the main comparisons; ``n_sweep``: runs of the sensitivity
#: sweeps (Figures 7b-c, 8c-d, 13b, 14, 15); ``tune_runs``: runs per pair of the
#: learning-rate tuning; ``beta_grid``/``alpha_grid_sgd``/``alpha_grid_adam``: the
#: tuning grids; ``alpha_starts``/``beta_starts``: BiSLS's search starting points
#: :math:`\alpha_{b,0}`/:math:`\beta_{b,0}`; ``etas``: option 3's :math:`\eta`;
#: ``deltas``: the slack :math:`\delta` of condition (14); ``bisps_alphas``:
#: :math:`\alpha_{b,0}` of Figure 18.
#:
#: ``paper`` holds the paper's settings where it gives them (5 runs, CG, the
#: tuning grids of Section 4, :math:`\beta_{b,0} = 100`, :math:`\alpha_{b,0} = 10`,
#: :math:`\eta = 10` in Figure 15, :math:`\beta = 10` in Figure 18) and our guesses
#: elsewhere: all the shipped MNIST digits (6,000 train / 2,000 validation from the
#: training part, the 2,000 test digits), batches of 256, T = 10, 10 CG steps,
#: K = 1000, w = 0.9 with 200 rounds (the factor that the reported 89 rounds per
#: search imply, see :class:`bisls_core.bilevel.BilevelConfig`), starting points
#: over 3 decades, :math:`\delta` one value per decade from 1e-6 to 1e-1,
#: :math:`\eta \in \{1, 2, 5, 10\}`, :math:`\alpha_{b,0} \in \{0.01, 0.1, 1\}` in Figure 18
#: (the paper names 0.1), the pair tuned on three runs of the full horizon.
#: ``cpu`` keeps the whole cache within a few hours of two cores: a smaller problem,
#: K = 150, w = 0.5 (a step halves each round: fewer rounds per decade), 5 runs (the
#: paper's count, sweeps included; every tuned or "best" choice on three runs per grid
#: point, chosen by their mean final value with a diverged run the worst, on seeds that
#: no evaluation run uses, :data:`bisls_core.experiments.TUNING_SEED_OFFSET`), and reduced grids (every other value of the paper's tuning grids;
#: 3 starting points and 3 deltas). The budget of 50 rounds at w = 0.5 (15 decades) is
#: deeper than the paper preset's 200 at w = 0.9 (9 decades), so a failed search costs
#: 50 rounds. ``smoke`` only checks the plumbing.
PRESETS: dict[str, dict] = {
    "smoke": dict(
        n_train=200, n_val=100, n_test=200, batch=64, T=2, cg=2, K=4, eval_every=2,
        w=0.5, max_rounds=20, n_runs=1, n_sweep=1, tune_runs=1,
        beta_grid=(1.0, 0.1), alpha_grid_sgd=(0.005, 0.05), alpha_grid_adam=(1e-4, 1e-3),
        alpha_starts=(10.0, 1000.0), beta_starts=(100.0, 1000.0), etas=(1.0, 2.0, 10.0),
        deltas=(1e-3,), bisps_alphas=(0.1,),
    ),
    "cpu": dict(
        n_train=1000, n_val=500, n_test=1000, batch=128, T=5, cg=5, K=150, eval_every=5,
        w=0.5, max_rounds=50, n_runs=5, n_sweep=5, tune_runs=3,
        beta_grid=(10.0, 1.0, 0.1, 0.01), alpha_grid_sgd=(0.001, 0.005, 0.05),
        alpha_grid_adam=(1e-5, 1e-4, 1e-3),
        alpha_starts=(1.0, 10.0, 1000.0), beta_starts=(1.0, 100.0, 1000.0),
        etas=(1.0, 2.0, 5.0, 10.0), deltas=(1e-6, 1e-3, 1e-1), bisps_alphas=(0.01, 0.1, 1.0),
    ),
    "paper": dict(
        n_train=6000, n_val=2000, n_test=2000, batch=256, T=10, cg=10, K=1000, eval_every=10,
        w=0.9, max_rounds=200, n_runs=5, n_sweep=5, tune_runs=3,
        beta_grid=(10.0, 5.0, 1.0, 0.5, 0.1, 0.05, 0.01),
        alpha_grid_sgd=(0.001, 0.0025, 0.005, 0.01, 0.05, 0.1),
        alpha_grid_adam=(1e-5, 5e-5, 1e-4, 5e-4, 0.001, 0.01),
        alpha_starts=(1.0, 10.0, 100.0, 1000.0), beta_starts=(1.0, 10.0, 100.0, 1000.0),
        etas=(1.0, 2.0, 5.0, 10.0), deltas=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1),
        bisps_alphas=(0.01, 0.1, 1.0),
    ),
}

#: BiSLS's settings shared by every hyper-representation figure (Figures 7, 8, 11-15):
#: :math:`\alpha_{b,0} = 10` (Figure 7: 5 decades above the tuned Adam step; Figure 8d),
#: :math:`\beta_{b,0} = 100` (Figures 8c, 11-15), option 3 with :math:`\eta = 2` upstairs
#: (the paper's recommendation, Appendix A.2), option 1 downstairs (Figures 11-15),
#: :math:`\delta = 0` (Section 4), :math:`p = 0.5`; a search stops as soon as it cannot
#: succeed (``early_exit``; with the printed condition (14) it accepts the same steps,
#: see the condition (14) page).
BISLS_BASE: dict = dict(alpha=10.0, beta=100.0, reset_upper="grow", eta=2.0,
                        reset_lower="reset", delta=0.0, p=0.5, early_exit=True)


def sizes(scale: str, data_root=None, **overrides) -> dict:
    """``PRESETS[scale]`` with the notebook's overrides (``None`` = preset).

    An explicit ``n_runs`` also sets ``n_sweep`` (a user asking for 5 runs gets
    5 runs everywhere). Explicit ``n_train``/``n_val`` are checked against the training
    digits of the set the runs use (``data_root``, see :func:`bisls_core.data.mnist_root`).
    """
    from ..experiments import scaled

    out = scaled(scale, PRESETS, **overrides)
    if overrides.get("n_runs") is not None:
        out["n_sweep"] = out["n_runs"]
    at_most(out, "batch", "n_train", "each lower-level batch is drawn from the n_train "
            "training digits; lower batch or raise n_train")
    at_most(out, "batch", "n_val", "each upper-level batch is drawn from the n_val "
            "validation digits; lower batch or raise n_val")
    if overrides.get("n_train") is not None or overrides.get("n_val") is not None:
        from ..data import load_mnist, mnist_root

        digits = load_mnist(mnist_root(data_root), train=True).n
        if out["n_train"] + out["n_val"] > digits:
            raise ValueError(f"n_train + n_val = {out['n_train']} + {out['n_val']} is larger "
                             f"than the {digits:,} training digits available (both sets are "
                             "drawn from them)")
    return out


def config(sz: dict, method: str, **fields) -> dict:
    """The JSON configuration of one run for :func:`bisls_core.bilevel.run_config`.

    ``sz`` are the sizes of :func:`sizes`; ``method`` a legend name of
    :data:`bisls_core.bilevel.METHODS`; ``fields`` any
    :class:`~bisls_core.bilevel.BilevelConfig` field (they win over the sizes). The
    backtracking factor and budget are added only when the run searches (BiSLS
    upstairs or Armijo downstairs), with the page's reading of the paper's open choices
    (:func:`bisls_core.scales.reading_in_use`, by name: the cache key sees only the fields
    the method uses, :func:`bisls_core.bilevel.key_config`), so that they do not split the
    cache of the fixed-step methods. The configuration is validated here (a bad field is an
    error in the notebook, not in the middle of a grid).
    """
    from ..bilevel import make_config

    cfg = {
        "problem": "hyperrep",
        "problem_args": {"n_train": sz["n_train"], "n_val": sz["n_val"], "n_test": sz["n_test"],
                         "batch_train": sz["batch"], "batch_val": sz["batch"]},
        "method": method, "K": sz["K"], "T": sz["T"], "hypergrad": "cg",
        "hypergrad_steps": sz["cg"], "eval_every": sz["eval_every"],
    }
    if sz.get("data_root"):  # only then: the default keeps its cache keys
        cfg["problem_args"]["data_root"] = sz["data_root"]
    cfg.update(fields)
    run = {k: v for k, v in cfg.items() if k not in ("problem", "problem_args", "method")}
    checked = make_config(method, **run)
    if checked.upper == "bisls" or checked.lower == "armijo":
        from ..scales import reading_in_use

        cfg = {"w": sz["w"], "max_rounds": sz["max_rounds"], "reading": reading_in_use(), **cfg}
        make_config(method, **{k: v for k, v in cfg.items()
                               if k not in ("problem", "problem_args", "method")})
    return cfg


def bisls(sz: dict, method: str = "BiSLS-Adam", *, reading: str | None = None,
          **fields) -> dict:
    """:func:`config` of ``"BiSLS-SGD"``/``"BiSLS-Adam"`` with :data:`BISLS_BASE`, the reading
    ``reading`` of the paper's open choices (:data:`bisls_core.readings.READINGS`;
    ``None``: the page's, :func:`bisls_core.scales.reading_in_use`) and ``fields`` (they
    win over the reading's). The reading is written into the configuration by name; the
    cache key sees its fields (:func:`bisls_core.bilevel.key_config`), so two readings that
    agree on what a method uses share its runs."""
    from ..scales import reading_in_use

    if method not in ("BiSLS-SGD", "BiSLS-Adam"):
        raise ValueError(f"method must be 'BiSLS-SGD' or 'BiSLS-Adam', got {method!r}")
    name = reading_in_use() if reading is None else reading
    return config(sz, method, **{**BISLS_BASE, "reading": name, **fields})


def tuning_configs(sz: dict, method: str) -> dict[str, dict]:
    """The tuning grid of Section 4 for the fixed-step ``"SGD"`` or ``"Adam"``:
    label ``"<method> α=<a> β=<b>"`` -> :func:`config` (the same configuration as
    the final runs, which run on other seeds)."""
    alphas = {"SGD": sz["alpha_grid_sgd"], "Adam": sz["alpha_grid_adam"]}
    if method not in alphas:
        raise ValueError(f"method must be 'SGD' or 'Adam', got {method!r}")
    return {f"{method} α={a:g} β={b:g}": config(sz, method, alpha=float(a), beta=float(b))
            for a in alphas[method] for b in sz["beta_grid"]}


def tune(sz: dict, method: str, *, scale: str, seed: int = 0, device: str = "auto",
         recompute: bool = False):
    """Tune ``"SGD"``/``"Adam"`` over :func:`tuning_configs` (``sz["tune_runs"]`` runs
    per pair, on the seeds from ``seed +``
    :data:`~bisls_core.experiments.TUNING_SEED_OFFSET`, which no evaluation run uses,
    through the cache ``"hyperrep"``); the best pair is the one with the
    lowest mean final validation loss over its tuning runs, a diverged run the worst
    (:func:`bisls_core.experiments.best_label`).

    Returns ``(label, config, grid)``.
    """
    from ..bilevel import run_config
    from ..experiments import TUNING_SEED_OFFSET, best_label, run_grid

    configs = tuning_configs(sz, method)
    grid = run_grid(run_config, configs, name="hyperrep", scale=scale, n_runs=sz["tune_runs"],
                    seed=seed + TUNING_SEED_OFFSET, device=device, recompute=recompute)
    label = best_label(grid, "val_loss")
    return label, configs[label], grid


def tuning_table(sz: dict, method: str, grid) -> str:
    """The tuning grid's final validation losses as a text table (rows
    :math:`\\alpha`, columns :math:`\\beta`; ``div`` where a run diverged)."""
    from ..experiments import final_values

    configs = tuning_configs(sz, method)
    betas = list(sz["beta_grid"])
    lines = [f"{method:>6s} α \\ β " + "".join(f"{b:>8g}" for b in betas)]
    for a in {"SGD": sz["alpha_grid_sgd"], "Adam": sz["alpha_grid_adam"]}[method]:
        cells = []
        for b in betas:
            label = next(lab for lab, c in configs.items() if c["alpha"] == a and c["beta"] == b)
            v = float(np.mean(final_values(grid[label], "val_loss")))
            cells.append(f"{v:8.4f}" if np.isfinite(v) else f"{'div':>8s}")
        lines.append(f"{a:>13g} " + "".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the delta sweeps
def delta_labels(methods, deltas) -> dict[str, list[str]]:
    """Legend labels of a sweep over the slack delta of condition (14), per method."""
    return {m: [f"{m}, {v}" for v in delta_variants(deltas)] for m in methods}


def delta_sweep_configs(sz: dict, methods, deltas, **reset) -> dict[str, dict]:
    """Configurations of Figures 14/15: BiSLS for each method and delta, with the
    upper reset option given in ``reset`` (e.g. ``reset_upper="grow", eta=10.0``)."""
    labels = delta_labels(methods, deltas)
    return {lab: bisls(sz, m, delta=float(d), **reset)
            for m in methods for lab, d in zip(labels[m], deltas)}


def delta_report(grid, sz: dict, methods, deltas, *, notebook: str, scale: str,
                 option: str, figure: str) -> list[str]:
    """Print the numbers of a delta sweep (final loss, failed searches, accepted
    steps, rounds) and record its two claims; returns the claim lines."""
    import numpy as np

    from .. import experiments

    labels = delta_labels(methods, deltas)
    fin, mean = finals(grid)
    for label, rec in grid.items():
        ok = rec["upper_failures"] == 0
        step = np.median(rec["alpha"][ok]) if ok.any() else np.nan
        print(f"{label:24s} final val loss {experiments.summarize(fin[label], 3):14s} failed searches "
              f"{np.mean(~ok):4.0%}  median step {step:8.2g}  rounds {np.mean(rec['upper_rounds']):5.1f}")
    from . import claims

    alike = {m: experiments.similar([fin[lab] for lab in labels[m]]) for m in methods}
    robust = _delta_robust(grid, labels, methods, f"{notebook[:5]}-delta-robust")
    verdict = robust["verdict"]
    listed = "{" + ", ".join(f"{d:g}" for d in deltas) + "}"
    worst_best = "; ".join(
        f"{m}: worst at delta = {deltas[int(np.argmax([mean[lab] for lab in labels[m]]))]:g}, "
        f"best at delta = {deltas[int(np.argmin([mean[lab] for lab in labels[m]]))]:g}" for m in methods)
    lines = [experiments.record_claim(
        notebook, f"{notebook[:5]}-delta-robust", scale=scale, judged=robust,
        claim=f"BiSLS ({option}) performs similarly for delta over 6 orders of magnitude",
        paper=f"qualitative ({figure})",
        ours="; ".join(f"{m}: final val loss spread {alike[m][1]:.1%} over delta in {listed}"
                       for m in methods) + f"; per seed (every pair of deltas equivalent within "
                                           f"5 %, 90 % interval): {robust['text']}",
        why="" if verdict == "held" else f"{robust['why']}; {worst_best}")]
    fail = {lab: float(np.mean(rec["upper_failures"])) for lab, rec in grid.items()}
    per_run = {lab: np.mean(np.asarray(rec["upper_failures"], dtype=float), axis=1)
               for lab, rec in grid.items()}
    guard = claims.judge({m: claims.part(per_run[labels[m][-1]] - per_run[labels[m][0]],
                                         f"share of failed searches, delta = {deltas[-1]:g} minus 0")
                          for m in methods}, claim=f"{notebook[:5]}-delta-safeguard")
    lines.append(experiments.record_claim(
        notebook, f"{notebook[:5]}-delta-safeguard", scale=scale, judged=guard,
        why=(guard["why"] + "; " if guard["why"] else "") + "with the printed trial the offset "
        "f(x^k, y_hat(x^k)) - f(x^k, y^{k+1}) is typically larger than delta <= 1e-3 (search_condition14)",
        claim="delta > 0 is a safeguard that ensures an upper step size can be found",
        paper="qualitative (Section 2)",
        ours="; ".join(f"{m}: failed searches " + ", ".join(f"{fail[lab]:.0%}" for lab in labels[m])
                       + f" for delta = {', '.join(f'{d:g}' for d in deltas)}" for m in methods)
        + f"; per seed: {guard['text']}"))
    for line in lines:
        print(line)
    return lines


def _delta_robust(grid, labels: dict, methods, claim: str) -> dict:
    """"Performs similarly for every delta": per method, every pair of deltas equivalent
    within 5 % (:func:`bisls_core.sweeps.claims.alike`), judged as ``claim`` with the
    neighbouring final-value window as the alternative."""
    from ..registry import NEIGHBOUR_FRACTION
    from . import claims

    def parts(fin):
        return {m: claims.alike({lab.split(", ", 1)[1]: fin[lab] for lab in labels[m]},
                                "log final val loss") for m in methods}

    return claims.judge(parts(finals(grid)[0]), claim=claim,
                        window=parts(finals(grid, NEIGHBOUR_FRACTION)[0]))


# ------------------------------------------------------------------ runs and figures of the pages
def run(configs: dict[str, dict], *, n_runs: int, scale: str, seed: int = 0, device: str = "auto",
        recompute: bool = False):
    """Run labelled configurations of :func:`config` through the cache ``"hyperrep"``
    (:func:`bisls_core.experiments.run_unique`: a configuration named by two labels runs
    once). The keyword arguments are those :func:`bisls_core.sweeps.start` returns."""
    from ..bilevel import run_config
    from ..experiments import run_unique

    return run_unique(run_config, configs, name="hyperrep", scale=scale, n_runs=n_runs,
                      seed=seed, device=device, recompute=recompute)


def variant_figure(grid, sz: dict, methods, variants):
    """One panel per method (BiSLS-SGD, BiSLS-Adam), one curve per variant: the validation
    loss of ``grid[f"{method}, {variant}"]`` (mean ± std over runs), as in Figures 11, 12,
    14 and 15. Returns the figure (see :func:`bisls_core.plotting.publish`)."""
    from .. import plotting
    from ..experiments import curve

    fig, axes = plotting.new_figure(ncols=2, width=4.2)
    for ax, m in zip(axes, methods):
        for i, variant in enumerate(variants):
            x, y = curve(grid[f"{m}, {variant}"], "val_loss", sz["eval_every"])
            plotting.plot_runs(ax, y, variant, x=x, i=i)
        ax.set(title=m, xlabel="upper-level iteration $k$", ylabel="validation loss $F(w^k)$")
        ax.legend()
    return fig


def finals(grid, fraction: float | None = None) -> tuple[dict, dict]:
    """Per label, the final validation losses of the runs
    (:func:`bisls_core.experiments.final_values` over the last ``fraction`` of the
    evaluations, by default the book-wide window; a claim's alternative passes
    :data:`bisls_core.registry.NEIGHBOUR_FRACTION`) and their mean (``inf`` when a run
    diverged, so that a diverged configuration never looks best)."""
    from ..experiments import final_values
    from ..registry import FINAL_FRACTION

    frac = FINAL_FRACTION if fraction is None else fraction
    fin = {lab: final_values(rec, "val_loss", frac) for lab, rec in grid.items()}
    mean = {lab: float(np.mean(v)) if np.isfinite(v).all() else np.inf for lab, v in fin.items()}
    return fin, mean


def ablation_configs(sz: dict, tuned: dict[str, dict]) -> dict[str, dict]:
    """The four ablations of Figure 8a for each direction, labelled ``"<SGD|Adam>: <ablation>"``:
    ``both`` is BiSLS; ``upper only`` is BiSLS with the lower step fixed at the tuned
    :math:`\\beta` of the same direction; ``lower only`` is SGD/Adam with the tuned
    :math:`\\alpha` and the Armijo lower search (option 1 from :data:`BISLS_BASE`'s
    :math:`\\beta_{b,0}`); ``neither`` is the tuned configuration itself (``tuned`` maps
    ``"SGD"``/``"Adam"`` to the configuration :func:`tune` returns)."""
    out = {}
    for d, m in (("SGD", "BiSLS-SGD"), ("Adam", "BiSLS-Adam")):
        out |= {f"{d}: both": bisls(sz, m),
                f"{d}: upper only": bisls(sz, m, lower="fixed", beta=tuned[d]["beta"]),
                f"{d}: lower only": config(sz, d, alpha=tuned[d]["alpha"], lower="armijo",
                                           beta=BISLS_BASE["beta"], reset_lower="reset"),
                f"{d}: neither": tuned[d]}
    return out


def search_rounds(rec, key: str, failures: str | None = None) -> tuple[float, float, float]:
    """Rounds of a search per iteration (``key``: ``"upper_rounds"``/``"lower_rounds"``):
    the mean over every search, and the mean and std over the searches that succeeded
    (``failures``: the record's failure counts; every search when ``None``)."""
    v = np.asarray(rec[key], float)
    ok = np.ones(v.shape, bool) if failures is None else np.asarray(rec[failures]) == 0
    return v.mean(), v[ok].mean() if ok.any() else np.nan, v[ok].std() if ok.any() else np.nan


def delta_sweep(sz: dict, methods, deltas, reset: dict, **opts):
    """Run :func:`delta_sweep_configs` (``sz["n_sweep"]`` runs each) through :func:`run`."""
    return run(delta_sweep_configs(sz, methods, deltas, **reset), n_runs=sz["n_sweep"], **opts)


def delta_variants(deltas) -> list[str]:
    """The legend names of a delta sweep in :func:`variant_figure` (``"δ = 0.001"``)."""
    return [f"δ = {d:g}" for d in deltas]


__all__ += ["ablation_configs", "delta_sweep", "delta_variants", "finals", "run", "search_rounds",
            "variant_figure"]
