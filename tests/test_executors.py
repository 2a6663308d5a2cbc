"""Sweeps on other executors: a process pool, a local Dask cluster, submitit, BISLS_EXECUTOR.

Every executor must give exactly the numbers of the in-process run (same seeds,
one torch thread per worker), and the cache must be written by the calling process.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch

from bisls_core import experiments as E
from bisls_core.bilevel import run_config

torch.set_num_threads(1)

BASE = {"problem": "quadratic_bilevel",
        "problem_args": {"dim_x": 3, "dim_y": 3, "n": 24, "batch": 6},
        "K": 4, "T": 2, "hypergrad_steps": 3}
CONFIGS = {
    "BiSLS-SGD": {**BASE, "method": "BiSLS-SGD"},
    "BiSPS": {**BASE, "method": "BiSPS", "alpha": 0.5},
    "SGD": {**BASE, "method": "SGD", "alpha": 0.1, "beta": 0.3},
    "DoG": {**BASE, "method": "DoG"},
}


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """Each sweep gets its own cache folder; no executor from the environment; one
    thread per worker process (set before any pool or cluster starts)."""
    monkeypatch.delenv("BISLS_EXECUTOR", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    E._ENV_EXECUTORS.clear()

    def sweep(folder: str, executor=None):
        monkeypatch.setenv("BISLS_RESULTS", str(tmp_path / folder))
        return E.run_grid(run_config, CONFIGS, name="executors", scale="smoke", n_runs=2,
                          seed=3, device="cpu", progress=False, executor=executor)

    yield sweep
    E._ENV_EXECUTORS.clear()


def _assert_same(a, b):
    assert list(a) == list(b)
    for label in a:
        assert a[label].keys() == b[label].keys(), label
        for key in a[label]:
            if key != "time":
                np.testing.assert_array_equal(a[label][key], b[label][key],
                                              err_msg=f"{label}/{key}")


def test_process_pool_matches_in_process(env, tmp_path, monkeypatch):
    """Through ``BISLS_EXECUTOR=process:2``: run_grid makes a ProcessPoolExecutor(2)
    (fresh "spawn" processes, one torch thread each) and reuses it."""
    a = env("inproc")
    monkeypatch.setenv("BISLS_EXECUTOR", "process:2")
    b = env("pool")
    pool = E._ENV_EXECUTORS["process:2"]
    assert isinstance(pool, ProcessPoolExecutor) and pool._max_workers == 2
    assert E.executor_from_env() is pool  # one pool per process, reused
    pool.shutdown()
    _assert_same(a, b)
    assert len(list((tmp_path / "pool" / "smoke" / "executors").glob("*.npz"))) == 8
    assert all(m["device"] == "cpu" for meta in b.meta.values() for m in meta)


def test_dask_local_cluster_matches_in_process(env, tmp_path):
    distributed = pytest.importorskip("distributed")
    a = env("inproc")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:
        b = env("dask", executor=client.get_executor())
    _assert_same(a, b)
    assert len(list((tmp_path / "dask" / "smoke" / "executors").glob("*.npz"))) == 8


def test_submitit_wrapper_matches_in_process(env, tmp_path):
    submitit = pytest.importorskip("submitit")
    a = env("inproc")
    auto = submitit.AutoExecutor(folder=str(tmp_path / "logs"), cluster="debug")
    b = env("submitit", executor=E.SubmititExecutor(auto))
    _assert_same(a, b)


@pytest.mark.parametrize(
    "spec, error",
    [
        ("mpi:4", ValueError),
        ("process:zero", TypeError),
        ("process:0", ValueError),
        ("local:3", ValueError),
        ("slurm:partition=gpu", ValueError),
        ("slurm:folder", ValueError),
    ],
)
def test_make_executor_rejects_bad_specs(spec, error):
    if spec.startswith("slurm"):
        pytest.importorskip("submitit")
    with pytest.raises(error):
        E.make_executor(spec)


def test_make_executor_local_is_in_process():
    assert E.make_executor("") is None and E.make_executor("local") is None
