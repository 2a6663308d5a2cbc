"""The bilevel loop: records, reproducibility, line-search budgets, divergence, validation."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch

from bisls_core.bilevel import (
    METHODS,
    RECORD_KEYS,
    BilevelConfig,
    make_config,
    run_bilevel,
    run_config,
)
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel

torch.set_num_threads(1)

CUDA = torch.cuda.is_available()
METRICS = ("F", "F_gap", "grad_norm", "y_error")


@pytest.fixture(scope="module")
def det():
    """Deterministic (full-batch) quadratic bi-level problem."""
    return make_quadratic_bilevel(dim_x=4, dim_y=4, n=40)


@pytest.fixture(scope="module")
def sto():
    """Stochastic version (batches of 8)."""
    return make_quadratic_bilevel(dim_x=4, dim_y=4, n=40, batch=8)


def _equal_records(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_record_keys_and_lengths(sto):
    K = 6
    rec = run_bilevel(sto, make_config("BiSLS-SGD", K=K, T=3, keep_final=True))
    for key in (*RECORD_KEYS, *METRICS):
        assert rec[key].shape == (K,), key
    for key in METRICS:
        assert rec[f"initial_{key}"].shape == ()
    assert rec["diverged"].dtype == bool and not rec["diverged"].any()
    assert rec["x_final"].shape == (4,) and rec["y_final"].shape == (4,)
    assert np.all(np.diff(rec["time"]) >= 0)
    assert np.all(rec["n_hvp"] == 11)  # cg, 10 steps + the cross product
    assert "x_final" not in run_bilevel(sto, make_config("SGD", K=2, T=1, alpha=0.1, beta=0.1))


@pytest.mark.parametrize("method", list(METHODS))
def test_same_seed_same_record(sto, method):
    cfg = make_config(method, K=5, T=3, alpha=0.1, beta=0.3, hypergrad="neumann_stochastic",
                      hypergrad_lr=0.5)
    a, b = run_bilevel(sto, cfg, seed=7), run_bilevel(sto, cfg, seed=7)
    for rec in (a, b):
        rec.pop("time")
    _equal_records(a, b)
    c = run_bilevel(sto, cfg, seed=8)
    assert not np.array_equal(a["upper_loss"], c["upper_loss"])


def test_global_rng_untouched(sto):
    state = torch.random.get_rng_state()
    run_bilevel(sto, make_config("BiSPS", K=3, T=2, samples=2))
    assert torch.equal(state, torch.random.get_rng_state())


def test_bisls_sgd_decreases_F(det):
    rec = run_bilevel(det, make_config("BiSLS-SGD", K=30, T=5))
    assert not rec["diverged"].any()
    assert rec["F_gap"][-1] < 0.3 * float(rec["initial_F_gap"])
    assert np.all(rec["alpha"] > 0) and rec["upper_rounds"].max() >= 1


def test_bisls_sgd_converges_when_one_lower_step_is_exact():
    """With H = I the lower search takes beta = 1 and the one-step y-hat of Algorithm 2
    (line 14) is y*(x-hat) exactly: condition (14) then tests F itself."""
    prob = make_quadratic_bilevel(dim_x=4, dim_y=4, n=40, identity_hessian=True)
    rec = run_bilevel(prob, make_config("BiSLS-SGD", K=30, T=5))
    assert rec["F_gap"][-1] < 1e-3 * float(rec["initial_F_gap"])
    assert rec["upper_failures"].sum() == 0


@pytest.mark.parametrize(
    "method, kw",
    [
        ("BiSLS-Adam", {}),
        ("BiSPS", {}),
        ("BiSPS", dict(samples=2)),
        ("BiSPS", dict(lower="fixed", beta=0.3)),
        ("SGD", dict(alpha=0.3, beta=0.3)),
        ("Adam", dict(alpha=0.05, beta=0.3)),
        ("decaying-step SGD", dict(alpha=0.3, beta=0.3)),
        ("BiSLS-SGD", dict(lower="sps", samples=2, delta=1e-3, reset_upper="reset")),
        ("BiSLS-SGD", dict(warm_start=False, hypergrad="neumann", hypergrad_lr=0.5)),
    ],
)
def test_methods_run_and_decrease_F(sto, method, kw):
    rec = run_bilevel(sto, make_config(method, K=20, T=4, **kw), seed=1)
    assert not rec["diverged"].any()
    assert rec["F_gap"][-1] < 0.6 * float(rec["initial_F_gap"])


def test_bisps_step_is_inside_its_envelope(sto):
    cfg = make_config("BiSPS", K=10, T=3, alpha=2.0, alpha_l0=0.05)
    rec = run_bilevel(sto, cfg)
    root = np.sqrt(np.arange(10) + 1)
    assert np.all(rec["alpha"] <= 2.0 / root + 1e-15)
    assert np.all(rec["alpha"] >= 0.05 / root - 1e-15)


def test_bisps_two_samples_doubles_second_order_cost(sto):
    one = run_bilevel(sto, make_config("BiSPS", K=3, T=2))
    two = run_bilevel(sto, make_config("BiSPS", K=3, T=2, samples=2))
    np.testing.assert_array_equal(two["n_hvp"], 2 * one["n_hvp"])


def test_decaying_and_fixed_steps_are_recorded(det):
    rec = run_bilevel(det, make_config("decaying-step SGD", K=4, T=2, alpha=0.4, beta=0.2))
    np.testing.assert_allclose(rec["alpha"], 0.4 / np.sqrt(np.arange(1, 5)))
    np.testing.assert_allclose(rec["beta"], 0.2)
    assert np.all(rec["upper_rounds"] == 0) and np.all(rec["lower_rounds"] == 0)


def test_line_searches_respect_budget_and_record_failures(sto):
    cfg = make_config("BiSLS-SGD", K=4, T=3, alpha=1e8, beta=1e8, max_rounds=3,
                      reset_upper="reset")
    rec = run_bilevel(sto, cfg)
    assert np.all(rec["upper_rounds"] <= 3) and np.all(rec["lower_rounds"] <= 3)
    assert rec["upper_failures"].sum() == 4
    assert rec["lower_failures"].sum() == 4 * 3
    # a failed search takes the smallest tried step: start * w**(max_rounds - 1)
    np.testing.assert_allclose(rec["alpha"], 1e8 * 0.9**2)


def test_sps_lower_step_is_bounded_by_schedule(sto):
    cfg = make_config("BiSPS", K=5, T=3, beta=0.5, beta_schedule="inv")
    rec = run_bilevel(sto, cfg)
    assert np.all(rec["beta"] <= 0.5 / np.arange(1, 6) + 1e-15)


def test_divergence_is_recorded_without_warnings(det):
    K = 60
    cfg = make_config("SGD", K=K, T=2, alpha=1e4, beta=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = run_bilevel(det, cfg)
    div = rec["diverged"]
    assert div.any() and len(div) == K
    first = int(np.argmax(div))
    assert div[first:].all() and not div[:first].any()
    for key in ("upper_loss", "lower_loss", "alpha", "F", "time"):
        assert rec[key].shape == (K,)
        assert np.isnan(rec[key][first + 1:]).all(), key
        assert np.isfinite(rec[key][:first]).all(), key


def test_eval_every(det):
    rec = run_bilevel(det, make_config("SGD", K=7, T=1, alpha=0.1, beta=0.1, eval_every=3))
    evaluated = ~np.isnan(rec["F"])
    np.testing.assert_array_equal(evaluated, [True, False, False, True, False, False, True])
    assert np.isfinite(rec["upper_loss"]).all()


def test_adam_momentum_has_plus_sign(det):
    """With the paper's printed minus (m = b1 m - (1 - b1) h) Adam would ascend."""
    rec = run_bilevel(det, make_config("Adam", K=15, T=3, alpha=0.05, beta=0.3))
    assert np.all(np.diff(rec["F"]) < 0)


