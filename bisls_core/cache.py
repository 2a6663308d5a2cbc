"""The results cache: one verified file per run.

Each run (one configuration, one seed) is one file
``<root>/<scale>/<name>/<key>.npz`` where ``key`` is the SHA-256 of the
canonical JSON of everything that determines the run: the runner's qualified
name and its ``cache_version``, the configuration and the seed. Writes are
atomic (a temporary file in the same folder, then :func:`os.replace`), so a run
killed in the middle of a write never leaves a partial entry under the final
name, and two processes writing the same entry leave one complete copy. Each
entry's metadata holds the SHA-256 of its arrays (names, dtypes, shapes, bytes);
a file that cannot be read back and verified (truncated, corrupt, or whose
stored key does not match) is treated as missing, with one warning naming it,
and recomputed. A recompute that reproduces an entry keeps its file unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import scales as _scales
from .scales import book_scale, writes_book

__all__ = ["ENTRY_META_SCHEMA", "RECORD_LAYOUTS", "REPRODUCE_RTOL", "cache_key", "check_record", "committed_results_dir", "results_dir",
           "read_dirs", "results_setting"]

def committed_results_dir() -> Path:
    """Root of the results cache that the book reads: ``$BISLS_RESULTS`` when set,
    ``<repo>/results`` (the committed cache) otherwise."""
    env = os.environ.get("BISLS_RESULTS")
    return Path(env) if env else _scales.repo_root() / "results"


def results_dir(scale: str | None = None) -> Path:
    """Root of the results cache that runs at ``scale`` write into (entries lie in
    ``<root>/<scale>/``, claim records in ``<root>/<scale>/claims/``).

    ``$BISLS_RESULTS`` when set (for every scale); otherwise the committed
    ``<repo>/results`` only when this process updates the book
    (:func:`~bisls_core.scales.writes_book`) at the book's scale (:func:`book_scale`,
    also for ``scale=None``), and ``<repo>/.scratch/results`` for every other run. Runs
    read the committed cache too (:func:`read_dirs`)."""
    env = os.environ.get("BISLS_RESULTS")
    if env:
        return Path(env)
    if writes_book() and (scale is None or scale == book_scale()):
        return _scales.repo_root() / "results"
    return _scales.scratch_dir() / "results"


def read_dirs(scale: str | None = None) -> list[Path]:
    """The roots a lookup at ``scale`` reads, first hit wins: the committed cache
    (:func:`committed_results_dir`), then the folder this run writes into
    (:func:`results_dir`) when it is another one."""
    dirs = [committed_results_dir(), results_dir(scale)]
    return dirs[:1] if dirs[0] == dirs[1] else dirs


def results_setting(scale: str | None = None) -> str:
    """Which setting chose :func:`results_dir` (for error messages)."""
    env = os.environ.get("BISLS_RESULTS")
    if env:
        return f"the environment variable BISLS_RESULTS={env!r}"
    book = writes_book() and (scale is None or scale == book_scale())
    where = "results/ (BISLS_WRITE_BOOK=1)" if book else ".scratch/results/"
    return (f"the repository root {_scales.repo_root()} ({where} for scale {scale!r}; the book's scale "
            f"is {book_scale()!r}); set BISLS_RESULTS to a writable folder to write elsewhere")


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
    """The runner's name in the cache key: its ``cache_id`` attribute (kept by a runner
    that moved between modules, so that its entries keep their keys), else its
    qualified name; then ``@`` and its ``cache_version``."""
    name = getattr(fn, "cache_id", None) or f"{fn.__module__}.{fn.__qualname__}"
    return f"{name}@{getattr(fn, 'cache_version', '1')}"


def _key_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The configuration as the key sees it: a ``problem_args["data_root"]`` folder is
    replaced by the identity of the data the run actually loads from it
    (:func:`bisls_core.data.mnist_identity`): dropped when that is the shipped subset
    (the same data as a run without ``data_root``, the same key), ``"data"`` (the set's
    size and SHA-256) otherwise. A folder that held no MNIST and later holds one gives
    another key, so a subset result is never served as a full-MNIST one."""
    args = config.get("problem_args")
    if not isinstance(args, Mapping) or args.get("data_root") is None:
        return config
    from .data import mnist_identity

    identity = mnist_identity(args["data_root"])
    args = {k: v for k, v in args.items() if k != "data_root"}
    if identity is not None:
        args["data"] = identity
    return {**config, "problem_args": args}


