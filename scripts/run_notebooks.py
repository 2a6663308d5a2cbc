"""Execute the notebooks with papermill.

    python scripts/run_notebooks.py smoke            # every notebook at scale="smoke", recompute=True,
                                                     # into .scratch/ (cache and figures too)
    python scripts/run_notebooks.py results --scale cpu [--device cuda] [NAME ...]
                                                     # fill results/<scale>/ (resumable: finished runs
                                                     # are cached), executed copies into .scratch/;
                                                     # figures go to figures/ only at the book's scale
    python scripts/run_notebooks.py execute [NAME ...]
                                                     # re-execute the committed notebooks in place at
                                                     # their default parameters (after new results)

Notebooks run from the ``notebooks/`` folder, as nbval and Jupyter Book run them.

Where runs write (``bisls_core.experiments.results_dir``, ``plotting.figures_dir``):
only a run at the book's scale (``experiments.BOOK_SCALE``, ``$BISLS_BOOK_SCALE``)
writes into the committed ``results/`` and ``figures/``; any other scale writes under
``.scratch/``, which git ignores. ``results`` keeps its cache in ``results/<scale>/``
at every scale (hours of GPU work are not scratch: commit them, then set the book's
scale), while its figures follow the rule.
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


def papermill(src: Path, dst: Path, params: dict, env: dict) -> tuple[str, float, int, str]:
    cmd = [str(BIN / "papermill"), str(src), str(dst), "-k", "python3", "--cwd", str(NB),
           "--no-progress-bar"]
    for k, v in params.items():
        cmd += ["-p", k, str(v)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return src.stem, time.perf_counter() - t0, proc.returncode, proc.stderr[-3000:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["smoke", "results", "execute"])
    ap.add_argument("names", nargs="*", help="notebook names (default: all)")
    ap.add_argument("--scale", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("-j", "--jobs", type=int, default=2, help="notebooks run at once")
    args = ap.parse_args()

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    out = SCRATCH / args.mode
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for nb in notebooks(args.names):
        if args.mode == "smoke":
            env_s = dict(env, BISLS_RESULTS=str(SCRATCH / "results"), BISLS_FIGURES=str(SCRATCH / "figures"))
            jobs.append((nb, out / nb.name, {"scale": "smoke", "recompute": True}, env_s))
        elif args.mode == "results":
            params = {"scale": args.scale, "device": args.device}
            # the cache of a deliberate fill is kept for committing (smoke is never committed)
            env_r = env if args.scale == "smoke" else dict(env, BISLS_RESULTS=str(ROOT / "results"))
            jobs.append((nb, out / f"{nb.stem}-{args.scale}.ipynb", params, env_r))
        else:
            jobs.append((nb, nb, {}, env))
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, secs, rc, err in pool.map(lambda j: papermill(*j), jobs):
            print(f"{name:<40} {secs:7.1f} s  {'ok' if rc == 0 else 'FAILED'}", flush=True)
            if rc != 0:
                failed.append(name)
                print(err, file=sys.stderr)
    if args.mode == "execute":
        for nb, *_ in jobs:
            clean_metadata(nb)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
