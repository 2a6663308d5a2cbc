"""Remove the cache entries that no page uses any more.

    BISLS_CACHE_LOG=.scratch/cache_use.log python scripts/run_notebooks.py execute
    python scripts/prune_cache.py .scratch/cache_use.log --scale cpu            # list
    python scripts/prune_cache.py .scratch/cache_use.log --scale cpu --apply    # remove

With ``$BISLS_CACHE_LOG`` set, every :func:`bisls_core.experiments.run_grid` call
appends the paths of the entries it reads or writes to that file. After a run of
every notebook with the log on, an entry of ``results/<scale>/`` that is not in the
log belongs to a configuration no page asks for any more (an older preset, an older
code version): it would only inflate the compute and run counts of the scales page.
The claims files (``results/<scale>/claims/``) are never touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unused(log: Path, scale: str) -> tuple[list[Path], int]:
    """The entries of ``results/<scale>/`` that ``log`` does not name, and how many it names."""
    used = {Path(line).resolve() for line in log.read_text(encoding="utf-8").split() if line}
    base = ROOT / "results" / scale
    entries = sorted(p.resolve() for p in base.glob("*/*.npz") if p.parent.name != "claims")
    return [p for p in entries if p not in used], len(used)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", type=Path, help="the file $BISLS_CACHE_LOG named during a run of every notebook")
    ap.add_argument("--scale", default="cpu", choices=["smoke", "cpu", "paper"])
    ap.add_argument("--apply", action="store_true", help="remove the entries (default: list them)")
    args = ap.parse_args(argv)
    if not args.log.is_file():
        ap.error(f"no log at {args.log}: run the notebooks with BISLS_CACHE_LOG set first")
    stale, n_used = unused(args.log, args.scale)
    if n_used == 0:
        ap.error(f"{args.log} names no entry: refusing to remove every entry")
    for path in stale:
        print(path.relative_to(ROOT))
        if args.apply:
            path.unlink()
    verb = "removed" if args.apply else "would remove (add --apply)"
    print(f"{len(stale)} unused entries {verb}; {n_used} entries in use", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
