"""Run a sweep (a notebook's grid) on many cores or a cluster.

The runs of a grid are independent: :func:`bisls_core.experiments.run_grid` sends the
missing ones to an executor and writes each result into the cache as it comes back.
This script picks the executor; every notebook is unchanged.

    # a notebook, through papermill, its runs on 8 local processes
    python scripts/sweep.py notebooks/fig07_hyperrep_bisls.ipynb --executor process --workers 8 \\
        -p scale paper
    # ... on a running Dask cluster (dask scheduler / dask worker on the nodes)
    python scripts/sweep.py notebooks/fig07_hyperrep_bisls.ipynb --executor dask \\
        --scheduler tcp://HOST:8786 -p scale paper -p device cuda
    # ... one Slurm job per run (submitit)
    python scripts/sweep.py notebooks/fig07_hyperrep_bisls.ipynb --executor slurm \\
        --folder ~/submitit-logs --partition gpu --timeout-min 60 --slurm gpus_per_node=1 \\
        -p scale paper -p device cuda
    # a grid given as a function module:function returning (runner, configs, name)
    python scripts/sweep.py --grid scripts.sweep:demo_grid --executor process --workers 2 --n-runs 8
    # the speed-up of 2 local worker processes over 1 on the demo grid (8 runs)
    python scripts/sweep.py --speedup

How it works: the script sets ``BISLS_EXECUTOR`` (e.g. ``process:8``,
``dask:tcp://HOST:8786``, ``slurm:folder=...,partition=gpu,timeout_min=60``; see
:func:`bisls_core.experiments.make_executor`) and runs the notebook with papermill
into a scratch copy (``.scratch/sweep/``, or ``--output``); ``run_grid`` reads the
variable. The cache (``results/<scale>/``, or ``$BISLS_RESULTS``) is written by the
notebook's own process, so afterwards the committed notebook re-executed with the same
parameters reads every run from the cache. An interrupted sweep keeps every finished
run; run it again to compute only the rest. Workers need the project installed (same
code, same data) but no access to the cache folder.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so that "scripts.sweep:demo_grid" imports from anywhere
    sys.path.insert(0, str(ROOT))


def executor_spec(args: argparse.Namespace) -> str:
    """The ``BISLS_EXECUTOR`` value of the command-line options."""
    if args.executor == "local":
        return "local"
    if args.executor == "process":
        return f"process:{args.workers}" if args.workers else "process"
    if args.executor == "dask":
        if args.scheduler:
            return f"dask:{args.scheduler}"
        return f"dask:local:{args.workers}" if args.workers else "dask:local"
    if not args.folder:
        sys.exit("--executor slurm needs --folder (where submitit keeps its logs and pickles)")
    pairs = [f"folder={Path(args.folder).expanduser()}"]
    if args.partition:
        pairs.append(f"partition={args.partition}")
    if args.timeout_min:
        pairs.append(f"timeout_min={args.timeout_min}")
    pairs += args.slurm
    return "slurm:" + ",".join(pairs)


def _parameter(text: str) -> tuple[str, object]:
    key, eq, value = text.partition("=") if "=" in text else (text, "", "")
    if not eq:
        raise argparse.ArgumentTypeError(f"-p takes NAME=VALUE, got {text!r}")
    import yaml  # papermill's own parsing of -p values: numbers, booleans, None, strings

    return key, yaml.safe_load(value)


def run_notebook(path: Path, spec: str, params: dict, output: Path | None) -> None:
    import papermill

    out = output or ROOT / ".scratch" / "sweep" / path.name
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ["BISLS_EXECUTOR"] = spec
    t0 = time.perf_counter()
    papermill.execute_notebook(str(path), str(out), parameters=params, kernel_name="python3",
                               cwd=str(path.resolve().parent), progress_bar=False)
    print(f"{path.name}: executed with BISLS_EXECUTOR={spec} in {time.perf_counter() - t0:.1f} s "
          f"-> {out}")


def load_grid(target: str):
    module, _, name = target.partition(":")
    if not name:
        sys.exit(f"--grid takes module:function, got {target!r}")
    return getattr(importlib.import_module(module), name)()


def run_grid_once(target: str, spec: str, *, scale: str, n_runs: int, seed: int, device: str,
                  recompute: bool) -> float:
    """Run the grid ``target`` on the executor ``spec``; returns the wall seconds."""
    from bisls_core import experiments

    runner, configs, name = load_grid(target)
    executor = experiments.make_executor(spec)
    t0 = time.perf_counter()
    try:
        grid = experiments.run_grid(runner, configs, name=name, scale=scale, n_runs=n_runs,
                                    seed=seed, device=device, recompute=recompute,
                                    executor=executor, progress=False)
    finally:
        if executor is not None:
            executor.shutdown()
    seconds = time.perf_counter() - t0
    per_run = [m["seconds"] for meta in grid.meta.values() for m in meta if m]
    n = sum(len(meta) for meta in grid.meta.values())
    print(f"{name}: {n} runs with executor {spec!r} in {seconds:.1f} s"
          + (f" ({len(per_run)} computed, {np.mean(per_run):.1f} s each on average)"
             if per_run else " (all from the cache)"))
    return seconds


def demo_grid():
    """A small hyper-representation grid (one configuration, the runs differ by seed):
    the sweep of the speed-up measurement."""
    from bisls_core.bilevel import run_config
    from bisls_core.sweeps import hyperrep

    sz = hyperrep.sizes("cpu", K=40)
    return run_config, {"SGD": hyperrep.config(sz, "SGD", alpha=0.005, beta=1.0)}, "sweep_demo"


def speedup(target: str, n_runs: int, seed: int) -> None:
    """Time the grid on 1 and on 2 local worker processes (each from scratch, into a
    temporary cache) and print the speed-up."""
    times = {}
    for workers in (1, 2):
        tmp = tempfile.mkdtemp(prefix="bisls-sweep-")
        os.environ["BISLS_RESULTS"] = tmp
        try:
            times[workers] = run_grid_once(target, f"process:{workers}", scale="cpu",
                                           n_runs=n_runs, seed=seed, device="cpu", recompute=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"speed-up of 2 worker processes over 1 ({n_runs} runs, {os.cpu_count()} CPUs): "
          f"{times[1] / times[2]:.2f}x ({times[1]:.1f} s -> {times[2]:.1f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("notebook", nargs="?", type=Path, help="a notebook (.ipynb) to execute")
    parser.add_argument("--grid", help="module:function returning (runner, configs, name)")
    parser.add_argument("--speedup", action="store_true",
                        help="time --grid (default: the demo grid) on 1 and 2 local processes")
    parser.add_argument("--executor", choices=("local", "process", "dask", "slurm"),
                        default="process")
    parser.add_argument("--workers", type=int, help="processes (process) or workers (local Dask)")
    parser.add_argument("--scheduler", help="address of a Dask scheduler, tcp://HOST:PORT "
                        "(default with --executor dask: a local cluster)")
    parser.add_argument("--folder", help="submitit's folder (slurm)")
    parser.add_argument("--partition", help="Slurm partition")
    parser.add_argument("--timeout-min", type=int, help="Slurm time limit per run, minutes")
    parser.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                        help="any other submitit parameter, e.g. gpus_per_node=1 (repeatable)")
    parser.add_argument("-p", "--parameter", action="append", default=[], type=_parameter,
                        metavar="NAME=VALUE", help="a notebook parameter (papermill's -p)")
    parser.add_argument("--output", type=Path, help="executed copy (default .scratch/sweep/)")
    parser.add_argument("--scale", default="cpu", help="with --grid")
    parser.add_argument("--n-runs", type=int, default=None, help="with --grid (default 1; "
                        "8 with --speedup)")
    parser.add_argument("--seed", type=int, default=0, help="with --grid")
    parser.add_argument("--device", default="auto", help="with --grid")
    parser.add_argument("--recompute", action="store_true", help="with --grid")
    args = parser.parse_args(argv)

    if args.speedup:
        speedup(args.grid or "scripts.sweep:demo_grid", args.n_runs or 8, args.seed)
        return
    spec = executor_spec(args)
    if args.grid:
        run_grid_once(args.grid, spec, scale=args.scale, n_runs=args.n_runs or 1, seed=args.seed,
                      device=args.device, recompute=args.recompute)
    elif args.notebook:
        run_notebook(args.notebook, spec, dict(args.parameter), args.output)
    else:
        parser.error("give a notebook, --grid module:function, or --speedup")


if __name__ == "__main__":
    main()
