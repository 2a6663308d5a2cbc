r"""A synthetic quadratic bi-level problem with closed-form solution.

A finite sum over :math:`n` samples at each level (sample :math:`i` of the lower
level, :math:`j` of the upper level):

.. math::

    g_i(x, y) &= \tfrac12 \big(y - A_i x - b_i\big)^\top H_i \big(y - A_i x - b_i\big),
    \qquad H_i = \mu I + \tfrac{1}{2 d_y} W_i W_i^\top,\\
    f_j(x, y) &= \tfrac12 \|y + D x - u_j\|^2 + \tfrac{\rho}{2}\|x - v_j\|^2,

with :math:`W_i = W_0 + \sigma E_i`, :math:`A_i = A_0 + \sigma E'_i`,
:math:`b_i = b_0 + \sigma e_i`, :math:`u_j = u_0 + \sigma e'_j`,
:math:`v_j = v_0 + \sigma e''_j` (standard normal draws, :math:`\sigma` = ``noise``).
:math:`g = \frac1n\sum_i g_i`, :math:`f = \frac1n\sum_j f_j`; a batch is a mean
over its samples.

Closed forms (:math:`\bar H = \frac1n\sum_i H_i`, :math:`\bar B = \frac1n\sum_i H_i A_i`,
:math:`\bar c = \frac1n\sum_i H_i b_i`):

.. math::

    y^*(x) = A x + b,\quad A = \bar H^{-1}\bar B,\ b = \bar H^{-1}\bar c;\qquad
    \nabla F(x) = \nabla_x f(x, y^*) + A^\top \nabla_y f(x, y^*)
      = (A + D)^\top\big((A + D)x + b - \bar u\big) + \rho (x - \bar v),

since :math:`\nabla^2_{yy} g = \bar H` and :math:`\nabla^2_{xy} g = -\bar B^\top`, so that
:math:`-\nabla^2_{xy} g\,[\nabla^2_{yy} g]^{-1} = A^\top` (the minus sign of the
corrected Eq. (2)). :math:`F` is a strongly convex quadratic; its minimiser
:math:`x^*` and :math:`F^*` are in ``problem.info``.

Theorem 3's assumptions. Each :math:`g_i` is :math:`\mu`-strongly convex in
:math:`y` (so :math:`g` is :math:`\mu_g`-strongly convex,
:math:`\mu_g = \lambda_{\min}(\bar H) \ge \mu`)
and convex; :math:`\nabla g` and :math:`\nabla g_i` are globally Lipschitz (quadratics);
:math:`\nabla^2 g` is constant, hence Lipschitz with :math:`L_G = 0`;
:math:`\|\nabla^2_{xy} g\| = \|\bar B\| = C_g` is bounded; :math:`\nabla f` is
globally Lipschitz. :math:`f` itself and :math:`\|\nabla_y f\|` are bounded
(Assumption 4's :math:`L_1`, :math:`C_f`) only on a bounded domain, as for every
quadratic; the iterates of a converging run stay in one. Every :math:`g_i \ge 0`
with :math:`\min_y g_i(x, y) = 0`, so the lower bound 0 used by SPS (Eq. (11)) is
exact for single samples; :math:`f_j \ge 0` as well (bound used by BiSPS, Eq. (12)).
"""

from __future__ import annotations

import math

import torch

from . import BilevelProblem

__all__ = ["make", "make_quadratic_bilevel"]


def _check_args(*, dim_x, dim_y, n, batch, noise, mu, rho, spread, coupling) -> None:
    """``ValueError`` naming the parameter unless the sizes are integers >= 1 (``batch``
    may be ``None``), ``mu > 0`` and the other constants are finite and >= 0."""
    for name, val in (("dim_x", dim_x), ("dim_y", dim_y), ("n", n)):
        if isinstance(val, bool) or int(val) != val or val < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {val!r}")
    if batch is not None and (int(batch) != batch or batch < 1):
        raise ValueError(f"batch must be None or an integer >= 1, got {batch!r}")
    for name, val in (("noise", noise), ("rho", rho), ("spread", spread), ("coupling", coupling)):
        if not (math.isfinite(val) and val >= 0):
            raise ValueError(f"{name} must be >= 0, got {val!r}")
    if not (math.isfinite(mu) and mu > 0):
        raise ValueError(f"mu must be > 0, got {mu!r}")


