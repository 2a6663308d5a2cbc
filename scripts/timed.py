"""Run a command, print its wall time and record it: the stage timings of ``make test``.

    python scripts/timed.py STAGE COMMAND [ARGS...]   # run COMMAND, record STAGE's time
    python scripts/timed.py --commit                  # copy the last record of `make test`
                                                      # to results/cpu/timings/make_test.json
                                                      # (`make test-timings`)

Each stage appends one line to ``.scratch/timings.txt`` (printed at the end of
``make test``) and its entry to ``.scratch/timings.json``: ``stages`` (name ->
``seconds``, ``exit``), the date, the CPU model (the first ``model name`` of
``/proc/cpuinfo``) and the number of cores. ``make test`` empties both first and must
leave the git tree clean, so the record stays in ``.scratch/``; ``--commit`` copies it
into the committed ``results/cpu/timings/make_test.json`` only when it exists and every
stage succeeded (no number is invented: without a measured record nothing is written).
JSON files are written atomically with sorted keys.

Standard library only: ``make test`` runs the first stage (the install) with the
system's Python, before ``.venv`` exists.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".scratch"
TEXT = SCRATCH / "timings.txt"
RECORD = SCRATCH / "timings.json"
COMMITTED = ROOT / "results" / "cpu" / "timings" / "make_test.json"


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` as JSON (sorted keys, indented) to ``path`` through a temporary file
    in the same folder and :func:`os.replace`: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` of ``/proc/cpuinfo`` (``"unknown"`` without one)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return "unknown"


def machine() -> dict:
    """The date (UTC, ISO 8601, to the second), the CPU model and the number of cores."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {"date": now.isoformat(), "cpu": cpu_model(), "cores": os.cpu_count()}


def record_stage(record: Path, stage: str, seconds: float, rc: int) -> dict:
    """Add one stage's wall time and exit status to the JSON ``record`` (created with the
    machine's description when missing); return the record written."""
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        data = {}
    data.update(machine())
    data.setdefault("stages", {})[stage] = {"seconds": round(seconds, 1), "exit": rc}
    write_json_atomic(record, data)
    return data


def commit(record: Path = RECORD, committed: Path = COMMITTED) -> str | None:
    """Copy the measured ``record`` to ``committed``; ``None`` when done, otherwise why
    nothing was written (no record, no stage, a failed stage)."""
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return f"no measured timings in {record}: run `make test` first"
    stages = data.get("stages") or {}
    if not stages:
        return f"{record} holds no stage"
    failed = sorted(name for name, st in stages.items() if st.get("exit") != 0)
    if failed:
        return f"stages {failed} failed in {record}: timings of a failed run are not committed"
    write_json_atomic(committed, data)
    return None


def timed(stage: str, cmd: list[str]) -> int:
    """Run ``cmd``, print and record its wall time as ``stage``; return its exit status."""
    t0 = time.perf_counter()
    rc = subprocess.call(cmd)
    dt = time.perf_counter() - t0
    line = f"{stage:<14} {dt:8.1f} s  {'ok' if rc == 0 else f'FAILED (exit {rc})'}"
    print(line, flush=True)
    SCRATCH.mkdir(exist_ok=True)
    with TEXT.open("a") as fh:
        fh.write(line + "\n")
    record_stage(RECORD, stage, dt, rc)
    return rc


def main(argv: list[str]) -> int:
    if argv[:1] == ["--commit"]:
        why = commit()
        if why:
            print(f"timed.py --commit: nothing written: {why}", file=sys.stderr)
            return 1
        print(f"wrote {COMMITTED.relative_to(ROOT)} (commit it)")
        return 0
    if len(argv) < 2 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    return timed(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
