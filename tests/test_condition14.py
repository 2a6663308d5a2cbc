"""Condition (14) measured: the three readings of the trial point, the search
diagnostics (offset, slope, outcome), the early exit of hopeless searches and
what a failed search returns, on problems where the trial function has a closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bisls_core import bilevel as B
from bisls_core import stepsizes as ss
from bisls_core.optim import SLS
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def prob():
    return make_quadratic_bilevel(dim_x=3, dim_y=4, n=30, batch=6, seed=2)


# --------------------------------------------------------------------------- the search alone
def _quadratic_trial(f0, offset, slope, curvature):
    return lambda a: f0 + offset + slope * a + 0.5 * curvature * a * a


def test_each_outcome_from_a_constructed_case():
    ok = ss.armijo_backtracking(_quadratic_trial(1.0, 0.0, -1.0, 1.0), 1.0, 1.0, 4.0, c=0.5)
    guard = ss.armijo_backtracking(_quadratic_trial(1.0, 0.0, -1.0, 1.0), 1.0, 1e-300, 4.0)
    failed = ss.armijo_backtracking(lambda a: 2.0, 1.0, 1.0, 4.0, max_rounds=7)
    nan = ss.armijo_backtracking(lambda a: 0.0, math.nan, 1.0, 4.0)
    assert [r.outcome for r in (ok, guard, failed, nan)] == list(ss.OUTCOMES)
    assert [ss.OUTCOME_CODES[r.outcome] for r in (ok, guard, failed, nan)] == [0, 1, 2, 3]
    assert (ok.success, guard.success, failed.success, nan.success) == (True, True, False, False)
    assert guard.rounds == 0 and failed.rounds == 7 and ok.rounds == 3  # 4 and 2 fail, 1 passes
    assert failed.step == 4.0 * 0.5 ** 6 == failed.info["floor"]


@pytest.mark.parametrize("on_failure, expected", [("floor", 4.0 * 0.5 ** 9), ("none", 0.0),
                                                  ("reset", 4.0)])
def test_on_failure_names_the_step_of_a_failed_search(on_failure, expected):
    res = ss.armijo_backtracking(lambda a: 2.0, 1.0, 1.0, 4.0, max_rounds=10,
                                 on_failure=on_failure)
    assert res.outcome == "failed" and res.step == expected
    with pytest.raises(ValueError, match="on_failure"):
        ss.armijo_backtracking(lambda a: 2.0, 1.0, 1.0, 4.0, on_failure="smallest")


# (offset, slope, curvature) of a convex quadratic trial; c = 0.5, |d|^2 = 1, delta = 0:
# no step works iff offset + (slope + 0.5) a + curvature a^2 / 2 > 0 for every a > 0.
CASES = [
    (0.0, -2.0, 1.0, True),   # descent steeper than asked: small steps pass
    (0.0, -0.4, 1.0, False),  # descent, but shallower than the -p|d|^2 = -0.5 asked
    (0.0, 0.3, 1.0, False),   # ascent
    (1e-3, -2.0, 1.0, True),  # an offset, but large steps pass (the minimum is below 0)
    (1.2, -2.0, 1.0, False),  # an offset no step makes up for (1.2 > 1.5^2 / 2)
    (1e-3, 0.5, 0.0, False),  # an offset on a line
    (-1e-3, 1.0, 0.0, True),  # a negative offset (a slack): the smallest steps pass
]


@pytest.mark.parametrize("offset, slope, curv, some_step_works", CASES)
def test_early_exit_fires_exactly_when_no_step_works(offset, slope, curv, some_step_works):
    b = slope + 0.5
    analytic = offset < 0 or (b < 0 and (curv == 0 or offset - b * b / (2 * curv) < 0))
    assert analytic == some_step_works
    trial = _quadratic_trial(1.0, offset, slope, curv)
    kw = dict(c=0.5, w=0.5, max_rounds=30, model=(1.0 + offset, slope))
    full = ss.armijo_backtracking(trial, 1.0, 1.0, 8.0, **kw)
    fast = ss.armijo_backtracking(trial, 1.0, 1.0, 8.0, early_exit=True, **kw)
    assert (full.outcome == "accepted") == some_step_works
    assert (full.info["exit_round"] is None) == some_step_works  # the test fired iff hopeless
    assert fast.step == full.step and fast.outcome == full.outcome  # same step either way
    if not some_step_works:
        assert fast.info["early_exit"] and fast.rounds < full.rounds == 30
    else:
        assert fast.rounds == full.rounds and not fast.info["early_exit"]


def test_early_exit_when_the_trial_stops_changing():
    res = ss.armijo_backtracking(lambda a: 1.5, 1.0, 1.0, 8.0, max_rounds=50, early_exit=True)
    assert res.outcome == "failed" and res.rounds == 2 and res.step == 8.0 * 0.5 ** 49
    assert res.info["exit_round"] == 2
    # a trial that stops changing *below* the reference is not hopeless: it passes later
    res = ss.armijo_backtracking(lambda a: 0.9, 1.0, 1.0, 8.0, max_rounds=50, early_exit=True)
    assert res.outcome == "accepted" and res.step == 0.125
    # off a convex trial the test is a prediction, and can be wrong: a plateau, then a drop
    res = ss.armijo_backtracking(lambda a: 1.5 if a > 1 else 0.0, 1.0, 1.0, 8.0, max_rounds=50)
    assert res.outcome == "accepted" and res.info["exit_round"] == 2  # fired, then passed


def test_an_acceptance_decided_by_round_off_is_the_guard():
    """phi(a) = 1 + a (ascent): no step satisfies the test in exact arithmetic, but at
    a ~ 1e-17 both sides round to 1.0; that success is the guard's, not condition (14)'s."""
    res = ss.armijo_backtracking(lambda a: 1.0 + a, 1.0, 1.0, 8.0, max_rounds=80)
    assert res.success and res.outcome == "guard" and 1.0 + res.step == 1.0
    fast = ss.armijo_backtracking(lambda a: 1.0 + a, 1.0, 1.0, 8.0, max_rounds=80,
                                  model=(1.0, 1.0), early_exit=True)
    assert fast.outcome == "failed" and fast.rounds == 0 and fast.step == 8.0 * 0.5 ** 79


# --------------------------------------------------------------------------- the rule on the quadratic
def _input(prob, cfg, seed=0):
    """An upper input after T = 2 real inner steps (fixed lower step 0.1), so that the
    last inner step is known."""
    orc = B.Oracles(prob, cfg, torch.Generator().manual_seed(seed))
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(prob.x0.numel(), generator=gen, dtype=torch.float64)
    y = torch.randn(prob.y0.numel(), generator=gen, dtype=torch.float64)
    lower = B.FixedLower(cfg, orc)
    totals = B.LowerTotals()
    for _ in range(2):
        idx = orc.lower_batch()
        value, grad = orc.g_and_grad(x, y, idx)
        s = lower.step(x, y, value, grad, idx)
        totals.add(s)
        y = s.y
    est = orc.hypergradient(x, y)
    d, sq = B.SGDDirection(cfg, x)(0, est.result.h)
    return orc, B.UpperInput(0, x, y, d, sq, est, cfg.beta, totals.last)


def _analytic(prob, it, base, idx_g, beta):
    """phi(0) and phi'(0) of phi(a) = f(x - a d, base - beta grad_y g(x - a d, base)): the
    lower gradient is affine in x with the constant Jacobian M = d(grad_y g)/dx, so
    y_hat(a) = y_hat(0) + a beta M d and phi'(0) = -<grad_x f, d> + beta <grad_y f, M d>."""
    def grad_y_g(x):
        xx, yy = x.detach(), base.detach().requires_grad_(True)
        return torch.autograd.grad(prob.g(xx, yy, idx_g), yy, create_graph=False)[0]

    M = torch.autograd.functional.jacobian(
        lambda x: torch.func.grad(lambda y: prob.g(x, y, idx_g))(base), it.x)
    y0 = base - beta * grad_y_g(it.x)
    xx, yy = it.x.detach().requires_grad_(True), y0.detach().requires_grad_(True)
    val = prob.f(xx, yy, it.estimate.idx_f)
    gx, gy = torch.autograd.grad(val, (xx, yy))
    return float(val.detach()), float(-gx @ it.d + beta * gy @ (M @ it.d))


