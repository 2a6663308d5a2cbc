r"""Tuning the ridge penalties of a logistic regression on w8a (a small bi-level problem).

The lower level fits an L2-regularised logistic regression :math:`y \in \mathbb R^{d}`
on a training split :math:`(a_i, b_i)_{i \le n}`, with one penalty
:math:`\lambda_j = e^{x_j}` per feature (or one shared :math:`\lambda = e^{x}` with
``per_feature=False``); the upper level tunes :math:`x` for the logistic loss on a
disjoint validation split :math:`(a'_j, b'_j)_{j \le m}`:

.. math::

    g(x, y) = \frac1n \sum_{i=1}^n \log\big(1 + e^{-b_i a_i^\top y}\big)
              + \frac12 \sum_{j=1}^{d} e^{x_j} y_j^2, \qquad
    f(x, y) = \frac1m \sum_{j=1}^m \log\big(1 + e^{-b'_j a_j'^\top y}\big).

:math:`g` is :math:`\min_j e^{x_j}`-strongly convex in :math:`y`, so :math:`y^*(x)` is
unique; both losses are non-negative (lower bounds 0 for the Polyak steps).

Closed form of the hypergradient. :math:`\nabla_x f = 0` and
:math:`\nabla_y g = \frac1n A^\top(-b \odot \sigma(-z)) + e^{x} \odot y` with
:math:`z = b \odot A y`, so

.. math::

    \nabla^2_{yy} g = \frac1n A^\top \operatorname{diag}\big(\sigma(z)\sigma(-z)\big) A
                      + \operatorname{diag}(e^{x}),\qquad
    \nabla^2_{xy} g = \operatorname{diag}(e^{x} \odot y),

and the implicit function theorem (Eq. (2) of the paper with its sign corrected, see
``ERRATA.md``) gives

.. math::

    \nabla F(x) = \nabla_x f - \nabla^2_{xy} g\,[\nabla^2_{yy} g]^{-1}\nabla_y f
                = -\,e^{x} \odot y^* \odot \big([\nabla^2_{yy} g]^{-1}\nabla_y f\big)
    \quad\text{at } y = y^*(x),

summed over the features when :math:`\lambda` is shared. ``info["hypergrad"]`` computes
it with the dense :math:`d \times d` Hessian (:math:`d = 301`, see below) and
:math:`y^*(x)` from Newton's method, written out with :math:`\sigma` and no
automatic differentiation, so that it checks the library's estimators
(:func:`bisls_core.hypergrad.hypergradient`) independently.

Data: the rows of :func:`bisls_core.data.load_w8a` are shuffled by a generator seeded
with ``seed``; the first ``n_train`` form the training split, the next ``n_val`` the
validation split. A constant feature 1 is appended to w8a's 300 binary features (the
intercept, with its own penalty), so :math:`d = 301`: without it the model cannot
learn the base rate (3% of the labels are positive).
Computations are in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import BilevelProblem

__all__ = ["check_sizes", "make", "make_ridge", "split_w8a"]

Tensor = torch.Tensor


def _check_size(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_sizes(n_train: int, n_val: int, batch: int | None = None) -> None:
    """``ValueError`` naming the parameters unless ``1 <= n_train``, ``1 <= n_val``,
    ``n_train + n_val <= 49749`` (the rows of w8a) and ``1 <= batch <= min(n_train, n_val)``
    (``batch=None``: full batches)."""
    from ..data import W8A_SHAPE

    _check_size("n_train", n_train)
    _check_size("n_val", n_val)
    if n_train + n_val > W8A_SHAPE[0]:
        raise ValueError(f"n_train + n_val = {n_train + n_val} exceeds the {W8A_SHAPE[0]} rows "
                         f"of w8a (n_train={n_train}, n_val={n_val})")
    if batch is not None:
        _check_size("batch", batch)
        if batch > min(n_train, n_val):
            raise ValueError(f"batch must be <= n_train and <= n_val, got batch={batch} with "
                             f"n_train={n_train}, n_val={n_val}")


def split_w8a(n_train: int, n_val: int, seed: int = 0, device=None,
              dtype: torch.dtype = torch.float64):
    """Disjoint training and validation rows of w8a, drawn by a permutation seeded with ``seed``.

    Returns ``(A_train, b_train, A_val, b_val)``: features (w8a's 300 and a last column
    of ones, the intercept) and labels :math:`\\pm 1`, as ``dtype`` on ``device``.
    """
    from ..data import load_w8a

    check_sizes(n_train, n_val)
    A, b = load_w8a()
    perm = torch.randperm(A.shape[0], generator=torch.Generator().manual_seed(int(seed)))
    out = []
    for rows in (perm[:n_train], perm[n_train:n_train + n_val]):
        features = torch.cat([A[rows], torch.ones(len(rows), 1)], dim=1)  # + the intercept
        out += [features.to(device=device, dtype=dtype), b[rows].to(device=device, dtype=dtype)]
    return tuple(out)


def _losses(A_tr: Tensor, b_tr: Tensor, A_va: Tensor, b_va: Tensor):
    """``(g, f)`` of the module docstring on the training and validation splits; ``idx``
    selects a batch of rows of the level's split (``None``: all of them)."""

    def _logistic(A: Tensor, b: Tensor, y: Tensor, idx) -> Tensor:
        if idx is not None:
            A, b = A[idx], b[idx]
        return F.softplus(-b * (A @ y)).mean()

    def g(x: Tensor, y: Tensor, idx=None) -> Tensor:
        return _logistic(A_tr, b_tr, y, idx) + 0.5 * (torch.exp(x) * y * y).sum()

    def f(x: Tensor, y: Tensor, idx=None) -> Tensor:
        return _logistic(A_va, b_va, y, idx)

    return g, f


