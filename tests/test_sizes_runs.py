"""Sizes that cannot finish are refused up front; long runs get a (delayed) progress bar
(issue 22, part A)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bisls_core import _validate
from bisls_core.bilevel import make_config, run_bilevel
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel
from bisls_core.single_level import run_single_level
from bisls_core.sweeps import single_level as sweeps_single_level

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
GIB = 2**30
#: The configuration of Figure 4's notebook (notebooks/fig04_quadratics.py).
FIG04 = {"problem": "quadratic", "gamma_b0": 5.0, "keep_iterates": True, "method": "SPSB",
         "c": 0.5, "schedule": "inv_sqrt"}


@pytest.fixture(scope="module")
def det():
    return make_quadratic_bilevel(dim_x=4, dim_y=4, n=40)


@pytest.fixture
def four_gib(monkeypatch):
    """A machine with 4 GiB available, whatever this one has."""
    monkeypatch.setattr(_validate, "available_memory", lambda: 4 * GIB)


# --------------------------------------------------------------------------- memory
def test_bilevel_k_that_cannot_be_allocated_is_a_value_error_naming_k(det, four_gib):
    """K = 10**9 pre-allocated ~17 float64 arrays of length K (127 GiB): a bare
    MemoryError (or an exhausted machine) before; now a ValueError before any of them."""
    with pytest.raises(ValueError, match=r"K=1000000000.*1\d\d\.\d GiB.*only 4\.0 GiB") as err:
        run_bilevel(det, make_config("SGD", K=10**9, T=1, alpha=0.1, beta=0.1))
    assert "lower K" in str(err.value)


def test_bilevel_k_beyond_this_machine_is_refused_without_patching(det):
    # 5e9 * ~17 * 8 bytes: no machine has 680 GiB available (and K*T is below 10**10).
    with pytest.raises(ValueError, match=r"K=5000000000: the run would pre-allocate"):
        run_bilevel(det, make_config("SGD", K=5 * 10**9, T=1, alpha=0.1, beta=0.1))


def test_single_level_k_of_the_fig04_notebook_is_refused(four_gib):
    """``papermill notebooks/fig04_quadratics.ipynb ... -p K 1e9``: the notebook's sizes
    pass K = 1e9 (a float) to the runner, which hit a bare MemoryError."""
    presets = {"smoke": {"K": 100, "n_runs": 2}, "cpu": {"K": 2000, "n_runs": 5},
               "paper": {"K": 5000, "n_runs": 5}}  # the notebook's
    sizes = sweeps_single_level.sizes("smoke", presets, K=1e9, n_runs=1)
    with pytest.raises(ValueError, match=r"K=1000000000:.*iterates.*GiB.*only 4\.0 GiB"):
        run_single_level({**FIG04, "K": sizes["K"]}, seed=0, device="cpu")


def test_single_level_k_beyond_this_machine_is_refused_without_patching():
    with pytest.raises(ValueError, match=r"K=9000000000: the run would pre-allocate"):
        run_single_level({**FIG04, "K": 9 * 10**9}, seed=0, device="cpu")


def test_the_memory_check_names_what_is_available():
    assert _validate.available_memory() > 0
    _validate.check_memory("K", 10, 80, "one array")  # a small plan passes
    with pytest.raises(ValueError, match=r"K=3: the run would pre-allocate x, 8192\.0 GiB"):
        _validate.check_memory("K", 3, 8192 * GIB, "x")


def test_available_memory_without_psutil(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_psutil(name, *args, **kwargs):
        if name == "psutil":
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psutil)
    assert _validate.available_memory() > 0  # /proc/meminfo, or sysconf


# --------------------------------------------------------------------------- work
def test_t_that_cannot_finish_is_refused_naming_k_and_t():
    """T = 10**9 was accepted and ran with no output (10**11 lower steps)."""
    with pytest.raises(ValueError, match=r"K and T: .*K \* T = 100 \* 1000000000.*1e\+11"):
        make_config("BiSLS-SGD", K=100, T=10**9)
    make_config("BiSLS-SGD", K=10**4, T=10**6)  # 10**10: at the bound, accepted


def test_single_level_k_that_cannot_finish_is_refused():
    with pytest.raises(ValueError, match=r"K: the run would take K = 20000000000"):
        run_single_level({**FIG04, "K": 2 * 10**10}, seed=0, device="cpu")


def test_no_preset_or_notebook_size_is_refused():
    """Every K, T of the notebooks and of the sweeps' presets (paper scale included):
    the largest K times the largest T is far below the bound, and the largest record
    far below a GiB."""
    text = "\n".join(p.read_text() for p in [*ROOT.glob("notebooks/*.py"),
                                              *ROOT.glob("bisls_core/sweeps/*.py")])
    found = {name: [int(v) for v in re.findall(rf"[\"']?\b{name}[\"']?\s*[:=]\s*(\d+)\b", text)]
             for name in ("K", "T", "T_long")}
    assert max(found["K"]) >= 40000 and max(found["T_long"]) == 50  # the paper's scale is seen
    K, T = max(found["K"]), max(found["T"] + found["T_long"])
    assert K * T * 1000 < _validate.MAX_STEPS
    make_config("BiSLS-SGD", K=K, T=T)
    assert K * 30 * 8 < GIB


# --------------------------------------------------------------------------- progress
def _short_run(det, **kw):
    return run_bilevel(det, make_config("SGD", K=3, T=1, alpha=0.1, beta=0.1), **kw)


def test_short_runs_print_nothing(det, capfd, monkeypatch):
    monkeypatch.delenv("BISLS_RUN_PROGRESS", raising=False)
    _short_run(det)
    run_single_level({**FIG04, "K": 5}, seed=0, device="cpu")
    monkeypatch.setenv("BISLS_RUN_PROGRESS", "1")  # forced on: still 10 s of delay
    _short_run(det)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_true_shows_a_bar(det, capfd):
    _short_run(det, progress=True)
    assert re.search(r"fixed/sgd/fixed: 100%.*3/3", capfd.readouterr().err)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_default_bar_only_on_a_terminal_outside_workers(monkeypatch):
    import multiprocessing

    monkeypatch.delenv("BISLS_RUN_PROGRESS", raising=False)
    bar = _validate.progress_bar
    items = range(5)
    assert bar(items, 5, "x", None) is items  # pytest's stderr: no terminal
    monkeypatch.setattr("sys.stderr", _Terminal())
    shown = bar(items, 5, "x", None)
    assert shown is not items and shown.delay == _validate.PROGRESS_DELAY == 10
    assert list(shown) == list(items)
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())  # a worker
    assert bar(items, 5, "x", None) is items
    monkeypatch.setenv("BISLS_RUN_PROGRESS", "1")
    assert bar(items, 5, "x", None).delay == 10
    monkeypatch.setenv("BISLS_RUN_PROGRESS", "0")
    assert bar(items, 5, "x", None) is items
    assert bar(items, 5, "x", False) is items


def test_the_refusals_leave_ordinary_runs_alone(det):
    rec = _short_run(det)
    assert rec["alpha"].shape == (3,) and np.all(np.isfinite(rec["upper_loss"]))
    out = run_single_level({**FIG04, "K": 7, "eval_every": 3}, seed=0, device="cpu")
    assert out["eval_at"].tolist() == [0, 3, 6, 7] and out["eval_at"].dtype == np.int64
    assert out["x"].shape == (8, 2) and np.isfinite(out["loss"]).all()


def test_a_long_run_shows_its_bar_with_an_estimate(det, capfd, monkeypatch):
    """A run past the delay (here made 0 s) shows the bar, with the time left."""
    monkeypatch.setattr(_validate, "PROGRESS_DELAY", 0.0)
    monkeypatch.setenv("BISLS_RUN_PROGRESS", "1")
    run_bilevel(det, make_config("SGD", K=50, T=1, alpha=0.1, beta=0.1))
    err = capfd.readouterr().err
    assert re.search(r"fixed/sgd/fixed: +\d+%.*\d+/50 \[\d\d:\d\d<\d\d:\d\d", err)  # time left
