"""The book's scale is one setting, end to end (cheap checks: seconds).

- every page's ``scale = None`` resolves to the book's scale (``$BISLS_BOOK_SCALE``), an
  explicit scale wins;
- the scorecard and the scales page read the claims and runs of the book's scale only;
- every figure file states its scale in its metadata, byte-reproducibly;
- plan mode lists the runs, returns stand-ins, and writes nothing into the cache, the
  claims or the figures; its report sums the runs and names the hardware it timed.

The whole path (every page executed at the book's scale ``smoke``, its figures and the
scorecard rendered from its claims) is checked by ``make smoke``
(``scripts/check_book_scale.py``).
"""

from __future__ import annotations

from _scripts import load_script
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bisls_core import experiments as E  # noqa: E402
from bisls_core import plotting, sweeps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_bad_parameters import SOURCES, _cells, _parameters  # noqa: E402


_script = load_script


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for name in ("BISLS_BOOK_SCALE", "BISLS_PLAN", "BISLS_EXECUTOR", "BISLS_CACHE_LOG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BISLS_FIGURES", str(tmp_path / "figures"))
    E._ENV_EXECUTORS.clear()


# ----------------------------------------------------------------------- None -> book scale
def test_none_is_the_book_scale_and_an_explicit_scale_wins(monkeypatch):
    assert sweeps.start(None, "cpu", None, 0, False)["scale"] == E.BOOK_SCALE == "cpu"
    monkeypatch.setenv("BISLS_BOOK_SCALE", "paper")
    assert sweeps.start(None, "cpu", None, 0, False)["scale"] == "paper"
    assert sweeps.start("smoke", "cpu", None, 0, False)["scale"] == "smoke"
    monkeypatch.setenv("BISLS_BOOK_SCALE", "huge")
    with pytest.raises(ValueError, match="BISLS_BOOK_SCALE"):
        sweeps.start(None, "cpu", None, 0, False)


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_page_defaults_to_the_book_scale(src, monkeypatch):
    """The parameters cell says ``scale = None`` and the setup cell rebinds ``scale`` to
    the book's scale, which the rest of the page uses."""
    assert _parameters(src)["scale"] is None
    monkeypatch.setenv("BISLS_BOOK_SCALE", "smoke")
    params_cell, setup_cell = _cells(src)
    namespace: dict = {}
    exec(params_cell, namespace)
    exec(setup_cell, namespace)
    assert namespace["scale"] == "smoke"


# ----------------------------------------------------------------------- scorecard
def _claims(root: Path, scale: str, verdict: str) -> None:
    folder = root / scale / "claims"
    folder.mkdir(parents=True)
    (folder / "fig04_quadratics.json").write_text(json.dumps({f"fig04-{scale}": {
        "claim": "c", "paper": "p", "ours": "o", "verdict": verdict, "scale": scale,
        "why": "", "notebook": "fig04_quadratics"}}))


def test_scorecard_reads_the_claims_of_the_book_scale_only(tmp_path, monkeypatch):
    card = _script("scorecard")
    for scale, verdict in (("smoke", "held"), ("cpu", "partly"), ("paper", "not held")):
        _claims(tmp_path / "results", scale, verdict)
    for scale in ("cpu", "paper", "smoke"):
        monkeypatch.setenv("BISLS_BOOK_SCALE", scale)
        found = card.collect()
        assert [cid for _, (_, claims) in found.items() for cid in claims] == [f"fig04-{scale}"]
        page = card.render(found)
        assert f"runs at the `{scale}` scale" in page and f"({scale} scale)" in page
        assert not [s for s in ("smoke", "cpu", "paper") if s != scale and f"({s} scale)" in page]
        scales = card.render_scales(card.collect_runs())
        assert f"one scale: `{scale}`" in scales and "BISLS_BOOK_SCALE" in scales
        assert "make book SCALE=paper" in scales
    card.main(["--out", str(tmp_path / "book"), "--allow-missing"])  # elsewhere than book/
    assert {p.name for p in (tmp_path / "book").iterdir()} == {
        "scorecard.md", "scales.md", "scorecard_summary.svg"}


# ----------------------------------------------------------------------- figures
def test_figures_state_their_scale_in_their_metadata(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1, 0, 1])
    paths = plotting.save(fig, "toy", scale="smoke")
    assert [plotting.figure_scale(p) for p in paths] == ["smoke", "smoke"]
    first = [p.read_bytes() for p in paths]
    plotting.save(fig, "toy", scale="smoke")
    assert [p.read_bytes() for p in paths] == first  # byte-reproducible
    plotting.save(fig, "toy", scale="paper")  # the same pixels at another scale: rewritten
    assert [plotting.figure_scale(p) for p in paths] == ["paper", "paper"]
    plt.close(fig)


# ----------------------------------------------------------------------- plan mode
def runner(config, *, seed, device):
    return {"loss": np.arange(config["K"], dtype=float) + seed, "final": np.float64(seed)}


runner.cache_version = "1"


def test_plan_mode_lists_runs_and_writes_nothing(tmp_path, monkeypatch, toy_claims):
    configs = {"A": {"method": "SGD", "K": 50}, "B": {"method": "Adam", "K": 80}}
    E.run_grid(runner, {"A": configs["A"]}, name="toy", scale="paper", n_runs=2, progress=False)
    cached = sorted((tmp_path / "results").rglob("*"))
    plan = tmp_path / "plan" / "toy.jsonl"
    monkeypatch.setenv("BISLS_PLAN", str(plan))
    monkeypatch.setenv("BISLS_PLAN_NOTEBOOK", "toy")
    grid = E.run_grid(runner, configs, name="toy", scale="paper", n_runs=3, progress=False)
    # stand-ins (seed 2 of A is missing too): short runs, stretched to the full runs' shapes
    assert grid["B"]["loss"].shape == (3, 80) and grid["A"]["loss"].shape == (3, 50)
    assert (grid["B"]["loss"][:, E.PLAN_ITERATIONS[1] - 1:] == E.PLAN_ITERATIONS[1] - 1).all()
    line = E.record_claim("toy", "toy-claim", claim="c", paper="p", ours="o", verdict="held",
                          scale="paper")
    assert line.startswith("claim toy-claim: held")
    fig, ax = plt.subplots()
    assert plotting.save(fig, "toy") == []
    plt.close(fig)
    assert sorted((tmp_path / "results").rglob("*")) == cached  # no entry, no claim
    assert not (tmp_path / "figures").exists() or not any((tmp_path / "figures").iterdir())
    entries = [json.loads(x) for x in plan.read_text().splitlines()]
    assert len(entries) == 6 and sum(not e["cached"] for e in entries) == 4
    assert {e["method"] for e in entries} == {"SGD", "Adam"} and {e["folder"] for e in entries} == {"toy"}
    todo = [e for e in entries if not e["cached"]]
    assert all(e["device"] == "cpu" and e["hardware"].startswith("CPU") for e in todo)
    report = _script("check_book_scale").plan_report([plan])
    assert "toy" in report and "4 runs" in report and f"{50 + 3 * 80:,} iterations" in report
    assert "GPU time: unmeasured" in report and "measured on CPU" in report


def test_plan_file_may_not_lie_in_results(monkeypatch):
    monkeypatch.setenv("BISLS_PLAN", str(ROOT / "results" / "plan.jsonl"))
    with pytest.raises(ValueError, match="results/"):
        E.plan_path()
