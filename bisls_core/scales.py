"""Scales, the book's scale, the repository's folders, and the parameters every page has.

The lowest layer of the experiment machinery: :mod:`bisls_core.cache` (the results
cache), :mod:`bisls_core.records` (claim records) and :mod:`bisls_core.grids` (grids of
runs and their executors) build on it; :mod:`bisls_core.experiments` gathers them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._validate import resolve_device
from ._validate import check_int as _check_int
from .stepsizes import check_choice

__all__ = ["SCALES", "BOOK_SCALE", "TUNING_SEED_OFFSET", "book_scale", "check_params",
           "primary_reading_in_use", "reading_in_use", "repo_root", "scale_in_use", "scaled",
           "scratch_dir", "use_reading", "writes_book"]

SCALES = ("smoke", "cpu", "paper")


# --------------------------------------------------------------------------- paths
def repo_root() -> Path:
    """The repository root: the first folder above this file (or the current
    folder) that holds ``_config.yml``; the package's parent folder otherwise."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            if (d / "_config.yml").is_file() and (d / "bisls_core").is_dir():
                return d
    return Path(__file__).resolve().parents[1]


#: The scale of the committed book (its ``results/``, ``figures/`` and claims); the
#: environment variable ``BISLS_BOOK_SCALE`` overrides it (see :func:`book_scale`).
BOOK_SCALE = "cpu"


def book_scale() -> str:
    """The book's scale: ``$BISLS_BOOK_SCALE`` when set, :data:`BOOK_SCALE` otherwise.

    Only a run at this scale writes where the committed book lives (``results/``,
    ``figures/``); a run at any other scale writes under ``.scratch/``, which git
    ignores, so a rerun never changes a committed file."""
    scale = os.environ.get("BISLS_BOOK_SCALE", "").strip() or BOOK_SCALE
    check_choice("BISLS_BOOK_SCALE", scale, SCALES)
    return scale


def writes_book() -> bool:
    """Does this process update the book? Only when ``$BISLS_WRITE_BOOK`` is ``1``, which
    the commands meant to update the book set (``make results``, ``make notebooks``,
    ``make paper``: ``scripts/run_notebooks.py``). Then runs at the book's scale write
    into the committed ``results/`` and ``figures/`` and the claim records; otherwise
    every run writes into :func:`scratch_dir`, whatever its scale or ``recompute``."""
    value = os.environ.get("BISLS_WRITE_BOOK", "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"BISLS_WRITE_BOOK must be 1 (update the book) or 0/unset, got {value!r}")
    return value == "1"


def scratch_dir() -> Path:
    """``<repo>/.scratch``: git ignores it; runs at a scale other than the book's write there."""
    return repo_root() / ".scratch"


_SCALE_IN_USE: list[str] = []


def scale_in_use() -> str | None:
    """The scale of this process's last :func:`run_grid` or :func:`record_claim`
    (a notebook runs at one scale); ``None`` before any. :func:`bisls_core.plotting.save`
    writes a figure where its scale belongs."""
    return _SCALE_IN_USE[-1] if _SCALE_IN_USE else None


def _use_scale(scale: str) -> None:
    _SCALE_IN_USE[:] = [scale]


_READING_IN_USE: list[str] = []


def reading_in_use() -> str:
    """The reading of the paper's open choices that this process's BiSLS runs use
    (:data:`bisls_core.readings.READINGS`): the one :func:`use_reading` set (a page's
    ``reading`` parameter, through :func:`bisls_core.sweeps.start`), else the book's
    primary reading :data:`~bisls_core.readings.PRIMARY_READING`."""
    from .readings import PRIMARY_READING

    return _READING_IN_USE[-1] if _READING_IN_USE else PRIMARY_READING


def use_reading(name: str | None) -> str:
    """Make ``name`` (``None``: the primary reading) this process's reading; returns it.
    Under a reading other than the primary one, a page's claims go to
    ``claims/readings/<name>/`` and its figures to the scratch folder, so the book's
    pages and scorecard stay those of the primary reading."""
    from .readings import PRIMARY_READING, reading_fields

    name = PRIMARY_READING if name is None else name
    reading_fields(name)  # an unknown name: a ValueError listing the readings
    _READING_IN_USE[:] = [name]
    return name


def primary_reading_in_use() -> bool:
    """Is this process's reading the book's primary one?"""
    from .readings import PRIMARY_READING

    return reading_in_use() == PRIMARY_READING


# --------------------------------------------------------------------------- parameters
#: The tuning runs of a page (the learning-rate grids of the tuned baselines) use the
#: seeds ``seed + TUNING_SEED_OFFSET, ...``; the evaluation runs use ``seed, seed + 1,
#: ..., seed + n_runs - 1``. So a tuned baseline is never judged on the run that chose it.
TUNING_SEED_OFFSET: int = 1000


def check_params(scale: str, device: str, n_runs: int | None, seed: int, recompute: bool) -> None:
    """Validate the parameters every notebook has; one clear error naming the parameter."""
    if not isinstance(scale, str):
        raise TypeError(f"scale must be a string, one of {SCALES}, got {scale!r}")
    check_choice("scale", scale, SCALES)
    resolve_device(device)
    if n_runs is not None:
        _check_int("n_runs", n_runs, 1)
        if n_runs > TUNING_SEED_OFFSET:
            raise ValueError(f"n_runs must be at most {TUNING_SEED_OFFSET} (the tuning runs use "
                             f"the seeds from seed + {TUNING_SEED_OFFSET}), got {n_runs}")
    _check_int("seed", seed, 0)
    if not isinstance(recompute, bool):
        raise TypeError(f"recompute must be True or False, got {recompute!r}")


def scaled(scale: str, presets: Mapping[str, Mapping[str, Any]], **overrides: Any) -> dict[str, Any]:
    """The sizes of ``presets[scale]`` with every override that is not ``None``.

    >>> scaled("smoke", {"smoke": {"K": 10}, "cpu": {"K": 500}, "paper": {"K": 3000}}, K=None)
    {'K': 10}
    """
    if not isinstance(scale, str):
        raise TypeError(f"scale must be a string, one of {SCALES}, got {scale!r}")
    check_choice("scale", scale, SCALES)
    missing = [s for s in SCALES if s not in presets]
    if missing:
        raise ValueError(f"presets lack the scale(s) {missing}")
    sizes = dict(presets[scale])
    for name, value in overrides.items():
        if value is None:
            continue
        if name not in sizes:
            raise ValueError(f"unknown size {name!r}; valid sizes are: {sorted(sizes)}")
        ref = sizes[name]
        if isinstance(ref, int) and not isinstance(ref, bool):
            value = _check_int(name, value, 1)
        elif isinstance(ref, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {value!r}")
        sizes[name] = value
    return sizes

