"""Plan mode (``make paper PLAN=1``): a page runs to its end on stand-in records, and one
stand-in per configuration shape is timed once and reused by the other pages and by later
plans (the files under ``.scratch/plan/stand-ins/``); the report gives the estimate per
page and in total, with the hardware it was measured on."""

from __future__ import annotations

import argparse
from _scripts import load_script
import json
import os
from pathlib import Path

import numpy as np
import pytest

from bisls_core import experiments as E
from bisls_core import grids as G

ROOT = Path(__file__).resolve().parents[1]
THM2 = "thm2_strongly_convex_rate"


_script = load_script


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    for name in ("BISLS_BOOK_SCALE", "BISLS_PLAN", "BISLS_PLAN_MEMO", "BISLS_PLAN_NOTEBOOK",
                 "BISLS_EXECUTOR", "BISLS_CACHE_LOG", "BISLS_PROGRESS", "BISLS_WRITE_BOOK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BISLS_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setattr(G, "_PLAN_MEMO", {})  # each test starts with an empty process memo
    monkeypatch.setattr(G, "_PLAN_WARM", set())
    E._ENV_EXECUTORS.clear()


# ----------------------------------------------------------------------- a toy runner
CALLS: list[tuple[int, int]] = []


def runner(config, *, seed, device):
    """One row per iteration (``loss``), one evaluation at the end, a scalar."""
    CALLS.append((config["K"], seed))
    K = config["K"]
    return {"loss": np.arange(K, dtype=float) * config["lr"] + seed,
            "eval_at": np.array([K]), "final": np.float64(K)}


runner.cache_version = "1"


def _grid(configs, name="toy", n_runs=2, seed=0):
    return E.run_grid(runner, configs, name=name, scale="paper", n_runs=n_runs, seed=seed,
                      progress=False)


def _plan(tmp_path, monkeypatch, page: str) -> Path:
    plan = tmp_path / "plan" / f"{page}.jsonl"
    monkeypatch.setenv("BISLS_PLAN", str(plan))
    monkeypatch.setenv("BISLS_PLAN_NOTEBOOK", page)
    return plan


def _lines(plan: Path) -> list[dict]:
    return [json.loads(x) for x in plan.read_text().splitlines()]


# ----------------------------------------------------------------------- the memo
def test_one_stand_in_per_shape_any_seed_any_horizon(tmp_path, monkeypatch):
    CALLS.clear()
    memo = tmp_path / "memo"
    rec, timing = G._stand_in(runner, {"lr": 1.0, "K": 50}, 0, "cpu", memo)
    k1, k2 = E.PLAN_ITERATIONS
    assert CALLS == [(k1, 0), (k1, 0), (k2, 0)]  # one untimed warm-up, then the two timed
    assert rec["loss"].shape == (50,) and rec["final"] == k2 and timing["memo"] == "timed"
    assert len(list(memo.glob("*.npz"))) == 1
    again, same = G._stand_in(runner, {"K": 80, "lr": 1.0}, 7, "cpu", memo)  # seed, K differ
    assert len(CALLS) == 3 and again["loss"].shape == (80,) and same is timing
    G._stand_in(runner, {"lr": 2.0, "K": 50}, 0, "cpu", memo)  # another shape: timed, no
    assert CALLS[3:] == [(k1, 0), (k2, 0)]  # warm-up (same runner and problem)
    assert len(list(memo.glob("*.npz"))) == 2


def test_another_process_reads_the_stand_in_file(tmp_path, monkeypatch):
    CALLS.clear()
    memo = tmp_path / "memo"
    first, timing = G._stand_in(runner, {"lr": 1.0, "K": 50}, 0, "cpu", memo)
    monkeypatch.setattr(G, "_PLAN_MEMO", {})  # a new page: a new kernel, an empty memo
    monkeypatch.setattr(G, "_PLAN_WARM", set())
    CALLS.clear()
    second, reused = G._stand_in(runner, {"lr": 1.0, "K": 60}, 3, "cpu", memo)
    assert CALLS == [] and reused["memo"] == "reused"
    assert {k: v for k, v in reused.items() if k != "memo"} == \
        {k: v for k, v in timing.items() if k != "memo"}
    assert second["loss"].shape == (60,)
    np.testing.assert_array_equal(second["loss"][:50], first["loss"])
    assert set(second) == set(first) and second["final"] == first["final"]


def test_the_key_holds_the_hardware_and_a_damaged_file_is_timed_anew(tmp_path, monkeypatch):
    memo = tmp_path / "memo"
    G._stand_in(runner, {"lr": 1.0, "K": 50}, 0, "cpu", memo)
    monkeypatch.setattr(G, "_PLAN_MEMO", {})
    monkeypatch.setattr(G, "_hardware", lambda device: "CPU another machine")
    CALLS.clear()
    _, timing = G._stand_in(runner, {"lr": 1.0, "K": 50}, 0, "cpu", memo)
    assert len(CALLS) == 2 and timing["hardware"] == "CPU another machine"
    for path in memo.glob("*.npz"):
        path.write_bytes(b"not an npz")
    monkeypatch.setattr(G, "_PLAN_MEMO", {})
    CALLS.clear()
    _, timing = G._stand_in(runner, {"lr": 1.0, "K": 50}, 0, "cpu", memo)
    assert len(CALLS) == 2 and timing["memo"] == "timed"


def test_memo_folder_beside_the_plan_or_off(tmp_path, monkeypatch):
    plan = tmp_path / "plan" / "a.jsonl"
    assert G._memo_dir(plan) == tmp_path / "plan" / "stand-ins"
    monkeypatch.setenv("BISLS_PLAN_MEMO", str(tmp_path / "elsewhere"))
    assert G._memo_dir(plan) == tmp_path / "elsewhere"
    monkeypatch.setenv("BISLS_PLAN_MEMO", "off")
    assert G._memo_dir(plan) is None
    monkeypatch.setenv("BISLS_PLAN_MEMO", str(ROOT / "results" / "stand-ins"))
    with pytest.raises(ValueError, match="results/"):
        G._memo_dir(plan)


def test_pages_share_stand_ins_and_the_report_says_so(tmp_path, monkeypatch):
    """Two pages (two kernels) with one configuration in common, then a rerun of the plan:
    each shape is timed once; the report gives each page's estimate and hardware."""
    CALLS.clear()
    a = _plan(tmp_path, monkeypatch, "page_a")
    _grid({"x": {"lr": 1.0, "K": 100}, "y": {"lr": 2.0, "K": 100}}, name="shared")
    timed = len(CALLS)
    monkeypatch.setattr(G, "_PLAN_MEMO", {})
    b = _plan(tmp_path, monkeypatch, "page_b")
    _grid({"x again": {"lr": 1.0, "K": 400}}, name="other", seed=1000)  # a tuning grid, say
    assert len(CALLS) == timed  # page b timed nothing
    lines = _lines(a) + _lines(b)
    assert {e["memo"] for e in _lines(b)} == {"reused"}
    assert len({e["shape"] for e in lines}) == 2
    report = _script("check_book_scale").plan_report([a, b])
    rows = {ln.split()[0]: ln for ln in report.splitlines() if ln.startswith("page_")}
    assert rows["page_a"].split()[1:4] == ["4", "0", "400"] and rows["page_a"].endswith("[1]")
    assert rows["page_b"].split()[1:4] == ["2", "0", "800"] and rows["page_b"].endswith("[1]")
    assert "total: 2 pages, 6 runs, 1,200 iterations" in report
    assert "one after the other, measured on [1]" in report
    assert "[1] estimate of 6 runs" in report and "measured on CPU" in report
    assert "stand-ins: 2 configuration shapes, 2 timed by this plan, 0 read" in report
    # a rerun of both pages (new kernels): every stand-in comes from the files
    monkeypatch.setattr(G, "_PLAN_MEMO", {})
    a.unlink()
    _plan(tmp_path, monkeypatch, "page_a")
    _grid({"x": {"lr": 1.0, "K": 100}, "y": {"lr": 2.0, "K": 100}}, name="shared")
    assert len(CALLS) == timed
    report = _script("check_book_scale").plan_report([a])
    assert "2 configuration shapes, 0 timed by this plan, 2 read from the stand-in files" in report


def test_report_names_each_machine_per_page(tmp_path):
    plan = tmp_path / "p.jsonl"
    base = {"scale": "paper", "cached": False, "K": 1000, "setup_s": 1.0,
            "per_iteration_s": 0.002, "memo": "timed", "timed_at": "2026-01-01 10:00"}
    rows = [dict(base, notebook="p", folder="f", key="k1", device="cpu", hardware="CPU A",
                 shape="s1"),
            dict(base, notebook="p", folder="f", key="k2", device="cuda", hardware="GPU B",
                 shape="s2")]
    plan.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = _script("check_book_scale").plan_report([plan], failed=["p"])
    page = next(ln for ln in report.splitlines() if ln.startswith("p "))
    assert page.split()[1:5] == ["2", "0", "2,000", "0.1"] and "[1],[2]" in page
    assert "(a cell raised)" in page
    assert "[1] estimate of 1 runs" in report and "measured on CPU A (cpu)" in report
    assert "[2] estimate of 1 runs" in report and "measured on GPU B (cuda)" in report
    assert "GPU time: unmeasured" not in report


# ----------------------------------------------------------------------- the page that failed
def test_thm2_page_runs_to_its_end_in_plan_mode_at_paper_scale(tmp_path, monkeypatch, capsys):
    """The Theorem 2 page raised in plan mode (its fit on stand-in records): it is run as
    ``make paper PLAN=1`` runs it (``run_notebooks.py results --scale paper --plan``, the
    scratch folder moved into ``tmp_path``), exits 0 and lists its runs."""
    rn = _script("run_notebooks")
    monkeypatch.setattr(rn, "SCRATCH", tmp_path)
    args = argparse.Namespace(mode="results", names=[THM2], scale="paper", device="cpu",
                              plan=True, jobs=1)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    jobs = rn.make_jobs(args, env)
    assert len(jobs) == 1
    name, _, rc, err = rn.papermill(*jobs[0])
    assert (name, rc) == (THM2, 0), err
    executed = json.loads((tmp_path / "plan" / f"{THM2}-paper.ipynb").read_text())
    outputs = [o for c in executed["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "plan mode: no fit" in text
    lines = _lines(tmp_path / "plan" / f"{THM2}.jsonl")
    assert len(lines) == 5 and all(e["notebook"] == THM2 and e["K"] == 40000 for e in lines)
    assert {e["seed"] for e in lines} == set(range(5)) and len({e["shape"] for e in lines}) == 1
    assert rn.finish(args, jobs, []) == 0
    report = capsys.readouterr().out
    assert f"{THM2} " in report and "measured on CPU" in report and "total: 1 pages, 5 runs" in report
    assert (tmp_path / "plan" / "stand-ins").is_dir()
