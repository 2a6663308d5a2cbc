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
* :func:`armijo_backtracking` -- the one Armijo search, with all its guards, used
  by SLS, SLSB, the lower level of BiSLS and (with condition (14)) its upper level.
* :func:`envelope_step` (9), :func:`reset` (Algorithm 3) and the upper-bound
  schedules (:func:`schedule`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Callable

from ._validate import check_bool, check_choice, check_int, check_number, check_positive

__all__ = [
    "RESET_OPTIONS",
    "SCHEDULES",
    "OUTCOMES",
    "ROUND_OFF",
    "LineSearchResult",
    "armijo_backtracking",
    "armijo_holds",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_positive",
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
def _check_unit_interval(name: str, value: float) -> float:
    return check_positive(name, value, below=1.0)


def _check_step(name: str, value: float) -> float:
    """A computed step (a search start, the previous step): positive, not NaN; an
    infinite one is let through (it is a fact of the run, not a setting)."""
    v = float(value)
    if not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
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


#: Outcomes of :func:`armijo_backtracking`: the condition held (``"accepted"``), the
#: search was skipped by the round-off guard (``"guard"``), the budget ran out
#: (``"failed"``), or there was nothing to search on (``"nonfinite"``).
OUTCOMES = ("accepted", "guard", "failed", "nonfinite")

#: The round-off guard skips a search whose requested decrease at its start step is at
#: most ``ROUND_OFF`` times the machine epsilon of :math:`f` times :math:`|f|`.
ROUND_OFF = 8.0


@dataclass(frozen=True)
class LineSearchResult:
    """What a backtracking search found.

    Attributes
    ----------
    step:
        the step to take: the accepted one; the start step when a guard skipped the
        search; the smallest tried step when the budget ran out.
    rounds:
        evaluations of the condition (0 when a guard skipped the search).
    success:
        whether the step may serve as the memory of Algorithm 3 (``outcome`` is
        ``"accepted"`` or ``"guard"``).
    value:
        the trial objective at ``step`` (:math:`f` itself for ``"guard"``, NaN
        for ``"nonfinite"``).
    outcome:
        one of :data:`OUTCOMES`.
    info:
        further diagnostics a caller may record (empty today).
    """

    step: float
    rounds: int
    success: bool
    value: float
    outcome: str = "accepted"
    info: dict = field(default_factory=dict)


def _epsilon(value) -> float:
    """Machine epsilon of ``value``'s floating type (a Python float is a double)."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return sys.float_info.epsilon
    import torch

    return torch.finfo(dtype).eps if dtype.is_floating_point else 0.0


def armijo_backtracking(
    trial: Callable[[float], float],
    f_old,
    sq_norm,
    start: float,
    *,
    c: float = 0.5,
    w: float = 0.5,
    delta: float = 0.0,
    max_rounds: int = 100,
) -> LineSearchResult:
    r"""The Armijo line search with its guards (Eq. (8); Eq. (14) with ``delta``).

    The one search of the package: :class:`~bisls_core.optim.SLS`, the lower search
    of BiSLS (condition (8)) and its upper search (condition (14)) call it. From
    ``start`` (the reset of Algorithm 3) the step is multiplied by ``w`` until
    ``armijo_holds(trial(step), f_old, step, sq_norm, c, delta)``. Guards, in order:

    1. **non-finite start** -- ``f_old`` or ``sq_norm`` is NaN or infinite: nothing
       to search on; ``start`` is returned, 0 rounds, outcome ``"nonfinite"``.
    2. **round-off** -- :math:`c\,\gamma_{\text{start}}\|d\|^2 \le 8\,\epsilon|f|`
       (:math:`\epsilon` of ``f_old``'s dtype): the decrease asked for is below the
       resolution of :math:`f`, so the test would be decided by rounding (a
       converged level whose sampled loss does not vanish; a gradient that is
       numerically zero, exactly zero included). The search is skipped: ``start``
       (it moves the point by a negligible amount), 0 rounds, outcome ``"guard"``.
    3. **budget** -- after ``max_rounds`` failed tests the smallest tried step is
       returned, outcome ``"failed"``, instead of looping on.
    4. **non-finite trial** -- a NaN or infinite ``trial(step)`` fails the test
       (:func:`armijo_holds`), so the search backtracks out of an overflow.

    Parameters
    ----------
    trial:
        ``step -> objective value after the trial step`` (for the upper level
        of BiSLS this includes the one lower-level step of Algorithm 2, l. 14).
    f_old, sq_norm:
        :math:`f(x)` and the squared norm of the search direction (floats or 0-d
        tensors; a tensor ``f_old`` gives the round-off guard its dtype).
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
        budget of condition evaluations.

    Notes
    -----
    ``trial`` may move parameters in place (:class:`~bisls_core.optim.SLS` does);
    if it raises, the exception propagates unchanged and the caller restores them.
    """
    start = _check_step("start", start)
    c = check_positive("c", c, at_most=1.0)  # (8) states c < 1; Figure 5 runs SLS with c = 1
    w = _check_unit_interval("w", w)
    delta = check_positive("delta", delta, allow_zero=True)
    if isinstance(max_rounds, bool) or int(max_rounds) != max_rounds or max_rounds < 1:
        raise ValueError(f"max_rounds must be an integer >= 1, got {max_rounds!r}")
    max_rounds = int(max_rounds)
    eps = _epsilon(f_old)
    f_old, sq_norm = float(f_old), float(sq_norm)
    if not (math.isfinite(f_old) and math.isfinite(sq_norm)):
        return LineSearchResult(start, 0, False, math.nan, "nonfinite")
    if c * start * sq_norm <= ROUND_OFF * eps * abs(f_old):
        return LineSearchResult(start, 0, True, f_old, "guard")
    step = start
    value = math.nan
    for rounds in range(1, max_rounds + 1):
        value = float(trial(step))
        if armijo_holds(value, f_old, step, sq_norm, c, delta):
            return LineSearchResult(step, rounds, True, value, "accepted")
        if rounds < max_rounds:
            step *= w
    return LineSearchResult(step, max_rounds, False, value, "failed")


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
    if check_positive("eta", eta) < 1:
        raise ValueError(f"eta must be >= 1, got {eta!r}")
    eta = float(eta)
    if previous is None or option == "reset":
        return initial
    previous = _check_step("previous", previous)
    return previous if option == "keep" else eta * previous
