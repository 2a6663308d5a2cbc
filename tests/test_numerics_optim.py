"""Numerics that were silently wrong (issue 22, part B): complex parameters, losses below
the stated lower bound of a Polyak rule, and steps at a numerically zero gradient."""

from __future__ import annotations

import dataclasses
import math
import re
import warnings

import numpy as np
import pytest
import torch

from bisls_core import stepsizes as ss
from bisls_core.bilevel import make_config, run_bilevel
from bisls_core.optim import SLS, SPS
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel

torch.set_num_threads(1)

MAKERS = {
    "SLS": lambda p, g0=1.0: SLS(p, lr_bound=g0),
    "SLS c=1": lambda p, g0=1.0: SLS(p, lr_bound=g0, c=1.0),
    "SLS 2 samples": lambda p, g0=1.0: SLS(p, lr_bound=g0, samples=2),
    "SPS_max": lambda p, g0=1.0: SPS(p, lr_bound=g0, mode="max"),
    "SPSB": lambda p, g0=1.0: SPS(p, lr_bound=g0, mode="bounded", bound_schedule="constant"),
    "DecSPS": lambda p, g0=1.0: SPS(p, lr_bound=g0, mode="dec"),
}


def _closure(opt, fn):
    return fn if opt.samples == 1 else (lambda s: fn())


# --------------------------------------------------------------------------- (1) complex
@pytest.mark.parametrize("name", MAKERS)
def test_complex_parameters_are_refused_at_construction(name):
    """The optimizers used the real part of the gradient norm only (SPS_max went from a
    loss of 7 to 66757 in 5 steps on a complex parameter)."""
    z = torch.tensor([1 + 2j, -1j], dtype=torch.complex64, requires_grad=True)
    with pytest.raises(TypeError, match=r"param group 0 .*complex dtype torch.complex64"):
        MAKERS[name]([z])


def test_complex_parameters_added_later_are_refused():
    x = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    z = torch.zeros(2, dtype=torch.complex128, requires_grad=True)
    opt = SPS([x], mode="max")
    with pytest.raises(TypeError, match=r"param group 1 .*complex128"):
        opt.add_param_group({"params": [z]})
    assert len(opt.param_groups) == 1  # the refused group is not left behind
    opt.step(lambda: ((x - 1) ** 2).sum())  # the optimizer still works
    opt.param_groups[0]["params"].append(z)  # put in by hand: refused at the step
    with pytest.raises(TypeError, match=r"param group 0 .*complex128"):
        opt.step(lambda: ((x - 1) ** 2).sum() + (z.abs() ** 2).sum())


# --------------------------------------------------------------------------- (2) lower bounds
def _quad_bilevel(shift_f=0.0, shift_g=0.0):
    p = make_quadratic_bilevel(dim_x=4, dim_y=4, n=40)
    f, g = p.f, p.g
    return dataclasses.replace(p, f=lambda x, y, i: f(x, y, i) - shift_f,
                               g=lambda x, y, i: g(x, y, i) - shift_g)


