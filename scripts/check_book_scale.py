"""The book's scale, end to end: the smoke stand-in's check and the paper-scale plan.

``make smoke`` (``scripts/run_notebooks.py smoke``) executes every notebook with
``BISLS_BOOK_SCALE=smoke`` and no ``scale`` parameter, as ``make book SCALE=paper``
executes them at paper scale, into ``.scratch/smoke/`` (results, figures, cache logs,
the scorecard pages). :func:`check_smoke` then checks that the whole path says
``smoke``: each page took the book's scale (papermill injected no ``scale``), every
cache entry it read or wrote and every claim it recorded is a smoke-scale one, every
figure states ``scale: smoke`` in its metadata, and ``scripts/scorecard.py`` renders a
scorecard and a scales page at the smoke scale only.

``make paper PLAN=1`` (``run_notebooks.py results --scale paper --plan``) runs every
page in plan mode (``bisls_core.experiments.plan_path``) and :func:`plan_report` sums up
the plan files: runs and iterations per page and per cache folder, and the time they
would take at the cost per iteration measured by the stand-in runs, per page and in
total, each with the hardware that measured it. A configuration shape is timed once: the
pages, and later plans, read its stand-in from ``.scratch/plan/stand-ins/`` (delete it
to time everything anew).

    python scripts/check_book_scale.py smoke   # check an existing .scratch/smoke/ again
    python scripts/check_book_scale.py plan    # print the report of the last plan again
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / ".scratch" / "smoke"
PLAN = ROOT / ".scratch" / "plan"
SCALE = "smoke"


def smoke_env(env: dict, fresh: bool = True) -> dict:
    """The environment of the smoke stand-in: the book's scale is ``smoke``, its cache,
    figures and cache logs under ``.scratch/smoke/`` (emptied first with ``fresh``, so
    that the check sees this run's files only)."""
    if fresh:
        for sub in ("results", "figures", "book", "logs"):
            shutil.rmtree(SMOKE / sub, ignore_errors=True)
    (SMOKE / "logs").mkdir(parents=True, exist_ok=True)
    return dict(env, BISLS_BOOK_SCALE=SCALE, BISLS_RESULTS=str(SMOKE / "results"),
                BISLS_FIGURES=str(SMOKE / "figures"))


def cache_log(name: str) -> Path:
    """The ``$BISLS_CACHE_LOG`` of one page of the stand-in."""
    return SMOKE / "logs" / f"{name}.txt"


def _page_problems(name: str, executed: Path) -> list[str]:
    """What in one executed page does not say smoke."""
    problems = []
    try:
        nb = json.loads(executed.read_text())
    except (OSError, ValueError):
        return [f"{name}: no executed page {executed}"]
    injected = nb.get("metadata", {}).get("papermill", {}).get("parameters", {})
    if "scale" in injected:
        problems.append(f"{name}: papermill was given scale={injected['scale']!r}; the page "
                        "must take the book's scale")
    log = cache_log(name)
    entries = log.read_text().split() if log.is_file() else []
    other = [e for e in entries if Path(e).parts[-3] != SCALE
             or (SMOKE / "results").resolve() not in Path(e).resolve().parents]
    if other:
        problems.append(f"{name}: {len(other)} cache entries outside .scratch/smoke/results/"
                        f"{SCALE}/, e.g. {other[0]}")
    claims_file = SMOKE / "results" / SCALE / "claims" / f"{name}.json"
    claims = json.loads(claims_file.read_text()) if claims_file.is_file() else {}
    wrong = sorted(cid for cid, c in claims.items() if c.get("scale") != SCALE)
    if wrong:
        problems.append(f"{name}: claims recorded at another scale: {wrong}")
    figures = list((SMOKE / "figures").glob(f"{name}*.png"))
    if not (entries or claims or figures):
        problems.append(f"{name}: no cache entry, claim or figure shows the scale it ran at")
    return problems


def _scorecard_problems() -> list[str]:
    """Render the scorecard and the scales page at the stand-in's scale; both must say
    smoke and nothing else."""
    env = smoke_env(dict(os.environ), fresh=False)
    out = SMOKE / "book"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "scorecard.py"), "--out", str(out)],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return [f"scripts/scorecard.py failed: {proc.stderr[-500:]}"]
    card, scales = (out / "scorecard.md").read_text(), (out / "scales.md").read_text()
    problems = []
    if f"runs at the `{SCALE}` scale" not in card or f"({SCALE} scale)" not in card:
        problems.append(f"the scorecard ({out / 'scorecard.md'}) does not say {SCALE}")
    for other in ("cpu", "paper"):
        if f"({other} scale)" in card:
            problems.append(f"the scorecard shows claims of the {other} scale")
    rows = [ln for ln in scales.splitlines() if ln.startswith("| ") and "`" in ln]
    if f"one scale: `{SCALE}`" not in scales or not rows or \
            any(not r.startswith(f"| {SCALE} |") for r in rows):
        problems.append(f"the scales page ({out / 'scales.md'}) does not say {SCALE} only")
    return problems


