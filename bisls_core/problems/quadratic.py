r"""Synthetic quadratics of Appendix A.1 (adapted from Loizou et al., 2021).

The objective is the **mean** of ``n`` (default 2) quadratics

.. math::

    f(x) = \frac{1}{n}\sum_{i=1}^{n} f_i(x), \qquad
    f_i(x) = \tfrac12 (x - x_i^*)^\top H_i (x - x_i^*), \qquad
    H_i = O_i^\top \operatorname{Diag}(\log(1 + \lambda_i))\, O_i,

where :math:`O_i^\top \operatorname{Diag}(\lambda_i) O_i = P_i^\top P_i` is the
spectral decomposition of :math:`P_i^\top P_i` with :math:`P_i` standard normal,
and :math:`x_i^*` is standard normal. The paper prints the *sum*
:math:`f_1 + f_2`; the mean has the same minimiser and halves the values, and it
is what a stochastic step on one uniformly drawn :math:`f_i` estimates (the
finite-sum convention of :class:`~bisls_core.problems.SingleLevelProblem`).

Each stochastic sample is one :math:`f_i` (``batch=1``). Every :math:`f_i` has
:math:`f_i^* = 0 = l_i^*`. The minimiser and value are in closed form:
:math:`x^* = (\sum_i H_i)^{-1} \sum_i H_i x_i^*`, :math:`f^* = f(x^*)`; since the
:math:`x_i^*` differ, no point minimises every :math:`f_i` (no interpolation).
"""

from __future__ import annotations

import torch

from . import SingleLevelProblem

__all__ = ["make"]


def make(
    *,
    device=None,
    seed: int = 0,
    dim: int = 2,
    n: int = 2,
    x0=None,
    batch: int | None = 1,
    dtype: str = "float64",
) -> SingleLevelProblem:
    """Build the quadratic problem of Appendix A.1.

    Parameters
    ----------
    seed:
        seed of the local generator that draws :math:`P_i` and :math:`x_i^*`
        (``x0`` too when it is not given).
    dim, n:
        dimension (2 in the paper) and number of quadratics (2 in the paper).
    x0:
        starting point (a list of ``dim`` numbers); default: drawn from
        :math:`\\mathcal N(0, 3^2 I)` with the same generator.
    batch:
        quadratics per stochastic sample (1: one :math:`f_i`).
    dtype:
        ``"float64"`` (default: the gaps to :math:`f^*` go down to 1e-12) or ``"float32"``.
    """
    if dim < 1 or n < 1:
        raise ValueError(f"dim and n must be >= 1, got dim={dim}, n={n}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"unknown dtype {dtype!r}; valid values are: 'float64', 'float32'")
    gen = torch.Generator().manual_seed(int(seed))
    P = torch.randn(n, dim, dim, generator=gen, dtype=torch.float64)
    lam, O = torch.linalg.eigh(P.transpose(1, 2) @ P)  # P^T P = O diag(lam) O^T (columns)
    # H_i = O^T Diag(log(1 + lambda)) O in the paper's row convention.
    H = O @ torch.diag_embed(torch.log1p(lam)) @ O.transpose(1, 2)
    H = 0.5 * (H + H.transpose(1, 2))
    xs = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    start = 3.0 * torch.randn(dim, generator=gen, dtype=torch.float64)
    if x0 is not None:
        start = torch.as_tensor(x0, dtype=torch.float64).reshape(-1)
        if start.numel() != dim:
            raise ValueError(f"x0 must have {dim} entries, got {start.numel()}")
    x_star = torch.linalg.solve(H.sum(0), (H @ xs.unsqueeze(-1)).sum(0)).squeeze(-1)
    L = torch.log1p(lam).max(dim=1).values  # L_i
    mu = torch.linalg.eigvalsh(H.mean(0)).min()
    tdtype = getattr(torch, dtype)
    H_t, xs_t = H.to(device=device, dtype=tdtype), xs.to(device=device, dtype=tdtype)

    def f(x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        Hs, cs = (H_t, xs_t) if idx is None else (H_t[idx], xs_t[idx])
        r = x.unsqueeze(0) - cs
        return 0.5 * torch.einsum("ni,nij,nj->n", r, Hs, r).mean()

    f_star = float(f(x_star.to(device=device, dtype=tdtype)))
    return SingleLevelProblem(
        name="quadratic",
        f=f,
        x0=start.to(device=device, dtype=tdtype),
        n=n,
        batch=batch,
        lower_bound=0.0,
        x_star=x_star.to(device=device, dtype=tdtype),
        f_star=f_star,
        info={"H": H, "x_i_star": xs, "L_max": float(L.max()), "mu": float(mu),
              "L": float(torch.linalg.eigvalsh(H.mean(0)).max())},
    )
