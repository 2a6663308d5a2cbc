"""Every function and method of ``bisls_core`` is under 100 lines, its docstring included
(issue 14: a longer one is split into named helpers before it grows further)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "bisls_core"
MAX_LINES = 100


def function_lengths(path: Path) -> list[tuple[str, int, int]]:
    """``(name, first line, lines)`` of every function, method and nested function in
    ``path``, from its ``def`` line to its last line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [(node.name, node.lineno, node.end_lineno - node.lineno + 1)
            for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_the_count_is_from_def_to_last_line(tmp_path):
    source = tmp_path / "m.py"
    source.write_text('def f():\n    """doc\n\n    more"""\n    return 1\n\n\n'
                      "class C:\n    @staticmethod\n    def g():\n        pass\n")
    assert sorted(function_lengths(source)) == [("f", 1, 5), ("g", 10, 2)]


@pytest.mark.parametrize("path", sorted(CORE.rglob("*.py")), ids=lambda p: str(p.relative_to(CORE)))
def test_no_function_reaches_100_lines(path):
    long = [f"{path.relative_to(CORE.parent)}:{line} {name} ({n} lines)"
            for name, line, n in function_lengths(path) if n >= MAX_LINES]
    assert not long, "split into named helpers: " + "; ".join(long)