def check_smoke(names: list[str], executed_dir: Path = SMOKE) -> list[str]:
    """The problems of the smoke stand-in (none: the whole path said smoke)."""
    sys.path.insert(0, str(ROOT))
    from bisls_core.plotting import figure_scale

    problems = [p for name in names for p in _page_problems(name, executed_dir / f"{name}.ipynb")]
    figures = sorted((SMOKE / "figures").glob("*.png")) + sorted((SMOKE / "figures").glob("*.svg"))
    if not figures:
        problems.append(f"no figure in {SMOKE / 'figures'}")
    for fig in figures:
        if figure_scale(fig) != SCALE:
            problems.append(f"{fig.name} states scale {figure_scale(fig)!r} in its metadata")
    others = [p.parent.name for p in (SMOKE / "results").glob("*/claims") if p.parent.name != SCALE]
    if others:
        problems.append(f"claims recorded at other scales: {sorted(others)}")
    return problems + _scorecard_problems()


# ------------------------------------------------------------------------------- plan
def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _estimate(entry: dict) -> float:
    return entry["setup_s"] + (entry.get("K") or 0) * entry["per_iteration_s"]


def read_plan(files: list[Path]) -> list[dict]:
    return [json.loads(line) for f in files if f.is_file()
            for line in f.read_text().splitlines() if line.strip()]


def _hardware_tags(runs: list[dict]) -> dict[tuple[str, str], str]:
    """``(device, hardware) -> "[n]"``: the machines the estimates were measured on."""
    pairs = sorted({(e["device"], e["hardware"]) for e in runs})
    return {pair: f"[{n}]" for n, pair in enumerate(pairs, 1)}


def _tags_of(runs: list[dict], tags: dict) -> str:
    return ",".join(sorted({tags[(e["device"], e["hardware"])] for e in runs})) or "-"


