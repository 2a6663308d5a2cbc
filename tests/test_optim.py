"""Tests of the single-level optimizers (bisls_core.optim) and their runner."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bisls_core import stepsizes as ss
from bisls_core.optim import SLS, SPS
from bisls_core.single_level import run_single_level

torch.set_num_threads(1)

# f(x) = 0.5 (x - b)^T A (x - b): gradient A (x - b), known in closed form.
A = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
B = torch.tensor([1.0, -2.0], dtype=torch.float64)


def quad(x, a=A, b=B):
    r = x - b
    return 0.5 * r @ a @ r


def grad(x, a=A, b=B):
    return a @ (x - b)


def start():
    return torch.tensor([3.0, 1.0], dtype=torch.float64, requires_grad=True)


# --------------------------------------------------------------------------- against the pure rules
@pytest.mark.parametrize("mode", ["max", "bounded", "dec"])
def test_sps_matches_pure_rules(mode):
    x = start()
    opt = SPS([x], lr_bound=2.0, mode=mode, c=0.5)
    ref = x.detach().clone()
    gamma_prev = None
    for k in range(5):
        f, g = float(quad(ref)), grad(ref)
        g2 = float(g @ g)
        if mode == "max":
            step = ss.sps_max(f, g2, 2.0, 0.5)
        elif mode == "bounded":
            step = ss.spsb(f, g2, ss.schedule("inv_sqrt", 2.0, k), 0.5)
        else:
            c_k = 0.5 * math.sqrt(k + 1)
            c_prev, g_prev = (c_k, 2.0) if k == 0 else (0.5 * math.sqrt(k), gamma_prev)
            step = ss.dec_sps(f, g2, c_k, c_prev, g_prev)
        gamma_prev = step
        ref = ref - step * g
        opt.step(lambda: quad(x))
        assert opt.state["history"]["step"][-1] == pytest.approx(step, rel=1e-12)
        torch.testing.assert_close(x.detach(), ref, rtol=1e-12, atol=1e-12)
    assert x.grad is None  # the optimizer differentiates itself, nothing in .grad


@pytest.mark.parametrize("schedule", ["constant", "inv_sqrt"])
def test_sls_matches_armijo_backtracking(schedule):
    x = start()
    opt = SLS([x], lr_bound=4.0, c=0.3, w=0.5, bound_schedule=schedule)
    ref = x.detach().clone()
    for k in range(5):
        f, g = float(quad(ref)), grad(ref)
        res = ss.armijo_backtracking(lambda t: float(quad(ref - t * g)), f, float(g @ g),
                                     ss.schedule(schedule, 4.0, k), c=0.3, w=0.5)
        ref = ref - res.step * g
        opt.step(lambda: quad(x))
        h = opt.state["history"]
        assert h["step"][-1] == pytest.approx(res.step, rel=1e-12)
        assert h["rounds"][-1] == res.rounds and h["success"][-1] is True
        assert h["n_func_evals"][-1] == 1 + res.rounds and h["n_grad_evals"][-1] == 1
        torch.testing.assert_close(x.detach(), ref, rtol=1e-12, atol=1e-12)


def test_sls_reset_options():
    x = start()
    opt = SLS([x], lr_bound=100.0, c=0.5, reset="keep")
    for _ in range(4):
        opt.step(lambda: quad(x))
    steps = opt.state["history"]["step"]
    assert all(b <= a for a, b in zip(steps, steps[1:]))  # option 2 is monotone


# --------------------------------------------------------------------------- param groups
def test_param_groups_have_their_own_bounds():
    x1 = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = SPS([{"params": [x1]}, {"params": [x2], "lr_bound": 1e-3}], lr_bound=10.0,
              mode="max", c=0.5)
    closure = lambda: quad(torch.cat([x1, x2]))  # noqa: E731
    x = torch.tensor([3.0, 1.0], dtype=torch.float64)
    g = grad(x)
    opt.step(closure)
    s1, s2 = opt.state["history"]["group_steps"][-1]
    ratio = ss.polyak_ratio(float(quad(x)), float(g @ g), 0.0, 0.5)
    assert s1 == pytest.approx(min(ratio, 10.0)) and s2 == pytest.approx(1e-3)
    assert float(x1.detach()) == pytest.approx(3.0 - s1 * float(g[0]))
    assert float(x2.detach()) == pytest.approx(1.0 - s2 * float(g[1]))


def test_sls_groups_share_one_search():
    x1 = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = SLS([{"params": [x1]}, {"params": [x2], "lr_bound": 0.5}], lr_bound=2.0, c=0.5)
    opt.step(lambda: quad(torch.cat([x1, x2])))
    s1, s2 = opt.state["history"]["group_steps"][-1]
    assert s1 / s2 == pytest.approx(4.0)
    with pytest.raises(ValueError, match="c must be the same"):
        SLS([{"params": [x1]}, {"params": [x2], "c": 0.2}], c=0.5)


# --------------------------------------------------------------------------- two samples
def test_two_samples_step_comes_from_sample_one():
    """The step size is computed on sample 1, the direction on sample 0."""
    b1 = torch.tensor([-1.0, 4.0], dtype=torch.float64)
    x = start()
    calls = []

    def closure(sample):
        calls.append(sample)
        return quad(x) if sample == 0 else quad(x, b=b1)

    opt = SPS([x], lr_bound=100.0, mode="bounded", c=0.5, bound_schedule="constant", samples=2)
    x0 = x.detach().clone()
    opt.step(closure)
    g_j = grad(x0, b=b1)
    expected = ss.spsb(float(quad(x0, b=b1)), float(g_j @ g_j), 100.0, 0.5)
    assert opt.state["history"]["step"][-1] == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(x.detach(), x0 - expected * grad(x0))
    h = opt.state["history"]
    assert sorted(calls) == [0, 1] and h["n_func_evals"][-1] == 2 and h["n_grad_evals"][-1] == 2
    assert h["loss"][-1] == pytest.approx(float(quad(x0)))  # recorded loss: the direction sample


def test_two_samples_sls_searches_on_sample_one():
    b1 = torch.tensor([-1.0, 4.0], dtype=torch.float64)
    x = start()
    calls = []

    def closure(sample):
        calls.append(sample)
        return quad(x) if sample == 0 else quad(x, b=b1)

    opt = SLS([x], lr_bound=4.0, c=0.3, samples=2)
    x0 = x.detach().clone()
    opt.step(closure)
    g_j = grad(x0, b=b1)
    res = ss.armijo_backtracking(lambda t: float(quad(x0 - t * g_j, b=b1)), float(quad(x0, b=b1)),
                                 float(g_j @ g_j), 4.0, c=0.3)
    assert opt.state["history"]["step"][-1] == pytest.approx(res.step)
    assert calls[2:] == [1] * res.rounds  # every trial evaluates the step-size sample
    torch.testing.assert_close(x.detach(), x0 - res.step * grad(x0))


def test_runner_two_samples_draws_two_batches():
    cfg = {"problem": "quadratic", "method": "SPSB", "K": 50, "samples": 2, "gamma_b0": 5.0}
    one = run_single_level({**cfg, "samples": 1}, seed=0, device="cpu")
    two = run_single_level(cfg, seed=0, device="cpu")
    assert np.all(two["n_evals"] == 4) and np.all(one["n_evals"] == 2)
    assert not np.allclose(one["step"], two["step"])


# --------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("make", [
    lambda p: SPS(p, lr_bound=3.0, mode="max"), lambda p: SPS(p, lr_bound=3.0, mode="dec"),
    lambda p: SLS(p, lr_bound=3.0)])
def test_zero_gradient_does_not_divide_by_zero(make):
    x = B.clone().requires_grad_(True)
    opt = make([x])
    opt.step(lambda: quad(x) + 1.0)  # minimum of a shifted quadratic: gradient exactly 0
    h = opt.state["history"]
    assert math.isfinite(h["step"][-1]) and h["step"][-1] == pytest.approx(3.0)
    torch.testing.assert_close(x.detach(), B)


@pytest.mark.parametrize("make", [lambda p: SPS(p, mode="max"), lambda p: SLS(p)])
def test_nan_loss_raises_and_leaves_parameters(make):
    x = start()
    opt = make([x])
    with pytest.raises(FloatingPointError, match="iteration 0"):
        opt.step(lambda: quad(x) * float("nan"))
    torch.testing.assert_close(x.detach(), torch.tensor([3.0, 1.0], dtype=torch.float64))
    assert opt.state["history"]["step"] == [] and opt.state["k"] == 0


def test_sls_terminates_and_records_failure():
    x = start()
    # Gradient (1, 1) at x0, but every trial x0 - t (1, 1) increases the value: no step is accepted.
    opt = SLS([x], lr_bound=1.0, c=1.0, w=0.5, max_rounds=7)
    x0 = x.detach().clone()
    opt.step(lambda: x.sum() + 2 * (x - x0).abs().sum())
    h = opt.state["history"]
    assert h["rounds"][-1] == 7 and h["success"][-1] is False
    assert h["step"][-1] == pytest.approx(0.5 ** 6)  # the smallest tried step


def test_nonfinite_trial_fails_armijo():
    x = start()
    opt = SLS([x], lr_bound=1.0, c=0.1)

    def closure():  # infinite wherever x_1 < 2: the first two trials (steps 1 and 0.5)
        return quad(x) if float(x[0].detach()) >= 2.0 else quad(x) * float("inf")

    opt.step(closure)
    h = opt.state["history"]
    assert h["success"][-1] is True and h["step"][-1] <= 0.125 and h["rounds"][-1] >= 3


@pytest.mark.parametrize("kwargs, name", [
    ({"lr_bound": -1.0}, "lr_bound"), ({"lr_bound": 0.0}, "lr_bound"), ({"c": 0.0}, "c"),
    ({"mode": "foo"}, "mode"), ({"bound_schedule": "cosine"}, "bound_schedule"),
    ({"samples": 3}, "samples"), ({"mode": "max", "bound_schedule": "inv_sqrt"}, "bound_schedule"),
    ({"f_star": float("nan")}, "f_star")])
def test_sps_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SPS([start()], **kwargs)


@pytest.mark.parametrize("kwargs, name", [
    ({"lr_bound": -1.0}, "lr_bound"), ({"c": 1.5}, "c"), ({"w": 1.0}, "w"), ({"w": 0.0}, "w"),
    ({"reset": "restart"}, "reset"), ({"eta": 0.5}, "eta"), ({"max_rounds": 0}, "max_rounds"),
    ({"bound_schedule": "cos"}, "bound_schedule"), ({"samples": 0}, "samples")])
def test_sls_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        SLS([start()], **kwargs)


def test_closure_is_required():
    with pytest.raises(ValueError, match="closure"):
        SPS([start()]).step(None)


def test_runner_bad_config():
    with pytest.raises(ValueError, match="method"):
        run_single_level({"problem": "quadratic", "method": "Adam", "K": 2}, seed=0)
    with pytest.raises(ValueError, match="unknown configuration key"):
        run_single_level({"problem": "quadratic", "method": "SPSB", "K": 2, "lr": 1}, seed=0)


# --------------------------------------------------------------------------- runner
def test_runner_is_deterministic():
    cfg = {"problem": "quadratic", "method": "SLSB", "K": 40, "keep_iterates": True}
    a = run_single_level(cfg, seed=3, device="cpu")
    b = run_single_level(cfg, seed=3, device="cpu")
    c = run_single_level(cfg, seed=4, device="cpu")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["x"], c["x"])


@pytest.mark.parametrize("method", ["SPS_max", "DecSPS", "SPSB", "SLS", "SLSB",
                                    "decaying-step SGD"])
def test_each_method_decreases_the_quadratic(method):
    rec = run_single_level({"problem": "quadratic", "method": method, "K": 200, "gamma_b0": 1.0,
                            "c": 0.5, "eval_every": 50, "average_from": 0}, seed=0, device="cpu")
    assert rec["loss"][-1] < 0.01 * rec["loss"][0]
    assert rec["diverged"] == -1
    assert list(rec["eval_at"]) == [0, 50, 100, 150, 200]
    assert np.isnan(rec["avg_loss"][0]) and np.all(np.isfinite(rec["avg_loss"][1:]))


def test_runner_records_divergence():
    rec = run_single_level({"problem": "quadratic", "method": "decaying-step SGD", "K": 300,
                            "gamma_b0": 1e6, "schedule": "constant"}, seed=0, device="cpu")
    d = int(rec["diverged"])
    assert 0 < d < 300
    assert np.all(np.isnan(rec["step"][d:])) and np.isnan(rec["loss"][-1])


def test_quadratic_closed_form_optimum():
    from bisls_core.problems import make

    p = make("quadratic", seed=1)
    x = p.x_star.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(p.f(x, None), x)
    assert float(g.norm()) < 1e-12
    assert p.f_star == pytest.approx(float(p.f(p.x_star, None)))
    assert p.lower_bound == 0.0 and p.n == 2


# --------------------------------------------------------------------------- faults and misuse
def _raising_at_trial(x, n_ok, exc):
    """A closure that raises ``exc`` once it has been called ``n_ok`` times."""
    calls = [0]

    def closure():
        calls[0] += 1
        if calls[0] > n_ok:
            raise exc
        return quad(x)

    return closure


@pytest.mark.parametrize("exc", [RuntimeError("data loader died"), KeyboardInterrupt()])
def test_sls_interrupted_in_its_search_restores_the_parameters(exc):
    x = start()
    opt = SLS([x], lr_bound=10.0, c=0.5)
    with pytest.raises(type(exc)):
        opt.step(_raising_at_trial(x, 2, exc))  # the loss, one trial, then the error
    torch.testing.assert_close(x.detach(), torch.tensor([3.0, 1.0], dtype=torch.float64))
    assert opt.state["k"] == 0 and opt.state["history"]["step"] == []
    opt.step(lambda: quad(x))  # and the optimizer goes on from there
    assert opt.state["k"] == 1


def test_sps_interrupted_between_param_groups_restores_the_parameters(monkeypatch):
    x1 = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = SPS([{"params": [x1]}, {"params": [x2]}], lr_bound=1.0, mode="max")
    real, calls = ss.sps_max, [0]

    def second_group_interrupted(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ss, "sps_max", second_group_interrupted)
    with pytest.raises(KeyboardInterrupt):
        opt.step(lambda: quad(torch.cat([x1, x2])))
    assert float(x1.detach()) == 3.0 and float(x2.detach()) == 1.0
    assert opt.state["history"]["step"] == []
    assert opt.state.get("groups", [{}])[0].get("prev") is None


def test_sls_skips_the_search_when_the_gradient_is_numerically_zero():
    """float32 loss 1 + (x - b)^2 at x = b + 1e-4: the decrease the test asks for
    (c s |g|^2 = 2e-8) is below the loss's resolution (1.2e-7): no search, the start step."""
    b = torch.tensor([0.5], dtype=torch.float32)
    x = (b + 1e-4).requires_grad_(True)
    opt = SLS([x], lr_bound=1.0, c=0.5, w=0.5, max_rounds=10)
    calls = [0]

    def closure():
        calls[0] += 1
        return 1.0 + ((x - b) ** 2).sum()

    opt.step(closure)
    h = opt.state["history"]
    assert h["rounds"][-1] == 0 and h["success"][-1] and h["step"][-1] == 1.0 and calls[0] == 1