@pytest.mark.parametrize("reference", B.REFERENCES)
def test_recorded_offset_and_slope_match_the_closed_form(prob, reference):
    cfg = B.BilevelConfig(lower="fixed", beta=0.1, reference=reference, diagnostics=True,
                          alpha=1.0, w=0.5, max_rounds=40)
    orc, it = _input(prob, cfg)
    if reference == "penultimate":
        base, idx_g, beta = it.last.base, it.last.idx, it.last.step
    else:
        base, idx_g, beta = it.y, it.estimate.idx_g, it.beta_hat
    phi0, slope = _analytic(prob, it, base, idx_g, beta)
    up = B.BiSLSUpper(cfg, orc).step(it)
    f_ref = phi0 if reference == "one_step" else float(it.estimate.result.f_value)
    assert up.extra["upper_slope"] == pytest.approx(slope, rel=1e-10, abs=1e-12)
    assert up.extra["upper_offset"] == pytest.approx(phi0 - f_ref, abs=1e-12)
    assert up.extra["upper_asked"] == pytest.approx(-0.5 * float(it.sq_norm), rel=1e-15)
    assert (up.n_fun, up.n_hvp) == (1 + up.rounds, 1)
    if reference != "paper":  # the reference is the trial at alpha = 0: no offset
        assert abs(up.extra["upper_offset"]) <= 1e-14 * abs(f_ref)
    else:  # the trial's lower step moves y^{k+1}: an offset
        assert abs(up.extra["upper_offset"]) > 1e-8


