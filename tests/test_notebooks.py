"""Structure of the notebooks and of the generated pages (no execution here:
`make smoke` runs every notebook and nbval checks their outputs)."""

import ast
import importlib.util
import json
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))
REQUIRED = {"scale", "device", "n_runs", "seed", "recompute"}


def test_there_are_notebooks():
    assert SOURCES, "no notebook sources in notebooks/"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync_and_has_a_parameters_cell(src):
    nb_path = src.with_suffix(".ipynb")
    assert nb_path.exists(), f"{src.name} has no paired .ipynb (jupytext --sync)"
    text = jupytext.read(src)
    nb = json.loads(nb_path.read_text())
    src_cells = [(c.cell_type, c.source.strip()) for c in text.cells]
    nb_cells = [(c["cell_type"], "".join(c["source"]).strip()) for c in nb["cells"]]
    assert src_cells == nb_cells, f"{src.name} and {nb_path.name} differ: run jupytext --sync"
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    names = {t.id for node in ast.walk(ast.parse("".join(params[0]["source"])))
             if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}
    assert REQUIRED <= names, f"parameters cell lacks {sorted(REQUIRED - names)}"
    assert not any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]), \
        "an executed copy with injected parameters was committed"


#: The longest code cell a page may have: loops over methods, runs and claims live in
#: bisls_core (the sweeps modules); a page keeps its prose, its parameters and short calls.
MAX_CELL_LINES = 25


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_code_cells_are_short(src):
    long = [(i, len(c.source.splitlines())) for i, c in enumerate(jupytext.read(src).cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CELL_LINES]
    assert not long, f"code cells over {MAX_CELL_LINES} lines (cell, lines): {long}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_source_has_no_run_metadata(src):
    """Papermill's and the kernel's run metadata (timestamps, durations) stay in the
    executed .ipynb, never in the reviewed .py (jupytext.toml's cell_metadata_filter)."""
    headers = [line for line in src.read_text().splitlines() if line.startswith("# %%")]
    assert not [h for h in headers if "papermill=" in h or "execution=" in h or "ExecuteTime" in h]


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_is_executed(src):
    nb = json.loads(src.with_suffix(".ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), "commit the executed notebook (make notebooks)"
    assert code[-1]["outputs"], "the last cell prints the numbers the claim rests on"


def test_scorecard_page_is_up_to_date():
    spec = importlib.util.spec_from_file_location("scorecard", ROOT / "scripts" / "scorecard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (ROOT / "book" / "scorecard.md").read_text() == mod.render(mod.collect()), \
        "book/scorecard.md is stale: run python scripts/scorecard.py"
    assert (ROOT / "book" / "scales.md").read_text() == mod.render_scales(mod.collect_runs()), \
        "book/scales.md is stale: run python scripts/scorecard.py"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_committed_outputs_carry_no_stderr(src):
    """A warning printed into a committed notebook names this machine's paths, and
    nbval on another checkout then fails on it: the pages run without warnings."""
    nb = json.loads(src.with_suffix(".ipynb").read_text())
    noisy = [i for i, c in enumerate(nb["cells"]) for o in c.get("outputs", [])
             if o.get("output_type") == "stream" and o.get("name") == "stderr"]
    assert not noisy, f"cells with stderr output: {noisy}"
