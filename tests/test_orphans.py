"""A process-pool sweep whose parent is killed (SIGKILL) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process; ``None`` when it is gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = text.rsplit(")", 1)[1].split()[:2]
    return None if state in ("Z", "X") else (state, int(ppid))


def _children(parent: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st is not None and st[1] == parent:
                out.append(int(entry.name))
    return out


PARENT = textwrap.dedent(
    """
    import os, time
    os.environ["BISLS_EXECUTOR"] = "process:2"
    from bisls_core import experiments as E
    pool = E.executor_from_env()
    futures = [pool.submit(time.sleep, 1.0) for _ in range(2)]
    [f.result() for f in futures]
    print(" ".join(map(str, pool._processes)), flush=True)
    time.sleep(600)
    """
)


def test_workers_and_resource_tracker_exit_when_the_parent_is_killed():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BISLS_")}
    proc = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    left: list[int] = []
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2, "the pool did not start two workers"
        children = _children(proc.pid)
        assert set(workers) <= set(children)
        assert len(children) >= 3, "two workers and the resource tracker"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = [pid for pid in children if _stat(pid) is not None]
            if not left:
                break
            time.sleep(0.1)
        assert not left, f"processes left behind by the killed sweep: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in left:  # the ones this test started, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