@pytest.mark.parametrize(
    "field, value",
    [
        ("upper", "sls"), ("direction", "rmsprop"), ("lower", "newton"),
        ("reset_upper", "restart"), ("reset_lower", 1), ("beta_schedule", "exp"),
        ("hypergrad", "lbfgs"), ("samples", 3),
    ],
)
def test_invalid_choices_list_valid_ones(field, value):
    with pytest.raises(ValueError, match="valid values are") as err:
        BilevelConfig(**{field: value})
    assert field in str(err.value)


@pytest.mark.parametrize(
    "kw",
    [
        dict(K=0), dict(T=0), dict(K=2.5), dict(alpha=-1.0), dict(beta=0.0), dict(p=1.5),
        dict(p=0.0), dict(w=1.0), dict(delta=-1e-3), dict(eta=0.5), dict(max_rounds=0),
        dict(alpha=1.0, alpha_l0=2.0), dict(hypergrad="neumann_stochastic", hypergrad_steps=0),
        dict(adam_betas=(0.9, 1.0)), dict(adam_eps=0.0), dict(eval_every=0), dict(hypergrad_lr=0.0),
        dict(upper="bisps", direction="adam"),
    ],
)
def test_invalid_values_raise(kw):
    with pytest.raises(ValueError):
        BilevelConfig(**kw)


