"""Load one of ``scripts/`` as a module for a test (the scripts are not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str, alias: str | None = None):
    """``scripts/<name>.py`` executed as a fresh module named ``alias`` (default ``name``);
    ``scripts/`` goes on ``sys.path`` first, since scripts import one another."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(alias or name, SCRIPTS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
