"""A signal to ``scripts/run_notebooks.py`` ends its whole tree: papermill, the kernel
(which jupyter_client starts in a session of its own) and the kernel's pool workers
(``results`` runs with ``BISLS_EXECUTOR=process:2``). None of them outlives the script
by more than a few seconds.

A stand-in page (``$BISLS_NOTEBOOKS_DIR``) starts the pool, writes its workers' pids to
a file once they run, then sleeps two minutes; the test sends the real signal then.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

ROOT = Path(__file__).resolve().parents[1]
NAME = "test_scripts_signals_standin"
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")

CELL = """\
import os, time
from bisls_core import experiments as E
pool = E.executor_from_env()
[f.result() for f in [pool.submit(time.sleep, 0.5) for _ in range(2)]]
with open(os.environ["BISLS_TEST_READY"] + ".tmp", "w") as fh:
    fh.write(" ".join(map(str, pool._processes)))
os.replace(os.environ["BISLS_TEST_READY"] + ".tmp", os.environ["BISLS_TEST_READY"])
time.sleep(120)
"""


def _code(source: str, tags=()) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": list(tags)},
            "outputs": [], "source": source}


def _standin(folder: Path) -> None:
    nb = {"cells": [_code("scale = None\ndevice = 'auto'", ["parameters"]), _code(CELL)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (folder / f"{NAME}.ipynb").write_text(json.dumps(nb))


def _alive(procs: list) -> list:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_papermill_the_kernel_and_the_workers(tmp_path, signum):
    _standin(tmp_path)
    ready = tmp_path / "ready"
    env = {k: v for k, v in os.environ.items() if k not in ("BISLS_EXECUTOR", "BISLS_BOOK_SCALE")}
    env.update(BISLS_NOTEBOOKS_DIR=str(tmp_path), BISLS_TEST_READY=str(ready),
               JUPYTER_DEFAULT_PROVISIONER_NAME="bisls-encrypted-provisioner")
    with (tmp_path / "out.txt").open("w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "run_notebooks.py"),
                                 "results", "--scale", "cpu", NAME], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    tree: list = []
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert proc.poll() is None, (tmp_path / "out.txt").read_text()
            assert time.monotonic() < deadline, "the stand-in page never started its workers"
            time.sleep(0.2)
        workers = {int(pid) for pid in ready.read_text().split()}
        tree = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) == 2 and workers <= {p.pid for p in tree}, "process:2 by default"
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        assert "papermill" in names and "ipykernel" in names

        proc.send_signal(signum)
        assert proc.wait(timeout=60) == 128 + signum
        gone_by = time.monotonic() + 5
        while _alive(tree) and time.monotonic() < gone_by:
            time.sleep(0.1)
        left = [(p.pid, " ".join(p.cmdline())[:80]) for p in _alive(tree)]
        assert not left, f"processes that outlived run_notebooks.py by 5 s: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in _alive(tree):  # only the processes this test started
            p.kill()
        (ROOT / ".scratch" / "progress" / f"{NAME}.jsonl").unlink(missing_ok=True)
        (ROOT / ".scratch" / "results" / f"{NAME}-cpu.ipynb").unlink(missing_ok=True)