def test_penultimate_reading_redoes_the_last_step_exactly(prob):
    cfg = B.BilevelConfig(lower="fixed", beta=0.1, reference="penultimate", alpha=1.0)
    orc, it = _input(prob, cfg)
    base, idx, beta = it.last.base, it.last.idx, it.last.step
    _, gy = orc.g_and_grad(it.x - 0.0 * it.d, base, idx)
    assert torch.equal(base - beta * gy, it.y)  # the trial at alpha = 0 is y^{k+1}, bit for bit


def _run(prob, **fields):
    cfg = B.make_config("BiSLS-SGD", K=25, T=3, beta=0.3, lower="fixed", alpha=10.0, w=0.5,
                        max_rounds=60, **fields)
    return B.run_bilevel(prob, cfg, seed=3)


@pytest.mark.parametrize("reference", ["paper", "penultimate"])
def test_early_exit_on_a_convex_trial_changes_only_the_cost(prob, reference):
    """On the quadratic the trial is a convex quadratic in alpha, so the exit is a proof:
    the same steps, the same outcomes, fewer rounds."""
    off = _run(prob, reference=reference, diagnostics=True)
    on = _run(prob, reference=reference, early_exit=True)
    fired = np.isfinite(off["upper_exit_round"])
    outcome = off["upper_outcome"]
    # the prediction recorded with the exit off is never wrong here beyond the resolution
    # of f: every failed search was called hopeless, and a search called hopeless that
    # condition (14) then accepted did so by a predicted margin within round-off
    assert fired[outcome == 2].all()
    assert (fired & (outcome >= 1)).any(), "the case must have hopeless searches"
    wrong = fired & (outcome == 0)
    margin = (off["upper_slope"] - off["upper_asked"]) * off["alpha"]
    tol = ss.ROUND_OFF * np.finfo(float).eps * np.abs(off["upper_loss"])
    assert (margin[wrong] >= -tol[wrong]).all()
    # up to the first search the exit stops and the full search accepted (by round-off),
    # the same steps and outcomes, with fewer rounds where the search failed
    first = fired & (outcome <= 1)
    k0 = int(np.argmax(first)) if first.any() else len(outcome)
    assert np.array_equal(off["alpha"][:k0], on["alpha"][:k0])
    assert np.array_equal(outcome[:k0], on["upper_outcome"][:k0])
    failed = outcome[:k0] == 2
    assert (on["upper_rounds"][:k0][failed] < off["upper_rounds"][:k0][failed]).all()
    assert np.array_equal(on["upper_rounds"][:k0][~failed], off["upper_rounds"][:k0][~failed])
    if k0 < len(outcome):  # there the exit stopped a search the full budget let round-off pass
        assert on["upper_outcome"][k0] == 2 and on["upper_rounds"][k0] < off["upper_rounds"][k0]
    assert on["n_fun"].sum() < off["n_fun"].sum()


