"""Run a sweep (a notebook's grid) on many cores or a cluster.

The runs of a grid are independent: :func:`bisls_core.experiments.run_grid` sends the
missing ones to an executor and writes each result into the cache as it comes back.
This script picks the executor; every notebook is unchanged. Notebook parameters are
given as papermill takes them, ``-p NAME VALUE``; ``--dry-run`` checks everything and
prints the planned runs, how many of them are in the cache already, without computing
(and without contacting a cluster).

    # a notebook, through papermill, its runs on 8 local processes
    python scripts/sweep.py notebooks/fig07_bisls_vs_tuned.ipynb --executor process \\
        --workers 8 -p scale paper
    # ... on a running Dask cluster (dask scheduler / dask worker on the nodes)
    python scripts/sweep.py notebooks/fig07_bisls_vs_tuned.ipynb --executor dask \\
        --scheduler tcp://HOST:8786 -p scale paper -p device auto
    # ... one Slurm job per run (submitit)
    python scripts/sweep.py notebooks/fig07_bisls_vs_tuned.ipynb --executor slurm \\
        --folder ~/submitit-logs --partition gpu --timeout-min 60 --slurm gpus_per_node=1 \\
        -p scale paper -p device auto
    # what any of these would run, checked and printed, nothing computed
    python scripts/sweep.py notebooks/fig07_bisls_vs_tuned.ipynb -p scale paper --dry-run
    # a grid given as a function module:function returning (runner, configs, name)
    python scripts/sweep.py --grid scripts.sweep:demo_grid --executor process --workers 2 --n-runs 8
    # the speed-up of 2 local worker processes over 1 on the demo grid (8 runs)
    python scripts/sweep.py --speedup

How it works: the script sets ``BISLS_EXECUTOR`` (e.g. ``process:8``,
``dask:tcp://HOST:8786``, ``slurm:folder=...,partition=gpu,timeout_min=60``; see
:func:`bisls_core.experiments.make_executor`) and runs the notebook with papermill
into a scratch copy (``.scratch/sweep/``, or ``--output``); ``run_grid`` reads the
variable. The results cache is written by the notebook's own process, so afterwards
the committed notebook re-executed with the same parameters reads every run from the
cache. An interrupted sweep keeps every finished run; run it again to compute only the
rest. Workers need the project installed (same code, same data) but no access to the
cache folder. With a Dask or Slurm executor, ``-p device auto`` is resolved on each
worker (a GPU node uses its GPU); ``-p device cuda`` asks for a GPU where the notebook
itself runs too, and fails clearly where there is none.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # so that "scripts.sweep:demo_grid" imports from anywhere
    sys.path.insert(0, str(ROOT))

NOTEBOOKS = ROOT / "notebooks"
PARAMETER_FLAGS = ("-p", "--parameters", "--parameter")
EXECUTORS = ("local", "process", "dask", "slurm")


class SweepError(ValueError):
    """A bad command line: unknown notebook, parameter or executor setting."""


# --------------------------------------------------------------------------- parameters
def papermill_value(text: str) -> object:
    """A ``-p`` value parsed as papermill parses it: ``True``/``False``/``None``, an
    int, a float, else the string itself.

    >>> [papermill_value(t) for t in ("paper", "5", "-2", "0.5", "True", "None", "1e-3")]
    ['paper', 5, -2, 0.5, True, None, 0.001]
    """
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_parameter_usage(argv: list[str]) -> None:
    """Catch a ``-p`` without its two arguments, and the form ``-p NAME=VALUE``,
    before argparse does (it would take the next argument as the value): ``-p`` takes
    two arguments, NAME VALUE, as papermill's does."""
    def is_option(token: str) -> bool:
        return token.startswith("-") and not isinstance(papermill_value(token), (int, float))

    for i, flag in enumerate(argv):
        if flag not in PARAMETER_FLAGS:
            continue
        name = argv[i + 1] if i + 1 < len(argv) else None
        value = argv[i + 2] if i + 2 < len(argv) else None
        if name is not None and "=" in name and not name.startswith("-"):
            key, _, val = name.partition("=")
            raise SweepError(f"-p takes two arguments, NAME VALUE, as papermill does: "
                             f"write -p {key} {val}, not -p {name}")
        if name is None or is_option(name) or value is None or is_option(value):
            got = " ".join([flag] + [t for t in (name,) if t is not None and not is_option(t)])
            raise SweepError(f"-p takes two arguments, NAME VALUE, as papermill does "
                             f"(e.g. -p scale paper), got only: {got}")


