# ruff: noqa: F401  (a facade: it re-exports the names of the four modules below)
"""Scale presets, seeds, grids of runs, the results cache and claim records, gathered.

The pages import this one module; the work is done by four smaller ones, each one
layer above the last:

* :mod:`bisls_core.scales` -- the scales, the book's scale (:func:`book_scale`), the
  repository's folders, who may write the book (:func:`writes_book`), and the
  parameters every page has (:func:`check_params`, :func:`scaled`, the tuning seeds);
* :mod:`bisls_core.cache` -- the results cache: keys, verified entries (checksums and
  a schema), where entries are read and written (:func:`results_dir`), and the
  comparison of a recomputed run with its stored entry;
* :mod:`bisls_core.records` -- the claim records behind the scorecard, with their schema;
* :mod:`bisls_core.grids` -- grids of runs (:func:`run_grid`), executors (processes,
  Dask, Slurm), plan mode, and the readers of a grid (:func:`final_values`, ...).

Where runs write
----------------
Only the commands meant to update the book (``make results``, ``make notebooks``,
``make paper``: ``scripts/run_notebooks.py`` sets ``BISLS_WRITE_BOOK=1``) write into
the committed ``results/`` and ``figures/`` and the claim records. Every other run, at
any scale, with or without ``recompute``, reads the committed cache and writes into
``.scratch/`` (ignored by git): a user's rerun never changes a committed file.

The device is not part of the key: results computed on a GPU at paper scale are
reused by a CPU build of the book; the entry records the device it ran on.
"""

from __future__ import annotations

from . import cache, scales, verdicts
from ._validate import DEVICES, resolve_device
from .cache import (REPRODUCE_RTOL, _canonical, _check_writable, _digest, _entry_path,
                    _load_entry, _read_entry, _reproduces, _runner_id, _write_entry, cache_key,
                    committed_results_dir, read_dirs, results_dir, results_setting)
from .grids import (_ENV_EXECUTORS, PLAN_ITERATIONS, ExecutorSpec, Grid, SubmititExecutor,
                    _one_thread, _stack_grid, best_label, curve, executor_from_env,
                    final_values, make_executor, mean_text, parse_executor_spec, plan_path,
                    run_grid, run_unique, similar, summarize)
from .records import VERDICTS, _same_claim, claims_path, decided_runs, record_claim
from .scales import (BOOK_SCALE, SCALES, TUNING_SEED_OFFSET, _use_scale, book_scale,
                     check_params, reading_in_use, repo_root, scale_in_use, scaled,
                     scratch_dir, use_reading, writes_book)
from .stepsizes import check_choice

__all__ = [
    "SCALES", "DEVICES", "ExecutorSpec", "Grid", "SubmititExecutor", "executor_from_env",
    "make_executor", "parse_executor_spec", "cache_key", "check_params", "committed_results_dir",
    "repo_root", "resolve_device", "results_dir", "results_setting", "BOOK_SCALE", "book_scale",
    "scale_in_use", "scratch_dir", "plan_path", "PLAN_ITERATIONS", "run_grid", "scaled",
    "record_claim", "summarize", "VERDICTS", "TUNING_SEED_OFFSET", "writes_book",
    "best_label", "curve", "final_values", "run_unique", "similar", "mean_text",
    "REPRODUCE_RTOL", "check_choice", "verdicts", "read_dirs", "claims_path", "decided_runs",
    "reading_in_use", "use_reading",
]
