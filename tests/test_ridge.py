"""The ridge-tuning problem on w8a: its closed-form hypergradient against finite
differences of F(x) = f(x, y*(x)) and against the library's estimators (exact, CG)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bisls_core import problems
from bisls_core.bilevel import run_config
from bisls_core.hypergrad import hypergradient
from bisls_core.problems import ridge

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def prob():
    return ridge.make_ridge(n_train=300, n_val=200, batch=50, lam0=0.05, seed=1)


@pytest.fixture(scope="module")
def shared():
    return ridge.make_ridge(n_train=300, n_val=200, batch=50, lam0=0.05, per_feature=False, seed=1)


def _point(p, seed=0, spread=1.0):
    gen = torch.Generator().manual_seed(seed)
    return p.x0 + spread * torch.randn(p.x0.numel(), generator=gen, dtype=p.x0.dtype)


def _rel(a, b):
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def test_sizes_and_splits(prob):
    from bisls_core.data import load_w8a

    assert prob.x0.shape == (301,) and prob.y0.shape == (301,)
    info = prob.info
    assert info["A_train"].shape == (300, 301) and info["A_val"].shape == (200, 301)
    assert bool((info["A_train"][:, -1] == 1).all()), "the last feature is the intercept"
    assert info["positives_train"] > 0 and info["positives_val"] > 0
    A, b = load_w8a()
    perm = torch.randperm(A.shape[0], generator=torch.Generator().manual_seed(1))
    tr, va = perm[:300], perm[300:500]
    assert not set(tr.tolist()) & set(va.tolist()), "the splits share rows"
    torch.testing.assert_close(info["A_val"][:, :300].float(), A[va], rtol=0, atol=0)
    torch.testing.assert_close(info["b_train"].float(), b[tr], rtol=0, atol=0)


def test_y_star_is_stationary(prob):
    x = _point(prob)
    y = prob.info["y_star"](x)
    with torch.enable_grad():
        y_ = y.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(prob.g(x, y_), y_)
    assert float(grad.norm()) < 1e-10


@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_matches_finite_differences(prob, seed):
    """Directional central differences of the value function, independent of the IFT."""
    x = _point(prob, seed)
    h = prob.info["hypergrad"](x)
    F = prob.info["F"]
    gen = torch.Generator().manual_seed(100 + seed)
    for _ in range(3):
        u = torch.randn(x.numel(), generator=gen, dtype=x.dtype)
        u /= u.norm()
        eps = 1e-4
        fd = (F(x + eps * u) - F(x - eps * u)) / (2 * eps)
        assert abs(float(fd - h @ u)) <= 1e-6 * float(h.norm()) + 1e-12


def test_closed_form_shared_penalty_matches_finite_differences(shared):
    x = shared.x0 + 1.0
    h = shared.info["hypergrad"](x)
    F = shared.info["F"]
    eps = 1e-5
    fd = (F(x + eps) - F(x - eps)) / (2 * eps)
    assert h.shape == (1,)
    assert abs(float(fd - h)) <= 1e-6 * abs(float(h))


def test_the_sign_is_minus(prob):
    """With Eq. (2)'s printed '+', the estimate points the other way (ERRATA)."""
    x = _point(prob, 3)
    y = prob.info["y_star"](x)
    res = hypergradient(prob.f, prob.g, x, y, None, None, "exact")
    plus = -res.h  # grad_x f = 0 here, so the '+' version is the negative
    closed = prob.info["hypergrad"](x)
    assert _rel(res.h, closed) < 1e-8
    assert _rel(plus, closed) > 1.9


@pytest.mark.parametrize("per_feature", [True, False])
@pytest.mark.parametrize("method, kwargs, tol", [("exact", {}, 1e-8), ("cg", {"steps": 60}, 1e-8)])
def test_library_estimators_match_closed_form(prob, shared, per_feature, method, kwargs, tol):
    p = prob if per_feature else shared
    x = _point(p, 5, spread=1.0 if per_feature else 0.0)
    y = p.info["y_star"](x)
    res = hypergradient(p.f, p.g, x, y, None, None, method, **kwargs)
    assert _rel(res.h, p.info["hypergrad"](x)) < tol


def test_short_cg_is_an_approximation(prob):
    """10 CG steps (the runs' setting) are close but not exact: the check can fail."""
    x = _point(prob, 6)
    y = prob.info["y_star"](x)
    err = _rel(hypergradient(prob.f, prob.g, x, y, None, None, "cg", steps=10).h,
               prob.info["hypergrad"](x))
    assert 1e-12 < err < 0.1


def test_formula_away_from_y_star(prob):
    """At y != y*(x), the exact estimator computes the same formula at that y."""
    x = _point(prob, 7)
    y = prob.info["y_star"](x) + 0.05 * torch.randn(301, generator=torch.Generator().manual_seed(7),
                                                    dtype=x.dtype)
    res = hypergradient(prob.f, prob.g, x, y, None, None, "exact")
    assert _rel(res.h, prob.info["hypergrad_at"](x, y)) < 1e-8


@pytest.mark.parametrize("kwargs, words", [
    ({"n_train": 0}, ("n_train",)),
    ({"n_val": 2.5}, ("n_val",)),
    ({"batch": 500}, ("batch", "n_train", "n_val")),
    ({"n_train": 40_000, "n_val": 10_000}, ("n_train", "n_val")),
    ({"lam0": -1.0}, ("lam0",)),
])
def test_bad_sizes_name_the_parameters(kwargs, words):
    args = {"n_train": 300, "n_val": 200, "batch": 50, **kwargs}
    with pytest.raises(ValueError) as err:
        ridge.make_ridge(**args)
    assert all(w in str(err.value) for w in words), str(err.value)


def test_registered_and_runs_through_run_config():
    assert "ridge" in problems.PROBLEMS
    config = {"problem": "ridge", "problem_args": {"n_train": 200, "n_val": 100, "batch": 20},
              "problem_seed": 0, "method": "BiSPS", "K": 3, "T": 2, "alpha": 10.0}
    a = run_config(config, seed=0)
    b = run_config(config, seed=0)
    assert a["val_loss"].shape == (3,) and np.isfinite(a["val_loss"]).all()
    np.testing.assert_array_equal(a["val_loss"], b["val_loss"])
