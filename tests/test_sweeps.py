"""The helpers the notebooks share (bisls_core.sweeps), each on a small record whose
answer is known by hand. The notebooks' outputs themselves are checked by nbval."""

import numpy as np
import pytest

from bisls_core import sweeps
from bisls_core.sweeps import distillation, hyperrep, parameter_free, single_level, theory


def test_start_returns_the_run_keywords_and_checks():
    assert sweeps.start("smoke", "cpu", None, 3, False) == dict(
        scale="smoke", seed=3, device="cpu", recompute=False)
    with pytest.raises(ValueError, match="scale"):
        sweeps.start("huge", "cpu", None, 0, False)


def test_relations_name_both_sizes():
    with pytest.raises(ValueError, match="batch = 5 is larger than n_train = 4"):
        sweeps.at_most({"batch": 5, "n_train": 4}, "batch", "n_train", "why")
    with pytest.raises(ValueError, match="batch = 5 is larger than 4"):
        sweeps.at_most({"batch": 5}, "batch", 4, "why")
    sweeps.at_most({"batch": 4, "n_train": 4}, "batch", "n_train", "why")
    with pytest.raises(ValueError, match="n_real = 3 is too small"):
        sweeps.at_least({"n_real": 3}, "n_real", 10, "why")


def test_sizes_of_each_family_check_their_relations():
    with pytest.raises(ValueError, match="n_val"):
        hyperrep.sizes("smoke", batch=150)  # n_train 200, n_val 100 at smoke
    with pytest.raises(ValueError, match="n_real"):
        distillation.sizes("smoke", n_real=9)
    with pytest.raises(ValueError, match="batch.*w8a"):
        single_level.w8a_sizes("smoke", batch=single_level.W8A_ROWS + 1)
    assert single_level.w8a_sizes("smoke", batch=single_level.W8A_ROWS)["batch"] == single_level.W8A_ROWS
    with pytest.raises(ValueError, match="eval_every"):
        single_level.w8a_sizes("smoke", eval_every=61)  # K = 60 at smoke
    with pytest.raises(ValueError, match="K = 30 is too small for eval_every = 20"):
        theory.sizes("smoke", K=30)
    assert theory.sizes("smoke", K=40)["K"] == 40


def test_fit_recovers_a_known_slope():
    Ks = np.arange(0, 2001, 50)
    gap = np.vstack([3.0 * np.maximum(Ks, 1) ** -0.5, 5.0 * np.maximum(Ks, 1) ** -0.5])
    f = theory.fit({"eval_at": Ks[None, :], "avg_loss": gap})
    assert f.slope == pytest.approx(-0.5)
    assert np.allclose(f.slopes, -0.5)
    assert f.Ks[f.sel][0] == 100  # max(K_1 = 50, 2000 // 20 = 100)
    assert theory.fit({"eval_at": Ks[None, :], "avg_loss": gap}, start=500).Ks[f.sel].size > 0


def test_tail_mean_and_below_bound():
    rec = {"loss": np.array([[5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0, 3.0]])}
    assert np.allclose(single_level.tail_mean(rec), [1.0, 3.0])  # the last fifth: one value
    k = np.arange(1, 5)
    alpha = np.vstack([10 / np.sqrt(k), [10.0, 1.0, 1.0, 10 / 2]])  # bound, then 2 below of 4
    assert distillation.below_bound({"alpha": alpha}, 10.0) == pytest.approx(2 / 8)


def test_judge_steadier():
    alphas = (10.0, 100.0)
    failed = {("identity", "BiSPS", 10.0): np.array([1.0, 1.0]),
              ("identity", "BiSPS", 100.0): np.array([1.1, 1.1]),
              ("identity", "decaying-step SGD", 10.0): np.array([1.5, 1.5]),
              ("identity", "decaying-step SGD", 100.0): np.array([2.0, 2.0])}
    out = distillation.judge_steadier(failed, "identity", alphas)
    assert out["verdict"] == "held" and out["why"] == ""
    failed[("identity", "BiSPS", 100.0)] = np.array([3.0, 3.0])
    out = distillation.judge_steadier(failed, "identity", alphas)
    assert out["verdict"] == "not held" and "worse at alpha_b0 = [100.0]" in out["why"]
    assert distillation.loss_text(np.array([np.nan, 2.0])) == "2.000 (1/2 failed)"


def test_oracle_budget():
    rec = {"n_grad": np.array([[2.0, 2.0, 2.0], [3.0, 3.0, 3.0]]), "n_hvp": np.zeros((2, 3)),
           "val_loss": np.array([[0.9, 0.8, 0.7], [0.9, np.nan, 0.5]]),
           "initial_val_loss": np.array([1.0, 1.0]),
           "diverged": np.array([[False, False, False], [False, False, False]])}
    assert np.allclose(parameter_free.oracle_calls(rec)[1], [3, 6, 9])
    assert parameter_free.total_calls(rec) == pytest.approx(7.5)
    assert np.allclose(parameter_free.at_budget(rec, 6), [0.7, 0.9])
    assert parameter_free.calls_text(rec) == "8"  # 7.5 rounds half to even
    assert parameter_free.mean_finite(np.array([np.nan, 2.0, 4.0])) == 3.0
    assert parameter_free.mean_finite(np.array([np.nan])) == np.inf