def _draw_samples(dx: int, dy: int, n: int, seed: int, *, noise, mu, spread, coupling,
                  identity_hessian: bool) -> dict[str, torch.Tensor]:
    r"""The samples of the module docstring in float64, from a local generator seeded with
    ``seed``; the order of the draws is part of the problem (changing it changes every one):
    ``H_s`` (:math:`n \times d_y \times d_y`), ``A_s``, ``b_s`` (the lower level's
    :math:`H_i, A_i, b_i`), ``D`` and ``U``, ``V`` (the upper level's :math:`u_j, v_j`)."""
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    if identity_hessian:
        H_s = torch.eye(dy, dtype=torch.float64).expand(n, dy, dy).clone()
    else:
        W = randn(dy, dy) + noise * randn(n, dy, dy)
        H_s = mu * torch.eye(dy, dtype=torch.float64) + spread * W @ W.transpose(1, 2) / (2 * dy)
    A_s = coupling * randn(dy, dx) / math.sqrt(dx) + noise * randn(n, dy, dx)
    b_s = randn(dy) + noise * randn(n, dy)
    D = 0.5 * randn(dy, dx) / math.sqrt(dx)
    U = randn(dy) + noise * randn(n, dy)
    V = randn(dx) + noise * randn(n, dx)
    return dict(H_s=H_s, A_s=A_s, b_s=b_s, D=D, U=U, V=V)


def _closed_form(data: dict[str, torch.Tensor],
                 rho) -> tuple[dict[str, torch.Tensor], float, float]:
    r"""The closed forms of the module docstring in float64: ``(tensors, mu_g, L_g)``, the
    tensors ``H_bar``, ``B_bar``, ``A``, ``b``, ``u_bar``, ``v_bar`` and ``x_star``;
    :math:`\mu_g = \lambda_{\min}(\bar H)`, :math:`L_g` the largest eigenvalue of any
    :math:`H_i`."""
    H_s, A_s, b_s, D = data["H_s"], data["A_s"], data["b_s"], data["D"]
    dx = D.shape[1]
    H_bar = H_s.mean(0)
    B_bar = (H_s @ A_s).mean(0)
    c_bar = (H_s @ b_s.unsqueeze(-1)).squeeze(-1).mean(0)
    A = torch.linalg.solve(H_bar, B_bar)
    b = torch.linalg.solve(H_bar, c_bar)
    u_bar, v_bar = data["U"].mean(0), data["V"].mean(0)
    AD = A + D
    x_star = torch.linalg.solve(AD.T @ AD + rho * torch.eye(dx, dtype=torch.float64),
                                AD.T @ (u_bar - b) + rho * v_bar)
    mu_g = float(torch.linalg.eigvalsh(H_bar).min())
    L_g = float(torch.linalg.eigvalsh(H_s).max())
    tensors = dict(H_bar=H_bar, B_bar=B_bar, A=A, b=b, u_bar=u_bar, v_bar=v_bar, x_star=x_star)
    return tensors, mu_g, L_g


def _functions(t: dict[str, torch.Tensor], rho):
    """``(f, g, y_star, F, hypergrad_at, hypergrad)`` on the tensors ``t`` (the samples
    and the closed forms, on the problem's device and dtype)."""

    def _sel(name, idx):
        return t[name] if idx is None else t[name][idx]

    def f(x, y, idx=None):
        r = y + t["D"] @ x - _sel("U", idx)
        s = x - _sel("V", idx)
        return 0.5 * (r * r).sum(-1).mean() + 0.5 * rho * (s * s).sum(-1).mean()

    def g(x, y, idx=None):
        e = y - (_sel("A_s", idx) @ x + _sel("b_s", idx))
        return 0.5 * torch.einsum("bi,bij,bj->b", e, _sel("H_s", idx), e).mean()

    def y_star(x):
        return t["A"] @ x + t["b"]

    def F(x):
        return f(x, y_star(x), None)

    def hypergrad_at(x, y):
        r = y + t["D"] @ x - t["u_bar"]
        grad_x = t["D"].T @ r + rho * (x - t["v_bar"])
        return grad_x + t["A"].T @ r

    def hypergrad(x):
        return hypergrad_at(x, y_star(x))

    return f, g, y_star, F, hypergrad_at, hypergrad


def _metrics(F, hypergrad, y_star, F_star: float):
    """The problem's ``metrics(x, y)``: ``F``, ``F_gap``, ``grad_norm`` and ``y_error``."""

    def metrics(x, y):
        Fx = float(F(x))
        return {
            "F": Fx,
            "F_gap": Fx - F_star,
            "grad_norm": float(torch.linalg.vector_norm(hypergrad(x))),
            "y_error": float(torch.linalg.vector_norm(y - y_star(x))),
        }

    return metrics


