"""Build the book's two editions into one site, then check the site.

    python scripts/book.py                   # `make book`: the English edition executes
                                             # the notebooks (execute_notebooks: force)
    python scripts/book.py --execute off -n -q  # `make test`: committed outputs, nitpicky
    python scripts/book.py --check-only      # only check an existing _build/html
    python scripts/book.py --check-ready     # only check that the book's scale has results
                                             # (`make book` and `make book-check` run it
                                             # first, before scripts/scorecard.py)

At a scale other than the committed one (``SCALE=paper``: ``$BISLS_BOOK_SCALE``), the
book needs that scale's results first (``make paper``, then ``make book SCALE=paper``):
without a claim file in ``results/<scale>/claims/``, ``--check-ready`` says so and
exits 1, and ``make book`` stops before anything is rewritten.

The English edition (``_config.yml``, ``_toc.yml``) is built into ``_build/html``,
the French edition (``_config.yml`` with ``_config_fr.yml`` merged over it,
``_toc_fr.yml``) into ``_build/fr`` and copied to ``_build/html/fr``, so that one
site holds both: every page links to its counterpart in the other edition
(``book/_ext/bisls_book.py``). Both builds turn warnings into errors (-W).
Then ``scripts/check_site.py`` checks the built site (no dead local link, no
link to the placeholder repository, the language switches, the French interface).

The merged configuration files are written under ``_build/config/``; the
repository's own files are never modified.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
CONFIG_DIR = BUILD / "config"
SITE = BUILD / "html"
BIN = Path(sys.executable).parent
# Kernels started by the build talk to it over encrypted sockets (CurveZMQ): see
# bisls_core/_kernel.py. The Makefile sets the same variable for every target.
PROVISIONER = "bisls-encrypted-provisioner"


#: The scale of the committed book (``bisls_core.scales.BOOK_SCALE``): its results are
#: in the repository, so a book at this scale is always ready.
COMMITTED_SCALE = "cpu"
SCALES = ("smoke", "cpu", "paper")


def book_scale() -> str:
    """The book's scale as the Makefile exports it: ``$BISLS_BOOK_SCALE``, else ``cpu``."""
    return os.environ.get("BISLS_BOOK_SCALE", "").strip() or COMMITTED_SCALE


def fill_command(scale: str) -> str:
    """The command that computes the results of ``scale``."""
    return "make paper" if scale == "paper" else f"make results SCALE={scale}"


def check_ready(scale: str, results: Path | None = None) -> str | None:
    """Why the book cannot be built at ``scale`` (``None``: it can).

    At a scale other than the committed one, ``<results>/<scale>/claims/`` must hold a
    claim file, else every page's cross-references to its claims are missing;
    ``results`` defaults to the cache the book reads (``$BISLS_RESULTS``, else the
    repository's ``results/``)."""
    if scale not in SCALES:
        return f"BISLS_BOOK_SCALE (SCALE=) must be one of {list(SCALES)}, got {scale!r}"
    if scale == COMMITTED_SCALE:
        return None
    results = results or Path(os.environ.get("BISLS_RESULTS") or ROOT / "results")
    claims = results / scale / "claims"
    if any(claims.glob("*.json")):
        return None
    return (f"the book's scale is {scale!r} but {claims} holds no claim file: compute the "
            f"results first: `{fill_command(scale)}`, then `make book SCALE={scale}` "
            f"(nothing was built or rewritten)")


def merge(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base``: mappings merged key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def edition_config(edition: str, execute: str | None) -> dict:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    if edition == "fr":
        config = merge(config, yaml.safe_load((ROOT / "_config_fr.yml").read_text(encoding="utf8")))
    if execute is not None and edition == "en":
        config.setdefault("execute", {})["execute_notebooks"] = execute
    # Jupyter Book resolves local extensions against the configuration file's folder.
    local = config.get("sphinx", {}).get("local_extensions") or {}
    for name, path in local.items():
        local[name] = str((ROOT / path).resolve())
    return config


def write_config(edition: str, execute: str | None) -> Path:
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    path = CONFIG_DIR / f"_config_{edition}.yml"
    text = ("# Generated by scripts/book.py from _config.yml"
            + (" and _config_fr.yml" if edition == "fr" else "") + "; do not edit.\n"
            + yaml.safe_dump(edition_config(edition, execute), allow_unicode=True, sort_keys=False))
    path.write_text(text, encoding="utf8")
    return path


def build(edition: str, execute: str | None, nitpicky: bool, quiet: bool = False) -> float:
    config = write_config(edition, execute)
    toc = "_toc.yml" if edition == "en" else "_toc_fr.yml"
    # Jupyter Book writes the HTML into <path-output>/_build/html.
    out = ROOT if edition == "en" else BUILD / "fr"
    cmd = [str(BIN / "jupyter-book"), "build", str(ROOT), "--config", str(config), "--toc",
           str(ROOT / toc), "--path-output", str(out),
           "-W", "--keep-going"] + (["-n"] if nitpicky else []) + (["-q"] if quiet else [])
    env = {**os.environ}
    env.setdefault("JUPYTER_DEFAULT_PROVISIONER_NAME", PROVISIONER)
    print(f"== {edition} edition: {' '.join(cmd[1:])}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if proc.returncode:
        sys.exit(f"the {edition} edition failed to build (exit {proc.returncode})")
    if edition == "fr":
        shutil.rmtree(SITE / "fr", ignore_errors=True)
        shutil.copytree(out / "_build" / "html", SITE / "fr")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--execute", choices=["force", "cache", "auto", "off"], default=None,
                        help="execute_notebooks for the English edition (default: _config.yml's); "
                             "the French edition always renders the committed outputs")
    parser.add_argument("-n", "--nitpicky", action="store_true",
                        help="warn about every missing reference target (with -W: fail)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no Sphinx status lines (warnings are still shown, and fail the build)")
    parser.add_argument("--check-only", action="store_true",
                        help="do not build; only check the site already in _build/html")
    parser.add_argument("--check-ready", action="store_true",
                        help="only check that the book's scale ($BISLS_BOOK_SCALE) has results "
                             "(exit 1 with the command that computes them when it has none)")
    args = parser.parse_args(argv)
    why = None if args.check_only else check_ready(book_scale())
    if why:
        print(f"scripts/book.py: {why}", file=sys.stderr)
        return 1
    if args.check_ready:
        return 0
    if not args.check_only:
        seconds = {ed: build(ed, args.execute, args.nitpicky, args.quiet) for ed in ("en", "fr")}
        print("built " + ", ".join(f"{ed} in {s:.0f} s" for ed, s in seconds.items())
              + f"; open {SITE.relative_to(ROOT)}/index.html (English) or "
              f"{SITE.relative_to(ROOT)}/fr/index.html (French)", flush=True)
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_site.py"), str(SITE)])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
