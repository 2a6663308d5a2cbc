"""Bad papermill parameters give one clear error that names the parameter.

Every parameter of every notebook is tested, with one of its bad values per page
(the values taken in turn over the pages, so each is tried on several pages). The parameters are read from the
``parameters`` cell of each ``notebooks/*.py`` itself, so a parameter added to a page
cannot escape: a parameter this file has no bad values for fails the test. Each bad
value is injected after the parameters cell, as papermill injects it, and the
notebook's next code cell -- its setup: :func:`bisls_core.sweeps.start` and the page's
``sizes``, which check the parameters and the sizes against each other -- is run;
it must raise a ``ValueError``/``TypeError`` whose one-sentence message names the
parameter (and, for a size that contradicts another size, both). Two sets also go
through papermill itself.
"""

import ast
import functools
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))

#: Bad values of the five parameters every page has (``scale = None`` is every page's
#: default, the book's scale: tests/test_book_scale.py).
COMMON = {
    "scale": ["huge", 3, "Paper", ""],
    "device": ["tpu", 0] + ([] if torch.cuda.is_available() else ["cuda"]),
    "n_runs": [-1, 0, "5", 2.5],
    "seed": [-1, "zero", 1.5],
    "recompute": ["yes", 1],
}
#: Bad values of a size parameter (default ``None``: the preset of the scale).
SIZE = [-5, 0, "many", 2.5, True]

#: Sizes that contradict each other or what the problem needs:
#: (pages it applies to, or None for every page that has all the parameters;
#: the parameters; the words the error must contain).
RELATIONS = [
    (None, {"batch": 100_000, "n_train": 1000}, ("batch", "n_train")),
    (None, {"n_train": 3}, ("n_train", "batch")),
    (None, {"n_train": 100_000, "batch": 10}, ("n_train", "n_val")),
    ({"fig05_w8a_logistic", "fig17_one_vs_two_samples"}, {"batch": 100_000}, ("batch", "w8a")),
    (None, {"n_real": 5}, ("n_real",)),
    (None, {"n_real": 10**7}, ("n_real",)),
    (None, {"K": 10, "eval_every": 50}, ("eval_every", "K")),
    ({"thm1_convex_rate", "thm2_strongly_convex_rate"}, {"K": 60, "eval_every": 50},
     ("eval_every", "K")),
    ({"thm3_bisps_nonconvex_rate"}, {"K": 2}, ("K",)),
]


@functools.lru_cache(maxsize=None)
def _cells(src: Path) -> tuple[str, str]:
    """The parameters cell of a notebook source and its next code cell (its setup)."""
    code = [c for c in jupytext.read(src).cells if c.cell_type == "code"]
    i = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    return code[i].source, code[i + 1].source


def _parameters(src: Path) -> dict:
    """Name -> default value of every assignment in the parameters cell."""
    tree = ast.parse(_cells(src)[0])
    return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def _bad_values(name: str, default) -> list:
    if name in COMMON:
        return COMMON[name]
    if default is None:
        return SIZE
    raise AssertionError(f"no bad values known for the parameter {name!r} = {default!r}: "
                         "add them to tests/test_bad_parameters.py")


def _cases():
    """Every parameter of every page with one of its bad values, taken in turn over the
    pages (page ``i`` gets value ``i mod n``), so that every bad value is tried on
    several pages without trying each on all of them (the checks are shared code)."""
    for i, src in enumerate(SOURCES):
        for name, default in _parameters(src).items():
            values = _bad_values(name, default)
            value = values[i % len(values)]
            yield pytest.param(src, {name: value}, (name,), id=f"{src.stem}:{name}={value!r}")
        names = set(_parameters(src))
        for pages, params, words in RELATIONS:
            if set(params) <= names and (pages is None or src.stem in pages):
                label = ",".join(f"{k}={v}" for k, v in params.items())
                yield pytest.param(src, params, words, id=f"{src.stem}:{label}")


def _run_setup(src: Path, params: dict) -> None:
    params_cell, setup_cell = _cells(src)
    namespace: dict = {}
    exec(params_cell, namespace)
    namespace.update(params)
    exec(setup_cell, namespace)


def test_every_notebook_has_parameters():
    assert SOURCES
    for src in SOURCES:
        assert {"scale", "device", "n_runs", "seed", "recompute"} <= set(_parameters(src)), src.name


@pytest.mark.parametrize("src, params, words", list(_cases()))
def test_bad_parameter_names_itself(src, params, words):
    with pytest.raises((ValueError, TypeError)) as err:
        _run_setup(src, params)
    for word in words:
        assert word in str(err.value), f"error does not name {word!r}: {err.value}"
    assert len(str(err.value)) < 300, "one clear sentence, not a dump"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_default_parameters_pass_the_checks(src):
    """The checks reject bad values only: the committed parameters pass them."""
    _run_setup(src, {})


def test_every_relation_applies_somewhere():
    """A relation whose parameters no page has any more tests nothing: remove or fix it."""
    names = {src.stem: set(_parameters(src)) for src in SOURCES}
    for pages, params, _ in RELATIONS:
        assert any(set(params) <= n and (pages is None or stem in pages) for stem, n in names.items()), params


def test_thm2_horizon_against_k0():
    """Theorem 2's fit starts at 2 k0 (known only once the problem's constants are):
    a horizon too short for two evaluations past it names K and eval_every."""
    from bisls_core.sweeps import theory

    with pytest.raises(ValueError, match="K.*eval_every"):
        theory.check_fit({"K": 100, "eval_every": 50}, start=80)
    theory.check_fit({"K": 4000, "eval_every": 50}, start=80)


@pytest.mark.parametrize("notebook, params, words", [
    ("fig04_quadratics", ["-p", "scale", "huge"], ("scale",)),
    ("fig04_quadratics", ["-p", "n_runs", "-2"], ("n_runs",)),
    ("fig07_bisls_vs_tuned", ["-p", "scale", "smoke", "-p", "batch", "100000"], ("batch", "n_train")),
])
def test_through_papermill(tmp_path, notebook, params, words):
    nb = ROOT / "notebooks" / f"{notebook}.ipynb"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "papermill"), str(nb), str(tmp_path / "out.ipynb"),
         "-k", "python3", "--cwd", str(nb.parent), *params],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode != 0
    assert "ValueError" in proc.stderr or "TypeError" in proc.stderr
    for word in words:
        assert word in proc.stderr


def test_unknown_method_and_problem_list_the_valid_ones():
    from bisls_core import bilevel, problems

    with pytest.raises(ValueError, match="valid values are: 'BiSLS-SGD'"):
        bilevel.make_config("BiSLSS")
    with pytest.raises(ValueError, match="valid values are: 'quadratic'"):
        problems.make("imagenet")
