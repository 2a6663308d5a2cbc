"""The results cache and the parameter checks every notebook relies on."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from bisls_core import experiments as E

#: The metadata of an entry written by hand (run_grid writes its own).
META = {"runner": "tests.toy@1", "config": {}, "seed": 0, "scale": "smoke", "device": "cpu",
        "seconds": 1.0}


def toy_runner(config, *, seed, device):
    rng = np.random.default_rng(seed)
    return {"loss": rng.normal(size=config["K"]) * config["scale"], "final": np.float64(seed)}


toy_runner.cache_version = "1"
CALLS = []


def counting_runner(config, *, seed, device):
    CALLS.append((config["K"], seed))
    return toy_runner(config, seed=seed, device=device)


counting_runner.cache_version = "1"


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path / "results"))
    CALLS.clear()


def grid(fn=toy_runner, **kw):
    args = dict(name="toy", scale="smoke", n_runs=2, seed=3, device="cpu", progress=False)
    args.update(kw)
    return E.run_grid(fn, {"A": {"K": 4, "scale": 1.0}, "B": {"K": 4, "scale": 2.0}}, **args)


def test_grid_shapes_and_seeds():
    g = grid()
    assert list(g) == ["A", "B"]
    assert g["A"]["loss"].shape == (2, 4)
    assert g["A"]["final"].tolist() == [3.0, 4.0]


def test_second_call_is_served_from_the_cache():
    grid(fn=counting_runner)
    assert len(CALLS) == 4
    g = grid(fn=counting_runner)
    assert len(CALLS) == 4
    assert g["B"]["loss"].shape == (2, 4)
    grid(fn=counting_runner, recompute=True)
    assert len(CALLS) == 8


def test_cache_key_depends_on_config_seed_and_version():
    k = E.cache_key(toy_runner, {"K": 4}, 0)
    assert k == E.cache_key(toy_runner, {"K": 4}, 0)
    assert k != E.cache_key(toy_runner, {"K": 5}, 0)
    assert k != E.cache_key(toy_runner, {"K": 4}, 1)
    assert k != E.cache_key(toy_runner, {"K": 4.0}, 0)  # float and int configs differ
    old = toy_runner.cache_version
    toy_runner.cache_version = "2"
    try:
        assert k != E.cache_key(toy_runner, {"K": 4}, 0)
    finally:
        toy_runner.cache_version = old


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_entry_is_detected_and_recomputed(damage):
    first = grid(fn=counting_runner)
    files = sorted(E.results_dir().rglob("*.npz"))
    assert len(files) == 4
    victim = files[0]
    data = victim.read_bytes()
    victim.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"x" * 100, "empty": b""}[damage])
    with pytest.warns(RuntimeWarning, match=victim.name):
        again = grid(fn=counting_runner)
    assert len(CALLS) == 5  # exactly the damaged run was recomputed
    for label in first:
        np.testing.assert_array_equal(first[label]["loss"], again[label]["loss"])


def test_entry_of_another_key_is_not_read():
    grid(fn=counting_runner)
    files = sorted(E.results_dir().rglob("*.npz"))
    files[1].write_bytes(files[0].read_bytes())  # right format, wrong key
    with pytest.warns(RuntimeWarning, match=files[1].name):
        grid(fn=counting_runner)
    assert len(CALLS) == 5


def test_kill_minus_9_during_write_leaves_no_entry(tmp_path):
    """A writer killed in the middle of a large write leaves at most a temp
    file, never an entry under its final name; the next run computes it."""
    script = textwrap.dedent(
        f"""
        import numpy as np, sys, os
        os.environ["BISLS_RESULTS"] = {str(E.results_dir())!r}
        from bisls_core import experiments as E
        path = E._entry_path("smoke", "kill", "k" * 64)
        big = {{"x": np.random.default_rng(0).normal(size=30_000_000)}}
        print("writing", flush=True)
        E._write_entry(path, "k" * 64, big, {META!r})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    final = E._entry_path("smoke", "kill", "k" * 64)
    assert not final.exists()
    assert E._read_entry(final, "k" * 64) is None


def _write_same(args):
    path, i = args
    E._write_entry(path, "same", {"x": np.full(200_000, i, dtype=float)}, META)
    return i


def test_two_processes_writing_the_same_entry_leave_one_complete_copy(tmp_path):
    path = tmp_path / "results" / "smoke" / "race" / "same.npz"
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_write_same, [(path, i) for i in range(8)]))
    rec = E._read_entry(path, "same")
    assert rec is not None and len(set(rec["x"].tolist())) == 1
    assert not list(path.parent.glob("*.tmp"))


def test_process_pool_gives_the_same_numbers_as_in_process(tmp_path, monkeypatch):
    a = grid()
    monkeypatch.setenv("BISLS_RESULTS", str(tmp_path / "other"))
    with ProcessPoolExecutor(2) as pool:
        b = grid(executor=pool)
    for label in a:
        np.testing.assert_array_equal(a[label]["loss"], b[label]["loss"])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(scale="huge"), "scale"),
        (dict(scale=3), "scale"),
        (dict(n_runs=-1), "n_runs"),
        (dict(n_runs=0), "n_runs"),
        (dict(n_runs="5"), "n_runs"),
        (dict(n_runs=2.5), "n_runs"),
        (dict(seed=-3), "seed"),
        (dict(seed="zero"), "seed"),
        (dict(device="tpu"), "device"),
        (dict(recompute="yes"), "recompute"),
    ],
)
def test_bad_notebook_parameters_name_the_parameter(kwargs, name):
    params = dict(scale="smoke", device="cpu", n_runs=1, seed=0, recompute=False)
    params.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=name):
        E.check_params(**params)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_says_so():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        E.resolve_device("cuda")


def test_scaled_presets_and_overrides():
    presets = {"smoke": {"K": 10, "lr": 0.1}, "cpu": {"K": 100, "lr": 0.1}, "paper": {"K": 1000, "lr": 0.1}}
    assert E.scaled("cpu", presets, K=None) == {"K": 100, "lr": 0.1}
    assert E.scaled("cpu", presets, K=7)["K"] == 7
    with pytest.raises(ValueError, match="unknown size 'T'"):
        E.scaled("cpu", presets, T=3)
    with pytest.raises(TypeError, match="K must be an integer"):
        E.scaled("cpu", presets, K="many")
    with pytest.raises(TypeError, match="lr must be a number"):
        E.scaled("cpu", presets, lr="big")


def test_summarize_reports_divergence():
    assert E.summarize(np.array([1.0, 3.0])) == "2 ± 1"
    assert "1/2 runs diverged" in E.summarize(np.array([1.0, np.nan]))
    assert E.summarize(np.array([np.nan])) == "diverged"
