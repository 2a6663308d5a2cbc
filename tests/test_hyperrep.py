"""The hyper-representation problem (Appendix A.2) and its notebooks' shared settings."""

import numpy as np
import pytest
import torch

from bisls_core import experiments
from bisls_core.bilevel import make_config, run_config
from bisls_core.sweeps import hyperrep

torch.set_num_threads(1)
SMALL = dict(n_train=64, n_val=32, n_test=32, batch_train=16, batch_val=16)


@pytest.fixture(scope="module")
def problem():
    return hyperrep.make(seed=0, **SMALL)


def test_shapes_and_values_at_init(problem):
    x, y = problem.x0, problem.y0
    assert x.ndim == y.ndim == 1 and y.numel() == 84 * 10
    assert problem.n_lower == 64 and problem.n_upper == 32
    idx = torch.arange(16)
    # c = 0 predicts 0 for one-hot targets: F = g = 1/2 (the ridge term vanishes)
    assert float(problem.f(x, y, idx)) == pytest.approx(0.5)
    assert float(problem.g(x, y, None)) == pytest.approx(0.5)
    m = problem.metrics(x, y)
    assert set(m) == {"val_loss", "val_acc", "test_acc"}
    assert float(m["val_loss"]) == pytest.approx(0.5)
    assert 0.0 <= float(m["val_acc"]) <= 1.0 and 0.0 <= float(m["test_acc"]) <= 1.0


def test_memoised_features_match_a_fresh_problem(problem):
    gen = torch.Generator().manual_seed(3)
    y = torch.randn(problem.y0.shape, generator=gen)
    x2 = problem.x0 + 0.01 * torch.randn(problem.x0.shape, generator=gen)
    idx = torch.arange(5, 21)
    fresh = hyperrep.make(seed=0, **SMALL)
    for x in (problem.x0, x2, problem.x0):  # hit, miss, hit again after a miss
        for _ in range(2):
            assert torch.equal(problem.g(x, y, idx), fresh.g(x.clone(), y, idx.clone()))
            assert torch.equal(problem.f(x, y, idx), fresh.f(x.clone(), y, idx.clone()))
    # with a graph to x (the hypergradient's path) the value is the same as memoised
    xg = problem.x0.clone().requires_grad_(True)
    assert torch.allclose(problem.g(xg, y, idx), problem.g(problem.x0, y, idx))


@pytest.mark.parametrize("scale", experiments.SCALES)
def test_presets_give_valid_configs(scale):
    sz = hyperrep.sizes(scale)
    configs = [hyperrep.bisls(sz, "BiSLS-SGD"), hyperrep.bisls(sz, "BiSLS-Adam", eta=10.0),
               hyperrep.config(sz, "BiSPS", lower="fixed", beta=10.0, samples=2),
               hyperrep.config(sz, "decaying-step SGD", alpha=1.0, beta=10.0)]
    configs += [*hyperrep.tuning_configs(sz, "SGD").values(),
                *hyperrep.tuning_configs(sz, "Adam").values()]
    for cfg in configs:
        run = {k: v for k, v in cfg.items() if k not in ("problem", "problem_args", "method")}
        assert make_config(cfg["method"], **run).K == sz["K"]
        assert cfg["problem_args"]["n_train"] + cfg["problem_args"]["n_val"] <= 8000
    assert "w" not in hyperrep.config(sz, "SGD", alpha=0.1, beta=1.0)  # fixed steps do not search
    assert hyperrep.config(sz, "SGD", alpha=0.1, beta=1.0, lower="armijo")["w"] == sz["w"]


def test_bad_names_are_clear_errors():
    sz = hyperrep.sizes("smoke")
    with pytest.raises(ValueError, match="method"):
        hyperrep.bisls(sz, "SGD")
    with pytest.raises(TypeError, match="unknown BilevelConfig"):
        hyperrep.config(sz, "SGD", alfa=1.0)
    assert hyperrep.sizes("smoke", n_runs=3)["n_sweep"] == 3


def test_smoke_run_of_bisls_adam_is_finite():
    cfg = hyperrep.bisls(hyperrep.sizes("smoke"), "BiSLS-Adam")
    rec = run_config(cfg, seed=0, device="cpu")
    for key in ("upper_loss", "lower_loss", "alpha", "beta", "upper_rounds", "time"):
        assert np.isfinite(rec[key]).all(), key
    one_run = {k: v[None] for k, v in rec.items()}
    assert np.isfinite(experiments.final_values(one_run, "val_loss")).all()
    assert not rec["diverged"].any()


def test_grid_helpers():
    rec = {"val_loss": np.array([[0.4, np.nan, 0.3], [0.5, np.nan, 0.2]]),
           "initial_val_loss": np.array([0.5, 0.5]),
           "diverged": np.array([[False, False, False], [False, False, False]])}
    x, y = experiments.curve(rec, "val_loss", every=2)
    assert x.tolist() == [0, 1, 3] and y[:, 0].tolist() == [0.5, 0.5]
    bad = {**rec, "diverged": np.array([[False] * 3, [False, True, True]])}
    assert np.isnan(experiments.final_values(bad, "val_loss")[1])
    assert experiments.best_label({"a": bad, "b": rec}) == "b"


def test_similar_weighs_spread_against_run_scatter():
    ok, spread, noise = experiments.similar([np.array([1.0, 1.4]), np.array([1.25, 1.35])])
    assert ok and spread == pytest.approx(0.1 / 1.2) and noise > spread
    assert not experiments.similar([np.array([1.0]), np.array([1.1])])[0]  # 10% > 5%, no scatter
    assert not experiments.similar([np.array([1.0, np.nan]), np.array([1.0, 1.0])])[0]
