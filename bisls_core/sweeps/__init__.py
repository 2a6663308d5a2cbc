"""Sweeps shared by the figure notebooks, one module per task (above the core:
they import the problems, the bilevel loop, the experiments module and the
plotting style; nothing in the core imports them).

* :mod:`~bisls_core.sweeps.single_level` -- Figures 4, 5, 10 and 17 (SPSB, SLSB and their rivals);
* :mod:`~bisls_core.sweeps.theory` -- the rate checks of Theorems 1-3;
* :mod:`~bisls_core.sweeps.hyperrep` -- Figures 3, 7, 8, 11-15 and 18 (hyper-representation);
* :mod:`~bisls_core.sweeps.distillation` -- Figures 6, 9, 16 and 19 (data distillation);
* :mod:`~bisls_core.sweeps.parameter_free` -- the page beyond the paper (oracle budgets).
* :mod:`~bisls_core.sweeps.condition14` -- the page on condition (14) (readings, outcomes,
  slopes and the early exit of BiSLS's upper search).

Every notebook starts with :func:`start` (the five parameters it shares with every
other page) and then takes its sizes from one ``sizes`` function of these modules,
which checks the sizes against each other (:func:`at_most`, :func:`at_least`): a
parameter that cannot work is a ``ValueError`` naming it before anything runs.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["at_least", "at_most", "check_injected_parameters", "start", "tuning",
           "unknown_parameters"]


def start(scale: str | None, device: str, n_runs: int | None, seed: int,
          recompute: bool, reading: str | None = None) -> dict[str, Any]:
    """The first call of every notebook.

    ``scale=None`` (every page's default) is the book's scale,
    :func:`bisls_core.experiments.book_scale` (``$BISLS_BOOK_SCALE``, else
    :data:`~bisls_core.experiments.BOOK_SCALE`), so that one setting chooses the scale of
    every page, figure and claim; an explicit scale (``-p scale smoke``) wins.
    Under papermill, a ``-p`` name that the page's ``parameters`` cell does not
    have is a ``ValueError`` listing the page's parameters
    (:func:`check_injected_parameters`; papermill itself only warns). Checks
    the five parameters every page has
    (:func:`bisls_core.experiments.check_params`: one clear error naming the
    parameter), runs torch on one thread (the results cache was computed so:
    the runs are deterministic and bit for bit reproducible on a CPU), and
    returns the keyword arguments that :func:`~bisls_core.experiments.run_grid`
    and the ``tune`` functions of this package take. ``reading`` (the pages whose BiSLS
    runs depend on the paper's open choices have it as a parameter) names a reading of
    :data:`bisls_core.readings.READINGS` for this page's BiSLS runs (``None``: the
    book's primary reading; :func:`bisls_core.scales.use_reading`). The returned dict is
    ``dict(scale=..., seed=..., device=..., recompute=...)``, ``scale`` resolved
    (the page goes on with ``scale = opts["scale"]``).
    """
    import torch

    from ..experiments import book_scale, check_params
    from ..scales import use_reading

    check_injected_parameters()
    use_reading(reading)
    torch.set_num_threads(1)
    if scale is None:
        scale = book_scale()
    check_params(scale, device, n_runs, seed, recompute)
    return dict(scale=scale, seed=seed, device=device, recompute=recompute)


def tuning(opts: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of :func:`start` moved onto the tuning seeds (``seed +``
    :data:`bisls_core.scales.TUNING_SEED_OFFSET`, which no evaluation run uses): every
    tuned, "best" or "lowest" choice of a page is made on runs there (at least three per
    grid point at the ``cpu`` and ``paper`` scales, chosen by their mean final value, a
    diverged run the worst: :func:`bisls_core.experiments.best_label`), and the winner
    is then evaluated on the evaluation seeds.

    >>> tuning({"scale": "smoke", "seed": 2, "device": "cpu", "recompute": False})["seed"]
    1002
    """
    from ..scales import TUNING_SEED_OFFSET

    return {**opts, "seed": opts["seed"] + TUNING_SEED_OFFSET}


#: The first line of the cell that papermill injects after a page's ``parameters`` cell.
INJECTED = "# Parameters"


def _assigned(source: str) -> list[str] | None:
    """The names a cell assigns at its top level, in order (``None``: not Python)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names: list[str] = []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name) and sub.id not in names:
                    names.append(sub.id)
    return names


def unknown_parameters(history: Sequence[str]) -> None:
    """``ValueError`` when papermill's injected cell (the last cell of ``history``, the
    kernel's input history, whose source starts with ``# Parameters``) sets a name that
    the page's ``parameters`` cell (the cell just before it) does not.

    Papermill only warns ("Passed unknown parameter") and the page would run with its
    defaults; a misspelled ``-p`` is an error that names it and lists the page's parameters.

    >>> unknown_parameters(["", "scale = None\\nseed = 0\\n", "# Parameters\\nlr = -0.1\\n"])
    Traceback (most recent call last):
    ...
    ValueError: unknown parameter lr: this page's parameters are scale, seed
    """
    for i in range(len(history) - 1, 0, -1):
        cell = history[i]
        if isinstance(cell, str) and cell.lstrip().startswith(INJECTED):
            break
    else:
        return
    injected, page = _assigned(history[i]), _assigned(history[i - 1])
    if not injected or not page:  # nothing injected, or no parameters cell before it
        return
    unknown = [name for name in injected if name not in page]
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        raise ValueError(f"unknown parameter{s} {', '.join(unknown)}: "
                         f"this page's parameters are {', '.join(page)}")


def check_injected_parameters() -> None:
    """:func:`unknown_parameters` on the input history of the IPython kernel running
    the page (``In``); nothing outside IPython (a script, a test)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    history = getattr(shell, "user_ns", {}).get("In") if shell is not None else None
    if isinstance(history, Sequence):
        unknown_parameters(history)


def at_most(sizes: Mapping[str, Any], name: str, other: str | int, why: str) -> None:
    """``ValueError`` naming both sides unless ``sizes[name] <= sizes[other]``
    (``other`` a size's name) or ``sizes[name] <= other`` (a number).

    >>> at_most({"batch": 500, "n_train": 200}, "batch", "n_train", "batches come from n_train")
    Traceback (most recent call last):
    ...
    ValueError: batch = 500 is larger than n_train = 200: batches come from n_train
    """
    limit = sizes[other] if isinstance(other, str) else other
    if sizes[name] > limit:
        side = f"{other} = {limit}" if isinstance(other, str) else f"{limit:,}"
        raise ValueError(f"{name} = {sizes[name]} is larger than {side}: {why}")


def at_least(sizes: Mapping[str, Any], name: str, minimum: int, why: str) -> None:
    """``ValueError`` naming ``name`` unless ``sizes[name] >= minimum``."""
    if sizes[name] < minimum:
        raise ValueError(f"{name} = {sizes[name]} is too small: {why}")