def test_make_config():
    cfg = make_config("BiSLS-Adam", K=3, alpha=10.0)
    got = (cfg.upper, cfg.direction, cfg.lower, cfg.K, cfg.alpha)
    assert got == ("bisls", "adam", "armijo", 3, 10.0)
    with pytest.raises(ValueError, match="valid values are"):
        make_config("BiSLS")
    with pytest.raises(TypeError, match="valid fields"):
        make_config("SGD", learning_rate=0.1)
    assert BilevelConfig(alpha=3.0).alpha_low == pytest.approx(0.3)
    assert dataclasses.replace(BilevelConfig(alpha=3.0), alpha=1.0).alpha_low == pytest.approx(0.1)


def test_bad_config_type(det):
    with pytest.raises(TypeError):
        run_bilevel(det, {"K": 3})


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_path_matches_cpu():
    cpu = make_quadratic_bilevel(dim_x=4, dim_y=4, n=40, batch=8)
    gpu = make_quadratic_bilevel(dim_x=4, dim_y=4, n=40, batch=8, device="cuda")
    cfg = make_config("BiSLS-SGD", K=5, T=3)
    a, b = run_bilevel(cpu, cfg, seed=3), run_bilevel(gpu, cfg, seed=3)
    np.testing.assert_allclose(a["F"], b["F"], rtol=1e-6)
    np.testing.assert_array_equal(a["upper_rounds"], b["upper_rounds"])


@pytest.mark.parametrize("field", ["alpha", "beta", "delta", "eta", "alpha_l0", "p", "w",
                                   "adam_eps", "hypergrad_lr"])
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_infinite_or_nan_settings_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        BilevelConfig(**{field: value})


def test_integer_fields_take_integral_floats_only():
    cfg = BilevelConfig(K=3.0, T=2.0)
    assert (cfg.K, cfg.T) == (3, 2) and isinstance(cfg.K, int)
    with pytest.raises(TypeError, match="max_rounds"):
        BilevelConfig(max_rounds="50")


def test_run_config_without_method_lists_the_methods():
    with pytest.raises(ValueError, match="lacks 'method'.*'BiSLS-SGD'.*'DoG'"):
        run_config({"problem": "quadratic_bilevel", "K": 2})


@pytest.mark.parametrize("method", ["BiSLS-SGD", "BiSLS-Adam"])
def test_an_interrupted_search_leaves_the_problem_untouched(method):
    """The searches evaluate new points and never move a tensor in place: when a trial
    raises (here a KeyboardInterrupt in the third upper trial), nothing is half-moved."""
    base = make_quadratic_bilevel(dim_x=4, dim_y=4, n=40)
    calls = [0]

    def f(x, y, idx=None):
        if not torch.is_grad_enabled():  # a trial of condition (14)
            calls[0] += 1
            if calls[0] == 3:
                raise KeyboardInterrupt
        return base.f(x, y, idx)

    prob = dataclasses.replace(base, f=f)
    x0, y0 = prob.x0.clone(), prob.y0.clone()
    with pytest.raises(KeyboardInterrupt):
        run_bilevel(prob, make_config(method, K=5, T=2, alpha=1e3))
    assert torch.equal(prob.x0, x0) and torch.equal(prob.y0, y0)
