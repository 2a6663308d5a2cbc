"""Scale presets, seeds, grids of runs and the results cache.

A figure notebook names its grid (legend label -> configuration) and calls
:func:`run_grid`; the loop over configurations and seeds lives here, once.

The results cache
-----------------
Each run (one configuration, one seed) is one file
``results/<scale>/<name>/<key>.npz`` where ``key`` is the SHA-256 of the
canonical JSON of everything that determines the run: the runner's qualified
name and its ``cache_version``, the configuration and the seed. Writes are
atomic (a temporary file in the same folder, then :func:`os.replace`), so a run
killed in the middle of a write never leaves a partial entry under the final
name, and two processes writing the same entry leave one complete copy. A file
that cannot be read back (truncated, corrupt, or whose stored key does not
match) is treated as missing and recomputed.

The device is not part of the key: results computed on a GPU at paper scale are
reused by a CPU build of the book; the entry records the device it ran on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .stepsizes import check_choice

__all__ = [
    "SCALES",
    "DEVICES",
    "Grid",
    "cache_key",
    "check_params",
    "repo_root",
    "resolve_device",
    "results_dir",
    "run_grid",
    "scaled",
    "record_claim",
    "summarize",
    "VERDICTS",
]

SCALES = ("smoke", "cpu", "paper")
DEVICES = ("auto", "cpu", "cuda")


# --------------------------------------------------------------------------- paths
def repo_root() -> Path:
    """The repository root: the first folder above this file (or the current
    folder) that holds ``_config.yml``; the package's parent folder otherwise."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for d in (start, *start.parents):
            if (d / "_config.yml").is_file() and (d / "bisls_core").is_dir():
                return d
    return Path(__file__).resolve().parents[1]


def results_dir() -> Path:
    """Root of the results cache (``$BISLS_RESULTS`` or ``<repo>/results``)."""
    env = os.environ.get("BISLS_RESULTS")
    return Path(env) if env else repo_root() / "results"


# --------------------------------------------------------------------------- parameters
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU. ``"cuda"`` without a GPU is
    a clear ``ValueError`` instead of an error deep inside torch."""
    if isinstance(device, torch.device):
        device = device.type
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, one of {DEVICES}, got {device!r}")
    check_choice("device", device, DEVICES)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but no CUDA GPU is available on this machine; "
            "use device='cpu' or device='auto'"
        )
    return torch.device(device)


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_params(scale: str, device: str, n_runs: int | None, seed: int, recompute: bool) -> None:
    """Validate the parameters every notebook has; one clear error naming the parameter."""
    if not isinstance(scale, str):
        raise TypeError(f"scale must be a string, one of {SCALES}, got {scale!r}")
    check_choice("scale", scale, SCALES)
    resolve_device(device)
    if n_runs is not None:
        _check_int("n_runs", n_runs, 1)
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


# --------------------------------------------------------------------------- cache
def _canonical(obj: Any) -> Any:
    """JSON-able canonical form (floats as repr, tuples as lists, sorted keys)."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (bool, type(None), str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return repr(float(obj))
    if hasattr(obj, "__dataclass_fields__"):
        return _canonical({f: getattr(obj, f) for f in obj.__dataclass_fields__})
    raise TypeError(f"cannot put {type(obj).__name__} into a cache key: {obj!r}")


def _runner_id(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}@{getattr(fn, 'cache_version', '1')}"


