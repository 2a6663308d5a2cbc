"""More runs where a verdict is undecided, by the rule fixed in advance (issue 25).

    python scripts/more_runs.py                 # decide: which pages get more runs, and how many
    python scripts/more_runs.py --apply PAGE    # a page reads its decided number of runs (then
                                                # `make results PAGES=PAGE` computes them)

The rule is :data:`bisls_core.registry.MORE_RUNS_RULE`: a claim whose verdict after Holm's
adjustment is inconclusive gets 10 evaluation runs, 20 where one run of its page costs
under a minute on this machine; once. Deciding reads the book's claim records (after
``make notebooks``, which writes the adjustment) and times a page by the runs it reads:
each candidate page runs from the cache into ``.scratch/more_runs/`` with the cache log on,
and the median of the ``seconds`` its evaluation entries recorded is its cost per run.
The decision goes into ``results/<scale>/more_runs.json`` (the scorecard shows it), with the
estimated time of the extra runs. A claim decided once is never decided again; a page
reads its new number of runs (``bisls_core.records.decided_runs``) only once ``--apply``
marks it, so the book and CI never wait for runs that are not in the cache yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402

import run_notebooks  # noqa: E402
from bisls_core import registry  # noqa: E402
from bisls_core.records import read_claims, read_more_runs, write_more_runs  # noqa: E402
from bisls_core.scales import TUNING_SEED_OFFSET, book_scale  # noqa: E402

SCRATCH = ROOT / ".scratch" / "more_runs"


def candidates(scale: str) -> dict[str, list[tuple[str, dict]]]:
    """``page -> [(claim id, record)]`` of the paper's claims whose adjusted verdict is
    inconclusive."""
    out: dict[str, list[tuple[str, dict]]] = {}
    for path in sorted((ROOT / "results" / scale / "claims").glob("*.json")):
        for cid, rec in read_claims(path).items():
            verdict = rec.get("adjusted_verdict", rec["verdict"])
            if verdict == "inconclusive":
                out.setdefault(rec.get("notebook", path.stem), []).append((cid, rec))
    return out


def page_cost(page: str) -> tuple[float, int, int]:
    """``(median seconds per evaluation run, evaluation entries, evaluation seeds)`` of the
    runs ``page`` reads, from the cache log of one execution from the cache."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    log = SCRATCH / f"{page}.log"
    log.unlink(missing_ok=True)
    env = dict(run_notebooks.reader_env(dict(os.environ)), BISLS_CACHE_LOG=str(log))
    src = run_notebooks.notebook_dir() / f"{page}.ipynb"
    _, _, rc, err = run_notebooks.papermill(src, SCRATCH / f"{page}.ipynb", {}, env)
    if rc != 0:
        raise SystemExit(f"{page}: executing from the cache failed:\n{err}")
    seconds, seeds, entries = [], set(), set()
    for line in sorted(set(log.read_text(encoding="utf-8").split())):
        path = ROOT / "results" / Path(*Path(line).parts[-3:])  # <scale>/<folder>/<key>.npz
        if not path.exists():
            continue
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
        if meta["seed"] >= TUNING_SEED_OFFSET:  # a tuning run: not an evaluation run
            continue
        entries.add(line)
        seeds.add(meta["seed"])
        seconds.append(float(meta["seconds"]))
    if not seconds:
        raise SystemExit(f"{page}: no evaluation run found in its cache log {log}")
    return statistics.median(seconds), len(entries), len(seeds)


def decide(scale: str) -> dict:
    old = read_more_runs(scale)
    decided = {c for entry in (old or {}).get("pages", {}).values() for c in entry["claims"]}
    out = old or {"rule": registry.MORE_RUNS_RULE, "scale": scale, "pages": {}}
    for page, claims in candidates(scale).items():
        fresh = [(c, r) for c, r in claims if c not in decided]
        if not fresh:
            continue
        seconds, entries, seeds = page_cost(page)
        # every fresh claim is inconclusive after Holm and shares its page's runs and cost
        target = registry.more_runs("inconclusive", seconds, seeds)
        if not target:
            print(f"{page}: already at {seeds} runs; no more")
            continue
        extra = entries // seeds * (target - seeds)
        entry = {"claims": sorted(c for c, _ in fresh), "runs_before": seeds, "runs": target,
                 "seconds_per_run": round(seconds, 1), "extra_runs": extra,
                 "estimate_hours": round(extra * seconds / 3600, 2), "applied": False,
                 "decided": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "machine": platform.processor() or platform.machine()}
        out["pages"][page] = entry
        print(f"{page:34s} {', '.join(entry['claims'])}: {seeds} -> {target} runs "
              f"({seconds:.1f} s per run; {extra} more runs, about {entry['estimate_hours']} h "
              "one after the other)")
    write_more_runs(scale, out)
    return out


def apply(scale: str, pages: list[str]) -> None:
    data = read_more_runs(scale)
    if data is None:
        raise SystemExit(f"no decision at scale {scale!r}: run `python scripts/more_runs.py` first")
    for page in pages:
        if page not in data["pages"]:
            raise SystemExit(f"{page!r} got no more runs; decided pages: {sorted(data['pages'])}")
        data["pages"][page]["applied"] = True
        print(f"{page}: now runs {data['pages'][page]['runs']} seeds; next: "
              f"make results PAGES={page}")
    write_more_runs(scale, data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--apply", nargs="+", metavar="PAGE", default=None,
                    help="pages that now read their decided number of runs")
    args = ap.parse_args(argv)
    scale = book_scale()
    if scale == "smoke":
        ap.error("the book's scale is smoke: more runs are decided at the cpu or paper scale")
    if args.apply:
        apply(scale, args.apply)
    else:
        decide(scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
