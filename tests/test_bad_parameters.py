"""Bad papermill parameters give one clear error that names the parameter.

Each parameter set is injected after a notebook's ``parameters`` cell and the
notebook's next code cell (its validation: ``check_params`` and ``scaled``) is
run, as papermill would run them; two sets also go through papermill itself.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["fig04_quadratics", "thm3_bisps_nonconvex_rate"]

BAD = [
    ({"scale": "huge"}, "scale"),
    ({"scale": 3}, "scale"),
    ({"scale": None}, "scale"),
    ({"scale": "Paper"}, "scale"),
    ({"n_runs": -1}, "n_runs"),
    ({"n_runs": 0}, "n_runs"),
    ({"n_runs": "5"}, "n_runs"),
    ({"n_runs": 2.5}, "n_runs"),
    ({"seed": -1}, "seed"),
    ({"seed": "zero"}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"device": "tpu"}, "device"),
    ({"device": 0}, "device"),
    ({"recompute": "yes"}, "recompute"),
    ({"recompute": 1}, "recompute"),
    ({"K": -5}, "K"),
    ({"K": 0}, "K"),
    ({"K": "many"}, "K"),
    ({"K": 2.5}, "K"),
]
if not torch.cuda.is_available():
    BAD.append(({"device": "cuda"}, "cuda"))


def _cells(name):
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    i = next(i for i, c in enumerate(code) if "parameters" in c["metadata"].get("tags", []))
    return "".join(code[i]["source"]), "".join(code[i + 1]["source"])


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.parametrize("params, word", BAD, ids=[f"{k}={v!r}" for (p, _) in BAD for k, v in p.items()])
def test_bad_parameter_names_itself(name, params, word):
    params_cell, check_cell = _cells(name)
    namespace: dict = {}
    exec(params_cell, namespace)
    namespace.update(params)
    with pytest.raises((ValueError, TypeError)) as err:
        exec(check_cell, namespace)
    assert word in str(err.value), f"error does not name {word!r}: {err.value}"
    assert len(str(err.value)) < 300, "one clear sentence, not a dump"


@pytest.mark.parametrize("params, word", [(["-p", "scale", "huge"], "scale"),
                                          (["-p", "n_runs", "-2"], "n_runs")])
def test_through_papermill(tmp_path, params, word):
    nb = ROOT / "notebooks" / "fig04_quadratics.ipynb"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), str(nb), str(tmp_path / "out.ipynb"),
         "-k", "python3", "--cwd", str(nb.parent), *params],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert word in proc.stderr and ("ValueError" in proc.stderr or "TypeError" in proc.stderr)


def test_unknown_method_and_problem_list_the_valid_ones():
    from bisls_core import bilevel, problems

    with pytest.raises(ValueError, match="valid values are: 'BiSLS-SGD'"):
        bilevel.make_config("BiSLSS")
    with pytest.raises(ValueError, match="valid values are: 'quadratic'"):
        problems.make("imagenet")
