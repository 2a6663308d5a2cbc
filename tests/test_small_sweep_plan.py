"""``scripts/sweep.py --dry-run`` prints how many runs it plans and how many of them
are in the cache already, computing none and contacting no cluster (issue 22)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts import sweep  # noqa: E402


def _dry_run(capsys, *argv: str) -> str:
    capsys.readouterr()
    sweep.main([*argv, "--dry-run"])
    out = capsys.readouterr().out
    assert out.startswith("dry run, nothing computed"), out
    return out


def _planned(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("planned "))


def _files(*globs: str) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for g in globs for p in ROOT.glob(g) if p.is_file()}


def test_a_committed_page_counts_its_runs_all_cached(capsys, monkeypatch):
    monkeypatch.delenv("BISLS_RESULTS", raising=False)
    monkeypatch.delenv("BISLS_WRITE_BOOK", raising=False)
    written = ("results/cpu/fig04_quadratics/*", "results/cpu/claims/fig04*", "figures/fig04*",
               "figures/*/fig04*", ".scratch/results/cpu/fig04_quadratics/*",
               ".scratch/results/cpu/claims/fig04*", ".scratch/figures/*/fig04*")
    before = _files(*written)
    out = _dry_run(capsys, "notebooks/fig04_quadratics.ipynb", "-p", "scale", "cpu")
    # the cpu preset: 5 methods x the page's runs (5, or what the scorecard's rule of more
    # runs decided for it), every one in the committed cache: the page ran to its end (from
    # the cache, in plan mode) and wrote no claim, figure or entry
    from bisls_core.records import decided_runs

    n = 5 * (decided_runs("fig04_quadratics", "cpu", None) or 5)
    assert _planned(out) == (f"planned {n:6d} runs in 1 grid (cache folder cpu/fig04_quadratics), "
                             f"{n} in the cache, 0 to compute")
    assert _files(*written) == before


def test_missing_runs_are_counted_and_nothing_is_computed_or_contacted(capsys, monkeypatch,
                                                                       tmp_path):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    monkeypatch.setenv("BISLS_EXECUTOR", "dask:tcp://HOST:8786")  # never contacted
    out = _dry_run(capsys, "notebooks/thm1_convex_rate.ipynb", "--executor", "dask",
                   "--scheduler", "tcp://HOST:8786", "-p", "scale", "paper")
    line = _planned(out)
    assert re.match(r"planned    at least 5 runs in 1 grid "
                    r"\(cache folder paper/thm1_convex_rate\), 0 in the cache, 5 to compute; ",
                    line), line
    assert "--scale paper --plan" in line  # where the full, timed plan comes from
    assert not any(tmp_path.rglob("*")), "a dry run wrote into the cache"
    assert os.environ["BISLS_EXECUTOR"] == "dask:tcp://HOST:8786"  # restored
    assert "BISLS_PLAN" not in os.environ


def test_a_grid_counts_its_cached_runs(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    out = _dry_run(capsys, "--grid", "scripts.sweep:demo_grid", "--n-runs", "8", "--scale", "cpu")
    assert "runs       8 (1 x 8 seeds from 0; 0 in the cache, 8 to compute)" in out
    out = _dry_run(capsys, "--grid", "scripts.sweep:demo_grid", "--n-runs", "8", "--scale", "cpu",
                   "--recompute")
    assert "runs       8 (1 x 8 seeds from 0; none reused (--recompute))" in out