def plan_report(files: list[Path], failed: list[str] = ()) -> str:
    """The plan's summary: per page and per cache folder, the missing runs, their
    iterations and their estimated time, and the hardware each estimate was measured on
    (``[n]``, listed under the total); how many stand-ins were timed, how many reused."""
    entries = read_plan(files)
    missing = [e for e in entries if not e["cached"]]
    unique = {(e["scale"], e["folder"], e["key"]): e for e in missing}  # pages share runs
    tags = _hardware_tags(list(unique.values()))
    lines = ["plan (nothing computed, nothing written into results/):", "",
             (f"{'page':<34} {'missing runs':>12} {'cached':>7} {'iterations':>11} "
              f"{'estimate':>9}  measured on")]
    for f in files:
        page = [e for e in entries if e["notebook"] == f.stem]
        todo = [e for e in page if not e["cached"]]
        note = "  (a cell raised)" if f.stem in failed else ""
        lines.append(f"{f.stem:<34} {len(todo):>12} {len(page) - len(todo):>7} "
                     f"{sum(e.get('K') or 0 for e in todo):>11,} "
                     f"{_hours(sum(map(_estimate, todo))):>9}  {_tags_of(todo, tags)}{note}")
    lines += ["", f"{'cache folder (runs shared by pages counted once)':<48} {'runs':>6} "
                  f"{'iterations':>11} {'ms/iter':>8} {'estimate':>9}"]
    for folder in sorted({k[:2] for k in unique}):
        runs = [e for k, e in unique.items() if k[:2] == folder]
        per = statistics.median(e["per_iteration_s"] for e in runs) * 1e3
        lines.append(f"{'results/' + '/'.join(folder) + '/':<48} {len(runs):>6} "
                     f"{sum(e.get('K') or 0 for e in runs):>11,} {per:>8.1f} "
                     f"{_hours(sum(map(_estimate, runs))):>9}")
    total = sum(map(_estimate, unique.values()))
    where = f", measured on {_tags_of(list(unique.values()), tags)}" if unique else ""
    lines += ["", f"total: {len(files)} pages, {len(unique)} runs, "
                  f"{sum(e.get('K') or 0 for e in unique.values()):,} "
                  f"iterations, about {_hours(total)} one after the other{where}"]
    lines += _hardware_lines(list(unique.values()), tags)
    lines += _stand_in_lines(missing)
    for name in failed:
        lines.append(f"{name}: a cell raised in plan mode (its records are stand-ins); the "
                     "later cells ran too, but a grid that needs that cell's result is not listed")
    return "\n".join(lines)


def _hardware_lines(runs: list[dict], tags: dict | None = None) -> list[str]:
    """On which hardware the estimate rests, with the measured cost per iteration."""
    if not runs:
        return ["every run is in the cache already: nothing to compute"]
    tags = tags or _hardware_tags(runs)
    out = []
    for (device, hardware), tag in tags.items():
        mine = [e for e in runs if (e["device"], e["hardware"]) == (device, hardware)]
        per = [e["per_iteration_s"] for e in mine]
        out.append(f"{tag} estimate of {len(mine)} runs ({_hours(sum(map(_estimate, mine)))}) "
                   f"measured on {hardware} ({device}): median "
                   f"{statistics.median(per) * 1e3:.1f} ms per iteration over these runs "
                   "(ms/iter above: per cache folder), from two short stand-in runs of each "
                   "configuration (CPU time of the process on a CPU; the first iterations' cost "
                   "stands for every iteration's)")
    if all(e["device"] == "cpu" for e in runs):
        out.append("GPU time: unmeasured. This project has never run on a GPU; the estimate "
                   "above is CPU time on this machine, and a GPU's time is not known from it.")
    return out


def _stand_in_lines(missing: list[dict]) -> list[str]:
    """How many configuration shapes the pages timed, and how many they read from the
    stand-in files of an earlier plan instead (``bisls_core.grids._stand_in``), whose
    timing they repeat (a shape timed by one page and read by another counts as timed)."""
    shapes = {e["shape"]: e for e in missing if e.get("shape")}
    if not shapes:
        return []
    timed = {e["shape"] for e in missing if e.get("memo") == "timed"}
    reused = [e for k, e in shapes.items() if k not in timed]
    text = (f"stand-ins: {len(shapes)} configuration shapes, {len(timed)} timed by this plan, "
            f"{len(reused)} read from the stand-in files of an earlier plan")
    if reused:
        when = sorted({e["timed_at"] for e in reused})
        folder = (PLAN / "stand-ins").relative_to(ROOT)
        text += (f" (timed {when[0]}{' to ' + when[-1] if len(when) > 1 else ''}; delete "
                 f"{folder}/ to time them anew)")
    return [text]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["smoke", "plan"])
    args = ap.parse_args(argv)
    if args.what == "plan":
        print(plan_report(sorted(PLAN.glob("*.jsonl"))))
        return 0
    names = sorted(p.stem for p in SMOKE.glob("*.ipynb"))
    problems = check_smoke(names)
    print("\n".join(problems) or f"every page, figure, claim and the scorecard say {SCALE!r}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