def parameters_dict(pairs: list[list[str]]) -> dict[str, object]:
    """``[[NAME, VALUE], ...]`` of the command line -> ``{NAME: value}``."""
    out = {}
    for name, value in pairs:
        if not name.isidentifier():
            raise SweepError(f"-p takes NAME VALUE with NAME a Python identifier, "
                             f"got NAME {name!r}")
        out[name] = papermill_value(value)
    return out


# --------------------------------------------------------------------------- notebooks
def find_notebook(text: str | Path) -> Path:
    """The notebook a command line names: a path (from the current folder or the
    repository root), a ``.py`` source (its paired ``.ipynb``) or a bare name
    (``fig04_quadratics``). A clear error, with the closest names, otherwise."""
    given = Path(text).expanduser()
    candidates = [given, ROOT / given, NOTEBOOKS / given]
    if given.suffix in ("", ".py"):
        candidates += [c.with_suffix(".ipynb") for c in list(candidates)]
    for c in candidates:
        if c.suffix == ".ipynb" and c.is_file():
            return c
    names = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    close = [n for n in names if n.startswith(given.stem)][:3]
    close += [n for n in difflib.get_close_matches(given.stem, names, n=3, cutoff=0.5)
              if n not in close]
    hint = f"; did you mean {', '.join(f'notebooks/{n}.ipynb' for n in close)}?" if close else (
        f"; the notebooks are: {', '.join(names)}")
    raise SweepError(f"no notebook {str(text)!r}{hint}")