def make_quadratic_bilevel(
    dim_x: int = 5,
    dim_y: int = 5,
    n: int = 100,
    batch: int | None = None,
    seed: int = 0,
    device=None,
    *,
    noise: float = 0.1,
    mu: float = 1.0,
    rho: float = 0.1,
    spread: float = 0.5,
    coupling: float = 0.5,
    identity_hessian: bool = False,
    dtype: torch.dtype = torch.float64,
) -> BilevelProblem:
    r"""Build the quadratic bi-level problem of this module.

    Parameters
    ----------
    dim_x, dim_y:
        sizes of the upper variable :math:`x` and the lower variable :math:`y`.
    n:
        number of samples at each level.
    batch:
        samples per stochastic evaluation at both levels (``None``: full batch,
        i.e. a deterministic problem).
    seed:
        seed of the problem's data (a local generator; the global RNG is untouched).
    device:
        where the tensors live (``None``: CPU).
    noise:
        :math:`\sigma`, spread of the samples around their mean (0: all samples equal).
    mu:
        :math:`\mu`, lower bound of every :math:`H_i`'s spectrum.
    rho:
        :math:`\rho`, weight of the upper-level term in :math:`x` alone.
    identity_hessian:
        ``True`` sets every :math:`H_i = I`, for which the ``"identity"`` hypergradient is exact.
    dtype:
        floating dtype (float64 by default: the tests compare to 1e-5).

    Returns
    -------
    BilevelProblem
        with ``x0 = 0``, ``y0 = 0``, lower bounds 0, metrics ``F``, ``F_gap``
        (:math:`F(x) - F^*`), ``grad_norm`` (:math:`\|\nabla F(x)\|`) and ``y_error``
        (:math:`\|y - y^*(x)\|`), and ``info`` with the closed forms: callables
        ``y_star(x)``, ``F(x)``, ``hypergrad(x)`` (:math:`\nabla F`) and
        ``hypergrad_at(x, y)`` (the exact-inverse hypergradient
        :math:`\nabla_x f - \nabla^2_{xy} g [\nabla^2_{yy} g]^{-1}\nabla_y f` at any
        :math:`y`, full batches), and tensors ``A``, ``b``, ``H``, ``B``, ``D``,
        ``x_star``; floats ``F_star``, ``mu_g``, ``L_g`` (largest eigenvalue of any
        :math:`H_i`: the :math:`L_g` of Eq. (13)).
    """
    _check_args(dim_x=dim_x, dim_y=dim_y, n=n, batch=batch, noise=noise, mu=mu, rho=rho,
                spread=spread, coupling=coupling)
    dx, dy, n = int(dim_x), int(dim_y), int(n)
    data = _draw_samples(dx, dy, n, int(seed), noise=noise, mu=mu, spread=spread,
                         coupling=coupling, identity_hessian=identity_hessian)
    solution, mu_g, L_g = _closed_form(data, rho)
    dev = torch.device("cpu") if device is None else torch.device(device)
    t = {k: v.to(device=dev, dtype=dtype) for k, v in {**data, **solution}.items()}
    f, g, y_star, F, hypergrad_at, hypergrad = _functions(t, rho)
    F_star = float(F(t["x_star"]))
    info = dict(
        y_star=y_star, F=F, hypergrad=hypergrad, hypergrad_at=hypergrad_at,
        A=t["A"], b=t["b"], H=t["H_bar"], B=t["B_bar"], D=t["D"], x_star=t["x_star"],
        F_star=F_star, mu_g=mu_g, L_g=L_g, rho=rho, noise=noise,
    )
    return BilevelProblem(
        name="quadratic_bilevel", f=f, g=g,
        x0=torch.zeros(dx, dtype=dtype, device=dev), y0=torch.zeros(dy, dtype=dtype, device=dev),
        n_upper=n, n_lower=n, batch_upper=batch, batch_lower=batch, f_lower_bound=0.0,
        g_lower_bound=0.0, metrics=_metrics(F, hypergrad, y_star, F_star), info=info,
    )


def make(*, device=None, seed: int = 0, **sizes) -> BilevelProblem:
    """Entry point for :func:`bisls_core.problems.make` (``"quadratic_bilevel"``)."""
    return make_quadratic_bilevel(seed=seed, device=device, **sizes)