def _warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn()
    return out, [w for w in caught if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("samples", [1, 2])
def test_bisps_warns_once_when_g_is_below_its_lower_bound(samples):
    """g < g_lower_bound = 0: every lower step was 0, silently, for the whole run."""
    problem = _quad_bilevel(shift_g=1e3)
    rec, caught = _warnings(lambda: run_bilevel(problem, make_config("BiSPS", K=4, T=3,
                                                                      samples=samples)))
    assert np.all(rec["beta"] == 0)  # the defect itself: no lower step at all
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "g_lower_bound = 0.0" in msg and "outer iteration 0" in msg
    assert re.search(r"g = -9\d\d\.\d+", msg)


def test_bisps_warns_once_when_f_is_below_its_lower_bound():
    problem = _quad_bilevel(shift_f=1e3)
    _, caught = _warnings(lambda: run_bilevel(problem, make_config("BiSPS", K=4, T=2)))
    assert len(caught) == 1 and "f_lower_bound = 0.0" in str(caught[0].message)


def test_bisps_on_a_true_bound_does_not_warn():
    problem = make_quadratic_bilevel(dim_x=4, dim_y=4, n=40, batch=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_bilevel(problem, make_config("BiSPS", K=5, T=3))
        run_bilevel(problem, make_config("BiSPS", K=3, T=2, samples=2))


@pytest.mark.parametrize("mode", ["max", "bounded", "dec"])
def test_sps_warns_once_when_the_loss_is_below_f_star(mode):
    x = torch.tensor([3.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = SPS([x], mode=mode, f_star=1.0)

    def steps():
        for _ in range(3):
            opt.step(lambda: 0.5 * (x ** 2).sum() * 0.01)  # 0.05 < f_star = 1

    _, caught = _warnings(steps)
    assert len(caught) == 1
    assert re.search(r"loss 0\.05\d* seen at iteration 0 is below f_star=1\.0",
                     str(caught[0].message))
    assert opt.state["history"]["step"] == [0.0] * 3  # the ratio is 0


def test_sps_on_a_true_bound_does_not_warn():
    x = torch.tensor([3.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = SPS([x], mode="max")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(20):
            opt.step(lambda: 0.5 * (x ** 2).sum())


# --------------------------------------------------------------------------- (3) zero gradients
def _least_squares(seed=0, n=50, d=5):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, d, generator=g, dtype=torch.float64)
    b = torch.randn(n, generator=g, dtype=torch.float64)
    x_star = torch.linalg.lstsq(A, b.unsqueeze(1)).solution.squeeze(1)
    L = float(torch.linalg.eigvalsh(A.T @ A / n).max())
    return (lambda x: 0.5 * ((A @ x - b) ** 2).mean()), x_star, L


@pytest.mark.parametrize("name", MAKERS)
def test_the_least_squares_minimiser_stays_put(name):
    """From the exact minimiser, with a start step 12/L > 2/L, the round-off guard took
    the unsearched start step and the gradient norm grew 11x per step (7e-17 to 8e-10 in
    8 steps); the parameters now stay at the minimiser and the steps are skipped."""
    f, x_star, L = _least_squares()
    x = x_star.clone().requires_grad_(True)
    opt = MAKERS[name]([x], 12.0 / L)
    for _ in range(8):
        opt.step(_closure(opt, lambda: f(x)))
    h = opt.state["history"]
    assert torch.equal(x.detach(), x_star)
    assert h["grad_sq_norm"] == [h["grad_sq_norm"][0]] * 8 and h["grad_sq_norm"][0] < 1e-30
    assert h["skipped"] == [True] * 8
    assert all(s > 0 for s in h["step"])  # the step the rule gave, recorded, not taken


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size", [(20, 3), (50, 5), (200, 20), (1000, 50)])
def test_least_squares_minimisers_are_numerically_zero_gradients(seed, size):
    f, x_star, L = _least_squares(seed, *size)
    x = x_star.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x), x)
    assert ss.numerically_zero(f(x).detach(), float((grad ** 2).sum()), 12.0 / L)


def test_off_the_minimiser_the_optimizers_still_move():
    f, x_star, L = _least_squares()
    for name, make in MAKERS.items():
        x0 = x_star + 1e-3
        x = x0.clone().requires_grad_(True)
        opt = make([x], 1.0 / L)
        for _ in range(20):
            opt.step(_closure(opt, lambda x=x: f(x)))
        assert not any(opt.state["history"]["skipped"]), name
        assert float(f(x.detach())) < float(f(x0)), name


def test_what_is_numerically_zero():
    one = torch.tensor(1.0, dtype=torch.float64)
    eps = torch.finfo(torch.float64).eps
    assert ss.numerically_zero(one, 0.0) and ss.numerically_zero(0.0, 0.0)  # exact zeros
    assert ss.numerically_zero(one, 64 * eps**2) and not ss.numerically_zero(one, 65 * eps**2)
    assert not ss.numerically_zero(one, 64 * eps**2, step=2.0)  # scales with the step
    assert not ss.numerically_zero(0.0, 1e-300)  # vanishing with f (interpolation)
    assert not ss.numerically_zero(math.nan, 0.0) and not ss.numerically_zero(one, math.inf)
    f32 = torch.tensor(1.0, dtype=torch.float32)  # the dtype of the loss decides
    assert ss.numerically_zero(f32, 1e-13) and not ss.numerically_zero(one, 1e-13)
    # it implies the round-off guard (c <= 1): the search is skipped there too
    res = ss.armijo_backtracking(lambda a: 1.0, one, 64 * eps**2, 1.0, c=1.0)
    assert res.outcome == "guard"


def test_a_float32_guard_step_that_is_not_numerically_zero_is_taken():
    """The round-off guard's own regime (decrease below the loss's resolution, gradient
    far above round-off) keeps the start step, as in every committed result."""
    b = torch.tensor([0.5], dtype=torch.float32)
    x = (b + 1e-4).requires_grad_(True)
    opt = SLS([x], lr_bound=1.0, c=0.5, w=0.5, max_rounds=10)
    opt.step(lambda: 1.0 + ((x - b) ** 2).sum())
    h = opt.state["history"]
    assert h["outcome"] == ["guard"] and h["skipped"] == [False]
    assert not torch.equal(x.detach(), b + 1e-4)
