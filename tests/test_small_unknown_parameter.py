"""A misspelled papermill parameter is an error naming it and the page's parameters.

Papermill only warns ("Passed unknown parameter") and would run the page with its
defaults; :func:`bisls_core.sweeps.start` reads the injected cell in the kernel's input
history and raises instead (issue 22)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bisls_core import sweeps

ROOT = Path(__file__).resolve().parents[1]
PAPERMILL = Path(sys.executable).parent / "papermill"
PARAMS = ("scale = None  # the book's\ndevice = 'auto'\nn_runs = None\nseed = 0\n"
          "recompute = False\nK = None\n")


def test_unknown_names_are_listed_with_the_pages_parameters():
    injected = "# Parameters\nscale = 'smoke'\nlr = -0.1\nbeta: float = 2\n"
    history = ["", "import numpy", PARAMS, injected, "opts = sweeps.start(...)"]
    with pytest.raises(ValueError) as err:
        sweeps.unknown_parameters(history)
    assert str(err.value) == ("unknown parameters lr, beta: this page's parameters are "
                              "scale, device, n_runs, seed, recompute, K")


@pytest.mark.parametrize("history", [
    ["", PARAMS, "# Parameters\nscale = 'smoke'\nK = 10\n", "sweeps.start()"],  # known names
    ["", PARAMS, "sweeps.start()"],  # not run by papermill: nothing injected
    ["", "# Parameters\nlr = 1\n", "sweeps.start()"],  # no parameters cell before it
    [],
])
def test_known_or_no_injected_parameters_pass(history):
    sweeps.unknown_parameters(history)


def test_outside_ipython_nothing_is_checked():
    sweeps.check_injected_parameters()
    assert sweeps.start("smoke", "cpu", None, 0, False)["scale"] == "smoke"


def _papermill(tmp_path: Path, *params: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISLS_")}
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0",
               JUPYTER_DEFAULT_PROVISIONER_NAME="bisls-encrypted-provisioner")
    cmd = [str(PAPERMILL), "notebooks/fig04_quadratics.ipynb", str(tmp_path / "out.ipynb"),
           "--cwd", "notebooks", "-k", "python3", "--no-progress-bar", "-p", "scale", "smoke",
           *params]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_misspelled_parameter_stops_papermill(tmp_path):
    proc = _papermill(tmp_path, "-p", "lr", "-0.1")
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert ("ValueError: unknown parameter lr: this page's parameters are "
            "scale, device, n_runs, seed, recompute, K") in proc.stderr, proc.stderr[-2000:]


def test_a_known_parameter_still_runs(tmp_path):
    proc = _papermill(tmp_path, "-p", "K", "100")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unknown parameter" not in proc.stderr
