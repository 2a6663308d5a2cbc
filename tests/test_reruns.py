"""A user's rerun never changes a committed file: two notebooks rerun with papermill,
at another scale and at the book's scale, both with ``recompute True``, leave
``git status`` as it was (and the committed cache entries untouched)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bisls_core import experiments as E

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("fig10_quadratic_trajectories", "thm2_strongly_convex_rate")  # the two cheapest to recompute
PAPERMILL = Path(sys.executable).parent / "papermill"


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain=v1", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs the git checkout")
def test_reruns_at_any_scale_leave_the_committed_files_unchanged(tmp_path):
    book = E.book_scale()
    other = "smoke" if book != "smoke" else "cpu"
    committed = {p: p.stat().st_mtime_ns for nb in NOTEBOOKS
                 for p in (ROOT / "results" / book / nb).glob("*.npz")}
    assert committed, f"no committed {book}-scale cache for {NOTEBOOKS}"
    scratch = [ROOT / ".scratch" / "figures" / other / f"{nb}.png" for nb in NOTEBOOKS]
    for figure in scratch:
        figure.unlink(missing_ok=True)
    before = _git_status()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISLS_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")

    def rerun(job: tuple[str, str]) -> subprocess.CompletedProcess:
        nb, scale = job
        cmd = [str(PAPERMILL), f"notebooks/{nb}.ipynb", str(tmp_path / f"{nb}-{scale}.ipynb"),
               "--cwd", "notebooks", "-k", "python3", "--no-progress-bar",
               "-p", "scale", scale, "-p", "recompute", "True"]
        return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)

    jobs = [(nb, scale) for scale in (other, book) for nb in NOTEBOOKS]
    with ThreadPoolExecutor(2) as pool:
        for (nb, scale), proc in zip(jobs, pool.map(rerun, jobs)):
            assert proc.returncode == 0, f"{nb} at {scale}: {proc.stderr[-3000:]}"
    assert _git_status() == before
    assert {p: p.stat().st_mtime_ns for p in committed} == committed  # not even rewritten
    for nb, figure in zip(NOTEBOOKS, scratch):  # the other scale's runs wrote where git ignores
        assert figure.is_file(), figure
        assert (ROOT / ".scratch" / "results" / other / "claims" / f"{nb}.json").is_file()
