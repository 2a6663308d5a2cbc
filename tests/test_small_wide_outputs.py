"""The condition (14) page and the own-problem page fit the book's text column.

The built site cuts a wide ``<pre>`` output at the right: the condition (14) table hid
its "val loss" and "test acc" columns at 1400 px, and the own problem's first display
equation, one row of three formulas, ended at "g(x, y" (issue 22). The committed outputs
of these pages keep every printed line within :data:`WIDTH` characters (the claim line
that every page prints is the claims module's, left out here) and every row of their
display math within :data:`GLYPHS` symbols (a rough count of what MathJax draws)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("search_condition14", "bilevel_own_problem")
#: Characters of a printed line that the text column shows at 1400 px (the cut table
#: showed 87 of its 105; 80 leaves room for a narrower window).
WIDTH = 80
#: Symbols of one row of display math (the cut equation had 84; the others have <= 48).
GLYPHS = 60


def _lines(name: str):
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf8"))
    for n, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            for line in ("".join(text) if isinstance(text, list) else text).splitlines():
                yield n, line


def glyphs(row: str) -> int:
    """A rough count of the symbols MathJax draws for one row of LaTeX."""
    r = re.sub(r"\\qquad", "MM", row)
    r = re.sub(r"\\quad", "M", r)
    r = re.sub(r"\\(big|Big|bigg|Bigg|left|right|operatorname|mathbb|mathrm|text|,|;|!| )", "", r)
    r = re.sub(r"\\frac\s*(\w)(\w)", r"\1", r)
    r = re.sub(r"\\[A-Za-z]+", "x", r)
    r = re.sub(r"[{}&\s]", "", r)
    r = re.sub(r"[_^]\w", "", r)
    return len(re.sub(r"[_^]", "", r))


def _math_rows(name: str):
    for cell in jupytext.read(ROOT / "notebooks" / f"{name}.py").cells:
        if cell.cell_type != "markdown":
            continue
        for block in re.findall(r"\$\$(.*?)\$\$", cell.source, re.DOTALL):
            body = re.sub(r"\\(begin|end)\{[a-z*]+\}", "", block)
            yield from (row.strip() for row in re.split(r"\\\\", body) if row.strip())


def test_the_glyph_count_flags_the_equation_that_was_cut():
    cut = (r"\min_{x \in \mathbb R^d} F(x) = f(x, y^*(x)), \qquad f(x, y) = \frac1m "
           r"\sum_{j=1}^m \log\big(1 + e^{-b'_j a_j'^\top y}\big), \qquad y^*(x) = \arg\min_y\ "
           r"g(x, y) = \frac1n \sum_{i=1}^n \log\big(1 + e^{-b_i a_i^\top y}\big) + \frac12 "
           r"\sum_{j=1}^d e^{x_j} y_j^2 .")
    assert glyphs(cut) > GLYPHS


@pytest.mark.parametrize("name", PAGES)
def test_printed_lines_fit(name):
    wide = [f"cell {n}: {len(line)} characters: {line[:60]}..." for n, line in _lines(name)
            if len(line) > WIDTH and not line.startswith("claim ")]
    assert not wide, f"{name}: outputs wider than {WIDTH} characters:\n" + "\n".join(wide)


@pytest.mark.parametrize("name", PAGES)
def test_display_math_rows_fit(name):
    rows = list(_math_rows(name))
    assert rows
    wide = [f"{glyphs(r)} symbols: {r[:70]}" for r in rows if glyphs(r) > GLYPHS]
    assert not wide, f"{name}: display math rows too wide:\n" + "\n".join(wide)


def test_condition14_shows_every_column():
    text = "\n".join(line for _, line in _lines("search_condition14"))
    columns = ("(14)", "guard", "fail", "rounds", "decades", "median α", "val loss", "test acc")
    for column in columns:
        assert re.search(rf"^configuration .*{re.escape(column)}", text, re.MULTILINE), column