def cache_key(fn: Callable, config: Mapping[str, Any], seed: int) -> str:
    """SHA-256 of the runner's identity and version, the configuration and the seed."""
    payload = json.dumps(
        {"runner": _runner_id(fn), "config": _canonical(config), "seed": int(seed)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _entry_path(scale: str, name: str, key: str) -> Path:
    return results_dir() / scale / name / f"{key}.npz"


def _read_entry(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The stored record, or ``None`` if absent, unreadable, or not this key."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            record = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None
    meta = record.pop("__meta__", None)
    if meta is None:
        return None
    try:
        if json.loads(str(meta))["key"] != key:
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return record


def _write_entry(path: Path, key: str, record: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in record.items()}
    arrays["__meta__"] = np.asarray(json.dumps({**meta, "key": key}, sort_keys=True))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- grids
class Grid(dict):
    """``label -> {record key -> array of shape (n_runs, ...)}``, in grid order.

    ``grid.meta[label]`` holds, per run, the device and the seconds it took
    (as recorded when it was computed).
    """

    meta: dict[str, list[dict]]


def _one_run(fn: Callable, config: dict, seed: int, device: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    record = fn(config, seed=seed, device=device)
    return record, time.perf_counter() - t0


def run_grid(
    fn: Callable[..., Mapping[str, Any]],
    configs: Mapping[str, Mapping[str, Any]],
    *,
    name: str,
    scale: str,
    n_runs: int,
    seed: int = 0,
    device: str = "auto",
    recompute: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
) -> Grid:
    """Run ``fn(config, seed=seed + r, device=device)`` for every configuration
    and run ``r < n_runs``, through the results cache.

    Parameters
    ----------
    fn:
        a module-level function returning ``{key: array-like}`` (one record of
        one run). Give it a ``cache_version`` attribute and bump it whenever its
        meaning changes: that invalidates its cache entries.
    configs:
        ``legend label -> configuration`` (JSON-able values). The label is not
        part of the cache key, the configuration is.
    name:
        the cache folder (usually the notebook's name).
    scale, n_runs, seed, device, recompute:
        the notebook's parameters; ``recompute=True`` ignores (and overwrites)
        cached entries.
    progress:
        a tqdm bar over the runs that have to be computed (none when every run
        is cached, so a cached notebook prints nothing).
    executor:
        any :class:`concurrent.futures.Executor` to run the missing runs on
        (``None``: in-process, one after the other).
    """
    check_params(scale, device, n_runs, seed, recompute)
    if not configs:
        raise ValueError("configs is empty: name at least one configuration")
    dev = resolve_device(device).type
    todo: list[tuple[str, int, str, Path]] = []
    found: dict[tuple[str, int], dict] = {}
    metas: dict[tuple[str, int], dict] = {}
    for label, config in configs.items():
        config = dict(config)
        for r in range(n_runs):
            key = cache_key(fn, config, seed + r)
            path = _entry_path(scale, name, key)
            record = None if recompute else _read_entry(path, key)
            if record is None:
                todo.append((label, r, key, path))
            else:
                found[(label, r)] = record
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=name, disable=not progress, leave=False)
        jobs = [(label, r, key, path, dict(configs[label]), seed + r) for label, r, key, path in todo]
        if executor is None:
            results = (_one_run(fn, cfg, s, dev) for *_, cfg, s in jobs)
        else:
            futures = [executor.submit(_one_run, fn, cfg, s, dev) for *_, cfg, s in jobs]
            results = (f.result() for f in futures)
        for (label, r, key, path, cfg, s), (record, seconds) in zip(jobs, results):
            meta = {"runner": _runner_id(fn), "config": _canonical(cfg), "seed": s,
                    "device": dev, "seconds": round(seconds, 3), "scale": scale}
            _write_entry(path, key, record, meta)
            stored = _read_entry(path, key)
            if stored is None:  # pragma: no cover - the file system lost it
                raise OSError(f"could not read back the cache entry {path}")
            found[(label, r)] = stored
            metas[(label, r)] = meta
            bar.update(1)
        bar.close()
    grid = Grid()
    grid.meta = {}
    for label in configs:
        runs = [found[(label, r)] for r in range(n_runs)]
        grid[label] = {k: np.stack([np.asarray(run[k]) for run in runs]) for k in runs[0]}
        grid.meta[label] = [metas.get((label, r), {}) for r in range(n_runs)]
    return grid


def summarize(values: np.ndarray, digits: int = 3) -> str:
    """``"mean ± std"`` over runs (axis 0) of a 1-D array, rounded for nbval;
    NaN-aware (diverged runs are said as such)."""
    v = np.asarray(values, dtype=float).ravel()
    ok = v[np.isfinite(v)]
    if ok.size == 0:
        return "diverged"
    text = f"{np.mean(ok):.{digits}g} ± {np.std(ok):.{digits}g}"
    if ok.size < v.size:
        text += f" ({v.size - ok.size}/{v.size} runs diverged)"
    return text



# --------------------------------------------------------------------------- claims
VERDICTS = ("held", "partly", "not held")


def record_claim(
    notebook: str,
    claim_id: str,
    *,
    claim: str,
    paper: str,
    ours: str,
    verdict: str,
    scale: str,
    why: str = "",
) -> str:
    """Record one claim of the paper beside what this run measured.

    Written to ``results/<scale>/claims/<notebook>.json`` (atomically; one entry per
    ``claim_id``); ``scripts/scorecard.py`` turns every such file into the
    book's replication scorecard. Returns the line a notebook prints, e.g.
    ``"claim fig04-spsb-fast: held (SPSB ...)"``.
    """
    check_choice("verdict", verdict, VERDICTS)
    check_choice("scale", scale, SCALES)
    path = results_dir() / scale / "claims" / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        claims = json.loads(path.read_text())
    except (OSError, ValueError):
        claims = {}
    claims[claim_id] = {"claim": claim, "paper": paper, "ours": ours, "verdict": verdict,
                        "scale": scale, "why": why, "notebook": notebook}
    fd, tmp = tempfile.mkstemp(prefix=".claims.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as fh:
        json.dump(claims, fh, indent=1, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, path)
    return f"claim {claim_id}: {verdict} -- ours: {ours}; paper: {paper}" + (f" ({why})" if why else "")


# --------------------------------------------------------------------------- reading grids
def final_values(record: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    """Per run, the value of ``record[key]`` at the last iteration; NaN for a run
    that diverged (``record["diverged"]`` true at the end) or never evaluated there."""
    values = np.asarray(record[key], dtype=float)
    last = values.reshape(values.shape[0], -1)[:, -1].copy()
    if "diverged" in record:
        last[np.asarray(record["diverged"]).reshape(values.shape[0], -1)[:, -1]] = np.nan
    return last


def best_label(grid: Mapping[str, Mapping[str, np.ndarray]], key: str = "val_loss") -> str:
    """The label with the lowest mean :func:`final_values` of ``key``; a label with a
    diverged run counts as the worst (ties: the first in grid order)."""
    scores = {label: float(np.mean(final_values(rec, key))) for label, rec in grid.items()}
    scores = {label: (s if np.isfinite(s) else np.inf) for label, s in scores.items()}
    return min(scores, key=lambda label: scores[label])


def curve(record: Mapping[str, np.ndarray], key: str, every: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` to plot a metric recorded every ``every`` iterations (and at the
    last): ``x`` counts iterations done (``k + 1``), with the value at the start
    (``initial_<key>``, ``x = 0``) first when the record has it."""
    values = np.asarray(record[key], dtype=float)
    n = values.shape[1]
    cols = np.unique(np.r_[np.arange(0, n, max(1, int(every))), n - 1])
    x, y = cols + 1, values[:, cols]
    start = record.get(f"initial_{key}")
    if start is not None:
        x = np.r_[0, x]
        y = np.hstack([np.asarray(start, dtype=float).reshape(-1, 1), y])
    return x, y


def run_unique(fn: Callable[..., Mapping[str, Any]], configs: Mapping[str, Mapping[str, Any]],
               **kwargs: Any) -> Grid:
    """:func:`run_grid` for a grid whose labels may share a configuration (one curve
    in two panels, say): each distinct configuration is run once and every label
    that names it gets its record. Same keyword arguments as :func:`run_grid`."""
    first: dict[str, str] = {}
    owner: dict[str, str] = {}
    for label, config in configs.items():
        key = json.dumps(_canonical(dict(config)), sort_keys=True)
        owner[label] = first.setdefault(key, label)
    inner = run_grid(fn, {label: configs[label] for label in first.values()}, **kwargs)
    grid = Grid()
    grid.meta = {}
    for label in configs:
        grid[label] = inner[owner[label]]
        grid.meta[label] = inner.meta[owner[label]]
    return grid


__all__ += ["best_label", "curve", "final_values", "run_unique"]
