"""Each rule of the bilevel loop on its own, without the loop: the lower rules, the
upper rules, the directions, the registries and the record."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from bisls_core import bilevel as B
from bisls_core import stepsizes as ss
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def prob():
    return make_quadratic_bilevel(dim_x=3, dim_y=4, n=30, batch=6, seed=2)


def _oracles(prob, seed=0, **fields):
    cfg = B.BilevelConfig(**fields)
    return cfg, B.Oracles(prob, cfg, torch.Generator().manual_seed(seed))


def _point(prob, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(prob.x0.numel(), generator=gen, dtype=torch.float64)
    y = torch.randn(prob.y0.numel(), generator=gen, dtype=torch.float64)
    return x, y


def _lower_step(rule, oracles, x, y):
    idx = oracles.lower_batch()
    value, grad = oracles.g_and_grad(x, y, idx)
    return idx, value, grad, rule.step(x, y, value, grad, idx)


# --------------------------------------------------------------------------- lower rules
def test_fixed_lower_is_a_gradient_step(prob):
    cfg, orc = _oracles(prob, lower="fixed", upper="fixed", beta=0.3)
    x, y = _point(prob)
    _, _, grad, s = _lower_step(B.FixedLower(cfg, orc), orc, x, y)
    torch.testing.assert_close(s.y, y - 0.3 * grad)
    assert (s.step, s.rounds, s.failed, s.n_grad, s.stop) == (0.3, 0, 0, 0, False)


@pytest.mark.parametrize("samples", [1, 2])
def test_sps_lower_is_eq_11_with_its_schedule(prob, samples):
    cfg, orc = _oracles(prob, lower="sps", upper="bisps", beta=0.8, beta_schedule="inv_sqrt",
                        samples=samples, p=0.5)
    rule = B.SPSLower(cfg, orc)
    x, y = _point(prob)
    y = rule.begin(3, y, restart=False)
    state = orc.gen.get_state()
    _, value, grad, s = _lower_step(rule, orc, x, y)
    if samples == 2:  # the ratio comes from a second batch, drawn after the step's own
        gen = torch.Generator()
        gen.set_state(state)
        prob.sample_lower(gen)
        value, grad_s = orc.g_and_grad(x, y, prob.sample_lower(gen))
    else:
        grad_s = grad
    bound = 0.8 / math.sqrt(4)
    expected = ss.sps_max(value, float(grad_s @ grad_s), bound, c=0.5)
    assert float(s.step) == pytest.approx(float(expected), rel=1e-12)
    assert float(s.step) <= bound
    assert s.n_grad == samples - 1
    torch.testing.assert_close(s.y, y - s.step * grad)


def test_armijo_lower_is_the_shared_search_and_remembers_accepted_steps(prob):
    cfg, orc = _oracles(prob, beta=50.0, reset_lower="keep", w=0.5)
    rule = B.ArmijoLower(cfg, orc)
    x, y = _point(prob)
    idx, value, grad, s = _lower_step(rule, orc, x, y)
    res = ss.armijo_backtracking(lambda b: prob.g(x, y - b * grad, idx), value,
                                 float(grad @ grad), 50.0, c=0.5, w=0.5, max_rounds=200)
    assert s.step == res.step and s.rounds == res.rounds and s.failed == 0
    assert rule.prev == res.step and rule.line14_step(123.0) == res.step
    torch.testing.assert_close(s.y, y - res.step * grad)
    # condition (8) holds at the accepted step and fails at the one tried before it
    g_new = float(prob.g(x, s.y, idx))
    assert g_new <= float(value) - 0.5 * s.step * float(grad @ grad)
    assert float(prob.g(x, y - 2 * s.step * grad, idx)) > float(value) - s.step * float(grad @ grad)
    # option "keep": the next search starts from the remembered step
    _, _, _, s2 = _lower_step(rule, orc, x, s.y)
    assert s2.step <= s.step


def test_armijo_lower_forgets_failed_searches_and_stops_on_nan(prob):
    cfg, orc = _oracles(prob, beta=1e9, max_rounds=2, reset_lower="grow")
    rule = B.ArmijoLower(cfg, orc)
    x, y = _point(prob)
    _, _, _, s = _lower_step(rule, orc, x, y)
    assert s.failed == 1 and s.rounds == 2 and rule.prev is None
    assert rule.line14_step(0.7) == 0.7  # nothing accepted yet: the last step
    nan_y = torch.full_like(y, math.nan)
    _, _, _, s = _lower_step(rule, orc, x, nan_y)
    assert s.stop and s.failed == 1 and s.rounds == 0 and torch.isnan(s.y).all()


def test_external_lower_restarts_its_optimizer(prob):
    pytest.importorskip("dog")
    cfg, orc = _oracles(prob, lower="external", lower_optimizer="dog")
    rule = B.ExternalLower(cfg, orc)
    x, y = _point(prob)
    first = rule.ext
    assert torch.equal(rule.begin(0, y, restart=True), y) and rule.ext is not first
    _, _, grad, s = _lower_step(rule, orc, x, y)
    assert s.step > 0 and not torch.equal(s.y, y)
    bad = rule.step(x, y, torch.tensor(math.inf), grad, None)
    assert bad.stop and bad.failed == 1


# --------------------------------------------------------------------------- upper rules
def _upper_input(prob, cfg, orc, k=0, direction=None):
    x, y = _point(prob, 5)
    est = orc.hypergradient(x, y)
    d, sq = (direction or B.SGDDirection(cfg, x))(k, est.result.h)
    return B.UpperInput(k, x, y, d, sq, est, 0.1)


@pytest.mark.parametrize("name, alpha", [("fixed", 0.4), ("decay", 0.4 / math.sqrt(4))])
def test_fixed_and_decaying_steps(prob, name, alpha):
    cfg, orc = _oracles(prob, upper=name, lower="fixed", alpha=0.4)
    it = _upper_input(prob, cfg, orc, k=3)
    up = B.UPPER_RULES[name](cfg, orc).step(it)
    assert up.alpha == pytest.approx(alpha, rel=1e-15)
    torch.testing.assert_close(up.x, it.x - up.alpha * it.d)
    assert (up.rounds, up.failures, up.n_grad, up.n_hvp) == (0, 0, 0, 0)


@pytest.mark.parametrize("samples", [1, 2])
def test_bisps_upper_is_the_envelope_of_eq_12(prob, samples):
    cfg, orc = _oracles(prob, upper="bisps", lower="sps", alpha=2.0, alpha_l0=0.01, p=0.5,
                        samples=samples)
    it = _upper_input(prob, cfg, orc, k=3)
    state = orc.gen.get_state()
    up = B.BiSPSUpper(cfg, orc).step(it)
    hg = it.estimate.result
    if samples == 2:  # a second hypergradient on the next batches of the run's generator
        orc2 = B.Oracles(prob, cfg, torch.Generator())
        orc2.gen.set_state(state)
        hg = orc2.hypergradient(it.x, it.y).result
        assert up.n_hvp == hg.n_hvp and up.n_grad == 2
    tilde = (float(hg.f_value) - 0.0) / (0.5 * float(hg.h @ hg.h))
    expected = min(max(0.01 / 2, tilde), 2.0 / 2)
    assert up.alpha == pytest.approx(expected, rel=1e-12)


def test_bisls_upper_finds_the_first_step_that_satisfies_condition_14(prob):
    cfg, orc = _oracles(prob, alpha=1e3, w=0.5, reset_upper="grow", eta=2.0, delta=0.0)
    it = _upper_input(prob, cfg, orc)
    rule = B.BiSLSUpper(cfg, orc)
    up = rule.step(it)
    idx_f, idx_g = it.estimate.idx_f, it.estimate.idx_g

    def F_hat(a):
        x_hat = it.x - a * it.d
        _, gy = orc.g_and_grad(x_hat, it.y, idx_g)
        return float(prob.f(x_hat, it.y - 0.1 * gy, idx_f))

    f0, sq = float(it.estimate.result.f_value), float(it.sq_norm)
    assert up.failures == 0 and up.rounds >= 2 and up.n_grad == up.rounds
    assert F_hat(up.alpha) <= f0 - 0.5 * up.alpha * sq
    assert F_hat(2 * up.alpha) > f0 - up.alpha * sq  # the step tried before it failed
    assert up.alpha == 1e3 * 0.5 ** (up.rounds - 1) and rule.prev == up.alpha
    torch.testing.assert_close(up.x, it.x - up.alpha * it.d)
    # option 3: the next search starts from eta times the accepted step
    nxt = rule.step(it)
    assert nxt.alpha == 2 * up.alpha * 0.5 ** (nxt.rounds - 1)


def test_bisls_upper_one_step_reference_and_non_finite_input(prob):
    cfg, orc = _oracles(prob, reference="one_step", alpha=1.0)
    it = _upper_input(prob, cfg, orc)
    up = B.BiSLSUpper(cfg, orc).step(it)
    assert up.n_grad == up.rounds + 1  # the trial at alpha = 0
    bad = dataclasses.replace(it, sq_norm=torch.tensor(math.nan))
    rule = B.BiSLSUpper(cfg, orc)
    up = rule.step(bad)
    assert (up.alpha, up.rounds, up.failures) == (1.0, 0, 1) and rule.prev is None


def test_external_upper_steps_on_the_hypergradient(prob):
    pytest.importorskip("prodigyopt")
    cfg, orc = _oracles(prob, upper="external", upper_optimizer="prodigy", lower="fixed")
    it = _upper_input(prob, cfg, orc)
    rule = B.ExternalUpper(cfg, orc)
    up = rule.step(it)
    assert up.alpha > 0 and not torch.equal(up.x, prob.x0)
    bad = dataclasses.replace(it, estimate=dataclasses.replace(
        it.estimate, result=dataclasses.replace(it.estimate.result, h=it.d * math.nan)))
    assert torch.isnan(rule.step(bad).x).all()


# --------------------------------------------------------------------------- directions
def test_sgd_direction():
    h = torch.tensor([3.0, -4.0], dtype=torch.float64)
    d, sq = B.SGDDirection(B.BilevelConfig(), h)(0, h)
    assert torch.equal(d, h) and float(sq) == 25.0


def test_adam_direction_against_its_formulas():
    cfg = B.BilevelConfig(direction="adam", adam_betas=(0.8, 0.9), adam_eps=1e-3)
    h0 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    h1 = torch.tensor([0.5, 4.0], dtype=torch.float64)
    adam = B.AdamDirection(cfg, h0)
    adam(0, h0)
    d, sq = adam(1, h1)
    m = 0.8 * (0.2 * h0) + 0.2 * h1  # plus sign (ERRATA), from m = 0
    v = 0.9 * (0.1 * h0**2) + 0.1 * h1**2
    a = torch.sqrt(v / (1 - 0.9**2)) + 1e-3
    torch.testing.assert_close(d, m / (1 - 0.8**2) / a, rtol=1e-14, atol=0)
    assert float(sq) == pytest.approx(float(torch.sum(h1 * h1 / a)), rel=1e-14)


# --------------------------------------------------------------------------- registries, record
def test_registries_hold_the_protocols():
    assert list(B.LOWER_RULES) == ["fixed", "sps", "armijo", "external"]
    assert list(B.UPPER_RULES) == ["fixed", "decay", "bisps", "bisls", "external"]
    assert list(B.DIRECTIONS) == ["sgd", "adam"]
    assert all(issubclass(r, B.LowerRule) for r in B.LOWER_RULES.values())
    assert all(issubclass(r, B.UpperRule) for r in B.UPPER_RULES.values())


class _Halving(B.UpperRule):
    """A rule defined outside the module: alpha_k = alpha / 2^k, with a diagnostic."""

    record_keys = ("halvings",)

    def step(self, it):
        alpha = self.cfg.alpha / 2 ** it.k
        return B.UpperStep(alpha, it.x - alpha * it.d, extra={"halvings": it.k})


def test_a_new_rule_is_one_class_and_one_registry_entry(prob, monkeypatch):
    monkeypatch.setitem(B.UPPER_RULES, "halving", _Halving)
    rec = B.run_bilevel(prob, B.BilevelConfig(K=4, T=2, upper="halving", lower="fixed",
                                              alpha=0.5, beta=0.3))
    np.testing.assert_allclose(rec["alpha"], 0.5 / 2 ** np.arange(4))
    np.testing.assert_array_equal(rec["halvings"], np.arange(4))


def test_record_is_built_from_the_reports(prob):
    cfg = B.BilevelConfig(K=2, T=4, upper="fixed", lower="fixed", eval_every=5)
    rec = B.Record(prob, cfg, B.FixedUpper(cfg, None), prob.x0, prob.y0)
    hg = B.Oracles(prob, cfg, torch.Generator()).hypergradient(prob.x0, prob.y0).result
    low = B.LowerTotals(beta_sum=2.0, beta_last=0.25, rounds=6, failures=1, n_grad=5)
    up = B.UpperStep(0.5, prob.x0, rounds=3, failures=1, n_grad=4, n_hvp=7)
    assert not rec.add(0, hg, low, up, 1.5, prob.y0)
    row = {k: v[0] for k, v in rec.result(prob.x0, prob.y0).items() if np.ndim(v) == 1}
    assert row["beta"] == 0.5 and row["beta_last"] == 0.25 and row["lower_rounds"] == 1.5
    assert row["n_grad"] == 5 + 2 + 4 and row["n_hvp"] == hg.n_hvp + 7
    assert (row["upper_rounds"], row["upper_failures"], row["lower_failures"]) == (3, 1, 1)
    assert np.isfinite(row["F"]) and row["time"] == 1.5  # metrics at k = 0
    nan_x = torch.full_like(prob.x0, math.nan)
    assert rec.add(1, hg, low, dataclasses.replace(up, x=nan_x), 2.0, prob.y0)