def notebook_cells(path: Path) -> tuple[str, str]:
    """The source of a notebook's ``parameters`` cell and of the code cell after it
    (its validation: ``check_params`` and the scale preset)."""
    nb = json.loads(Path(path).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    tagged = [i for i, c in enumerate(code)
              if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise SweepError(f"{path} has no cell tagged 'parameters' (papermill needs one)")
    i = tagged[0]
    source = lambda c: "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
    return source(code[i]), (source(code[i + 1]) if i + 1 < len(code) else "")


def notebook_later_cells(path: Path) -> list[str]:
    """The sources of the code cells after a notebook's validation cell (the cells that
    build and run its grids)."""
    nb = json.loads(Path(path).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    i = next(i for i, c in enumerate(code)
             if "parameters" in c.get("metadata", {}).get("tags", []))
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in code[i + 2:]]


def notebook_defaults(path: Path) -> dict[str, object]:
    """The parameters of a notebook's ``parameters`` cell and their defaults."""
    params_cell, _ = notebook_cells(path)
    namespace: dict = {}
    exec(compile(params_cell, f"{Path(path).name}:parameters", "exec"), namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("_")}


def plan_notebook(path: Path, params: dict[str, object]) -> dict[str, object]:
    """Check ``params`` the way the notebook will, without computing: every name must
    be a parameter of its ``parameters`` cell; then the parameters cell, the values
    and the notebook's validation cell run (imports, ``check_params``, the scale
    preset). Returns the resolved parameters and the preset's sizes (``sizes``, with
    ``n_runs`` when the notebook has one)."""
    defaults = notebook_defaults(path)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise SweepError(f"{Path(path).name} has no parameter {', '.join(map(repr, unknown))}; "
                         f"its parameters are: {', '.join(defaults)}")
    _, check_cell = notebook_cells(path)
    os.environ.setdefault("MPLBACKEND", "Agg")
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    namespace = {**defaults, **params}
    try:
        exec(compile(check_cell, f"{Path(path).name}:validation", "exec"), namespace)
    except (ValueError, TypeError) as err:
        raise SweepError(f"{Path(path).name}: {err}") from err
    finally:  # the validation cell sets torch to one thread: not this process's business
        if threads is not None:
            sys.modules["torch"].set_num_threads(threads)
        elif "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(os.cpu_count() or 1)
    sizes = next((dict(namespace[k]) for k in ("sz", "sizes")
                  if isinstance(namespace.get(k), dict)), {})
    return {"parameters": {k: namespace[k] for k in defaults}, "sizes": sizes,
            "namespace": namespace}


class _Unplanned(Exception):
    """A grid with runs missing from the cache: its records do not exist yet, so the
    cells after it (whose grids may depend on them) are not counted."""


#: Variables unset while a dry run counts the runs: no executor is built (no cluster is
#: contacted), no cache-use log or progress file is written.
_COUNT_UNSET = ("BISLS_EXECUTOR", "BISLS_CACHE_LOG", "BISLS_PROGRESS")


def count_runs(path: Path, namespace: dict) -> dict[str, object]:
    """The runs the notebook plans, counted without computing any: its later cells run
    in ``namespace`` (after its validation cell) in plan mode (``$BISLS_PLAN`` into a
    temporary file: no claim, figure or cache entry is written) with every grid's lookup
    intercepted. A grid whose runs are all in the cache gives its records and the page
    goes on; the first grid with a missing run is counted and ends the count (its later
    grids may be built from that grid's results). Returns ``grids`` (one
    ``(cache folder, runs, cached)`` per grid), ``complete`` (the page ran to its end)
    and ``error`` (a cell that raised, if any)."""
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bisls_core import grids as G

    counted: list[tuple[str, int, int]] = []
    original = G._plan_grid

    def counting(fn, configs, todo, found, **kw):
        total = len(configs) * kw["n_runs"]
        counted.append((f"{kw['scale']}/{kw['name']}", total, total - len(todo)))
        if todo:
            raise _Unplanned
        return original(fn, configs, todo, found, **kw)  # all cached: no stand-in run

    saved = {k: os.environ.get(k) for k in ("BISLS_PLAN", *_COUNT_UNSET)}
    threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    complete, error = False, None
    with tempfile.TemporaryDirectory(prefix="bisls-dry-run-") as tmp:
        os.environ["BISLS_PLAN"] = str(Path(tmp) / "plan.jsonl")
        for key in _COUNT_UNSET:
            os.environ.pop(key, None)
        G._plan_grid = counting
        if "torch" in sys.modules:  # as the page runs (sweeps.start): one thread
            sys.modules["torch"].set_num_threads(1)
        try:
            with redirect_stdout(StringIO()), redirect_stderr(StringIO()):
                for n, cell in enumerate(notebook_later_cells(path), 1):
                    exec(compile(cell, f"{Path(path).name}:cell-{n}", "exec"), namespace)
            complete = True
        except _Unplanned:
            pass
        except Exception as err:  # noqa: BLE001 -- said in the plan, not fatal to it
            error = f"{type(err).__name__}: {err}"
        finally:
            G._plan_grid = original
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if threads is not None:
                sys.modules["torch"].set_num_threads(threads)
            plt.close("all")
    return {"grids": counted, "complete": complete, "error": error}


def runs_line(path: Path, count: dict, scale: str) -> str:
    """The ``planned`` line of a dry run: the runs counted, how many are in the cache."""
    grids, total = count["grids"], sum(n for _, n, _ in count["grids"])
    cached = sum(c for _, _, c in count["grids"])
    folders = sorted({f for f, _, _ in grids})
    where = (f" (cache folder{'s' if len(folders) > 1 else ''} {', '.join(folders)})"
             if folders else "")
    text = (f"{total} run{'s' if total != 1 else ''} in {len(grids)} grid"
            f"{'s' if len(grids) != 1 else ''}{where}, {cached} in the cache, "
            f"{total - cached} to compute")
    if count["complete"]:
        return f"planned    {text}"
    if count["error"]:
        return (f"planned    at least {text}; counting stopped at a cell that raised: "
                f"{count['error']}")
    return (f"planned    at least {text}; the grids after the last one may be built from its "
            f"results, so they are not counted (every run, timed: "
            f"python scripts/run_notebooks.py results {Path(path).stem} --scale {scale} --plan)")


# --------------------------------------------------------------------------- executors
def executor_spec(args: argparse.Namespace) -> str:
    """The ``BISLS_EXECUTOR`` value of the command-line options."""
    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers must be at least 1, got {args.workers}")
    if args.executor == "local":
        return "local"
    if args.executor == "process":
        return f"process:{args.workers}" if args.workers else "process"
    if args.executor == "dask":
        if args.scheduler:
            return f"dask:{args.scheduler}"
        return f"dask:local:{args.workers}" if args.workers else "dask:local"
    if not args.folder:
        raise SweepError("--executor slurm needs --folder "
                         "(where submitit keeps its logs and pickles)")
    pairs = [f"folder={Path(args.folder).expanduser()}"]
    if args.partition:
        pairs.append(f"partition={args.partition}")
    if args.timeout_min is not None:
        if args.timeout_min < 1:
            raise SweepError(f"--timeout-min must be at least 1, got {args.timeout_min}")
        pairs.append(f"timeout_min={args.timeout_min}")
    for pair in args.slurm:
        key, eq, value = pair.partition("=")
        if not (eq and key.isidentifier() and value):
            raise SweepError(f"--slurm takes KEY=VALUE (a submitit parameter), got {pair!r}")
        pairs.append(pair)
    return "slurm:" + ",".join(pairs)


def describe_spec(spec: str) -> str:
    """Check a ``BISLS_EXECUTOR`` value with
    :func:`bisls_core.experiments.parse_executor_spec` (what ``make_executor`` reads),
    without building the executor (no Dask, no submitit, no connection), and say in
    words what it runs on."""
    from bisls_core.experiments import parse_executor_spec

    try:
        parsed = parse_executor_spec(spec)
    except (TypeError, ValueError) as err:
        raise SweepError(f"BISLS_EXECUTOR={spec!r}: {err}") from err
    n = parsed.workers
    if parsed.kind == "local":
        return "in this process, one run after the other"
    if parsed.kind == "process":
        return f"{n} local worker process{'es' if n != 1 else ''}"
    if parsed.kind == "dask":
        if parsed.address is None:
            return (f"a local Dask cluster of {n} worker process{'es' if n != 1 else ''} "
                    "(needs 'distributed')")
        return (f"the Dask scheduler at {parsed.address} (needs 'distributed'; not contacted "
                "by --dry-run)")
    extra = ", ".join(f"{k}={v}" for k, v in parsed.params.items() if k != "folder")
    return (f"one Slurm job per run through submitit, logs in {parsed.params['folder']}"
            + (f" ({extra})" if extra else "")
            + " (needs 'submitit'; nothing submitted by --dry-run)")


def _is_remote(spec: str) -> bool:
    """Whether the runs of ``spec`` run on other machines (a Dask scheduler, Slurm)."""
    kind, _, rest = spec.partition(":")
    return kind == "slurm" or (kind == "dask" and bool(rest) and not rest.startswith("local"))


def _where_device(spec: str, device: object) -> str:
    if _is_remote(spec):
        return f"{device} (resolved on each worker)"
    from bisls_core.experiments import resolve_device

    return f"{device} (here: {resolve_device(device).type})"


# --------------------------------------------------------------------------- running
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
    if not (module and name):
        raise SweepError(f"--grid takes module:function, got {target!r}")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise SweepError(f"--grid {target!r}: {err}") from None
    return fn()


def run_grid_once(target: str, spec: str, *, scale: str, n_runs: int, seed: int, device: str,
                  recompute: bool) -> float:
    """Run the grid ``target`` on the executor ``spec``; returns the wall seconds."""
    import numpy as np

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


# --------------------------------------------------------------------------- plans
def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def plan_notebook_lines(path: Path, params: dict, spec: str, output: Path | None) -> list[str]:
    try:
        plan = plan_notebook(path, params)
    except SweepError as err:
        if params.get("device") == "cuda" and _is_remote(spec) and "cuda" in str(err).lower():
            raise SweepError(f"{err}. The notebook checks its device where it runs itself (here); "
                             "-p device auto is resolved on each worker instead") from err
        raise
    p, sizes = plan["parameters"], plan["sizes"]
    n_runs = sizes.get("n_runs", p.get("n_runs"))
    preset = "" if params.get("n_runs") is not None else f" (the {p['scale']!r} preset)"
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "none (the defaults)"
    lines = [
        f"notebook   {_rel(path)} (papermill, in {_rel(path.parent)}/)",
        f"parameters {shown}",
        f"scale      {p['scale']}",
        f"runs       {n_runs} per configuration{preset}" if n_runs is not None
        else "runs       the notebook's own count",
        f"device     {_where_device(spec, p['device'])}",
        f"executor   {describe_spec(spec)} (BISLS_EXECUTOR={spec})",
        f"output     {_rel(output or ROOT / '.scratch' / 'sweep' / path.name)}",
    ]
    lines.insert(4, runs_line(path, count_runs(path, plan["namespace"]), p["scale"]))
    scalars = {k: v for k, v in sizes.items() if isinstance(v, (int, float, str))}
    if scalars:
        lines.insert(4, "sizes      " + ", ".join(f"{k}={v!r}" for k, v in scalars.items()))
    return lines


def plan_grid_lines(args: argparse.Namespace, spec: str, n_runs: int) -> list[str]:
    from bisls_core import experiments

    device = "auto" if _is_remote(spec) else args.device  # as run_grid checks it
    experiments.check_params(args.scale, device, n_runs, args.seed, args.recompute)
    experiments.check_choice("device", args.device, experiments.DEVICES)
    runner, configs, name = load_grid(args.grid)
    total = len(configs) * n_runs
    if args.recompute:
        cached = "none reused (--recompute)"
    else:
        from bisls_core import grids

        todo, _ = grids._cached_runs(runner, configs, name=name, scale=args.scale,
                                     n_runs=n_runs, seed=args.seed, recompute=False)
        cached = f"{total - len(todo)} in the cache, {len(todo)} to compute"
    return [
        f"grid       {args.grid} -> {name!r}, {len(configs)} configuration(s)",
        f"scale      {args.scale}",
        f"runs       {total} ({len(configs)} x {n_runs} seeds from {args.seed}; {cached})",
        f"device     {_where_device(spec, args.device)}",
        f"executor   {describe_spec(spec)} (BISLS_EXECUTOR={spec})",
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("notebook", nargs="?",
                        help="a notebook: its .ipynb under notebooks/, its .py source, "
                             "or its bare name (fig04_quadratics)")
    parser.add_argument("-p", "--parameters", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="a notebook parameter, as papermill's -p: ints, floats, "
                             "True/False/None, else a string (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the command line and print the planned runs; compute nothing")
    parser.add_argument("--grid", help="module:function returning (runner, configs, name)")
    parser.add_argument("--speedup", action="store_true",
                        help="time --grid (default: the demo grid) on 1 and 2 local processes")
    parser.add_argument("--executor", choices=EXECUTORS, default="process")
    parser.add_argument("--workers", type=int, help="processes (process) or workers (local Dask)")
    parser.add_argument("--scheduler", help="address of a Dask scheduler, tcp://HOST:PORT "
                        "(default with --executor dask: a local cluster)")
    parser.add_argument("--folder", help="submitit's folder (slurm)")
    parser.add_argument("--partition", help="Slurm partition")
    parser.add_argument("--timeout-min", type=int, help="Slurm time limit per run, minutes")
    parser.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                        help="any other submitit parameter, e.g. gpus_per_node=1 (repeatable)")
    parser.add_argument("--output", type=Path, help="executed copy (default .scratch/sweep/)")
    parser.add_argument("--scale", default=None, help="with --grid (default: the book's "
                        "scale, $BISLS_BOOK_SCALE, else cpu)")
    parser.add_argument("--n-runs", type=int, default=None, help="with --grid (default 1; "
                        "8 with --speedup)")
    parser.add_argument("--seed", type=int, default=0, help="with --grid")
    parser.add_argument("--device", default="auto", help="with --grid")
    parser.add_argument("--recompute", action="store_true", help="with --grid")
    return parser


def plan(args: argparse.Namespace) -> tuple[list[str], object]:
    """Check the command line (nothing computed, no executor built) and return the
    lines of the plan and the function that runs it."""
    if args.speedup:
        target, n_runs = args.grid or "scripts.sweep:demo_grid", args.n_runs or 8
        _runner, configs, name = load_grid(target)
        lines = [f"speedup    {target} -> {name!r}: {len(configs) * n_runs} runs timed on 1 and "
                 f"then 2 local worker processes, each into a temporary cache"]
        return lines, lambda: speedup(target, n_runs, args.seed)
    spec = executor_spec(args)
    describe_spec(spec)
    if args.grid:
        from bisls_core.experiments import book_scale

        args.scale = args.scale or book_scale()
        if args.notebook or args.parameters:
            raise SweepError("give either a notebook (with -p) or --grid, not both")
        n_runs = args.n_runs or 1
        lines = plan_grid_lines(args, spec, n_runs)
        return lines, lambda: run_grid_once(args.grid, spec, scale=args.scale, n_runs=n_runs,
                                            seed=args.seed, device=args.device,
                                            recompute=args.recompute)
    if not args.notebook:
        raise SweepError("give a notebook, --grid module:function, or --speedup")
    path = find_notebook(args.notebook)
    params = parameters_dict(args.parameters)
    lines = plan_notebook_lines(path, params, spec, args.output)
    return lines, lambda: run_notebook(path, spec, params, args.output)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        check_parameter_usage(argv)
        args = parser.parse_args(argv)
        lines, run = plan(args)
    except (ValueError, TypeError) as err:  # SweepError and the notebook's own checks
        parser.error(str(err))
    if args.dry_run:
        print("dry run, nothing computed:", *lines, sep="\n")
        return
    print(*lines, sep="\n")
    run()


if __name__ == "__main__":
    main()
