"""Grids of runs: configurations x seeds through the results cache, on any executor.

A figure notebook names its grid (legend label -> configuration) and calls
:func:`run_grid`; the loop over configurations and seeds lives here, once.

Executors
---------
:func:`run_grid` runs the missing runs in-process, or on any
:class:`concurrent.futures.Executor` given as ``executor=``; with none given, it
reads the environment variable ``BISLS_EXECUTOR`` (see :func:`make_executor`:
``process:4``, ``dask:tcp://host:8786``, ``dask:local:4``,
``slurm:folder=...,partition=...``), so any notebook runs its grid on many cores
or a cluster unchanged: ``BISLS_EXECUTOR=process:4 papermill nb.ipynb out.ipynb``.
Only the runs travel (a module-level runner, a JSON-able configuration, a seed);
results come back to the calling process, which alone writes the cache, each entry
as soon as its run completes. With an executor, ``device="auto"`` is resolved where
each run runs (a GPU node, say), and the entry records that device.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._validate import DEVICES, resolve_device
from ._validate import check_int as _check_int
from .cache import (_canonical, _check_writable, _entry_path, _read_entry, _reproduces,
                    _runner_id, _write_entry, cache_key, read_dirs)
from . import scales as _scales
from .registry import FINAL_FRACTION, window_width
from .scales import _use_scale, check_params
from .stepsizes import check_choice

__all__ = ["ExecutorSpec", "Grid", "PLAN_ITERATIONS", "SubmititExecutor", "best_label",
           "curve", "executor_from_env", "final_values", "make_executor", "mean_text",
           "parse_executor_spec", "plan_path", "run_grid", "run_unique", "similar",
           "summarize"]

# --------------------------------------------------------------------------- grids
class Grid(dict):
    """``label -> {record key -> array of shape (n_runs, ...)}``, in grid order.

    ``grid.meta[label]`` holds, per run, the device and the seconds it took
    (as recorded when it was computed).
    """

    meta: dict[str, list[dict]]


def _one_run(fn: Callable, config: dict, seed: int, device: str) -> tuple[dict, float, str]:
    """One run where it runs (in-process or on a worker): the record, its seconds
    and the device it ran on (``"auto"`` is resolved here, on the worker)."""
    dev = resolve_device(device).type
    t0 = time.perf_counter()
    record = fn(config, seed=seed, device=dev)
    return record, time.perf_counter() - t0, dev


# --------------------------------------------------------------------------- executors
class SubmititExecutor(Executor):
    """A :class:`concurrent.futures.Executor` view of a ``submitit`` executor (Slurm).

    ``submit`` sends one job (``submitit``'s ``executor.submit``) and returns a
    :class:`concurrent.futures.Future` that a waiting thread resolves with the
    job's result (or its exception); at most ``max_waiting`` threads wait at a time
    (every job is queued at once; waiting is all they do).
    """

    def __init__(self, executor: Any, max_waiting: int = 64) -> None:
        self.executor = executor
        self._waiters = ThreadPoolExecutor(max_waiting, thread_name_prefix="submitit-wait")

    def submit(self, fn, /, *args, **kwargs):
        job = self.executor.submit(fn, *args, **kwargs)
        return self._waiters.submit(job.result)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._waiters.shutdown(wait=wait, cancel_futures=cancel_futures)


def _watch_parent(parent: int, every: float = 0.25) -> None:
    """Exit this process (at once, ``os._exit``) as soon as its parent ``parent`` is gone."""
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(every)


def _one_thread(parent: int | None = None) -> None:
    """Worker initialiser: one torch thread per worker process (no oversubscription;
    the same numbers as an in-process run with ``torch.set_num_threads(1)``). Workers
    ignore SIGINT: an interrupt (Ctrl-C, a notebook kernel's) is the calling process's
    to handle; it shuts the pool down. With ``parent`` (the pid of the process that
    made the pool), a daemon thread exits the worker when that parent dies, even by
    SIGKILL, so a killed sweep leaves no worker behind (and the resource tracker,
    whose pipe the workers held open, exits with them)."""
    import signal

    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                         name="bisls-parent-watch").start()


def _spec_number(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


@dataclass(frozen=True)
class ExecutorSpec:
    """A ``BISLS_EXECUTOR`` value read and checked (:func:`parse_executor_spec`), before
    anything is built: ``kind`` in ``"local"``, ``"process"``, ``"dask"``, ``"slurm"``;
    ``workers`` (a process pool or a local Dask cluster); ``address`` (a running Dask
    scheduler); ``params`` (Slurm: ``folder`` and the other ``submitit`` parameters)."""

    kind: str
    workers: int | None = None
    address: str | None = None
    params: Mapping[str, Any] | None = None


def parse_executor_spec(spec: str) -> ExecutorSpec:
    """Read and check a ``BISLS_EXECUTOR`` value (the forms of :func:`make_executor`)
    without importing or contacting anything."""
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string, got {spec!r}")
    kind, _, rest = spec.strip().partition(":")
    check_choice("executor kind", kind or "local", ("local", "process", "dask", "slurm"))
    if kind in ("", "local"):
        if rest:
            raise ValueError(f"executor 'local' takes no argument, got {spec!r}")
        return ExecutorSpec("local")
    if kind == "process":
        return ExecutorSpec("process", workers=_check_int("process workers", _spec_number(rest), 1)
                            if rest else os.cpu_count())
    if kind == "dask":
        if rest in ("", "local") or rest.startswith("local:"):
            n_text = rest.partition(":")[2]
            return ExecutorSpec("dask", workers=_check_int("dask workers", _spec_number(n_text), 1)
                                if n_text else os.cpu_count())
        return ExecutorSpec("dask", address=rest)
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"executor 'slurm' takes KEY=VALUE pairs, got {item!r} in {spec!r}")
        params[key.strip()] = _spec_number(value.strip())
    if "folder" not in params:
        raise ValueError(f"executor 'slurm' needs folder=PATH (submitit's logs), got {spec!r}")
    return ExecutorSpec("slurm", params=params)


def make_executor(spec: str) -> Executor | None:
    """An executor from a short text ``spec`` (the value of ``BISLS_EXECUTOR``).

    ``""`` or ``"local"``
        ``None``: in-process, one run after the other.
    ``"process"`` or ``"process:N"``
        a :class:`~concurrent.futures.ProcessPoolExecutor` of ``N`` (default: the
        number of CPUs) fresh ("spawn") processes, one torch thread each.
    ``"dask:tcp://HOST:PORT"``
        the executor of a ``distributed.Client`` connected to a running Dask scheduler
        (``dask scheduler`` + ``dask worker`` on the cluster's nodes).
    ``"dask"`` or ``"dask:local"`` or ``"dask:local:N"``
        a Dask ``LocalCluster`` of ``N`` worker processes with one thread each, on
        the loopback interface, no dashboard.
    ``"slurm:folder=PATH[,partition=P][,timeout_min=M][,KEY=VALUE...]"``
        a ``submitit.AutoExecutor(folder=PATH)`` (Slurm when ``sbatch`` is there, local
        processes otherwise) whose parameters are the other pairs (``partition`` is
        ``slurm_partition``; any ``submitit`` parameter, e.g. ``gpus_per_node=1``,
        ``cpus_per_task=2``, ``mem_gb=8``), wrapped in :class:`SubmititExecutor`.

    ``distributed`` and ``submitit`` are optional (``pip install .[cluster]``).
    """
    parsed = parse_executor_spec(spec)
    if parsed.kind == "local":
        return None
    if parsed.kind == "process":
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(parsed.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_one_thread, initargs=(os.getpid(),))
    if parsed.kind == "dask":
        try:
            from distributed import Client, LocalCluster
        except ImportError as err:
            raise ImportError("executor 'dask' needs the package 'distributed' "
                              "(pip install .[cluster])") from err
        if parsed.address is not None:
            return Client(parsed.address).get_executor()
        cluster = LocalCluster(n_workers=parsed.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")
        return Client(cluster).get_executor()
    try:
        import submitit
    except ImportError as err:
        raise ImportError("executor 'slurm' needs the package 'submitit' "
                          "(pip install .[cluster])") from err
    params = dict(parsed.params)
    folder = params.pop("folder")
    if "partition" in params:
        params["slurm_partition"] = params.pop("partition")
    auto = submitit.AutoExecutor(folder=str(folder))
    auto.update_parameters(**params)
    return SubmititExecutor(auto)


_ENV_EXECUTORS: dict[str, Executor | None] = {}


def executor_from_env() -> Executor | None:
    """The executor named by ``$BISLS_EXECUTOR`` (:func:`make_executor`), made once
    per process and reused by every later :func:`run_grid`; ``None`` when unset."""
    spec = os.environ.get("BISLS_EXECUTOR", "").strip()
    if spec not in _ENV_EXECUTORS:
        _ENV_EXECUTORS[spec] = make_executor(spec)
    return _ENV_EXECUTORS[spec]


def _check_grid_args(executor, scale, device, n_runs, seed, recompute):
    """:func:`check_params` of :func:`run_grid`'s arguments; returns ``device``. On an
    executor the worker resolves ``device``: here it need only be a name of
    :data:`DEVICES` (a :class:`torch.device` is turned into its type's name)."""
    if executor is None:
        check_params(scale, device, n_runs, seed, recompute)
        return device
    check_params(scale, "auto", n_runs, seed, recompute)
    if isinstance(device, torch.device):
        device = device.type
    if not isinstance(device, str):
        raise TypeError(f"device must be a string, one of {DEVICES}, got {device!r}")
    check_choice("device", device, DEVICES)
    return device


def _cached_runs(fn, configs, *, name, scale, n_runs, seed, recompute):
    """The cache lookup of :func:`run_grid`: ``(todo, found)``, the runs to compute as
    ``(label, r, key, path)`` and the cached records by ``(label, r)`` (none with
    ``recompute``)."""
    todo: list[tuple[str, int, str, Path]] = []
    found: dict[tuple[str, int], dict] = {}
    for label, config in configs.items():
        config = dict(config)
        for r in range(n_runs):
            key = cache_key(fn, config, seed + r)
            path = _entry_path(scale, name, key)
            record = None if recompute else _lookup(scale, name, key)
            if record is None:
                todo.append((label, r, key, path))
            else:
                found[(label, r)] = record
    return todo, found


def _lookup(scale: str, name: str, key: str) -> dict | None:
    """The verified entry of ``key``: from the committed cache first, then from the
    folder this run writes into (:func:`~bisls_core.cache.read_dirs`); ``None`` when
    neither holds it."""
    for root in read_dirs(scale):
        record = _read_entry(root / scale / name / f"{key}.npz", key)
        if record is not None:
            return record
    return None


def _log_use(fn, configs, *, name, scale, n_runs, seed) -> None:
    """Append the path of every entry this grid reads or writes to the file that
    ``$BISLS_CACHE_LOG`` names (when set): ``scripts/prune_cache.py`` removes the
    entries that no page uses after a run of every notebook with the log on."""
    log = os.environ.get("BISLS_CACHE_LOG", "").strip()
    if not log:
        return
    paths = [str(_entry_path(scale, name, cache_key(fn, dict(config), seed + r)).resolve())
             for config in configs.values() for r in range(n_runs)]
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("".join(f"{path}\n" for path in paths))


def _progress_line(**fields: Any) -> None:
    """Append one JSON line per finished run to the file ``$BISLS_PROGRESS`` names (when
    set): ``name``, ``label``, ``seed``, ``seconds``, ``done`` and ``total`` (the runs of
    this grid to compute). ``scripts/run_notebooks.py`` reads it to print each run as it
    finishes with an estimate of the time left, while papermill holds the page's output."""
    target = os.environ.get("BISLS_PROGRESS", "").strip()
    if target:
        fields["seconds"] = round(float(fields["seconds"]), 3)
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields, sort_keys=True) + "\n")


def _run_missing(fn, configs, todo, *, name, scale, seed, device, recompute, progress, executor):
    """Compute the runs ``todo`` of :func:`run_grid` (on ``executor``, or in-process when
    ``None``) and write each entry as soon as its run completes; returns ``(found, metas)``,
    the records as stored and their metadata, by ``(label, r)``."""
    from tqdm import tqdm

    found: dict[tuple[str, int], dict] = {}
    metas: dict[tuple[str, int], dict] = {}
    _check_writable(todo[0][3].parent, scale)  # before any compute, not after
    bar = tqdm(total=len(todo), desc=name, disable=not progress, leave=False)
    jobs = [(label, r, key, path, dict(configs[label]), seed + r) for label, r, key, path in todo]
    if executor is None:
        results = ((job, _one_run(fn, job[4], job[5], device)) for job in jobs)
    else:  # written as they complete: a failed or interrupted sweep keeps the others
        futures = {executor.submit(_one_run, fn, job[4], job[5], device): job for job in jobs}
        results = ((futures[f], f.result()) for f in as_completed(futures))
    done = 0
    for (label, r, key, path, cfg, s), (record, seconds, dev) in results:
        meta = {"runner": _runner_id(fn), "config": _canonical(cfg), "seed": s,
                "device": dev, "seconds": round(seconds, 3), "scale": scale}
        # a recompute that reproduces the stored entry keeps its file byte for byte
        stored = _read_entry(path, key, warn=False) if recompute else None
        if stored is None or not _reproduces(record, stored):
            _write_entry(path, key, record, meta)
            stored = _read_entry(path, key)
            if stored is None:  # pragma: no cover - the file system lost it
                raise OSError(f"could not read back the cache entry {path}")
        found[(label, r)] = stored
        metas[(label, r)] = meta
        bar.update(1)
        done += 1
        _progress_line(name=name, label=label, seed=s, seconds=seconds, done=done,
                       total=len(todo))
    bar.close()
    return found, metas


# --------------------------------------------------------------------------- plan mode
#: Iterations of the two short stand-in runs that time a configuration in plan mode.
PLAN_ITERATIONS: tuple[int, int] = (1, 3)
#: In-process memo of the stand-ins: shape key -> (short record, longer record, timing).
_PLAN_MEMO: dict[str, tuple[dict, dict, dict]] = {}
#: The layout of the stand-in files (:func:`_memo_dir`); files of another are re-timed.
_PLAN_MEMO_VERSION = 1
#: Runner and problem pairs already run once, untimed, in this process (:func:`_stand_in`).
_PLAN_WARM: set[str] = set()


def plan_path() -> Path | None:
    """The plan file that ``$BISLS_PLAN`` names, or ``None`` (no plan mode).

    In plan mode :func:`run_grid` computes none of the missing runs and writes nothing
    into the cache: it appends one JSON line per run (missing or cached) to this file
    and returns stand-in records (:func:`_plan_grid`); :func:`record_claim` records no
    claim and :func:`bisls_core.plotting.save` writes no figure. The file may not lie
    in the committed ``results/``. A page whose numbers make no sense on stand-ins (a
    fit, say) tests ``plan_path() is not None`` and skips them."""
    text = os.environ.get("BISLS_PLAN", "").strip()
    if not text:
        return None
    path = Path(text).resolve()
    if (_scales.repo_root() / "results").resolve() in (path, *path.parents):
        raise ValueError(f"BISLS_PLAN={text!r} lies in results/: a plan writes nothing there")
    return path


def _memo_dir(plan: Path) -> Path | None:
    """The folder of the stand-in files shared by the pages of a plan and by later plans:
    ``$BISLS_PLAN_MEMO``, else ``stand-ins/`` beside the plan file (``.scratch/plan/
    stand-ins/`` for ``make paper PLAN=1``); ``None`` (memo in this process only) when
    ``$BISLS_PLAN_MEMO`` is ``off``. Delete the folder to time every configuration anew."""
    text = os.environ.get("BISLS_PLAN_MEMO", "").strip()
    if text.lower() in ("off", "0", "no", "none"):
        return None
    path = Path(text).resolve() if text else plan.parent / "stand-ins"
    if (_scales.repo_root() / "results").resolve() in (path, *path.parents):
        raise ValueError(f"BISLS_PLAN_MEMO={text!r} lies in results/: a plan writes nothing there")
    return path


def _hardware(device: str) -> str:
    """The machine a stand-in was timed on, in words (CPU model or GPU name)."""
    if device == "cuda":
        return f"GPU {torch.cuda.get_device_name()}"
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import platform

    return (f"CPU {model or platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} torch thread(s)")


def _timed_run(fn, config: dict, seed: int, device: str) -> tuple[dict, float]:
    """One short run and its cost: CPU time of this process on a CPU (other jobs on the
    machine do not inflate it), wall time after a synchronisation on a GPU."""
    dev = resolve_device(device).type
    clock = time.perf_counter if dev == "cuda" else time.process_time
    t0 = clock()
    record = fn(config, seed=seed, device=dev)
    if dev == "cuda":
        torch.cuda.synchronize()
    return record, clock() - t0


def _stretch(short: Mapping, record: Mapping, more: int, pad: int) -> dict:
    """A stand-in record with the shapes of the full run: an array one row longer per
    iteration (``record`` has ``more`` iterations more than ``short``) gets ``pad`` more
    copies of its last row; the others (evaluations every so often, scalars) are kept."""
    out = {}
    for key, value in record.items():
        a, b = np.asarray(short.get(key)), np.asarray(value)
        grows = more > 0 and a.ndim == b.ndim >= 1 and b.shape[0] - a.shape[0] == more
        out[key] = np.pad(b, [(0, pad)] + [(0, 0)] * (b.ndim - 1), mode="edge") \
            if grows and pad > 0 and b.shape[0] else b
    return out


def _shape_key(fn, config: dict, device: str) -> tuple[str, tuple[int, int] | None]:
    """The key of a configuration's *shape* and the iterations of its two short runs
    (``None``: a configuration without ``K``, run whole). The short runs replace ``K``
    and never see the seed of the grid, so the key holds the runner, the configuration
    without ``K`` (with the short runs' iterations instead), the device and the
    hardware: every seed and every horizon of a configuration share one stand-in."""
    dev = resolve_device(device).type
    short = None
    if "K" in config:
        K = int(config["K"])
        short = tuple(min(k, K) for k in PLAN_ITERATIONS)
    shape = {k: v for k, v in config.items() if k != "K"}
    key = json.dumps({"runner": _runner_id(fn), "config": _canonical(shape),
                      "short_runs": list(short) if short else None, "device": dev,
                      "hardware": _hardware(dev), "memo": _PLAN_MEMO_VERSION}, sort_keys=True)
    return key, short


def _shape_id(key: str) -> str:
    """A shape key's digest: the name of its stand-in file, and ``shape`` in the plan."""
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()[:40]


def _memo_file(folder: Path, key: str) -> Path:
    return folder / f"{_shape_id(key)}.npz"


def _memo_read(folder: Path | None, key: str) -> tuple[dict, dict, dict] | None:
    """A stand-in of an earlier page or plan (:func:`_memo_write`), or ``None``."""
    if folder is None:
        return None
    try:
        with np.load(_memo_file(folder, key), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("key") != key:
                return None
            runs = ({}, {})
            for name in z.files:
                which, _, field = name.partition("|")
                if which in ("0", "1"):
                    runs[int(which)][field] = z[name]
    except (OSError, ValueError, KeyError, EOFError):  # none yet, or unreadable: time anew
        return None
    return runs[0], runs[1], dict(meta["timing"], memo="reused")


def _memo_write(folder: Path | None, key: str, short: dict, record: dict, timing: dict) -> None:
    """Keep a stand-in for the other pages and later plans: one ``.npz`` per shape key,
    written whole under a temporary name then renamed (pages run at once)."""
    if folder is None:
        return
    arrays = {f"{i}|{k}": v for i, run in enumerate((short, record)) for k, v in run.items()}
    if any(a.dtype.hasobject for a in arrays.values()):  # not storable without pickle
        return
    meta = json.dumps({"key": key, "timing": timing}, sort_keys=True)
    path = _memo_file(folder, key)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.npz")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, meta=np.array(meta), **arrays)
        os.replace(tmp, path)
    except OSError:  # a read-only scratch folder: the memo stays in this process
        tmp.unlink(missing_ok=True)


def _measure(fn, config: dict, seed: int, dev: str,
             iterations: tuple[int, int] | None) -> tuple[dict, dict, dict]:
    """The two short runs of a configuration (``iterations``; ``None``: the run whole) and
    the cost they give: ``setup_s`` and ``per_iteration_s``. The first configuration of
    a runner and problem in this process is run once more before, untimed: that run pays
    the process's one-time costs (imports, data loading, lazy set-ups), which would
    otherwise pass for the cost of a run."""
    if iterations is None:
        record, seconds = _timed_run(fn, config, seed, dev)
        return record, record, {"setup_s": seconds, "per_iteration_s": 0.0}
    k1, k2 = iterations
    warm = json.dumps([_runner_id(fn), dev, _canonical(
        {k: config.get(k) for k in ("problem", "problem_args")})], sort_keys=True)
    if warm not in _PLAN_WARM:
        _timed_run(fn, {**config, "K": k1}, seed, dev)
        _PLAN_WARM.add(warm)
    short, t1 = _timed_run(fn, {**config, "K": k1}, seed, dev)
    record, t2 = _timed_run(fn, {**config, "K": k2}, seed, dev)
    per = max(t2 - t1, 0.0) / (k2 - k1) if k2 > k1 else t2 / max(k2, 1)
    return short, record, {"setup_s": max(t1 - k1 * per, 0.0), "per_iteration_s": per}


def _stand_in(fn, config: dict, seed: int, device: str,
              memo_dir: Path | None = None) -> tuple[dict, dict]:
    """The stand-in record of a configuration in plan mode and its timing: two short runs
    (:data:`PLAN_ITERATIONS` iterations, :func:`_measure`), stretched to the
    configuration's ``K``. One stand-in per configuration shape (:func:`_shape_key`: any
    seed, any ``K``), kept in this process and, with ``memo_dir``, in a file there that
    the other pages and later plans reuse; ``timing["memo"]`` says ``"timed"`` (in this
    process) or ``"reused"`` (read from a file)."""
    key, iterations = _shape_key(fn, config, device)
    if key not in _PLAN_MEMO:
        memo = _memo_read(memo_dir, key)
        if memo is None:
            dev = resolve_device(device).type
            short, record, timing = _measure(fn, config, seed, dev, iterations)
            short, record = ({k: np.asarray(v) for k, v in r.items()} for r in (short, record))
            timing.update(device=dev, hardware=_hardware(dev), shape=_shape_id(key)[:12],
                          timed_at=time.strftime("%Y-%m-%d %H:%M"))
            _memo_write(memo_dir, key, short, record, timing)
            memo = (short, record, dict(timing, memo="timed"))
        _PLAN_MEMO[key] = memo
    short, record, timing = _PLAN_MEMO[key]
    if iterations is not None:
        k1, k2 = iterations
        record = _stretch(short, record, k2 - k1, int(config["K"]) - k2)
    return record, timing


def _plan_grid(fn, configs, todo, found, *, plan, name, scale, n_runs, seed, device) -> Grid:
    """:func:`run_grid` in plan mode: one JSON line per run appended to ``plan`` (the
    missing ones with the stand-in's timing), and a grid in which every label with a
    missing run holds its stand-in record for each run (cached labels: the cache)."""
    missing = {(label, r): key for label, r, key, _ in todo}
    memo_dir = _memo_dir(plan)
    lines, records = [], {}
    for label, config in configs.items():
        config = dict(config)
        stand_in = None
        if any((label, r) in missing for r in range(n_runs)):
            stand_in, timing = _stand_in(fn, config, seed, device, memo_dir)
        for r in range(n_runs):
            key = missing.get((label, r)) or cache_key(fn, config, seed + r)
            entry = {"notebook": os.environ.get("BISLS_PLAN_NOTEBOOK", ""), "folder": name,
                     "scale": scale, "label": label, "method": config.get("method"),
                     "K": config.get("K"), "seed": seed + r, "runner": _runner_id(fn),
                     "key": key, "cached": (label, r) not in missing}
            if not entry["cached"]:
                entry.update(timing)
            lines.append(json.dumps(entry, sort_keys=True))
            records[(label, r)] = stand_in if stand_in is not None else found[(label, r)]
    plan.parent.mkdir(parents=True, exist_ok=True)
    with open(plan, "a", encoding="utf-8") as fh:
        fh.write("".join(f"{line}\n" for line in lines))
    return _stack_grid(configs, records, {}, n_runs)


def _check_alike(fn, configs, found, *, name, scale, seed, n_runs) -> None:
    """Every run of a configuration holds the same arrays (names, dtypes, shapes) before
    they are stacked; ``ValueError`` naming the configuration, the array and the entry
    files otherwise (a damaged or hand-edited entry, or entries of two code versions)."""
    for label, config in configs.items():
        runs = [found[(label, r)] for r in range(n_runs)]
        ref = {k: (np.asarray(v).dtype, np.shape(v)) for k, v in runs[0].items()}
        for r, run in enumerate(runs[1:], 1):
            got = {k: (np.asarray(v).dtype, np.shape(v)) for k, v in run.items()}
            if got == ref:
                continue
            bad = sorted(k for k in set(ref) | set(got) if ref.get(k) != got.get(k))[0]
            files = [str(_entry_path(scale, name, cache_key(fn, dict(config), seed + i)))
                     for i in (0, r)]
            raise ValueError(
                f"grid {name!r}, configuration {label!r}: array {bad!r} is "
                f"{ref.get(bad, 'absent')} in run 0 and {got.get(bad, 'absent')} in run {r} "
                f"(entries {files[0]} and {files[1]}, under the committed results/ or "
                ".scratch/results/): the entries do not come from one code version; "
                "delete the odd one (it is recomputed) or restore it from git")


def _stack_grid(configs, found, metas, n_runs) -> Grid:
    """The :class:`Grid` of :func:`run_grid`: per label, each record's arrays stacked over
    the runs (axis 0), and ``grid.meta[label]`` the runs' metadata (``{}`` when cached)."""
    grid = Grid()
    grid.meta = {}
    for label in configs:
        runs = [found[(label, r)] for r in range(n_runs)]
        grid[label] = {k: np.stack([np.asarray(run[k]) for run in runs]) for k in runs[0]}
        grid.meta[label] = [metas.get((label, r), {}) for r in range(n_runs)]
    return grid


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
        the notebook's parameters; ``recompute=True`` ignores cached entries and
        computes every run again; an entry whose run reproduces it (to
        :data:`REPRODUCE_RTOL`) keeps its file, byte for byte, and the grid gets the
        stored arrays; any other is overwritten. The cache folder is
        ``results_dir(scale) / scale / name`` (:func:`results_dir`: only the book's
        scale writes into the committed ``results/``); it must be writable when a
        run is missing, which is checked before any run is computed.
    progress:
        a tqdm bar over the runs that have to be computed (none when every run
        is cached, so a cached notebook prints nothing).
    executor:
        any :class:`concurrent.futures.Executor` to run the missing runs on
        (``None``: the one ``$BISLS_EXECUTOR`` names, see :func:`executor_from_env`;
        in-process, one after the other, when it is unset). Each entry is written as
        soon as its run completes. On an executor, ``device`` is resolved by the
        worker (``"cuda"`` need not exist where ``run_grid`` is called).

    With ``$BISLS_PLAN`` set (plan mode, :func:`plan_path`), nothing is computed or
    written into the cache: each run is listed in the plan file and every configuration
    with a missing run gets a stand-in record from two short timed runs of it
    (:data:`PLAN_ITERATIONS` iterations), so that a page runs to its end and lists the
    grids that depend on an earlier one (a tuned step size, say).
    """
    if executor is None:
        executor = executor_from_env()
    device = _check_grid_args(executor, scale, device, n_runs, seed, recompute)
    if not configs:
        raise ValueError("configs is empty: name at least one configuration")
    _use_scale(scale)
    todo, found = _cached_runs(fn, configs, name=name, scale=scale, n_runs=n_runs, seed=seed,
                               recompute=recompute)
    _log_use(fn, configs, name=name, scale=scale, n_runs=n_runs, seed=seed)
    plan = plan_path()
    if plan is not None:  # list the runs, compute none, write nothing into the cache
        return _plan_grid(fn, configs, todo, found, plan=plan, name=name, scale=scale,
                          n_runs=n_runs, seed=seed, device=device)
    metas: dict[tuple[str, int], dict] = {}
    if todo:
        computed, metas = _run_missing(fn, configs, todo, name=name, scale=scale, seed=seed,
                                       device=device, recompute=recompute, progress=progress,
                                       executor=executor)
        found.update(computed)
    _check_alike(fn, configs, found, name=name, scale=scale, seed=seed, n_runs=n_runs)
    return _stack_grid(configs, found, metas, n_runs)


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



# --------------------------------------------------------------------------- reading grids
def final_values(record: Mapping[str, np.ndarray], key: str,
                 frac: float | None = FINAL_FRACTION) -> np.ndarray:
    """Per run, the final value of ``record[key]``: the mean over its last ``frac`` of
    evaluations (by default the book-wide window of every claim,
    :data:`bisls_core.registry.FINAL_WINDOW`: the last 10 %, ``ceil(frac * evaluations)``
    and at least the last one, :func:`bisls_core.registry.window_width`; an iteration
    where no run was evaluated, NaN in every run, is not an evaluation), or with
    ``frac=None`` the value at the last iteration. NaN for a run that diverged
    (``record["diverged"]`` true at the end) or was never evaluated there."""
    values = np.asarray(record[key], dtype=float)
    values = values.reshape(values.shape[0], -1)
    if frac is None:
        out = values[:, -1].copy()
    else:
        evaluated = ~np.isnan(values).all(axis=0)
        cols = np.flatnonzero(evaluated) if evaluated.any() else np.arange(values.shape[1])
        cols = cols[-window_width(cols.size, frac):]
        with warnings.catch_warnings():  # a run with no evaluation in its tail gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            out = np.nanmean(values[:, cols], axis=1)
    if "diverged" in record:
        out[np.asarray(record["diverged"]).reshape(values.shape[0], -1)[:, -1]] = np.nan
    return out


def best_label(grid: Mapping[str, Mapping[str, np.ndarray]], key: str = "val_loss",
               per_run: Callable[[Mapping[str, np.ndarray], str], np.ndarray] | None = None) -> str:
    """The label with the lowest mean over runs of ``per_run(record, key)``
    (default :func:`final_values`, the book-wide window); a label with a diverged run
    counts as the worst (ties: the first in grid order). Every tuned or "best" choice of
    the book is made so on tuning runs (seeds from
    :data:`bisls_core.scales.TUNING_SEED_OFFSET`), never on the evaluation runs."""
    per_run = final_values if per_run is None else per_run
    scores = {label: float(np.mean(per_run(rec, key))) for label, rec in grid.items()}
    scores = {label: (s if np.isfinite(s) else np.inf) for label, s in scores.items()}
    return min(scores, key=lambda label: scores[label])


def curve(record: Mapping[str, np.ndarray], key: str,
          every: int = 1) -> tuple[np.ndarray, np.ndarray]:
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




def similar(finals: list[np.ndarray], rel: float = 0.05) -> tuple[bool, float, float]:
    """Do configurations end alike? ``finals`` holds one array of per-run final values
    per configuration (e.g. :func:`final_values`).

    Returns ``(alike, spread, noise)``: ``spread`` is the relative spread of the means
    over runs, :math:`(\\max - \\min)/\\min`; ``noise`` the mean over configurations of the
    relative run-to-run standard deviation (0 with one run each). They are alike when
    every run is finite and ``spread <= max(rel, noise)``: a difference smaller than
    the runs' own scatter is no evidence of a difference.
    """
    arrays = [np.asarray(v, dtype=float).ravel() for v in finals]
    if not arrays or not all(np.isfinite(v).all() and v.size for v in arrays):
        return False, float("inf"), float("nan")
    means = np.array([v.mean() for v in arrays])
    spread = float((means.max() - means.min()) / abs(means.min()))
    noise = float(np.mean([v.std() / abs(v.mean()) for v in arrays]))
    return spread <= max(rel, noise), spread, noise




def mean_text(values: np.ndarray, fmt: str = ".4f") -> str:
    """The mean over the runs that did not diverge, formatted, with the number of runs
    that did: ``"0.3450 (1/2 runs diverged)"`` (``"diverged"`` when all did)."""
    v = np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(v)
    text = format(float(v[ok].mean()), fmt) if ok.any() else "diverged"
    if ok.any() and not ok.all():
        text += f" ({v.size - ok.sum()}/{v.size} runs diverged)"
    return text


