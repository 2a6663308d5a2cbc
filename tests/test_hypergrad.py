"""Hypergradient estimators: against finite differences of F(x) = f(x, y*(x)) and
against the closed form of the quadratic bi-level problem; the sign; counts; no side effects."""

from __future__ import annotations

import pytest
import torch

from bisls_core.hypergrad import ESTIMATORS, hypergradient, second_order_oracle
from bisls_core.problems.quadratic_bilevel import make_quadratic_bilevel

torch.set_num_threads(1)

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def prob():
    return make_quadratic_bilevel(dim_x=4, dim_y=6, n=50, seed=3)


def _point(prob, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(prob.x0.numel(), generator=gen, dtype=torch.float64)


def _fd_grad(F, x, eps=1e-5):
    """Central finite differences of F at x."""
    eye = torch.eye(x.numel(), dtype=x.dtype)
    return torch.stack([(F(x + eps * e) - F(x - eps * e)) / (2 * eps) for e in eye])


def _converged(prob, method):
    lr = 1.0 / prob.info["L_g"]
    return dict(exact={}, cg=dict(steps=30), neumann=dict(steps=400, lr=lr))[method]


@pytest.mark.parametrize("method", ["exact", "cg", "neumann"])
def test_matches_closed_form_at_y_star(prob, method):
    x = _point(prob)
    y = prob.info["y_star"](x)
    res = hypergradient(prob.f, prob.g, x, y, None, None, method, **_converged(prob, method))
    torch.testing.assert_close(res.h, prob.info["hypergrad"](x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["exact", "cg", "neumann"])
def test_matches_finite_differences_of_F(prob, method):
    x = _point(prob, 1)
    res = hypergradient(prob.f, prob.g, x, prob.info["y_star"](x), None, None, method,
                        **_converged(prob, method))
    fd = _fd_grad(prob.info["F"], x)
    torch.testing.assert_close(res.h, fd, atol=1e-5, rtol=0)


def test_exact_matches_formula_away_from_y_star(prob):
    """At y != y*(x) the estimators approximate Eq. (17) (minus sign) at that y."""
    x = _point(prob, 2)
    y = prob.info["y_star"](x) + 0.3
    ref = prob.info["hypergrad_at"](x, y)
    for method in ("exact", "cg"):
        res = hypergradient(prob.f, prob.g, x, y, None, None, method, steps=30)
        torch.testing.assert_close(res.h, ref, atol=1e-6, rtol=0)


def test_sign_is_minus_not_the_papers_plus(prob):
    """With the '+' printed in Eqs. (2) and (17), h would be grad_x f + (grad_x f - h)."""
    x = _point(prob, 4)
    res = hypergradient(prob.f, prob.g, x, prob.info["y_star"](x), None, None, "exact")
    gx = res.h + second_order_oracle(prob.g, x, prob.info["y_star"](x), None).cross(res.v)
    h_plus = 2 * gx - res.h  # grad_x f + grad2_xy g H^{-1} grad_y f
    fd = _fd_grad(prob.info["F"], x)
    assert torch.linalg.vector_norm(res.h - fd) < 1e-5
    assert torch.linalg.vector_norm(h_plus - fd) > 0.1


def test_neumann_converges_as_steps_grow(prob):
    x = _point(prob, 5)
    y = prob.info["y_star"](x)
    ref = prob.info["hypergrad"](x)
    lr = 1.0 / prob.info["L_g"]
    errors = [
        float(torch.linalg.vector_norm(
            hypergradient(prob.f, prob.g, x, y, None, None, "neumann", steps=s, lr=lr).h - ref))
        for s in (0, 2, 5, 10, 60)
    ]
    assert all(b < 0.5 * a for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-10


def test_identity_is_exact_when_hessian_is_identity():
    prob = make_quadratic_bilevel(dim_x=3, dim_y=4, n=20, identity_hessian=True, seed=1)
    x = _point(prob)
    res = hypergradient(prob.f, prob.g, x, prob.info["y_star"](x), None, None, "identity")
    torch.testing.assert_close(res.h, prob.info["hypergrad"](x), atol=1e-10, rtol=0)
    assert res.n_hvp == 1


def test_identity_is_not_exact_otherwise(prob):
    x = _point(prob)
    res = hypergradient(prob.f, prob.g, x, prob.info["y_star"](x), None, None, "identity")
    assert torch.linalg.vector_norm(res.h - prob.info["hypergrad"](x)) > 1e-3


def test_stochastic_neumann_formula_and_mean(prob):
    """Eq. (13): v = N*lr*(I - lr H)^{N̄} grad_y f with N̄ ~ U{0..N-1}; its mean is the
    deterministic Neumann series with N-1 products."""
    x = _point(prob, 6)
    y = prob.info["y_star"](x) + 0.1
    N, lr = 6, 1.0 / prob.info["L_g"]
    H = prob.info["H"]
    M = torch.eye(H.shape[0], dtype=H.dtype) - lr * H
    seen = set()
    for s in range(40):
        res = hypergradient(prob.f, prob.g, x, y, None, None, "neumann_stochastic", steps=N,
                            lr=lr, gen=torch.Generator().manual_seed(s))
        n_bar = res.info["n_bar"]
        seen.add(n_bar)
        assert 0 <= n_bar < N
        assert res.n_hvp == n_bar + 1
        expected = N * lr * torch.linalg.matrix_power(M, n_bar) @ res.grad_y_f
        torch.testing.assert_close(res.v, expected, atol=1e-10, rtol=1e-10)
    assert seen == set(range(N))
    mean_v = sum(N * lr * torch.linalg.matrix_power(M, j) @ res.grad_y_f for j in range(N)) / N
    det = hypergradient(prob.f, prob.g, x, y, None, None, "neumann", steps=N - 1, lr=lr)
    torch.testing.assert_close(mean_v, det.v, atol=1e-10, rtol=1e-10)


def test_stochastic_neumann_reproducible_and_index_sampler(prob):
    x, y = _point(prob, 7), prob.y0 + 0.2
    batch_prob = make_quadratic_bilevel(dim_x=4, dim_y=6, n=50, seed=3, batch=5)
    calls = []

    def sampler(gen):
        calls.append(1)
        return batch_prob.sample_lower(gen)

    kw = dict(steps=8, lr=0.3)
    a = hypergradient(batch_prob.f, batch_prob.g, x, y, None, None, "neumann_stochastic",
                      gen=torch.Generator().manual_seed(11), index_sampler=sampler, **kw)
    b = hypergradient(batch_prob.f, batch_prob.g, x, y, None, None, "neumann_stochastic",
                      gen=torch.Generator().manual_seed(11), index_sampler=sampler, **kw)
    assert torch.equal(a.h, b.h)
    assert len(calls) == 2 * a.info["n_bar"]
    assert a.n_hvp == a.info["n_bar"] + 1


@pytest.mark.parametrize(
    "method, kw, expected",
    [("identity", {}, 1), ("neumann", dict(steps=7), 8), ("cg", dict(steps=4), 5),
     ("exact", {}, 7)],
)
def test_n_hvp_counts_every_second_order_product(prob, monkeypatch, method, kw, expected):
    """n_hvp equals the number of double-backward calls (all calls but the 2 first-order ones)."""
    real = torch.autograd.grad
    count = [0]

    def counting(*args, **kwargs):
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting)
    x = _point(prob)
    res = hypergradient(prob.f, prob.g, x, prob.y0 + 0.1, None, None, method, **kw)
    assert res.n_hvp == expected  # exact: dim_y = 6 products + 1 cross
    assert count[0] == 2 + res.n_hvp


def test_no_grad_side_effects_and_inputs_untouched(prob):
    weight = torch.nn.Parameter(torch.tensor(1.5, dtype=torch.float64))

    def f(x, y, idx):
        return weight * prob.f(x, y, idx)

    x = _point(prob).requires_grad_(True)
    y = (prob.y0 + 0.2).requires_grad_(True)
    x_copy, y_copy = x.detach().clone(), y.detach().clone()
    for method in ESTIMATORS:
        res = hypergradient(f, prob.g, x, y, None, None, method, steps=3,
                            gen=torch.Generator().manual_seed(0))
        for t in (res.h, res.v, res.f_value, res.g_value, res.grad_y_f):
            assert not t.requires_grad
    assert x.grad is None and y.grad is None and weight.grad is None
    assert torch.equal(x.detach(), x_copy) and torch.equal(y.detach(), y_copy)


def test_works_under_no_grad(prob):
    x = _point(prob)
    with torch.no_grad():
        res = hypergradient(prob.f, prob.g, x, prob.info["y_star"](x), None, None, "exact")
    torch.testing.assert_close(res.h, prob.info["hypergrad"](x), atol=1e-8, rtol=0)


def test_batches_are_used(prob):
    bprob = make_quadratic_bilevel(dim_x=4, dim_y=6, n=50, seed=3, batch=5, noise=0.5)
    x, y = _point(bprob), bprob.y0
    idx = torch.arange(5)
    a = hypergradient(bprob.f, bprob.g, x, y, idx, idx, "exact")
    b = hypergradient(bprob.f, bprob.g, x, y, idx + 5, idx + 5, "exact")
    full = hypergradient(bprob.f, bprob.g, x, y, None, None, "exact")
    assert not torch.allclose(a.h, b.h)
    torch.testing.assert_close(a.f_value, bprob.f(x, y, idx))
    torch.testing.assert_close(full.g_value, bprob.g(x, y, None))


def test_unknown_method_lists_valid_ones(prob):
    with pytest.raises(ValueError) as err:
        hypergradient(prob.f, prob.g, prob.x0, prob.y0, method="newton")
    for name in ESTIMATORS:
        assert repr(name) in str(err.value)


@pytest.mark.parametrize("kw", [dict(steps=-1), dict(steps=1.5), dict(lr=0.0), dict(lr=-1.0),
                                dict(method="neumann_stochastic", steps=0)])
def test_bad_arguments_raise(prob, kw):
    kw = {"method": "neumann", **kw}
    with pytest.raises(ValueError):
        hypergradient(prob.f, prob.g, prob.x0, prob.y0, **kw)


def test_exact_refuses_large_y():
    calls = []

    def g(x, y, idx):
        calls.append(1)
        return (y * y).sum()

    y = torch.zeros(5001)
    with pytest.raises(ValueError, match="5000"):
        hypergradient(g, g, torch.zeros(2), y, method="exact")
    assert not calls  # refused before any work


def test_float32_and_cg_last_iterate():
    prob = make_quadratic_bilevel(dim_x=3, dim_y=5, n=20, dtype=torch.float32)
    x = torch.ones(3)
    res = hypergradient(prob.f, prob.g, x, prob.info["y_star"](x), None, None, "cg", steps=5)
    assert res.h.dtype == torch.float32
    torch.testing.assert_close(res.h, prob.info["hypergrad"](x), atol=1e-4, rtol=1e-4)
    # CG returns its last iterate: with fewer steps the answer differs from the converged one.
    res2 = hypergradient(prob.f, prob.g, x, prob.info["y_star"](x), None, None, "cg", steps=2)
    assert torch.linalg.vector_norm(res2.h - res.h) > 1e-4


@pytest.mark.skipif(not CUDA, reason="no CUDA device")
def test_cuda_matches_cpu():
    cpu = make_quadratic_bilevel(dim_x=4, dim_y=6, n=30, seed=2)
    gpu = make_quadratic_bilevel(dim_x=4, dim_y=6, n=30, seed=2, device="cuda")
    x = _point(cpu)
    for method in ("identity", "neumann", "cg", "exact"):
        a = hypergradient(cpu.f, cpu.g, x, cpu.y0, None, None, method, steps=5, lr=0.2)
        b = hypergradient(gpu.f, gpu.g, x.cuda(), gpu.y0, None, None, method, steps=5, lr=0.2)
        assert b.h.device.type == "cuda"
        torch.testing.assert_close(b.h.cpu(), a.h, atol=1e-8, rtol=1e-8)


def test_identity_against_its_closed_form_when_the_hessian_is_not_the_identity():
    r"""g = (y - A x - b)^T H (y - A x - b) / 2 with H not the identity,
    f = |y - u|^2 / 2 + |C x|^2 / 2: grad_x f = C^T C x, grad_y f = y - u and
    grad2_xy g w = -A^T H w, so the identity estimator is h = C^T C x + A^T H (y - u)."""
    gen = torch.Generator().manual_seed(4)
    dx, dy = 3, 5

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    A, C, W, b, u = randn(dy, dx), randn(dx, dx), randn(dy, dy), randn(dy), randn(dy)
    H = torch.eye(dy, dtype=torch.float64) + W @ W.T / dy
    H = 0.5 * (H + H.T)  # exactly symmetric, as the Hessian autograd sees

    def g(x, y, idx=None):
        e = y - A @ x - b
        return 0.5 * e @ H @ e

    def f(x, y, idx=None):
        return 0.5 * (y - u) @ (y - u) + 0.5 * (C @ x) @ (C @ x)

    x = torch.randn(dx, generator=gen, dtype=torch.float64)
    y = torch.randn(dy, generator=gen, dtype=torch.float64)
    res = hypergradient(f, g, x, y, None, None, "identity")
    torch.testing.assert_close(res.h, C.T @ C @ x + A.T @ H @ (y - u), atol=1e-12, rtol=0)
    exact = hypergradient(f, g, x, y, None, None, "exact")  # H^{-1} in place of I differs
    assert torch.linalg.vector_norm(res.h - exact.h) > 0.1


def test_stochastic_neumann_matches_its_closed_form_in_expectation():
    r"""Eq. (13) with a fresh batch per factor: E[v] = lr sum_{n<N} (I - lr H)^n grad_y f
    (H the full lower Hessian, independent uniform batches). The mean of many seeded
    draws must lie within 5 standard errors of it, coordinate by coordinate, while
    the literal reading of the paper (N̄ in {1..N}) lies far outside."""
    bprob = make_quadratic_bilevel(dim_x=4, dim_y=6, n=50, seed=3, batch=5, noise=0.5)
    x, y = _point(bprob, 9), bprob.y0 + 0.3
    N, lr, M = 4, 0.5 / bprob.info["L_g"], 800
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([
        hypergradient(bprob.f, bprob.g, x, y, None, None, "neumann_stochastic", steps=N,
                      lr=lr, gen=gen, index_sampler=bprob.sample_lower).v
        for _ in range(M)])
    b = hypergradient(bprob.f, bprob.g, x, y, None, None, "identity").grad_y_f
    M_ = torch.eye(6, dtype=torch.float64) - lr * bprob.info["H"]
    powers = [torch.linalg.matrix_power(M_, n) @ b for n in range(N + 1)]
    expected = lr * sum(powers[:N])
    literal = lr * sum(powers[1:])
    se = draws.std(dim=0) / M ** 0.5
    assert torch.all((draws.mean(0) - expected).abs() <= 5 * se), (draws.mean(0), expected, se)
    assert torch.any((draws.mean(0) - literal).abs() > 10 * se)

