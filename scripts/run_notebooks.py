"""Execute the notebooks with papermill.

    python scripts/run_notebooks.py smoke            # every notebook at the smoke scale (as the
                                                     # book's scale: BISLS_BOOK_SCALE=smoke),
                                                     # recompute=True, into .scratch/smoke/, then
                                                     # checks that pages, figures and scorecard
                                                     # all say smoke
    python scripts/run_notebooks.py results [--scale paper] [--device auto] [NAME ...]
                                                     # fill results/<scale>/ (default: the book's
                                                     # scale; resumable: finished runs are cached),
                                                     # executed copies into .scratch/results/
    python scripts/run_notebooks.py results --scale paper --plan [NAME ...]
                                                     # list the runs that are missing, with an
                                                     # estimate of their time; computes none
    python scripts/run_notebooks.py execute [NAME ...]
                                                     # re-execute the committed notebooks in place
                                                     # at the book's scale (after new results)

Notebooks run from the ``notebooks/`` folder, as nbval and Jupyter Book run them. Every
notebook's ``scale`` parameter defaults to ``None``, the book's scale
(``bisls_core.experiments.book_scale``: ``$BISLS_BOOK_SCALE``, else ``cpu``), so
``BISLS_BOOK_SCALE=paper`` (``make notebooks SCALE=paper``) re-executes every page at
that scale.

Where runs write (``bisls_core.experiments.results_dir``, ``plotting.figures_dir``):
only a run at the book's scale writes into the committed ``results/`` and ``figures/``;
any other scale writes under ``.scratch/``, which git ignores. ``results`` keeps its
cache in ``results/<scale>/`` at every scale (hours of GPU work are not scratch: commit
them, then build the book at that scale), while its figures follow the rule.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_book_scale  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
SCRATCH = ROOT / ".scratch"
BIN = Path(sys.executable).parent


def notebooks(names: list[str]) -> list[Path]:
    found = sorted(NB.glob("*.ipynb"))
    if not names:
        return found
    chosen = [p for p in found if p.stem in names or p.name in names]
    unknown = set(names) - {p.stem for p in chosen} - {p.name for p in chosen}
    if unknown:
        sys.exit(f"unknown notebook(s): {sorted(unknown)}; known: {[p.stem for p in found]}")
    return chosen


def clean_metadata(path: Path) -> None:
    """Drop papermill's run metadata (timestamps, durations) so that executing a
    notebook twice leaves the same file."""
    nb = json.loads(path.read_text())
    nb.get("metadata", {}).pop("papermill", None)
    for cell in nb.get("cells", []):
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


#: A plan runs every cell of a page even after one raised (its stand-in records are not
#: the full runs' numbers), so that the grids of the later cells are listed too.
PLAN_PAPERMILL = ("import json, sys, papermill as pm; "
                  "pm.execute_notebook(sys.argv[1], sys.argv[2], parameters=json.loads(sys.argv[3]), "
                  "kernel_name='python3', cwd=sys.argv[4], progress_bar=False, allow_errors=True)")


def papermill(src: Path, dst: Path, params: dict, env: dict) -> tuple[str, float, int, str]:
    cmd = [str(BIN / "papermill"), str(src), str(dst), "-k", "python3", "--cwd", str(NB),
           "--no-progress-bar"]
    for k, v in params.items():
        cmd += ["-p", k, str(v)]
    if env.get("BISLS_PLAN"):
        cmd = [sys.executable, "-c", PLAN_PAPERMILL, str(src), str(dst), json.dumps(params), str(NB)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return src.stem, time.perf_counter() - t0, proc.returncode, proc.stderr[-3000:]


def book_scale() -> str:
    """The book's scale (``$BISLS_BOOK_SCALE``, else ``cpu``), as the notebooks read it."""
    sys.path.insert(0, str(ROOT))
    from bisls_core.experiments import book_scale as scale

    return scale()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["smoke", "results", "execute"])
    ap.add_argument("names", nargs="*", help="notebook names (default: all)")
    ap.add_argument("--scale", default=None, choices=["smoke", "cpu", "paper"],
                    help="results: the scale to fill (default: the book's, $BISLS_BOOK_SCALE or cpu)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--plan", "--dry-run", dest="plan", action="store_true",
                    help="results: list the missing runs and estimate their time, compute nothing")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="notebooks run at once")
    args = ap.parse_intermixed_args(argv)
    if args.plan and args.mode != "results":
        ap.error("--plan lists the runs of 'results'")
    return args