def _closed_forms(g, f, splits, per_feature: bool, dev: torch.device) -> dict:
    r"""The closed forms of the module docstring, the ``info`` callables ``y_star``, ``F``,
    ``hypergrad``, ``hypergrad_at`` and ``hessian`` (see :func:`make_ridge`), for the
    losses ``g``, ``f`` on ``splits = (A_train, b_train, A_val, b_val)``."""
    A_tr, b_tr, A_va, b_va = splits
    n_train, n_val, d = A_tr.shape[0], A_va.shape[0], A_tr.shape[1]

    def hessian(x: Tensor, y: Tensor) -> Tensor:
        z = b_tr * (A_tr @ y)
        s = torch.sigmoid(z) * torch.sigmoid(-z)
        return (A_tr.T * s) @ A_tr / n_train + torch.diag(torch.exp(x).expand(d))

    def grad_y_g(x: Tensor, y: Tensor) -> Tensor:
        z = b_tr * (A_tr @ y)
        return A_tr.T @ (-b_tr * torch.sigmoid(-z)) / n_train + torch.exp(x) * y

    def y_star(x: Tensor, iters: int = 50) -> Tensor:
        """:math:`y^*(x)` by damped Newton from :math:`y = 0` (halving the step until
        Armijo's condition holds), until the Newton decrement is below 1e-20."""
        y = torch.zeros(d, dtype=A_tr.dtype, device=dev)
        for _ in range(iters):
            grad = grad_y_g(x, y)
            step = torch.linalg.solve(hessian(x, y), grad)
            t, g0, dec = 1.0, float(g(x, y)), float(grad @ step)
            if dec < 1e-20:
                break
            while float(g(x, y - t * step)) > g0 - 0.25 * t * dec and t > 1e-10:
                t *= 0.5
            y = y - t * step
        return y

    def hypergrad_at(x: Tensor, y: Tensor) -> Tensor:
        z = b_va * (A_va @ y)
        grad_y_f = A_va.T @ (-b_va * torch.sigmoid(-z)) / n_val
        v = torch.linalg.solve(hessian(x, y), grad_y_f)
        h = -torch.exp(x) * y * v
        return h if per_feature else h.sum().reshape(1)

    def hypergrad(x: Tensor) -> Tensor:
        return hypergrad_at(x, y_star(x))

    def value(x: Tensor) -> Tensor:
        return f(x, y_star(x))

    return dict(y_star=y_star, F=value, hypergrad=hypergrad, hypergrad_at=hypergrad_at,
                hessian=hessian)


