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

from collections.abc import Mapping
from typing import Any

__all__ = ["at_least", "at_most", "start"]


def start(scale: str | None, device: str, n_runs: int | None, seed: int,
          recompute: bool) -> dict[str, Any]:
    """The first call of every notebook.

    ``scale=None`` (every page's default) is the book's scale,
    :func:`bisls_core.experiments.book_scale` (``$BISLS_BOOK_SCALE``, else
    :data:`~bisls_core.experiments.BOOK_SCALE`), so that one setting chooses the scale of
    every page, figure and claim; an explicit scale (``-p scale smoke``) wins.
    Checks the five parameters every page has
    (:func:`bisls_core.experiments.check_params`: one clear error naming the
    parameter), runs torch on one thread (the results cache was computed so:
    the runs are deterministic and bit for bit reproducible on a CPU), and
    returns the keyword arguments that :func:`~bisls_core.experiments.run_grid`
    and the ``tune`` functions of this package take:
    ``dict(scale=..., seed=..., device=..., recompute=...)``, ``scale`` resolved
    (the page goes on with ``scale = opts["scale"]``).
    """
    import torch

    from ..experiments import book_scale, check_params

    torch.set_num_threads(1)
    if scale is None:
        scale = book_scale()
    check_params(scale, device, n_runs, seed, recompute)
    return dict(scale=scale, seed=seed, device=device, recompute=recompute)


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
