r"""Hypergradient estimators for bi-level problems.

For :math:`\min_x F(x) = f(x, y^*(x))` with :math:`y^*(x) = \arg\min_y g(x, y)`
(Eq. (1) of the paper), the implicit function theorem gives

.. math::

    \nabla F(x) = \nabla_x f(x, y^*) - \nabla^2_{xy} g(x, y^*)\,
    \big[\nabla^2_{yy} g(x, y^*)\big]^{-1} \nabla_y f(x, y^*),

where :math:`\nabla^2_{xy} g` is the :math:`d_x \times d_y` matrix
:math:`\partial^2 g / \partial x \partial y`. **Note on the paper's text:** Eq. (2)
and Eq. (17) print a ``+`` in front of the second term; that is a typo. Eq. (13)
and the French report have the minus, and differentiating
:math:`\nabla_y g(x, y^*(x)) = 0` gives
:math:`\mathrm{d}y^*/\mathrm{d}x = -[\nabla^2_{yy} g]^{-1}\nabla^2_{yx} g`, hence the minus.

Every estimator replaces :math:`[\nabla^2_{yy} g]^{-1}\nabla_y f` by an approximation
:math:`v` and returns :math:`h = \nabla_x f - \nabla^2_{xy} g\, v` evaluated at the
given :math:`(x, y)` (in the bilevel loop :math:`y = y^{k+1}`, an approximation
of :math:`y^*(x^k)`). They share one signature, :func:`hypergradient`, and one
second-order oracle, :func:`second_order_oracle` (Hessian-vector products by
double back-propagation; no dense Hessian except in ``"exact"``).

Registry :data:`ESTIMATORS`:

``"identity"``
    :math:`v = s\,\nabla_y f` (inverse Hessian treated as the identity, as in
    Lorraine et al. and Figures 6 and 9b of the paper; ``s = scale``, default 1).
``"neumann"``
    truncated Neumann series :math:`v = s \sum_{j=0}^{N} (I - \eta H)^j \nabla_y f`
    with :math:`N` = ``steps``, :math:`\eta` = ``lr`` and :math:`s` = ``scale``
    (default :math:`s = \eta`, for which :math:`v \to H^{-1}\nabla_y f` as
    :math:`N \to \infty` when :math:`0 < \eta < 2/L_g`).
``"neumann_stochastic"``
    the randomised product of Eq. (13). We implement

    .. math::

        v = \frac{N}{L_g} \prod_{j=1}^{\bar N}
            \Big(I - \frac{1}{L_g}\nabla^2_{yy} g(x, y; \psi_j)\Big)\nabla_y f(x, y; \phi),
        \qquad \bar N \sim \mathcal U\{0, \dots, N-1\},

    with :math:`1/L_g` = ``lr`` and the empty product (:math:`\bar N = 0`) equal to
    :math:`I`. Its mean (for a fixed Hessian) is
    :math:`\frac{1}{L_g}\sum_{n=0}^{N-1}(I - H/L_g)^n \nabla_y f`, the truncated
    Neumann series, whose bias decays geometrically in :math:`N`, as the paper
    states after Eq. (17) (following Ghadimi & Wang and Hong et al.). The paper's
    text writes the factors as :math:`(I - \nabla^2_{yy} g)` and
    :math:`\bar N \sim \mathcal U[N] = \{1..N\}`; read literally, the mean would be
    :math:`\frac{1}{L_g}\sum_{n=1}^{N}(\cdot)^n`, which misses the :math:`n = 0`
    term: its bias is :math:`\frac{1}{L_g}[(I - H/L_g)^N - I]` (applied to
    :math:`\nabla_y f`), which does not vanish as :math:`N` grows but tends to
    :math:`-\frac{1}{L_g} I`. The draw
    of :math:`\bar N` is returned in ``info["n_bar"]``.
``"cg"``
    ``steps`` iterations of conjugate gradient on :math:`H v = \nabla_y f` from
    :math:`v_0 = 0`; the **last** iterate is returned.
``"exact"``
    dense solve of :math:`H v = \nabla_y f` (``y.numel() <= 5000`` only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch

from .problems import keeping_graphs
from .stepsizes import check_choice, check_positive

Tensor = torch.Tensor

__all__ = [
    "ESTIMATORS",
    "EXACT_MAX_DIM",
    "HypergradResult",
    "KeptGraph",
    "SecondOrderOracle",
    "hypergradient",
    "second_order_oracle",
]

#: Largest ``y.numel()`` for which ``method="exact"`` builds the dense Hessian.
EXACT_MAX_DIM = 5000


class KeptGraph:
    r"""The graph :func:`hypergradient` keeps with ``keep_graph=True``, for the trial model
    of condition (14) (:meth:`bisls_core.bilevel.Line14Trial.model`), which then repeats no
    forward pass: ``x``, the one leaf copy of ``x`` that both :math:`f` and :math:`g` were
    evaluated at; ``y``, the leaf copy of ``y`` of the second-order oracle, and ``gy``,
    :math:`\nabla_y g(x, y; \psi)` with its graph to ``x`` and ``y`` (``create_graph``).
    The graphs of :math:`f` and :math:`g` are retained, and inside
    :func:`bisls_core.problems.keeping_graphs` a problem may hand out again what it
    computed with a graph to ``x`` (the hyper-representation problem's embeddings).
    ``release()`` drops them (the model does, once it is done)."""

    __slots__ = ("gy", "x", "y")

    def __init__(self, x: Tensor, y: Tensor, gy: Tensor) -> None:
        self.x, self.y, self.gy = x, y, gy

    def release(self) -> None:
        self.x = self.y = self.gy = None

    def __repr__(self) -> str:
        return "KeptGraph(released)" if self.x is None else "KeptGraph(x, y, gy)"


@dataclass(frozen=True)
class HypergradResult:
    r"""What :func:`hypergradient` returns (all tensors detached, on the inputs' device).

    Attributes
    ----------
    h:
        the hypergradient estimate :math:`h = \nabla_x f - \nabla^2_{xy} g\, v`,
        shape of ``x``.
    n_hvp:
        number of second-order products computed: Hessian-vector products
        :math:`\nabla^2_{yy} g\, u` **plus** the one cross product
        :math:`\nabla^2_{xy} g\, v` (each costs one double back-propagation).
        For ``"exact"`` the dense Hessian counts as ``y.numel()`` products.
    v:
        the approximation of :math:`[\nabla^2_{yy} g]^{-1}\nabla_y f`, shape of ``y``.
    f_value, g_value:
        :math:`f(x, y; \phi)` and :math:`g(x, y; \psi)` on the batches used (0-d).
    grad_y_f:
        :math:`\nabla_y f(x, y; \phi)`.
    method:
        the estimator's name.
    info:
        estimator-specific facts: ``{"n_bar": N̄}`` for ``"neumann_stochastic"``.
    graph:
        with ``keep_graph=True``, the :class:`KeptGraph` (``None`` otherwise).
    """

    h: Tensor
    n_hvp: int
    v: Tensor
    f_value: Tensor
    g_value: Tensor
    grad_y_f: Tensor
    method: str
    info: dict = field(default_factory=dict)
    graph: KeptGraph | None = field(default=None, repr=False, compare=False)


class SecondOrderOracle(NamedTuple):
    r"""Products with the second derivatives of ``g`` at one point and one batch.

    Attributes
    ----------
    hvp:
        ``u -> \nabla^2_{yy} g(x, y; \psi)\, u`` (shape of ``y``).
    cross:
        ``u -> \nabla^2_{xy} g(x, y; \psi)\, u = \nabla_x \langle \nabla_y g, u\rangle``
        (shape of ``x``).
    grad_y:
        :math:`\nabla_y g(x, y; \psi)`, detached.
    value:
        :math:`g(x, y; \psi)`, detached 0-d tensor.
    """

    hvp: Callable[[Tensor], Tensor]
    cross: Callable[[Tensor], Tensor]
    grad_y: Tensor
    value: Tensor


def _leaf(t: Tensor) -> Tensor:
    return t.detach().requires_grad_(True)


def _zeros_if_none(grad: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if grad is None else grad


def second_order_oracle(g: Callable, x: Tensor, y: Tensor, idx) -> SecondOrderOracle:
    r"""The one second-order oracle used by every estimator.

    Builds :math:`\nabla_y g(x, y; \psi)` once with ``create_graph=True`` and
    differentiates :math:`\langle \nabla_y g, u\rangle` again: with respect to
    :math:`y` for :math:`\nabla^2_{yy} g\,u`, with respect to :math:`x` for
    :math:`\nabla^2_{xy} g\,u`. Uses fresh leaf copies of ``x`` and ``y``: the
    inputs are not modified and no ``.grad`` attribute is written. The products
    are detached.
    """
    return _second_order(g, _leaf(x), _leaf(y), idx)[0]


def _second_order(g: Callable, x_: Tensor, y_: Tensor, idx) -> tuple[SecondOrderOracle, Tensor]:
    r""":func:`second_order_oracle` at the leaves ``x_``, ``y_``; also
    :math:`\nabla_y g` with its graph."""
    with torch.enable_grad():
        value = g(x_, y_, idx)
        (gy,) = torch.autograd.grad(value, y_, create_graph=True)

    def hvp(u: Tensor) -> Tensor:
        if not gy.requires_grad:  # g linear in y: zero Hessian
            return torch.zeros_like(y_)
        with torch.enable_grad():
            out = torch.autograd.grad(gy, y_, u, retain_graph=True, allow_unused=True)[0]
        return _zeros_if_none(out, y_).detach()

    def cross(u: Tensor) -> Tensor:
        if not gy.requires_grad:
            return torch.zeros_like(x_)
        with torch.enable_grad():
            out = torch.autograd.grad(gy, x_, u, retain_graph=True, allow_unused=True)[0]
        return _zeros_if_none(out, x_).detach()

    return SecondOrderOracle(hvp, cross, gy.detach(), value.detach()), gy


def _upper_gradients(f: Callable, x: Tensor, y: Tensor, idx, x_: Tensor | None = None,
                     keep: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """``f(x, y; idx)``, its gradients in ``x`` and in ``y`` (all detached); at the leaf
    ``x_`` when given, with the graph retained when ``keep``."""
    with torch.enable_grad():
        x_, y_ = _leaf(x) if x_ is None else x_, _leaf(y)
        value = f(x_, y_, idx)
        gx, gy = torch.autograd.grad(value, (x_, y_), allow_unused=True, retain_graph=keep)
    return value.detach(), _zeros_if_none(gx, x).detach(), _zeros_if_none(gy, y).detach()


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return torch.sum(a * b)


# ---------------------------------------------------------------- the solvers of H v = b
# Each returns (v, number of Hessian-vector products with H, info).
def _identity(oracle, b, *, steps, lr, scale, gen, index_sampler, make_oracle):
    s = 1.0 if scale is None else scale
    return s * b, 0, {}


def _neumann(oracle, b, *, steps, lr, scale, gen, index_sampler, make_oracle):
    eta = 1.0 if lr is None else lr
    s = eta if scale is None else scale
    term = b
    total = b
    for _ in range(steps):
        term = term - eta * oracle.hvp(term)
        total = total + term
    return s * total, steps, {}


def _neumann_stochastic(oracle, b, *, steps, lr, scale, gen, index_sampler, make_oracle):
    """Eq. (13), as read in the module docstring (``"neumann_stochastic"``)."""
    eta = 1.0 if lr is None else lr
    s = steps * eta if scale is None else scale
    # N̄ ~ U{0, ..., N-1}: see the docstring for why not U{1..N}.
    n_bar = int(torch.randint(0, steps, (1,), generator=gen).item())
    term = b
    for _ in range(n_bar):
        o = oracle if index_sampler is None else make_oracle(index_sampler(gen))
        term = term - eta * o.hvp(term)
    return s * term, n_bar, {"n_bar": n_bar}


def _cg(oracle, b, *, steps, lr, scale, gen, index_sampler, make_oracle):
    # Conjugate gradient from v0 = 0 (so r0 = b: no product needed), written without
    # host synchronisation: a step whose curvature p^T H p is not positive, or taken
    # once the residual is at round-off level, is skipped (coefficient 0).
    v = torch.zeros_like(b)
    r = b.clone()
    p = r.clone()
    rs = _dot(r, r)
    tiny = (torch.finfo(b.dtype).eps * torch.linalg.vector_norm(b)) ** 2
    zero = torch.zeros((), dtype=b.dtype, device=b.device)
    for _ in range(steps):
        hp = oracle.hvp(p)
        php = _dot(p, hp)
        active = (php > 0) & (rs > tiny)
        a = torch.where(active, rs / torch.where(active, php, torch.ones_like(php)), zero)
        v = v + a * p
        r = r - a * hp
        rs_new = _dot(r, r)
        beta = torch.where(active, rs_new / torch.where(active, rs, torch.ones_like(rs)), zero)
        p = r + beta * p
        rs = torch.where(active, rs_new, rs)
    return v, steps, {}


def _exact(oracle, b, *, steps, lr, scale, gen, index_sampler, make_oracle):
    n = b.numel()  # <= EXACT_MAX_DIM, checked by `hypergradient`
    eye = torch.eye(n, dtype=b.dtype, device=b.device)
    hess = torch.stack([oracle.hvp(e) for e in eye])  # row i = H e_i (H symmetric)
    hess = 0.5 * (hess + hess.T)
    return torch.linalg.solve(hess, b), n, {}


#: The estimators by name (see the module docstring); all share :func:`hypergradient`'s signature.
ESTIMATORS: dict[str, Callable] = {
    "identity": _identity,
    "neumann": _neumann,
    "neumann_stochastic": _neumann_stochastic,
    "cg": _cg,
    "exact": _exact,
}


def _check_args(method: str, steps, lr, scale, y: Tensor):
    """``(steps, lr, scale)`` normalised, or the ``ValueError`` of :func:`hypergradient`."""
    check_choice("hypergradient method", method, ESTIMATORS)
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    steps = int(steps)
    if method == "neumann_stochastic" and steps < 1:
        raise ValueError(
            f"steps (N of Eq. (13)) must be >= 1 for 'neumann_stochastic', got {steps}"
        )
    if lr is not None:
        lr = check_positive("lr", lr)
    if scale is not None:
        scale = check_positive("scale", scale, allow_zero=True)
    if method == "exact" and y.numel() > EXACT_MAX_DIM:
        raise ValueError(
            f"method 'exact' builds the dense Hessian; it is limited to "
            f"y.numel() <= {EXACT_MAX_DIM}, got {y.numel()}: use 'cg' instead"
        )
    return steps, lr, scale


def hypergradient(
    f: Callable,
    g: Callable,
    x: Tensor,
    y: Tensor,
    idx_f=None,
    idx_g=None,
    method: str = "cg",
    *,
    steps: int = 10,
    lr: float | None = None,
    scale: float | None = None,
    gen: torch.Generator | None = None,
    index_sampler: Callable[[torch.Generator], Tensor | None] | None = None,
    keep_graph: bool = False,
) -> HypergradResult:
    r"""Stochastic hypergradient :math:`h_f = \nabla_x f - \nabla^2_{xy} g\, v` at ``(x, y)``.

    ``v`` approximates :math:`[\nabla^2_{yy} g(x, y; \psi)]^{-1}\nabla_y f(x, y; \phi)`
    (Eq. (2) with the sign corrected, see the module docstring), where
    :math:`\phi` = ``idx_f`` and :math:`\psi` = ``idx_g``.

    Parameters
    ----------
    f, g:
        ``(x, y, idx) -> scalar tensor``: upper and lower objectives.
    x, y:
        the point (1-D tensors, any device; neither is modified).
    idx_f, idx_g:
        batches :math:`\phi` (upper) and :math:`\psi_0` (lower; ``None``: full).
    method:
        a key of :data:`ESTIMATORS`.
    steps:
        ``"neumann"``: :math:`N`, the series :math:`\sum_{j=0}^{N}` (N products);
        ``"neumann_stochastic"``: :math:`N \ge 1` of Eq. (13);
        ``"cg"``: number of CG iterations (one product each). Ignored otherwise.
    lr:
        :math:`\eta` of the Neumann forms (:math:`1/L_g` in Eq. (13)); default 1,
        which is Eq. (13) as printed, i.e. it assumes :math:`\|\nabla^2_{yy} g\| \le 1`.
        Needs :math:`0 < \eta < 2/L_g` for the series to converge.
    scale:
        prefactor :math:`s` of the approximation: ``"identity"`` 1,
        ``"neumann"`` :math:`\eta`, ``"neumann_stochastic"`` :math:`N\eta`
        (= :math:`N/L_g`, Eq. (13); see the module docstring for the form
        implemented and its mean) by default.
    gen:
        ``torch.Generator`` (CPU) used to draw :math:`\bar N` and, with
        ``index_sampler``, the batches :math:`\psi_j` (``"neumann_stochastic"`` only).
    index_sampler:
        ``gen -> idx``; when given, factor :math:`j` of the stochastic product uses
        its own batch :math:`\psi_j` = ``index_sampler(gen)`` as in Eq. (13);
        otherwise every factor uses ``idx_g``.
    keep_graph:
        evaluate :math:`f` and :math:`g` at one leaf copy of ``x``, retain their graphs
        and return them in ``graph`` (:class:`KeptGraph`), inside
        :func:`bisls_core.problems.keeping_graphs` (a problem may then reuse its forward
        passes for a later call with the same leaf). The numbers are the same.

    Returns
    -------
    HypergradResult
        ``h`` and the count ``n_hvp`` (products with :math:`\nabla^2_{yy} g`
        plus one cross product), with ``v``, the loss values and ``info`` (and ``graph``).

    Raises
    ------
    ValueError
        unknown ``method`` (the message lists the valid ones), bad ``steps``,
        ``lr`` or ``scale``, or ``"exact"`` with ``y.numel() > 5000``.
    """
    steps, lr, scale = _check_args(method, steps, lr, scale, y)
    if method == "neumann_stochastic" and gen is None:
        gen = torch.Generator()

    kept = None
    if keep_graph:
        x_, y_ = _leaf(x), _leaf(y)
        with keeping_graphs():
            f_value, gx, b = _upper_gradients(f, x, y, idx_f, x_, keep=True)
            oracle, gy = _second_order(g, x_, y_, idx_g)
        kept = KeptGraph(x_, y_, gy)
    else:
        f_value, gx, b = _upper_gradients(f, x, y, idx_f)
        oracle = second_order_oracle(g, x, y, idx_g)
    v, n_yy, info = ESTIMATORS[method](
        oracle, b, steps=steps, lr=lr, scale=scale, gen=gen, index_sampler=index_sampler,
        make_oracle=lambda idx: second_order_oracle(g, x, y, idx),
    )
    h = gx - oracle.cross(v)
    return HypergradResult(
        h=h.detach(), n_hvp=int(n_yy) + 1, v=v.detach(), f_value=f_value,
        g_value=oracle.value, grad_y_f=b, method=method, info=info, graph=kept,
    )
