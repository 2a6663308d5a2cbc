r"""Pure step-size rules of the paper.

Every rule here is a function of numbers (Python floats or 0-d tensors) that
returns a step size and, for the line search, the facts of how it was found.
The rules know nothing of models: the optimizers (:mod:`bisls_core.optim`) and
the bilevel loop (:mod:`bisls_core.bilevel`) call them.

Equation numbers refer to the paper (Fan, Choné-Ducasse, Schmidt, Thrampoulidis).

* :func:`polyak_ratio` -- the stochastic Polyak ratio
  :math:`(f_i(x) - l_i^*) / (c \|\nabla f_i(x)\|^2)`, shared by every SPS rule.
* :func:`sps_max` (5), :func:`dec_sps` (6), :func:`spsb` (7).
* :func:`armijo_holds` -- the (stochastic) Armijo test (8), with the slack
  :math:`\delta` of the bilevel condition (14).
* :func:`armijo_backtracking` -- the one backtracking routine used by SLS,
  SLSB, the lower level of BiSLS and (with condition (14)) its upper level.
* :func:`envelope_step` (9), :func:`reset` (Algorithm 3) and the upper-bound
  schedules (:func:`schedule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

__all__ = [
    "RESET_OPTIONS",
    "SCHEDULES",
    "LineSearchResult",
    "armijo_backtracking",
    "armijo_holds",
    "check_positive",
    "check_choice",
    "dec_sps",
    "envelope_step",
    "polyak_ratio",
    "reset",
    "schedule",
    "sps_max",
    "spsb",
]

#: Names of the reset options of Algorithm 3 (the paper numbers them 1, 2, 3).
RESET_OPTIONS: dict[str, int] = {"reset": 1, "keep": 2, "grow": 3}

#: Upper-bound schedules gamma_{b,k} as functions of (gamma_{b,0}, k).
SCHEDULES: dict[str, Callable[[float, int], float]] = {
    "constant": lambda g0, k: g0,
    "inv_sqrt": lambda g0, k: g0 / math.sqrt(k + 1),
    "inv": lambda g0, k: g0 / (k + 1),
}


# --------------------------------------------------------------------------- checks
def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``float(value)`` or raise a ``ValueError`` naming the parameter."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return v


def check_choice(name: str, value: object, choices) -> None:
    """Raise a ``ValueError`` naming the parameter and listing the valid values."""
    if value not in choices:
        valid = ", ".join(repr(c) for c in choices)
        raise ValueError(f"unknown {name} {value!r}; valid values are: {valid}")


def _check_unit_interval(name: str, value: float) -> float:
    v = check_positive(name, value)
    if not v < 1:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return v


# --------------------------------------------------------------------------- schedules
def schedule(name: str, gamma_b0: float, k: int) -> float:
    r"""Upper bound :math:`\gamma_{b,k}` of the named schedule at iteration ``k``.

    ``"constant"``: :math:`\gamma_{b,0}` (SPS_max, SLS);
    ``"inv_sqrt"``: :math:`\gamma_{b,0}/\sqrt{k+1}` (Theorem 1, eq. (12), Figure 5);
    ``"inv"``: :math:`\gamma_{b,0}/(k+1)` (Theorem 2, Theorem 3's :math:`\beta_{b,k}`).
    """
    check_choice("schedule", name, SCHEDULES)
    check_positive("gamma_b0", gamma_b0)
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return SCHEDULES[name](float(gamma_b0), int(k))


# --------------------------------------------------------------------------- Polyak
def polyak_ratio(loss, grad_sq_norm, lower_bound=0.0, c: float = 1.0):
    r"""Stochastic Polyak ratio :math:`\frac{f_i(x) - l_i^*}{c\,\|\nabla f_i(x)\|^2}`.

    Works on floats and on tensors (it stays on the tensors' device). A zero
    gradient gives ``+inf`` (the upper bound then decides the step), never a
    division-by-zero error; a loss below the lower bound gives 0.
    """
    c = check_positive("c", c)
    gap = loss - lower_bound
    if isinstance(gap, float) or isinstance(gap, int):
        gap = max(float(gap), 0.0)
        g2 = float(grad_sq_norm)
        return math.inf if g2 <= 0.0 else gap / (c * g2)
    import torch

    gap = torch.clamp(gap, min=0.0)
    g2 = torch.as_tensor(grad_sq_norm, dtype=gap.dtype, device=gap.device)
    inf = torch.full_like(gap, math.inf)
    return torch.where(g2 > 0, gap / (c * torch.where(g2 > 0, g2, torch.ones_like(g2))), inf)


def _minimum(a, b: float):
    if isinstance(a, (float, int)):
        return min(float(a), b)
    import torch

    return torch.clamp(a, max=b)


def sps_max(loss, grad_sq_norm, gamma_b: float, c: float = 1.0, lower_bound=0.0):
    r"""SPS_max, Eq. (5): :math:`\min\{(f_i - f_i^*)/(c\|\nabla f_i\|^2), \gamma_{b,0}\}`."""
    gamma_b = check_positive("gamma_b", gamma_b)
    return _minimum(polyak_ratio(loss, grad_sq_norm, lower_bound, c), gamma_b)


def spsb(loss, grad_sq_norm, gamma_b_k: float, c: float = 1.0, lower_bound=0.0):
    r"""SPSB, Eq. (7): :math:`\min\{(f_i - l_i^*)/(c_k\|\nabla f_i\|^2), \gamma_{b,k}\}`.

    The same formula as :func:`sps_max`; what makes it SPSB is that the caller
    passes a non-increasing bound :math:`\gamma_{b,k}` (see :func:`schedule`).
    """
    return sps_max(loss, grad_sq_norm, gamma_b_k, c, lower_bound)


def dec_sps(loss, grad_sq_norm, c_k: float, c_prev: float, gamma_prev: float, lower_bound=0.0):
    r"""DecSPS, Eq. (6): :math:`\frac{1}{c_k}\min\{(f_i - l_i^*)/\|\nabla f_i\|^2,\ c_{k-1}\gamma_{k-1}\}`.

    For ``k = 0`` pass ``c_prev = c_0`` and ``gamma_prev = gamma_b0``: this gives
    :math:`\bar\gamma` of the paper.
    """
    c_k = check_positive("c_k", c_k)
    c_prev = check_positive("c_prev", c_prev)
    gamma_prev = check_positive("gamma_prev", gamma_prev)
    return _minimum(polyak_ratio(loss, grad_sq_norm, lower_bound, 1.0), c_prev * gamma_prev) / c_k


def envelope_step(gamma_tilde: float, omega: float, gamma_b_k: float) -> float:
    r"""Envelope-type step, Eq. (9): :math:`\min\{\max\{\gamma_{l,k}, \tilde\gamma_k\}, \gamma_{b,k}\}`
    with :math:`\gamma_{l,k} = \min\{\omega, \gamma_{b,k}\}`."""
    omega = check_positive("omega", omega)
    gamma_b_k = check_positive("gamma_b_k", gamma_b_k)
    gamma_l = min(omega, gamma_b_k)
    return min(max(gamma_l, float(gamma_tilde)), gamma_b_k)


# --------------------------------------------------------------------------- Armijo
def armijo_holds(f_new, f_old, step: float, sq_norm, c: float, delta: float = 0.0) -> bool:
    r"""The Armijo test of Eq. (8), with the slack :math:`\delta` of Eq. (14).

    :math:`f(x - \gamma d) \le f(x) - c\,\gamma\,\|d\|^2 + \delta`. ``sq_norm`` is
    :math:`\|\nabla f_i\|^2` for SGD and :math:`\|h\|^2_{A^{-1}}` for Adam. A NaN or
    infinite trial value fails the test.
    """
    f_new = float(f_new)
    if not math.isfinite(f_new):
        return False
    return f_new <= float(f_old) - c * step * float(sq_norm) + delta


@dataclass(frozen=True)
class LineSearchResult:
    """What a backtracking search found.

    Attributes
    ----------
    step:
        the accepted step (the smallest tried step when the search failed).
    rounds:
        number of evaluations of the condition (``>= 1``).
    success:
        whether the condition held for ``step``.
    value:
        the trial objective at ``step`` (whatever ``trial`` returned).
    """

    step: float
    rounds: int
    success: bool
    value: float


def armijo_backtracking(
    trial: Callable[[float], float],
    f_old: float,
    sq_norm: float,
    start: float,
    *,
    c: float = 0.5,
    w: float = 0.5,
    delta: float = 0.0,
    max_rounds: int = 100,
) -> LineSearchResult:
    r"""Backtracking Armijo line search (Eq. (8); Eq. (14) with ``delta``).

    Starting from ``start`` (the reset upper bound, Algorithm 3), multiply the
    step by ``w`` until ``armijo_holds(trial(step), f_old, step, sq_norm, c, delta)``.

    Parameters
    ----------
    trial:
        ``step -> objective value after the trial step`` (for the upper level
        of BiSLS this includes the one lower-level step of Algorithm 2, l. 14).
    f_old, sq_norm:
        :math:`f(x)` and the squared norm of the search direction.
    start:
        first step tried.
    c:
        Armijo constant, :math:`0 < c \le 1` (:math:`\bar c` in (8), :math:`p` in (14);
        the paper states :math:`c < 1` but runs SLS with :math:`c = 1` in Figure 5).
    w:
        backtracking factor, :math:`0 < w < 1`.
    delta:
        slack of Eq. (14), ``>= 0``.
    max_rounds:
        budget of condition evaluations. When it runs out, the search returns
        the smallest tried step with ``success=False`` instead of looping on.
    """
    start = check_positive("start", start)
    c = check_positive("c", c)
    if c > 1:
        # Eq. (8) states 0 < c < 1; Figure 5 runs SLS with c = 1, so 1 is allowed.
        raise ValueError(f"c must lie in (0, 1], got {c!r}")
    w = _check_unit_interval("w", w)
    delta = check_positive("delta", delta, allow_zero=True)
    if int(max_rounds) < 1:
        raise ValueError(f"max_rounds must be >= 1, got {max_rounds!r}")
    f_old = float(f_old)
    sq_norm = float(sq_norm)
    step = start
    value = math.nan
    for rounds in range(1, int(max_rounds) + 1):
        value = float(trial(step))
        if armijo_holds(value, f_old, step, sq_norm, c, delta):
            return LineSearchResult(step, rounds, True, value)
        if rounds < max_rounds:
            step *= w
    return LineSearchResult(step, int(max_rounds), False, value)


# --------------------------------------------------------------------------- reset
def reset(previous: float | None, initial: float, option: str = "reset", eta: float = 1.0) -> float:
    r"""Starting point of the next search, Algorithm 3.

    ``"reset"`` (option 1): :math:`p \leftarrow q`, restart from ``initial``;
    ``"keep"`` (option 2): :math:`p \leftarrow p`, the last accepted step (monotone);
    ``"grow"`` (option 3): :math:`p \leftarrow \eta p`, the last step times
    :math:`\eta \ge 1` (``eta = 1`` is option 2).

    ``previous=None`` (first iteration) always gives ``initial``.
    """
    check_choice("reset option", option, RESET_OPTIONS)
    initial = check_positive("initial", initial)
    eta = check_positive("eta", eta)
    if eta < 1:
        raise ValueError(f"eta must be >= 1, got {eta!r}")
    if previous is None or option == "reset":
        return initial
    previous = check_positive("previous", previous)
    return previous if option == "keep" else eta * previous
