"""Claim records carry the interval their verdict rests on (issue 16, item 3)."""

import json

import numpy as np
import pytest

from bisls_core import experiments as E
from bisls_core import verdicts as V

pytestmark = pytest.mark.usefixtures("toy_claims")  # record_claim refuses unregistered ids


def test_record_claim_stores_runs_interval_and_statistic(tmp_path, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    iv = V.paired_difference([1.0, 2.0, 3.0], [2.0, 3.5, 3.9], "final loss A - B")
    verdict = V.decide(iv, claim="below")
    E.record_claim("nb", "nb-1", scale="smoke", claim="c", paper="p", ours="o",
                   verdict=verdict, interval=iv)
    rec = json.loads((tmp_path / "smoke" / "claims" / "nb.json").read_text())["nb-1"]
    assert rec["runs"] == 3 and rec["statistic"] == "mean final loss A - B"
    low, high = rec["interval"]
    assert low < np.mean([-1.0, -1.5, -0.9]) < high
    assert rec["verdict"] == verdict


def test_record_claim_accepts_inconclusive_and_rejects_a_bad_interval(tmp_path, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    args = dict(claim="c", paper="p", ours="o", scale="smoke")
    E.record_claim("nb", "nb-2", verdict="inconclusive", why="1 run: no interval", **args)
    rec = json.loads((tmp_path / "smoke" / "claims" / "nb.json").read_text())["nb-2"]
    assert rec["verdict"] == "inconclusive" and "interval" not in rec
    with pytest.raises(TypeError, match="interval"):
        E.record_claim("nb", "nb-3", verdict="held", interval=[0.0, 1.0], **args)
    with pytest.raises(ValueError, match="verdict"):
        E.record_claim("nb", "nb-3", verdict="maybe", **args)


def test_record_claim_keeps_a_record_that_differs_only_by_round_off(tmp_path, monkeypatch):
    """Another CPU can change the last bits of an interval computed from the same stored
    arrays: the committed record stays byte for byte; a real change is written."""
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    path = tmp_path / "smoke" / "claims" / "nb.json"
    args = dict(claim="c", paper="p", ours="o", scale="smoke", verdict="held")

    def record(low, high, runs=5):
        E.record_claim("nb", "nb-1", interval=V.Interval("slope", low, high, runs), **args)
        return path.read_bytes()

    first = record(-2.626288294464019, -1.5848419060703955)
    assert record(-2.6262882944640187, -1.584841906070396) == first
    assert json.loads(first)["nb-1"]["interval"] == [-2.626288294464019, -1.5848419060703955]
    assert record(-2.62, -1.5848419060703955) != first
    changed = path.read_bytes()
    assert record(-2.62, -1.5848419060703955, runs=6) != changed  # an integer is exact
