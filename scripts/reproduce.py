"""The reproduction report: recompute pages on this machine and compare with the book.

    python scripts/reproduce.py                  # a cheap sample: one page of every family
    python scripts/reproduce.py all              # every page (hours)
    python scripts/reproduce.py thm2_strongly_convex_rate fig04_quadratics
    python scripts/reproduce.py --save           # also keep the report for the scales page
    python scripts/reproduce.py --compare-only   # compare the last recomputation again

(``make reproduce``, ``make reproduce PAGES=all``, ``make reproduce SAVE=1``.)

Each page runs with papermill at the book's scale with ``recompute True`` into
``.scratch/reproduce/`` (its cache, claims and figures: nothing committed is written),
listing the cache entries it uses (``BISLS_CACHE_LOG``). Then every recomputed entry is
compared with the committed entry of the same key:

* **identical**: the same arrays, bit for bit (the same SHA-256), the wall-clock
  seconds per iteration (``time``, a measurement of the machine) left out;
* **within 1e-12**: every float equal to a relative 1e-12 (``REPRODUCE_RTOL``), the rest equal;
* **drifted**: otherwise, with the largest relative difference of the runs' final values
  (the last row of every float array; a run finite on one machine and not on the other
  counts as a divergence on one machine only);

and every claim of the page with the committed one: the same verdict? the centre of the
recomputed 95 % interval inside the committed interval?

The report (JSON, with this machine's CPU model) goes to ``.scratch/reproduce/report.json``;
``--save`` also writes it to ``results/<scale>/reproduce.json``, which
``scripts/scorecard.py`` renders on the scales page. Exit status 0 unless a page failed
to run (a drift is a finding, not a failure). SIGTERM or SIGINT ends every papermill,
kernel and worker it started (``scripts/run_notebooks.py``'s handling).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "scripts"))
import run_notebooks  # noqa: E402  (its children, papermill command and signal handling)
import timed  # noqa: E402  (the machine's CPU model)

from bisls_core import cache  # noqa: E402
from bisls_core.records import read_claims  # noqa: E402
from bisls_core.scales import book_scale  # noqa: E402

OUT = ROOT / ".scratch" / "reproduce"
#: The default sample: the cheapest page of each problem family (single-level
#: quadratics, w8a, the rate checks, hyper-representation, distillation, the
#: own-problem page).
SAMPLE = ("fig04_quadratics", "fig05_w8a_logistic", "thm2_strongly_convex_rate",
          "fig18_bisps_one_vs_two_samples", "fig19_bisps_one_vs_two_samples",
          "bilevel_own_problem")


def pages(names: list[str]) -> list[str]:
    """The pages to recompute: ``names`` checked against ``notebooks/``; ``["all"]``: all."""
    known = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    if names == ["all"]:
        return known
    chosen = names or list(SAMPLE)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        sys.exit(f"unknown page(s) {unknown}; known: {known} (or 'all')")
    return chosen


#: Arrays that measure the machine, not the mathematics (wall-clock seconds per
#: iteration): left out of the comparison, since no two runs share them.
MEASUREMENTS = cache.MEASUREMENTS


def final_rows(record: dict) -> dict[str, np.ndarray]:
    """The last row of every float array of a run (its final values)."""
    return {k: np.atleast_1d(np.asarray(v)[-1] if np.ndim(v) else np.asarray(v)).astype(float)
            for k, v in record.items() if np.asarray(v).dtype.kind == "f"}


def compare_entry(new: dict, old: dict) -> tuple[str, float, bool]:
    """``(kind, largest relative difference of the final values, diverged on one side)``,
    ``kind`` one of ``identical``, ``within 1e-12``, ``drifted``; the
    :data:`MEASUREMENTS` are left out."""
    new = {k: v for k, v in new.items() if k not in MEASUREMENTS}
    old = {k: v for k, v in old.items() if k not in MEASUREMENTS}
    if cache._digest(new) == cache._digest(old):
        return "identical", 0.0, False
    if cache._reproduces(new, old):
        return "within 1e-12", 0.0, False
    worst, one_sided = 0.0, False
    a_rows, b_rows = final_rows(new), final_rows(old)
    for key in sorted(set(a_rows) & set(b_rows)):
        a, b = a_rows[key], b_rows[key]
        if a.shape != b.shape:
            one_sided = True
            continue
        fa, fb = np.isfinite(a), np.isfinite(b)
        one_sided |= bool((fa != fb).any())
        both = fa & fb
        if both.any():
            rel = np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-300)
            worst = max(worst, float(rel.max()))
    return "drifted", worst, one_sided


def compare_claims(new_file: Path, old_file: Path) -> dict[str, dict]:
    """Per claim: the committed and recomputed verdicts, whether they agree, and whether
    the centre of the recomputed interval lies in the committed one."""
    new = read_claims(new_file) if new_file.is_file() else {}
    old = read_claims(old_file) if old_file.is_file() else {}
    out = {}
    for cid in sorted(set(new) | set(old)):
        a, b = new.get(cid), old.get(cid)
        row = {"committed": b["verdict"] if b else None, "now": a["verdict"] if a else None}
        row["same_verdict"] = bool(a and b and a["verdict"] == b["verdict"])
        if a and b and "interval" in a and "interval" in b:
            lo, hi = map(float, b["interval"])
            centre = float(np.mean([float(v) for v in a["interval"]]))
            row["centre_inside"] = bool(lo <= centre <= hi) if np.isfinite(centre) else False
        out[cid] = row
    return out


def run_page(page: str, scale: str, timeout: float | None) -> tuple[int, float, str]:
    """Recompute one page into ``OUT/<page>/``; ``(return code, seconds, stderr tail)``."""
    work = OUT / page
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("BISLS_WRITE_BOOK", "BISLS_PLAN")}
    env.update(BISLS_RESULTS=str(work / "results"), BISLS_FIGURES=str(work / "figures"),
               BISLS_CACHE_LOG=str(work / "entries.log"), BISLS_BOOK_SCALE=scale,
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.setdefault("BISLS_EXECUTOR", "process:2")
    cmd = run_notebooks.papermill_command(ROOT / "notebooks" / f"{page}.ipynb",
                                          work / f"{page}.ipynb", {"recompute": True}, env)
    t0 = time.perf_counter()
    proc = run_notebooks.CHILDREN.start(cmd, env)  # its own session: a signal ends its tree
    if proc is None:
        return 128 + signal.SIGTERM, 0.0, "not started: stopping"
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        run_notebooks.stop_trees([proc.pid], signal.SIGTERM)
        _, err = proc.communicate()
        err = f"{err or ''}\nstopped after {timeout} s (--timeout)"
    finally:
        run_notebooks.CHILDREN.finished(proc)
    return proc.returncode, time.perf_counter() - t0, (err or "")[-3000:]


def compare_page(page: str, scale: str) -> dict:
    """The comparison of a recomputed page with the committed book."""
    work = OUT / page
    log = work / "entries.log"
    paths = sorted(set(log.read_text().split())) if log.is_file() else []
    counts = {"identical": 0, "within 1e-12": 0, "drifted": 0, "not committed": 0}
    rels, one_sided = [], 0
    for text in paths:
        path = Path(text)
        folder, key = path.parent.name, path.stem
        committed = cache.committed_results_dir() / scale / folder / path.name
        new = cache._read_entry(path, key)
        old = cache._read_entry(committed, key) if committed.is_file() else None
        if new is None or old is None:
            counts["not committed"] += 1
            continue
        kind, rel, diverged = compare_entry(new, old)
        counts[kind] += 1
        one_sided += diverged
        if kind == "drifted":
            rels.append(rel)
    claims = compare_claims(work / "results" / scale / "claims" / f"{page}.json",
                            cache.committed_results_dir() / scale / "claims" / f"{page}.json")
    return {"entries": len(paths), **counts,
            "largest_rel_diff": max(rels) if rels else 0.0,
            "median_rel_diff_of_drifted": float(np.median(rels)) if rels else 0.0,
            "diverged_on_one_machine": one_sided, "claims": claims}


def line(page: str, row: dict) -> str:
    claims = row.get("claims", {})
    same = sum(c["same_verdict"] for c in claims.values())
    inside = sum(c.get("centre_inside", False) for c in claims.values())
    with_interval = sum("centre_inside" in c for c in claims.values())
    return (f"{page:<34} {row['entries']:>4} entries: {row['identical']} identical, "
            f"{row['within 1e-12']} within 1e-12, {row['drifted']} drifted "
            f"(largest {row['largest_rel_diff']:.2g}), {row['not committed']} not committed; "
            f"claims: {same}/{len(claims)} same verdict, {inside}/{with_interval} inside")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pages", nargs="*", help="page names, or 'all' (default: the sample)")
    ap.add_argument("--save", action="store_true",
                    help="also write the report to results/<scale>/reproduce.json")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per page")
    ap.add_argument("--compare-only", action="store_true",
                    help="compare the pages recomputed last time (.scratch/reproduce/), "
                         "recompute nothing")
    args = ap.parse_args(argv)
    chosen = pages(args.pages)
    run_notebooks.install_signal_handlers()  # SIGTERM/SIGINT end papermill, kernel, workers
    scale = book_scale()
    report = {"scale": scale, "cpu": timed.cpu_model(), "cores": os.cpu_count(),
              "date": time.strftime("%Y-%m-%d"), "pages": {}}
    failed = []
    for page in chosen:
        if args.compare_only:
            rc, seconds, err = (0, float("nan"), "") if (OUT / page).is_dir() else (
                1, 0.0, f"not recomputed yet: no {OUT / page}")
        else:
            rc, seconds, err = run_page(page, scale, args.timeout)
        if rc != 0:
            failed.append(page)
            print(f"{page}: FAILED\n{err}", file=sys.stderr)
            continue
        row = {"seconds": None if seconds != seconds else round(seconds, 1),
               **compare_page(page, scale)}
        report["pages"][page] = row
        print(line(page, row), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1, sort_keys=True) + "\n"
    (OUT / "report.json").write_text(text)
    if args.save and not failed:
        target = cache.committed_results_dir() / scale / "reproduce.json"
        target.write_text(text)
        print(f"report saved to {target}")
    print(f"report: {OUT / 'report.json'} ({report['cpu']})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
