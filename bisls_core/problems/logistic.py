r"""Binary logistic regression (Figures 5 and 17: w8a).

.. math::

    f(x) = \frac{1}{n}\sum_{i=1}^{n} f_i(x), \qquad
    f_i(x) = \log\bigl(1 + \exp(-y_i\, a_i^\top x)\bigr) + \frac{\lambda}{2}\|x\|^2,

with labels :math:`y_i \in \{-1, +1\}`. Every :math:`f_i` is convex,
:math:`L_i`-smooth with :math:`L_i = \|a_i\|^2/4 + \lambda`, and non-negative
for :math:`\lambda = 0`, so :math:`l_i^* = 0` is a valid lower bound (the one the
Polyak steps use; w8a is not linearly separable, so :math:`f^* > 0` and the
model does not interpolate).

:math:`f^*` is not known in closed form. By default it is left unknown
(``f_star=None``: the figures plot :math:`f(x)`, as the paper does); with
``estimate_f_star=True`` a full-batch Newton run in float64 (at most 50
iterations, stopped when the Newton decrement is below 1e-20) computes
:math:`x^*` and :math:`f^*` when the problem is built. Nothing is cached on
disk.

Data: ``data="w8a"`` (:func:`bisls_core.data.load_w8a`, optionally its first
``n_samples`` rows) or ``data="synthetic"`` (a small non-separable Gaussian
problem drawn from ``seed``: :math:`a_i \sim \mathcal N(0, I_d)`, labels from a
random hyperplane with 20% of them flipped), used for Theorem 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import SingleLevelProblem

__all__ = ["make", "newton_solve"]

DATA = ("w8a", "synthetic")


def _loss(A: torch.Tensor, y: torch.Tensor, x: torch.Tensor, l2: float) -> torch.Tensor:
    out = F.softplus(-y * (A @ x)).mean()
    return out + 0.5 * l2 * x.dot(x) if l2 else out


def newton_solve(A: torch.Tensor, y: torch.Tensor, l2: float = 0.0, iters: int = 50):
    """Minimise the full logistic loss by damped Newton in float64; returns ``(x*, f*)``."""
    A = A.to(torch.float64)
    y = y.to(torch.float64)
    n, d = A.shape
    x = torch.zeros(d, dtype=torch.float64, device=A.device)
    eye = torch.eye(d, dtype=torch.float64, device=A.device)
    for _ in range(iters):
        z = y * (A @ x)
        s = torch.sigmoid(-z)
        grad = -(A.T @ (y * s)) / n + l2 * x
        hess = (A.T * (s * (1 - s))) @ A / n + (l2 + 1e-12) * eye
        step = torch.linalg.solve(hess, grad)
        dec = float(grad.dot(step))
        t, f0 = 1.0, float(_loss(A, y, x, l2))
        while float(_loss(A, y, x - t * step, l2)) > f0 - 0.25 * t * dec and t > 1e-10:
            t *= 0.5
        x = x - t * step
        if dec < 1e-20:
            break
    return x, float(_loss(A, y, x, l2))


def make(
    *,
    device=None,
    seed: int = 0,
    data: str = "w8a",
    batch: int | None = 100,
    l2: float = 0.0,
    n_samples: int | None = None,
    n: int = 200,
    d: int = 5,
    estimate_f_star: bool = False,
) -> SingleLevelProblem:
    """Build the logistic-regression problem.

    Parameters
    ----------
    data:
        ``"w8a"`` or ``"synthetic"``.
    batch:
        samples per stochastic gradient (``None``: full batch).
    l2:
        :math:`\\lambda \\ge 0`.
    n_samples:
        w8a only: keep the first ``n_samples`` rows (``None``: all 49,749).
    n, d, seed:
        synthetic only: number of samples, dimension and the generator's seed.
    estimate_f_star:
        compute :math:`x^*, f^*` by Newton's method when building the problem.
    """
    if data not in DATA:
        raise ValueError(f"unknown data {data!r}; valid values are: {', '.join(map(repr, DATA))}")
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2!r}")
    if data == "w8a":
        from ..data import load_w8a

        A, y = load_w8a(device=device)
        if n_samples is not None:
            A, y = A[:n_samples], y[:n_samples]
    else:
        gen = torch.Generator().manual_seed(int(seed))
        A = torch.randn(n, d, generator=gen, dtype=torch.float64)
        w = torch.randn(d, generator=gen, dtype=torch.float64)
        y = torch.sign(A @ w + 1e-12)
        flip = torch.rand(n, generator=gen, dtype=torch.float64) < 0.2
        y = torch.where(flip, -y, y)
        A, y = A.to(device), y.to(device)
    x_star = f_star = None
    if estimate_f_star:
        xs, f_star = newton_solve(A, y, l2)
        x_star = xs.to(A.dtype)

    def f(x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        if idx is None:
            return _loss(A, y, x, l2)
        return _loss(A[idx], y[idx], x, l2)

    sq = (A.to(torch.float64) ** 2).sum(1)
    return SingleLevelProblem(
        name=f"logistic-{data}",
        f=f,
        x0=torch.zeros(A.shape[1], dtype=A.dtype, device=A.device),
        n=A.shape[0],
        batch=batch,
        lower_bound=0.0,
        x_star=x_star,
        f_star=f_star,
        info={"L_max": float(sq.max()) / 4 + l2, "G": float(sq.max())},
    )
