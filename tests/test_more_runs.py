"""More runs where a verdict is undecided (issue 25, item 5): the rule, the decision file
that pages read, and that the committed records rest on the runs it decided."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bisls_core import registry
from bisls_core.records import ClaimRecordError, decided_runs, read_claims

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("verdict, seconds, runs, expected", [
    ("inconclusive", 2.0, 5, registry.MORE_RUNS_CHEAP),      # cheap: 20
    ("inconclusive", 59.9, 5, registry.MORE_RUNS_CHEAP),
    ("inconclusive", 60.0, 5, registry.MORE_RUNS),            # a minute or more: 10
    ("inconclusive", 600.0, 10, None),                        # already there: once
    ("inconclusive", 2.0, 20, None),
    ("held", 2.0, 5, None), ("not held", 2.0, 5, None), ("partly", 2.0, 5, None),
])
def test_rule(verdict, seconds, runs, expected):
    assert registry.more_runs(verdict, seconds, runs) == expected


@pytest.mark.parametrize("verdict, seconds", [("undecided", 1.0), ("held", -1.0),
                                              ("held", float("nan")), ("held", "1")])
def test_rule_refuses_bad_input(verdict, seconds):
    with pytest.raises(ValueError):
        registry.more_runs(verdict, seconds, 5)


def _decision(tmp_path: Path, pages: dict) -> None:
    path = tmp_path / "cpu" / "more_runs.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"rule": registry.MORE_RUNS_RULE, "pages": pages}))


def test_pages_read_only_applied_decisions(tmp_path, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    assert decided_runs("fig04_quadratics", "cpu", None) is None  # no decision file
    _decision(tmp_path, {"fig04_quadratics": {"runs": 20, "applied": True, "claims": ["a"]},
                         "fig07_bisls_vs_tuned": {"runs": 20, "applied": False, "claims": ["b"]}})
    assert decided_runs("fig04_quadratics", "cpu", None) == 20
    assert decided_runs("fig04_quadratics", "cpu", 3) == 3          # the reader's choice wins
    assert decided_runs("fig07_bisls_vs_tuned", "cpu", None) is None  # decided, not run yet
    assert decided_runs("fig05_w8a_logistic", "cpu", None) is None    # not decided
    assert decided_runs("fig04_quadratics", "paper", None) is None    # another scale


@pytest.mark.parametrize("text", ["{", '{"no pages": 1}', '{"pages": []}',
                                  '{"pages": {"fig04_quadratics": {"applied": true, "runs": 0}}}'])
def test_a_broken_decision_is_an_error(tmp_path, monkeypatch, text):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path))
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "more_runs.json").write_text(text)
    with pytest.raises(ClaimRecordError, match="more_runs.json"):
        decided_runs("fig04_quadratics", "cpu", None)


def _committed_decision() -> dict:
    path = ROOT / "results" / "cpu" / "more_runs.json"
    if not path.exists():
        pytest.skip("no decision of more runs committed at the cpu scale")
    return json.loads(path.read_text(encoding="utf-8"))


def test_committed_decision_follows_the_rule():
    data = _committed_decision()
    assert data["rule"] == registry.MORE_RUNS_RULE
    for page, entry in data["pages"].items():
        assert entry["runs"] == registry.more_runs("inconclusive", entry["seconds_per_run"],
                                                   entry["runs_before"]), page


def test_applied_pages_rest_on_their_decided_runs():
    """Every claim of a page whose extra runs were applied rests on that many runs (a part
    counted over seeds where both runs diverged may rest on fewer: never on more)."""
    for page, entry in _committed_decision()["pages"].items():
        if not entry["applied"]:
            continue
        claims = read_claims(ROOT / "results" / "cpu" / "claims" / f"{page}.json")
        for cid in entry["claims"]:
            parts = claims[cid].get("parts") or {"": claims[cid]}
            runs = [p["runs"] for p in parts.values() if p.get("runs") is not None]
            assert runs and max(runs) == entry["runs"], (page, cid, runs)
