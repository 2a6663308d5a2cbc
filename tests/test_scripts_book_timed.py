"""scripts/book.py refuses a scale without results before anything is rewritten, and
scripts/timed.py records the stage timings of ``make test`` and commits only measured
ones."""

from __future__ import annotations

from _scripts import load_script
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    return load_script(name, f"{name}_under_test")


book = _script("book")
timed = _script("timed")


# ------------------------------------------------------------------ book: ready?
def test_a_scale_without_claims_is_refused_with_the_command_to_run(tmp_path):
    why = book.check_ready("paper", tmp_path)
    assert "make paper" in why and "make book SCALE=paper" in why and "claim" in why
    assert "make results SCALE=smoke" in book.check_ready("smoke", tmp_path)
    assert "must be one of" in book.check_ready("huge", tmp_path)
    assert book.check_ready("cpu", tmp_path) is None  # the committed scale
    (tmp_path / "paper" / "claims").mkdir(parents=True)
    assert book.check_ready("paper", tmp_path) is not None  # an empty folder is no result
    (tmp_path / "paper" / "claims" / "fig04_quadratics.json").write_text("{}")
    assert book.check_ready("paper", tmp_path) is None


def test_check_ready_exits_non_zero_and_writes_nothing(tmp_path):
    pages = (ROOT / "book" / "scorecard.md", ROOT / "book" / "scales.md")
    tracked = {p: p.read_bytes() for p in pages}
    env = dict(os.environ, BISLS_BOOK_SCALE="paper", BISLS_RESULTS=str(tmp_path))
    proc = subprocess.run([sys.executable, "scripts/book.py", "--check-ready"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 1 and "make paper" in proc.stderr
    assert {p: p.read_bytes() for p in tracked} == tracked
    ok = subprocess.run([sys.executable, "scripts/book.py", "--check-ready"], cwd=ROOT,
                        env=dict(env, BISLS_BOOK_SCALE="cpu"), capture_output=True, timeout=60,
                        check=False)
    assert ok.returncode == 0


@pytest.mark.parametrize("target", ["book", "book-check"])
def test_the_book_targets_check_first(target):
    """The check is the first line of the recipe: scorecard.py has not run when it fails."""
    make = (ROOT / "Makefile").read_text()
    recipe = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", make, flags=re.MULTILINE)[1]
    first = recipe.splitlines()[0].strip()
    assert first == "$(BIN)/python scripts/book.py --check-ready"
    assert "scorecard.py" in recipe


# ------------------------------------------------------------------ timed
def test_cpu_model_reads_the_first_model_name(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n\nprocessor\t: 1\n"
                    "model name\t: Other\n")
    assert timed.cpu_model(info) == "Some CPU @ 2.0GHz"
    assert timed.cpu_model(tmp_path / "missing") == "unknown"


def test_stages_are_recorded_and_only_a_measured_successful_record_is_committed(tmp_path):
    record = tmp_path / ".scratch" / "timings.json"
    committed = tmp_path / "results" / "make_test.json"
    assert "make test" in timed.commit(record, committed)  # nothing measured: nothing written
    assert not committed.exists()
    timed.record_stage(record, "pytest", 61.23, 0)
    data = timed.record_stage(record, "nbval", 120.0, 2)
    assert data["stages"] == {"pytest": {"seconds": 61.2, "exit": 0},
                              "nbval": {"seconds": 120.0, "exit": 2}}
    assert "failed" in timed.commit(record, committed) and not committed.exists()
    timed.record_stage(record, "nbval", 118.0, 0)
    assert timed.commit(record, committed) is None
    written = json.loads(committed.read_text())
    assert written == json.loads(record.read_text()) and list(written) == sorted(written)
    assert set(written) == {"stages", "date", "cpu", "cores"}
    assert sorted(p.name for p in committed.parent.iterdir()) == ["make_test.json"]


def test_timed_runs_the_command_and_records_it(tmp_path, monkeypatch):
    monkeypatch.setattr(timed, "SCRATCH", tmp_path)
    monkeypatch.setattr(timed, "TEXT", tmp_path / "timings.txt")
    monkeypatch.setattr(timed, "RECORD", tmp_path / "timings.json")
    assert timed.main(["unit", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert "unit" in (tmp_path / "timings.txt").read_text()
    assert json.loads((tmp_path / "timings.json").read_text())["stages"]["unit"]["exit"] == 3