def plan_jobs(args, env: dict) -> list[tuple]:
    """The jobs of ``results --plan``: each page in plan mode (``$BISLS_PLAN``: one plan
    file per page under .scratch/plan/), reading the cache where ``results`` would write."""
    out = SCRATCH / "plan"
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for nb in notebooks(args.names):
        plan = out / f"{nb.stem}.jsonl"
        plan.unlink(missing_ok=True)
        env_p = dict(env, BISLS_PLAN=str(plan), BISLS_PLAN_NOTEBOOK=nb.stem,
                     BISLS_RESULTS=str(ROOT / "results"), BISLS_FIGURES=str(out / "figures"))
        jobs.append((nb, out / f"{nb.stem}-{args.scale}.ipynb",
                     {"scale": args.scale, "device": args.device}, env_p))
    return jobs


def make_jobs(args, env: dict) -> list[tuple]:
    """``(notebook, executed copy, parameters, environment)`` of every papermill run."""
    if args.mode == "results" and args.plan:
        return plan_jobs(args, env)
    out = SCRATCH / args.mode
    out.mkdir(parents=True, exist_ok=True)
    if args.mode == "smoke":
        env_s = check_book_scale.smoke_env(env)
    jobs = []
    for nb in notebooks(args.names):
        if args.mode == "smoke":  # no scale parameter: the page takes the book's (smoke)
            log = dict(env_s, BISLS_CACHE_LOG=str(check_book_scale.cache_log(nb.stem)))
            jobs.append((nb, out / nb.name, {"recompute": True}, log))
        elif args.mode == "results":
            params = {"scale": args.scale, "device": args.device}
            # the cache of a deliberate fill is kept for committing (smoke is never committed)
            env_r = env if args.scale == "smoke" else dict(env, BISLS_RESULTS=str(ROOT / "results"))
            jobs.append((nb, out / f"{nb.stem}-{args.scale}.ipynb", params, env_r))
        else:
            jobs.append((nb, nb, {}, env))
    return jobs


def finish(args, jobs: list[tuple], failed: list[str]) -> int:
    """After the runs: clean the executed pages, check the smoke stand-in, summarise a plan
    or say where a fill's results went and what comes next."""
    if args.mode == "execute":
        for nb, *_ in jobs:
            clean_metadata(nb)
    if args.mode == "smoke" and not failed:
        problems = check_book_scale.check_smoke([nb.stem for nb, *_ in jobs], SCRATCH / "smoke")
        for line in problems:
            print(f"scale check: {line}", file=sys.stderr)
        if problems:
            return 1
        print("scale check: every page, figure, claim and the scorecard say 'smoke'")
    if args.mode == "results" and args.plan:
        print(check_book_scale.plan_report([SCRATCH / "plan" / f"{nb.stem}.jsonl"
                                            for nb, *_ in jobs], failed))
    elif args.mode == "results":
        nxt = ("make notebooks" if args.scale == book_scale() else f"make book SCALE={args.scale}")
        print(f"results of scale {args.scale!r} are in {ROOT / 'results' / args.scale}/ "
              f"(commit them); next: {nxt}")
    if failed:
        print(f"{len(failed)} notebook(s) failed: {failed}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mode == "results" and args.scale is None:
        args.scale = book_scale()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    jobs = make_jobs(args, env)
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, secs, rc, err in pool.map(lambda j: papermill(*j), jobs):
            print(f"{name:<40} {secs:7.1f} s  {'ok' if rc == 0 else 'FAILED'}", flush=True)
            if rc != 0:
                failed.append(name)
                print(err, file=sys.stderr)
    return finish(args, jobs, failed)


if __name__ == "__main__":
    sys.exit(main())
