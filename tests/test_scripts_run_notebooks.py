"""scripts/run_notebooks.py without running a notebook: the jobs' environments (who may
write the book, the default executor, the progress files), the progress lines, the
comparison that keeps a re-executed page whose figures are the same, and the timings
of ``make results``."""

from __future__ import annotations

import argparse
import base64
from _scripts import load_script
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    return load_script(name, f"{name}_under_test")


rn = _script("run_notebooks")


def _notebook(cells: list[dict] | None = None) -> dict:
    return {"cells": cells or [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def pages(tmp_path, monkeypatch):
    """Two stand-in pages in a folder of their own, every scratch path under tmp_path."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("a_page", "b_page"):
        (folder / f"{name}.ipynb").write_text(json.dumps(_notebook()))
    monkeypatch.setenv("BISLS_NOTEBOOKS_DIR", str(folder))
    monkeypatch.setattr(rn, "SCRATCH", tmp_path / ".scratch")
    monkeypatch.setattr(rn, "PROGRESS", tmp_path / ".scratch" / "progress")
    monkeypatch.setattr(rn.check_book_scale, "SMOKE", tmp_path / ".scratch" / "smoke")
    return folder


def _jobs(argv: list[str], env: dict) -> list[tuple]:
    return rn.make_jobs(rn.parse_args(argv), env)


# ------------------------------------------------------------------ jobs
def test_results_jobs_update_the_book_with_two_workers_and_a_progress_file(pages, tmp_path):
    stale = tmp_path / ".scratch" / "progress" / "a_page.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text('{"old": 1}\n')
    for scale in ("cpu", "paper"):
        jobs = _jobs(["results", "--scale", scale], {"PATH": "/bin"})
        assert [nb.stem for nb, *_ in jobs] == ["a_page", "b_page"]
        for nb, dst, params, env in jobs:
            assert env["BISLS_WRITE_BOOK"] == "1"
            assert env["BISLS_EXECUTOR"] == "process:2"
            assert env["BISLS_RESULTS"] == str(ROOT / "results")
            progress = tmp_path / ".scratch" / "progress" / f"{nb.stem}.jsonl"
            assert env["BISLS_PROGRESS"] == str(progress)
            assert params == {"scale": scale, "device": "auto"}
            assert dst.parent == tmp_path / ".scratch" / "results"
    assert not stale.exists(), "the progress file of an earlier run is deleted at the start"


def test_a_users_executor_is_kept():
    env = rn.results_env({"BISLS_EXECUTOR": "dask:tcp://host:8786"}, "cpu", "x")
    assert env["BISLS_EXECUTOR"] == "dask:tcp://host:8786"


def test_smoke_plan_and_smoke_scale_never_update_the_book(pages):
    exported = {"PATH": "/bin", "BISLS_WRITE_BOOK": "1"}  # even when the caller exported it
    readers = (["smoke"], ["results", "--scale", "cpu", "--plan"], ["results", "--scale", "smoke"])
    for argv in readers:
        for _, _, _, env in _jobs(argv, exported):
            assert "BISLS_WRITE_BOOK" not in env, argv
    plan = ["results", "--plan", "--scale", "paper"]
    for _, _, _, env in _jobs(["smoke"], exported) + _jobs(plan, exported):
        assert "BISLS_PROGRESS" not in env and "BISLS_EXECUTOR" not in env


def test_execute_jobs_run_into_a_scratch_copy_and_update_the_book(pages, tmp_path):
    for nb, dst, params, env in _jobs(["execute"], {"PATH": "/bin"}):
        assert nb.parent == pages and dst == tmp_path / ".scratch" / "execute" / nb.name
        assert params == {} and env["BISLS_WRITE_BOOK"] == "1" and "BISLS_PROGRESS" in env
        assert "BISLS_EXECUTOR" not in env  # the default executor is the results mode's


# ------------------------------------------------------------------ progress
def _entry(done, total, seconds, label="SGD", seed=0, name="toy"):
    return json.dumps({"name": name, "label": label, "seed": seed, "seconds": seconds,
                       "done": done, "total": total}) + "\n"


def test_progress_lines_and_estimate(tmp_path):
    path = tmp_path / "page.jsonl"
    path.write_text(_entry(1, 5, 2.0) + _entry(2, 5, 4.0, seed=1) + '{"name": "toy", "la')
    watcher = rn.ProgressWatcher([("page", path, 2)], interval=60)
    first = watcher.poll()
    assert first == [
        ("  page: SGD seed 0 2.0 s, 1/5 runs of toy, about 4 s left in this grid "
         "(estimate: 2.0 s/run x 4 runs / 2 workers)"),
        ("  page: SGD seed 1 4.0 s, 2/5 runs of toy, about 4 s left in this grid "
         "(estimate: 3.0 s/run x 3 runs / 2 workers)")]
    assert watcher.poll() == []  # the half-written line waits for its end
    with path.open("a") as fh:
        fh.write('bel": "SGD", "seed": 2, "seconds": 600.0, "done": 3, "total": 5}\n')
        fh.write(_entry(1, 2, 7200.0, label="Adam", name="other"))
    lines = watcher.poll()
    assert "3/5 runs of toy, about 3.4 min" in lines[0]
    assert "(estimate: 202.0 s/run x 2 runs" in lines[0]
    assert "Adam seed 0 7200.0 s, 1/2 runs of other, about 1.0 h left" in lines[1]
    path.write_text(path.read_text() + _entry(1, 3, 10.0) + _entry(3, 3, 1.0))  # a new grid
    lines = watcher.poll()
    assert "1/3 runs of toy" in lines[0]
    assert "(estimate: 10.0 s/run x 2 runs / 2 workers)" in lines[0]
    assert lines[1].endswith("3/3 runs of toy, grid done")


def test_the_watcher_prints_and_flushes(tmp_path):
    path = tmp_path / "page.jsonl"
    path.write_text(_entry(1, 1, 1.5))
    out = io.StringIO()
    watcher = rn.ProgressWatcher([("page", path, 1)], interval=0.05, out=out)
    watcher.start()
    watcher.stop()
    assert out.getvalue() == "  page: SGD seed 0 1.5 s, 1/1 runs of toy, grid done\n"


def test_executor_workers():
    assert [rn.executor_workers(s) for s in ("process:2", "process:8", "", "local",
                                             "dask:local:3", "dask:tcp://h:1", "nonsense")] == \
        [2, 8, 1, 1, 3, 1, 1]


# ------------------------------------------------------------------ same notebook
def _png(shift: int = 0) -> str:
    pixels = np.full((4, 5, 3), 100, dtype=np.uint8)
    pixels[1, 2, 0] += shift
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _page(png: str, text: str = "done", key: str = "image/png", papermill: bool = False) -> dict:
    figure = {"output_type": "display_data", "metadata": {},
              "data": {key: png, "text/plain": "<Figure size 5x4>"}}
    printed = {"output_type": "stream", "name": "stdout", "text": [text + "\n"]}
    cell = {"cell_type": "code", "execution_count": 1, "id": "c1", "source": "plot()",
            "metadata": {"papermill": {"duration": 1.0}} if papermill else {},
            "outputs": [figure, printed]}
    nb = _notebook([cell])
    if papermill:
        nb["metadata"]["papermill"] = {"start_time": "now"}
    return nb


def _write(path: Path, nb: dict) -> bytes:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path.read_bytes()


@pytest.mark.parametrize("key", rn.PNG_KEYS)
def test_a_figure_one_level_off_keeps_the_committed_page(tmp_path, key):
    committed, executed = tmp_path / "page.ipynb", tmp_path / "executed.ipynb"
    before = _write(committed, _page(_png(0), key=key))
    _write(executed, _page(_png(1), key=key, papermill=True))
    assert rn.install_executed(executed, committed) is False
    assert committed.read_bytes() == before


@pytest.mark.parametrize("change", ["text", "figure"])
def test_another_output_replaces_the_committed_page(tmp_path, change):
    committed, executed = tmp_path / "page.ipynb", tmp_path / "executed.ipynb"
    _write(committed, _page(_png(0)))
    new = _page(_png(0), text="other") if change == "text" else _page(_png(2))
    _write(executed, dict(new, metadata={"papermill": {"start_time": "now"}}))
    assert rn.install_executed(executed, committed) is True
    assert not executed.exists()
    assert json.loads(committed.read_text()) == new  # cleaned of papermill's metadata


def test_same_notebook_compares_output_by_output():
    old = _page(_png(0))
    assert rn.same_notebook(old, _page(_png(1)))
    assert not rn.same_notebook(old, _page(_png(0), key=rn.PNG_KEYS[1]))  # another kind
    fewer = _page(_png(0))
    fewer["cells"][0]["outputs"].pop()
    assert not rn.same_notebook(old, fewer)
    source = _page(_png(1))
    source["cells"][0]["source"] = "plot(2)"
    assert not rn.same_notebook(old, source)
    broken = _page("not base64 of a png")
    assert not rn.same_notebook(old, broken)


# ------------------------------------------------------------------ timings of make results
def _args(**kw) -> argparse.Namespace:
    base = {"mode": "results", "plan": False, "names": [], "scale": "cpu", "jobs": 2,
            "device": "auto"}
    return argparse.Namespace(**{**base, **kw})


def test_make_results_writes_its_timings_only_after_a_full_successful_run(tmp_path, monkeypatch):
    monkeypatch.delenv("BISLS_BOOK_SCALE", raising=False)
    jobs = [(Path(f"{n}.ipynb"), None, {}, {"BISLS_EXECUTOR": "process:2"}) for n in ("a", "b")]
    seconds = {"a": 12.5, "b": 30.0}
    for kw, failed in (({"plan": True}, []), ({"names": ["a"]}, []), ({"scale": "paper"}, []),
                       ({"scale": "smoke"}, []), ({"mode": "execute"}, []), ({}, ["b"])):
        assert rn.write_results_timings(_args(**kw), jobs, seconds, 44.4, failed, tmp_path) is None
    assert not any(tmp_path.rglob("*.json")), "nothing written for a partial or failed run"
    path = rn.write_results_timings(_args(), jobs, seconds, 44.44, [], tmp_path)
    assert path == tmp_path / "cpu" / "timings" / "make_results.json"
    data = json.loads(path.read_text())
    assert list(data) == sorted(data)
    assert data["seconds"] == 44.4 and data["executor"] == "process:2" and data["pages"] == seconds
    assert data["pages_ok"] == 2 and data["pages_failed"] == 0 and data["scale"] == "cpu"
    assert data["cores"] >= 1 and data["cpu"] and data["date"][:2] == "20"
    assert [p.name for p in path.parent.iterdir()] == ["make_results.json"]  # no temporary left


def test_results_under_another_reading_pass_it_to_each_page_and_write_no_timings(tmp_path, monkeypatch):
    """make readings: each page gets the reading as a parameter and its executed copy a
    name of its own; the timings of make results are not written; an unknown reading is
    refused before anything runs."""
    monkeypatch.setattr(rn, "SCRATCH", tmp_path)
    args = rn.parse_args(["results", "--reading", "as-before", "fig07_bisls_vs_tuned"])
    args.scale = "cpu"
    (nb, out, params, env), = rn.make_jobs(args, dict(os.environ))
    assert params["reading"] == "as-before" and out.name == "fig07_bisls_vs_tuned-cpu-as-before.ipynb"
    assert env["BISLS_WRITE_BOOK"] == "1"
    assert rn.write_results_timings(args, [(nb, out, params, env)], {}, 1.0, [],
                                    root=tmp_path) is None
    with pytest.raises(SystemExit):
        rn.parse_args(["results", "--reading", "p=0.1"])
    with pytest.raises(SystemExit):
        rn.parse_args(["execute", "--reading", "as-before"])