def make_ridge(
    n_train: int = 1000,
    n_val: int = 1000,
    batch: int | None = 100,
    lam0: float = 0.1,
    per_feature: bool = True,
    seed: int = 0,
    device=None,
) -> BilevelProblem:
    r"""Build the ridge-tuning problem of this module.

    Parameters
    ----------
    n_train, n_val:
        rows of w8a in the training (lower) and validation (upper) splits.
    batch:
        samples per stochastic evaluation at both levels (``None``: full batch);
        at most ``min(n_train, n_val)``.
    lam0:
        starting penalty: :math:`x^0 = \log(\lambda_0)` in every coordinate.
    per_feature:
        one penalty per feature (:math:`x \in \mathbb R^{301}`, the intercept
        included) or one shared penalty (:math:`x \in \mathbb R`).
    seed:
        seed of the split (a local generator; the global RNG is untouched).
    device:
        where the tensors live (``None``: CPU).

    Returns
    -------
    BilevelProblem
        with ``x0 = log(lam0)``, ``y0 = 0``, lower bounds 0, the metric ``val_loss``
        (:math:`f` on the whole validation split at the current :math:`y`) and ``info``
        with the closed forms: ``y_star(x)`` (Newton), ``F(x)`` (:math:`f(x, y^*(x))`),
        ``hypergrad(x)`` (:math:`\nabla F(x)`), ``hypergrad_at(x, y)`` (the same formula
        at any :math:`y`), ``hessian(x, y)`` (:math:`\nabla^2_{yy} g`), and the splits.
    """
    check_sizes(n_train, n_val, batch)
    if isinstance(lam0, bool) or not isinstance(lam0, (int, float)) or not (
            math.isfinite(lam0) and lam0 > 0):
        raise ValueError(f"lam0 must be a number > 0, got {lam0!r}")
    if not isinstance(per_feature, bool):
        raise TypeError(f"per_feature must be True or False, got {per_feature!r}")
    dev = torch.device("cpu") if device is None else torch.device(device)
    A_tr, b_tr, A_va, b_va = split_w8a(n_train, n_val, seed=seed, device=dev)
    d = A_tr.shape[1]
    dim_x = d if per_feature else 1
    g, f = _losses(A_tr, b_tr, A_va, b_va)
    closed = _closed_forms(g, f, (A_tr, b_tr, A_va, b_va), per_feature, dev)

    def metrics(x: Tensor, y: Tensor) -> dict:
        return {"val_loss": float(f(x, y))}

    info = dict(**closed, A_train=A_tr, b_train=b_tr, A_val=A_va, b_val=b_va,
                positives_train=int((b_tr > 0).sum()), positives_val=int((b_va > 0).sum()))
    return BilevelProblem(
        name="ridge-w8a", f=f, g=g,
        x0=torch.full((dim_x,), math.log(lam0), dtype=A_tr.dtype, device=dev),
        y0=torch.zeros(d, dtype=A_tr.dtype, device=dev),
        n_upper=n_val, n_lower=n_train, batch_upper=batch, batch_lower=batch,
        f_lower_bound=0.0, g_lower_bound=0.0, metrics=metrics, info=info,
    )


def make(*, device=None, seed: int = 0, **sizes) -> BilevelProblem:
    """Entry point for :func:`bisls_core.problems.make` (``"ridge"``)."""
    return make_ridge(seed=seed, device=device, **sizes)