def cache_key(fn: Callable, config: Mapping[str, Any], seed: int) -> str:
    """SHA-256 of the runner's identity and version, the configuration (as the runner's
    ``key_config`` sees it when it has one, e.g. :func:`bisls_core.bilevel.key_config`;
    its data folder as the identity of the data it holds, :func:`_key_config`) and the seed."""
    runner_view = getattr(fn, "key_config", None)  # e.g. a bilevel run's reading resolved
    if runner_view is not None:
        config = runner_view(config)
    payload = json.dumps(
        {"runner": _runner_id(fn), "config": _canonical(_key_config(config)), "seed": int(seed)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _entry_path(scale: str, name: str, key: str) -> Path:
    return results_dir(scale) / scale / name / f"{key}.npz"


def _digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of the arrays: every name, dtype, shape and the bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.hexdigest()


#: The JSON schema of an entry's metadata (``__meta__``), checked on read and on write.
ENTRY_META_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["key", "sha256", "runner", "config", "seed", "scale", "device", "seconds"],
    "properties": {
        "key": {"type": "string", "minLength": 1},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "runner": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
        "config": {"type": "object"},
        "seed": {"type": "integer", "minimum": 0},
        "scale": {"enum": ["smoke", "cpu", "paper"]},
        "device": {"type": "string"},
        "seconds": {"type": "number", "minimum": 0},
        "data": {"type": "string"},
    },
}

#: The shapes of a runner's arrays, by array name (``fnmatch`` patterns, the first that
#: matches decides): ``"K"`` is the run's number of iterations (its configuration's
#: ``K``), ``"K+1"`` that plus one, ``"*"`` any length. A runner not listed here is
#: checked for its dtypes only (numbers and booleans, one shape per name in a grid).
RECORD_LAYOUTS: dict[str, tuple[tuple[str, tuple[str, ...] | None], ...]] = {
    "bisls_core.bilevel.run_config": (("initial_*", ()), ("*_final", ("*",)), ("*", ("K",))),
    "bisls_core.optim.run_single_level": (
        ("step", ("K",)), ("bound", ("K",)), ("rounds", ("K",)), ("n_evals", ("K",)),
        ("diverged", ()), ("x", ("K+1", "*")), ("*", None)),
}


def _dims(shape: tuple[str, ...], K: int | None) -> list[int | None]:
    return [None if d == "*" or K is None else K + (1 if d == "K+1" else 0) for d in shape]


def check_record(arrays: Mapping[str, np.ndarray], runner: str, config: Mapping[str, Any],
                 where: str) -> None:
    """Check one run's arrays: numbers or booleans only, and, for a runner of
    :data:`RECORD_LAYOUTS`, each array's shape against the run's length ``K``.
    ``ValueError`` naming ``where`` (the entry's file) and the array."""
    from fnmatch import fnmatch

    layout = RECORD_LAYOUTS.get(runner.rpartition("@")[0], ())
    K = config.get("K") if isinstance(config.get("K"), int) else None
    for name, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{where}: array {name!r} has dtype {a.dtype} (a record holds "
                             "numbers and booleans only)")
        shape = next((shape for pattern, shape in layout if fnmatch(name, pattern)), None)
        if shape is None:
            continue
        ok = a.ndim == len(shape) if "*" not in shape[1:] else a.ndim >= 1
        want = _dims(shape, K)
        if not ok or any(w is not None and w != n for w, n in zip(want, a.shape)):
            raise ValueError(f"{where}: array {name!r} has shape {a.shape}; a run of "
                             f"{runner} with K = {K} stores {shape} there (K: the run's "
                             "iterations)")


def _check_meta(meta: Any, where: str) -> None:
    import jsonschema

    errors = list(jsonschema.Draft202012Validator(ENTRY_META_SCHEMA).iter_errors(meta))
    if errors:
        path = "/".join(map(str, errors[0].absolute_path)) or "metadata"
        raise ValueError(f"{where}: {path}: {errors[0].message}")


def _load_entry(path: Path, key: str) -> dict[str, np.ndarray]:
    """The stored record, verified (key, schema, layout, checksum); raises (any
    exception) if it is not this key's complete and valid entry."""
    with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
        record = {k: data[k] for k in data.files}
    meta = json.loads(str(record.pop("__meta__")))
    if not isinstance(meta, dict) or meta.get("key") != key:
        raise ValueError("it is not the entry of this key")
    _check_meta(meta, "its metadata")
    if _digest(record) != meta["sha256"]:
        raise ValueError("its arrays do not match their checksum")
    check_record(record, meta["runner"], meta["config"], "its arrays")
    return record


def _read_entry(path: Path, key: str, warn: bool = True) -> dict[str, np.ndarray] | None:
    """The stored record, or ``None`` if absent, or if it cannot be read and verified
    (truncated, corrupt, another key's, or arrays that fail the checksum in its
    metadata): one warning names such a file, and the run is recomputed."""
    if not path.is_file():
        return None
    try:
        return _load_entry(path, key)
    except Exception as err:  # noqa: BLE001 - zlib, zipfile, numpy, json: any of them
        if warn:
            warnings.warn(f"results cache entry {path} cannot be read and verified "
                          f"({type(err).__name__}: {err}); it is treated as missing "
                          "and recomputed", RuntimeWarning, stacklevel=3)
        return None


#: Relative tolerance under which a recomputed run reproduces its stored entry (the
#: round-off of another CPU), so that the stored file is kept byte for byte.
REPRODUCE_RTOL = 1e-12


#: Arrays that measure the machine, not the mathematics (the wall-clock seconds of each
#: iteration): a recompute is compared with its entry without them.
MEASUREMENTS = ("time",)


def _reproduces(record: Mapping[str, Any], stored: Mapping[str, np.ndarray]) -> bool:
    """Does a recomputed ``record`` give the stored arrays: the same names, dtypes and
    shapes, integers and text equal, floats equal to :data:`REPRODUCE_RTOL` (NaN where
    NaN)? The :data:`MEASUREMENTS` need only their name, dtype and shape."""
    if set(record) != set(stored):
        return False
    for name, value in record.items():
        a, b = np.asarray(value), stored[name]
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if name in MEASUREMENTS:
            continue
        if np.issubdtype(a.dtype, np.inexact):
            if not np.allclose(a, b, rtol=REPRODUCE_RTOL, atol=0.0, equal_nan=True):
                return False
        elif not np.array_equal(a, b):
            return False
    return True


def _write_entry(path: Path, key: str, record: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(v) for k, v in record.items()}
    if "__meta__" in arrays:
        raise ValueError("a record cannot hold the key '__meta__' (the cache's metadata)")
    meta = {**meta, "key": key, "sha256": _digest(arrays)}
    if "runner" in meta:  # a cache entry (a bare test file names no runner)
        _check_meta(meta, f"cache entry {path}")
        check_record(arrays, meta["runner"], meta["config"], f"cache entry {path}")
    arrays["__meta__"] = np.asarray(json.dumps(meta, sort_keys=True))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        _umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask_mode(path: Path | str) -> None:
    """Give a file made by :func:`tempfile.mkstemp` (mode 0600) the mode of a file made
    by ``open``: 0666 less the process's umask, so entries and claim files can be read by
    the others that may read the checkout."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _check_writable(folder: Path, scale: str) -> None:
    """Fail before any run is computed if the cache folder cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write-check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise OSError(f"the results cache folder {folder} cannot be written "
                      f"({type(err).__name__}: {err}); nothing was computed. The folder was "
                      f"chosen by {results_setting(scale)}") from err

