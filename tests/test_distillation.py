"""The data-distillation problem and its experiment helpers (fast: small subsets)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bisls_core.bilevel import METHODS, make_config, run_config
from bisls_core.experiments import SCALES
from bisls_core.hypergrad import hypergradient, second_order_oracle
from bisls_core.sweeps import distillation as dist

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def prob():
    return dist.make(seed=0, n_real=200, n_val=100)


@pytest.fixture(scope="module")
def point(prob):
    """A plausible distilled set (noise + half the class means) and a model trained on it
    to near optimality (gradient descent with step 1/L on the strongly convex lower level)."""
    x = prob.x0 + 0.5 * dist.class_means(200).reshape(-1)
    return x, _solve(prob, x, prob.y0.clone(), steps=3000)


def _lipschitz(prob, x, y) -> float:
    oracle = second_order_oracle(prob.g, x, y, None)
    u = torch.randn(y.numel(), generator=torch.Generator().manual_seed(1))
    for _ in range(30):
        u = oracle.hvp(u)
        lam = float(u.norm())
        u = u / lam
    return lam


def _solve(prob, x, y, steps: int) -> torch.Tensor:
    """Gradient descent on g(x, .) from y with step 1/L."""
    step = 1.0 / _lipschitz(prob, x, y)
    for _ in range(steps):
        y_ = y.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(prob.g(x, y_, None), y_)
        y = y - step * grad
    return y.detach()


# ---------------------------------------------------------------------------- the problem
def test_shapes(prob):
    assert prob.x0.shape == (10 * 784,)
    assert prob.y0.shape == (784 * 10 + 10,)
    assert dist.images(prob.x0).shape == (10, 28, 28)
    assert prob.n_upper == 200 and prob.batch_upper == 10 and prob.batch_lower is None
    idx = prob.sample_upper(torch.Generator().manual_seed(0))
    assert idx.shape == (10,)
    assert prob.f(prob.x0, prob.y0, idx).shape == ()
    assert prob.g(prob.x0, prob.y0, None).shape == ()
    assert prob.info["lam"] == dist.LAM


def test_values_at_the_zero_model(prob):
    """The model starts at 0: every class gets probability 1/10, the loss is log 10 on
    any batch, and the ridge term vanishes."""
    idx = prob.sample_upper(torch.Generator().manual_seed(3))
    for value in (prob.f(prob.x0, prob.y0, idx), prob.f(prob.x0, prob.y0, None),
                  prob.g(prob.x0, prob.y0, None)):
        assert float(value) == pytest.approx(math.log(10), rel=1e-6)
    metrics = prob.metrics(prob.x0, prob.y0)
    assert float(metrics["val_loss"]) == pytest.approx(math.log(10), rel=1e-6)


def test_same_seed_same_initial_images():
    a, b = dist.make(seed=4, n_real=50, n_val=20), dist.make(seed=4, n_real=50, n_val=20)
    assert torch.equal(a.x0, b.x0)
    assert not torch.equal(a.x0, dist.make(seed=5, n_real=50, n_val=20).x0)


# ---------------------------------------------------------------------------- hypergradients
def test_identity_hypergradient_matches_the_one_step_unrolled_objective(prob, point):
    r"""With :math:`F_1(x) = f(x, y - \beta\nabla_y g(x, y))`,
    :math:`\nabla F_1 = -\beta\nabla^2_{xy} g\,\nabla_y f(\hat y) \approx \beta h_{\rm id}`
    for small :math:`\beta`: finite differences of :math:`F_1` along random directions
    agree in sign and size with :math:`\beta\langle h_{\rm id}, u\rangle`, and
    :math:`-h_{\rm id}` decreases :math:`F_1`."""
    x, y = point
    y = y + 0.05 * torch.randn(y.shape, generator=torch.Generator().manual_seed(2))  # not at y*
    beta = 0.1

    def unrolled(x_):
        x_ = x_.detach().requires_grad_(False)
        y_ = y.detach().requires_grad_(True)
        (gy,) = torch.autograd.grad(prob.g(x_, y_, None), y_)
        return float(prob.f(x_, y - beta * gy, None))

    h = hypergradient(prob.f, prob.g, x, y, None, None, "identity").h
    gen = torch.Generator().manual_seed(7)
    for u in [h / h.norm()] + [torch.randn(x.shape, generator=gen) for _ in range(4)]:
        u = u / u.norm()
        eps = 1e-1
        fd = (unrolled(x + eps * u) - unrolled(x - eps * u)) / (2 * eps)
        pred = beta * float(h @ u)
        assert np.sign(fd) == np.sign(pred)
        assert fd == pytest.approx(pred, rel=0.2, abs=1e-6)
    assert unrolled(x - 1.0 * h) < unrolled(x)


def test_neumann_hypergradient_is_a_descent_direction_of_the_bilevel_objective(prob, point):
    r"""At :math:`y \approx y^*(x)`, the Neumann estimate (20 terms, :math:`\eta` =
    ``NEUMANN_LR``) leans towards the implicit-function hypergradient (100 CG steps; the
    truncated series misses the flattest directions, where the ridge
    :math:`\lambda = 10^{-2}` sets the curvature, so the angle is far from 0: the cosine
    is about 0.5 here) and :math:`F(x) = f(x, y^*(x))` decreases along :math:`-h`
    (``y^*`` by warm-started gradient descent)."""
    x, y = point
    h = hypergradient(prob.f, prob.g, x, y, None, None, "neumann", steps=20, lr=dist.NEUMANN_LR).h
    h_cg = hypergradient(prob.f, prob.g, x, y, None, None, "cg", steps=100).h
    assert float(h @ h_cg / (h.norm() * h_cg.norm())) > 0.3
    h_id = hypergradient(prob.f, prob.g, x, y, None, None, "identity").h
    assert float(h @ h_id) > 0  # the two estimators of the figures agree in direction

    def bilevel(x_):
        return float(prob.f(x_, _solve(prob, x_, y, steps=400), None))

    step = 0.5 / float(h.norm())
    assert bilevel(x - step * h) < bilevel(x)


# ---------------------------------------------------------------------------- presets and configs
def test_presets_are_valid():
    assert set(dist.PRESETS) == set(SCALES)
    keys = set(dist.PRESETS["paper"])
    for scale in SCALES:
        sz = dist.sizes(scale)
        assert set(sz) == keys
        assert sz["T_long"] > sz["T"] >= 1 and sz["K"] >= 1 and sz["n_runs"] >= 1
        assert sz["sample_alphas"] == (10.0, 50.0, 100.0)  # Figure 19's values
        for method in METHODS:
            for hg in ("identity", "neumann"):
                cfg = dist.config(sz, method, hypergrad=hg, alpha=10.0)
                assert cfg["problem"] == "distillation"
                make_config(method, **{k: v for k, v in cfg.items()
                                       if k not in ("problem", "problem_args", "method")})
        for method in ("SGD", "Adam"):
            configs = dist.tuning_configs(sz, method, T=sz["T_long"])
            assert len(configs) == len(sz[f"alpha_grid_{method.lower()}"])
            assert all(c["T"] == sz["T_long"] and c["beta"] == dist.LOWER_STEP
                       for c in configs.values())
    paper = dist.sizes("paper")
    assert (paper["K"], paper["T"], paper["T_long"], paper["n_runs"]) == (3000, 20, 50, 5)


def test_config_fields():
    sz = dist.sizes("smoke")
    assert dist.config(sz, "BiSPS")["lower"] == "fixed"
    assert dist.config(sz, "decaying-step SGD")["beta"] == 1e-4
    bisls = dist.bisls(sz)
    assert bisls["keep_final"] is True and bisls["w"] == sz["w"]
    assert {k: bisls[k] for k in dist.BISLS_BASE} == dist.BISLS_BASE
    assert dist.config(sz, "SGD", hypergrad="neumann")["hypergrad_lr"] == dist.NEUMANN_LR
    assert "hypergrad_steps" not in dist.config(sz, "SGD")
    assert dist.sizes("cpu", K=7)["K"] == 7
    with pytest.raises(ValueError, match="hypergrad"):
        dist.config(sz, "SGD", hypergrad="cg")
    with pytest.raises(ValueError):
        dist.config(sz, "SGD", alpha=-1.0)
    with pytest.raises(TypeError):
        dist.config(sz, "SGD", not_a_field=1)
    with pytest.raises(ValueError, match="SGD"):
        dist.tuning_configs(sz, "BiSPS")


@pytest.mark.parametrize("method,hg,fields", [
    ("BiSLS-SGD", "identity", {}), ("BiSLS-SGD", "neumann", {}), ("SGD", "identity", {}),
    ("Adam", "neumann", {}), ("BiSPS", "identity", {"samples": 2}),
    ("decaying-step SGD", "identity", {}),
])
def test_smoke_runs_record_finite_values(method, hg, fields):
    sz = dist.sizes("smoke")
    rec = run_config(dist.config(sz, method, hypergrad=hg, **fields), seed=0)
    for key in ("upper_loss", "lower_loss", "val_loss", "val_acc", "alpha", "beta"):
        assert rec[key].shape == (sz["K"],) and np.isfinite(rec[key]).all(), key
    assert not rec["diverged"].any()
    assert float(rec["initial_val_loss"]) == pytest.approx(math.log(10), rel=1e-6)
    if method == "BiSLS-SGD":
        assert rec["x_final"].shape == (7840,)


# ---------------------------------------------------------------------------- helpers
def test_digit_correlations():
    means = dist.class_means(500)
    assert torch.equal(dist.recognised(means, means), torch.arange(10))
    noise = 0.1 * torch.randn(7840, generator=torch.Generator().manual_seed(0))
    assert dist.digit_correlations(noise, means).abs().max() < 0.2
    assert 0.3 < dist.real_digit_correlation(500, n_sets=10) < 0.9


def test_tail_first_below_and_compare():
    rec = {"val_loss": np.array([[3.0, np.nan, 2.0, np.nan, 1.0], [3.0, np.nan, 2.0, np.nan, 3.0]]),
           "diverged": np.array([[False] * 5, [False] * 4 + [True]])}
    tail = dist.tail_values(rec, frac=0.2)
    assert tail[0] == 1.0 and np.isnan(tail[1])
    assert dist.first_below(rec, 2.0) == 3 and dist.first_below(rec, 0.5) is None
    assert dist.compare([1.0, 1.0], [2.0, 2.0]) == -1
    assert dist.compare([1.0, np.nan], [2.0, 2.0]) == 1
    assert dist.compare([1.0, 1.0], [1.005, 1.005]) == 0
    assert dist.compare([np.nan], [np.nan]) == 0
