"""scripts/reproduce.py: how a recomputed entry and claim are compared with the book."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import reproduce  # noqa: E402


def test_entries_are_identical_within_round_off_or_drifted():
    old = {"loss": np.array([3.0, 2.0, 1.0]), "n": np.arange(3)}
    assert reproduce.compare_entry(dict(old), old) == ("identical", 0.0, False)
    timed = {**old, "time": np.array([0.1, 0.2, 0.3])}  # the machine's seconds: not compared
    assert reproduce.compare_entry({**timed, "time": timed["time"] * 2}, timed)[0] == "identical"
    near = {"loss": old["loss"] * (1 + 1e-14), "n": np.arange(3)}
    assert reproduce.compare_entry(near, old)[0] == "within 1e-12"
    far = {"loss": np.array([3.0, 2.0, 1.1]), "n": np.arange(3)}
    kind, rel, diverged = reproduce.compare_entry(far, old)
    assert kind == "drifted" and rel == pytest.approx(0.1) and not diverged
    gone = {"loss": np.array([3.0, 2.0, np.inf]), "n": np.arange(3)}
    assert reproduce.compare_entry(gone, old)[2]  # diverged on one machine only


def test_claims_same_verdict_and_centre_inside(tmp_path):
    rec = {"claim": "c", "paper": "p", "ours": "o", "verdict": "held", "scale": "cpu",
           "why": "", "notebook": "page", "runs": 5, "interval": [0.1, 0.3], "statistic": "s"}
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "page.json").write_text(json.dumps({"a": rec, "b": rec}))
    moved = {**rec, "interval": [0.25, 0.45], "verdict": "inconclusive"}
    (tmp_path / "new" / "page.json").write_text(json.dumps({"a": rec, "b": moved}))
    out = reproduce.compare_claims(tmp_path / "new" / "page.json", tmp_path / "old" / "page.json")
    assert out["a"] == {"committed": "held", "now": "held", "same_verdict": True,
                        "centre_inside": True}
    assert out["b"]["same_verdict"] is False and out["b"]["centre_inside"] is False


def test_pages_are_checked():
    assert reproduce.pages([]) == list(reproduce.SAMPLE)
    assert "fig04_quadratics" in reproduce.pages(["all"])
    with pytest.raises(SystemExit, match="unknown page"):
        reproduce.pages(["fig99"])