@pytest.mark.parametrize("make, name", [
    (lambda p: SLS(p, lr_bound=math.inf), "lr_bound"),
    (lambda p: SLS(p, eta=math.inf), "eta"),
    (lambda p: SLS(p, c=math.nan), "c"),
    (lambda p: SPS(p, lr_bound=math.inf), "lr_bound"),
    (lambda p: SPS(p, c=math.inf), "c"),
    (lambda p: SPS(p, f_star=math.inf), "f_star"),
    (lambda p: SPS(p, f_star=-math.inf), "f_star"),
    (lambda p: SPS([{"params": p, "lr_bound": math.inf}]), "lr_bound"),
])
def test_infinite_settings_are_rejected(make, name):
    with pytest.raises(ValueError, match=name):
        make([start()])


@pytest.mark.parametrize("make", [lambda p: SPS(p, mode="max"), lambda p: SLS(p)])
def test_closure_calling_backward_is_told_what_to_do(make):
    x = start()
    opt = make([x])

    def closure():
        loss = quad(x)
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match=r"called backward\(\).*return the loss"):
        opt.step(closure)
    torch.testing.assert_close(x.detach(), torch.tensor([3.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("make", [lambda p: SPS(p, mode="max"), lambda p: SLS(p)])
def test_no_parameter_requiring_a_gradient_is_told_what_to_do(make):
    x = start().detach()
    opt = make([x])
    with pytest.raises(ValueError, match="no parameter requires a gradient.*requires_grad=True"):
        opt.step(lambda: quad(x))


def test_a_loss_without_graph_is_told_what_to_do():
    x = start()
    opt = SLS([x])
    with pytest.raises(RuntimeError, match="does not depend on the parameters"):
        opt.step(lambda: quad(x.detach()))