def test_outcomes_and_counts_in_the_record(prob):
    rec = _run(prob)
    codes = rec["upper_outcome"]
    assert set(np.unique(codes)) <= {0.0, 1.0, 2.0, 3.0}
    assert np.array_equal(rec["upper_failures"] == 1, codes >= 2)  # guard is not a failure
    assert np.array_equal(rec["n_fun"], rec["upper_rounds"])  # fixed lower: trials only
    assert np.isnan(rec["upper_offset"]).all() and np.isnan(rec["upper_slope"]).all()
    none = _run(prob, on_failure="none")
    failed = none["upper_outcome"] == 2
    assert failed.any() and (none["alpha"][failed] == 0).all()


def test_guard_is_its_own_outcome_in_the_lower_record_and_in_sls():
    q = make_quadratic_bilevel(dim_x=2, dim_y=2, n=10, batch=None, seed=0, noise=0.5)
    cfg = B.make_config("BiSLS-SGD", K=3, T=60, beta=1.0, w=0.5, max_rounds=60)
    rec = B.run_bilevel(q, cfg, seed=0)
    assert rec["lower_guard"].sum() > 0  # a converged lower level: decreases below round-off
    p = torch.zeros(3, requires_grad=True)
    opt = SLS([p], lr_bound=1.0)
    opt.step(lambda: ((p - 1) ** 2).sum())
    opt.step(lambda: (p * 0).sum() + 1.0)  # a zero gradient: the guard
    assert opt.state["history"]["outcome"] == ["accepted", "guard"]


def test_new_fields_are_checked():
    with pytest.raises(ValueError, match="penultimate"):
        B.BilevelConfig(reference="penultimate", lower="external", lower_optimizer="dog")
    with pytest.raises(ValueError, match="on_failure"):
        B.BilevelConfig(on_failure="smallest")
    with pytest.raises((TypeError, ValueError), match="early_exit"):
        B.BilevelConfig(early_exit=1)
    with pytest.raises((TypeError, ValueError), match="diagnostics"):
        B.BilevelConfig(diagnostics="yes")


# --------------------------------------------------------------------------- the page's helpers
def test_page_helpers_count_outcomes_predictions_and_decades():
    from bisls_core.sweeps import condition14 as C

    rec = {"upper_outcome": np.array([[0, 1, 2, 2], [0, 0, 2, np.nan]]),
           "upper_exit_round": np.array([[np.nan, 3, 0, 5], [2, np.nan, 1, np.nan]]),
           "upper_slope": np.array([[-1.0, 0.5, 2.0, np.nan]]),
           "upper_asked": np.array([[-0.5, -0.5, -0.5, -0.5]])}
    shares = C.outcome_shares(rec)
    assert shares == pytest.approx({"accepted": 3 / 7, "guard": 1 / 7, "failed": 3 / 7})
    err = C.prediction_errors(rec)  # fired on 5 of 8: outcomes 1, 2, 2 | 0, 2
    assert err == pytest.approx({"fired": 5 / 8, "wrong": 1 / 5, "guard": 1 / 5, "failed": 3 / 5})
    assert np.array_equal(C.slope_ratios(rec), [2.0, -1.0, -4.0])
    assert C.decades(20, 0.5) == pytest.approx(20 * 0.30103, rel=1e-5)
    assert C.decades(89, 0.9) == pytest.approx(4.07, abs=0.01)


def test_page_sizes_follow_n_runs_and_check_each_other():
    from bisls_core.sweeps import condition14 as C

    assert C.sizes("cpu", n_runs=2)["n_compare"] == 2
    with pytest.raises(ValueError, match="n_compare"):
        C.sizes("cpu", n_runs=2, n_compare=3)
    with pytest.raises(ValueError, match="K"):
        C.sizes("cpu", K=1)
    labels = list(C.configs(C.sizes("smoke")))
    assert len(labels) == 2 * 3 * 2 * 2 and len(set(labels)) == len(labels)
    assert all(c["early_exit"] and c["diagnostics"] for c in C.configs(C.sizes("smoke")).values())


