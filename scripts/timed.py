"""Run a command, print and append its wall time to .scratch/timings.txt.

Usage: python scripts/timed.py STAGE COMMAND [ARGS...]
"""

import subprocess
import sys
import time
from pathlib import Path

stage, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
rc = subprocess.call(cmd)
dt = time.perf_counter() - t0
line = f"{stage:<14} {dt:8.1f} s  {'ok' if rc == 0 else f'FAILED (exit {rc})'}"
print(line, flush=True)
out = Path(".scratch/timings.txt")
out.parent.mkdir(exist_ok=True)
with out.open("a") as fh:
    fh.write(line + "\n")
sys.exit(rc)