# --------------------------------------------------------------------------- phi'(0) = -<h_beta, d>
def _h_beta(prob, it, base, idx_g, beta):
    """h_beta = grad_x f - beta grad2_xy g grad_y f at (x^k, base - beta grad_y g): the
    hypergradient with [grad2_yy g]^-1 replaced by beta I, by autograd's cross product."""
    x = it.x.detach().requires_grad_(True)
    y_ = base.detach().requires_grad_(True)
    (gy,) = torch.autograd.grad(prob.g(x, y_, idx_g), y_, create_graph=True)
    y0 = (base - beta * gy).detach().requires_grad_(True)
    xf = it.x.detach().requires_grad_(True)
    fx, fy = torch.autograd.grad(prob.f(xf, y0, it.estimate.idx_f), (xf, y0), allow_unused=True)
    fx = torch.zeros_like(xf) if fx is None else fx
    (cross,) = torch.autograd.grad(gy, x, grad_outputs=fy)  # grad2_xy g . grad_y f
    return fx - beta * cross


@pytest.mark.parametrize("reference", B.REFERENCES)
def test_the_trial_slope_is_minus_h_beta_along_d(prob, reference):
    """The derivation on the condition (14) page: phi'(0) = -<h_beta, d> (autograd of the
    trial against the formula, on the quadratic bilevel problem)."""
    cfg = B.BilevelConfig(lower="fixed", beta=0.3, reference=reference, alpha=1.0)
    _, it = _input(prob, cfg)
    trial = B.Line14Trial(B.Oracles(prob, cfg, torch.Generator()), it, reference == "penultimate")
    _, slope = trial.model()
    h_beta = _h_beta(prob, it, trial.base, trial.idx_g, trial.beta)
    assert slope == pytest.approx(-float(h_beta @ it.d), rel=1e-10, abs=1e-12)
    # and h_beta is not the hypergradient unless beta grad2_yy g = I
    assert not torch.allclose(h_beta, it.estimate.result.h, rtol=1e-3)


class _FreeOfX:
    """f independent of x (as in distillation), g(x, y) = |y - A x|^2 / 2: with the
    identity estimator h = -grad2_xy g grad_y f = A^T grad_y f and h_beta = beta h."""

    def __init__(self, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.A = torch.randn(4, 3, generator=gen, dtype=torch.float64)
        self.b = torch.randn(4, generator=gen, dtype=torch.float64)

    def f(self, x, y, idx=None):
        return 0.5 * torch.sum((y - self.b) ** 2)

    def g(self, x, y, idx=None):
        return 0.5 * torch.sum((y - self.A @ x) ** 2)


@pytest.mark.parametrize("beta, p", [(0.3, 0.1), (0.05, 0.1), (0.5, 0.4), (0.3, 0.5)])
def test_with_the_identity_estimator_a_search_passes_at_small_steps_iff_beta_exceeds_p(beta, p):
    prob = _FreeOfX()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, generator=gen, dtype=torch.float64)
    y = prob.A @ x + 0.5 * torch.randn(4, generator=gen, dtype=torch.float64)
    h = prob.A.T @ (y - beta * (y - prob.A @ x) - prob.b)  # grad_y f at the trial's y(0)
    phi = lambda a: prob.f(None, (y - beta * (y - prob.A @ (x - a * h))))  # noqa: E731
    sq = float(h @ h)
    # zero offset (the reference is phi(0)): the test phi(a) <= phi(0) - p a |h|^2
    passes = [float(phi(a)) <= float(phi(0.0)) - p * a * sq for a in (1e-6, 1e-7, 1e-8)]
    assert all(passes) == (beta > p) and (any(passes) == (beta > p))
    slope = (float(phi(1e-7)) - float(phi(-1e-7))) / 2e-7
    assert slope == pytest.approx(-beta * sq, rel=1e-5)  # h_beta = beta h
