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
* :func:`numerically_zero` -- whether a gradient is numerically zero at a step (the
  optimizers then leave the parameters where they are).
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
    "ON_FAILURE",
    "OUTCOMES",
    "OUTCOME_CODES",
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
    "hopeless",
    "numerically_zero",
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
#: round-off guard decided (``"guard"``: the search was skipped, or the step it accepted
#: asked a decrease below the resolution of :math:`f`), the budget ran out or the
#: search stopped early (``"failed"``), or there was nothing to search on
#: (``"nonfinite"``).
OUTCOMES = ("accepted", "guard", "failed", "nonfinite")

#: Integer codes of :data:`OUTCOMES` in per-iteration records (``upper_outcome``).
OUTCOME_CODES: dict[str, int] = {name: i for i, name in enumerate(OUTCOMES)}

#: What a failed search returns (``on_failure``): ``"floor"`` the smallest step the
#: budget reaches, :math:`\gamma_{\text{start}} w^{\text{max\_rounds}-1}` (the behaviour of
#: every committed result); ``"none"`` no step (0); ``"reset"`` the start step.
ON_FAILURE = ("floor", "none", "reset")

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
        diagnostics a caller may record: ``exit_round``, the number of trials done
        when the early-exit test (see :func:`armijo_backtracking`) first said the
        search cannot succeed (``None`` if it never did; set whether or not the
        search stopped there), ``early_exit`` (whether it stopped there) and
        ``floor``, the smallest step the budget reaches.
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


def _floor(start: float, w: float, max_rounds: int) -> float:
    """The smallest step the budget reaches, multiplied as the search multiplies
    (bit for bit the step a search that spends its budget ends on)."""
    step = start
    for _ in range(max_rounds - 1):
        step *= w
    return step


def numerically_zero(loss, grad_sq_norm, step: float = 1.0) -> bool:
    r"""Whether the gradient is numerically zero at the step ``step``:

    .. math:: \gamma\,\|\nabla f\|^2 \le (8\epsilon)^2\,|f|

    (``ROUND_OFF**2 * eps**2 * abs(loss)``, :math:`\epsilon` of ``loss``'s floating type;
    a Python float is a double). It is the round-off guard of
    :func:`armijo_backtracking`, :math:`c\,\gamma\|d\|^2 \le 8\epsilon|f|`, with the
    resolution :math:`8\epsilon|f|` of :math:`f` shrunk by a further factor
    :math:`8\epsilon` (and :math:`c = 1`): even a step :math:`1/(8\epsilon)` times larger
    than :math:`\gamma` would ask a first-order decrease that :math:`f` cannot resolve.
    As :math:`c \le 1`, it implies the guard. An exactly zero gradient is numerically zero
    (also at :math:`f = 0`); a gradient that vanishes with :math:`f` (interpolation,
    :math:`f \to 0`) is not. At the minimiser of a least-squares problem the computed
    gradient is of the order of :math:`\epsilon\sqrt{fL}`, numerically zero for a step
    up to some ten times :math:`1/L` (a larger step makes the test stricter).

    With several param groups, pass ``step=1`` and
    ``grad_sq_norm`` :math:`= \sum_g \gamma_g\|d_g\|^2`. A NaN or infinite ``loss`` or
    ``grad_sq_norm`` is not numerically zero.
    """
    eps, f, g2 = _epsilon(loss), float(loss), float(grad_sq_norm)
    if not (math.isfinite(f) and math.isfinite(g2)):
        return False
    tol = ROUND_OFF * eps
    return float(step) * g2 <= tol * tol * abs(f)


def hopeless(margin0: float, slope: float | None, step: float, tol: float) -> bool:
    r"""Whether the linear model of the trial says no step in :math:`(0, \gamma]`
    satisfies the condition.

    ``margin0`` is :math:`\varphi(0) - f_{\text{old}} - \delta` (the offset minus the
    slack); ``slope`` is :math:`\varphi'(0) + c\|d\|^2` (``None``: unknown, the
    test says nothing). On the model
    :math:`\varphi(\alpha) - f_{\text{old}} + c\alpha\|d\|^2 - \delta \approx
    \text{margin0} + \text{slope}\cdot\alpha`, the best margin over
    :math:`(0, \gamma]` is :math:`\text{margin0} + \min(0, \text{slope}\cdot\gamma)`;
    the search is hopeless when that is not below :math:`-\text{tol}` (the
    resolution of :math:`f`). When :math:`\varphi` is convex along the direction the
    model is a lower bound and the test is a proof; otherwise it is a prediction.
    """
    if slope is None or not (math.isfinite(margin0) and math.isfinite(slope)):
        return False
    return margin0 + min(0.0, slope * step) >= -tol


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
    early_exit: bool = False,
    model: tuple[float, float] | None = None,
    on_failure: str = "floor",
    eps: float | None = None,
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
       (:class:`~bisls_core.optim.SLS` does not take it when :func:`numerically_zero`,
       a stricter test, holds: from above :math:`2/L` it amplifies a round-off gradient.)
       A step accepted *during* the search at which the decrease asked,
       :math:`c\,\gamma\|d\|^2`, is below that same resolution is also outcome
       ``"guard"`` (a success decided by rounding, typically at
       :math:`\gamma \sim 10^{-14}`), not ``"accepted"``: the step and ``success``
       are unchanged, only the label says what accepted it.
    3. **budget** -- after ``max_rounds`` failed tests the search fails, outcome
       ``"failed"``, and returns the step ``on_failure`` names (default: the
       smallest tried step), instead of looping on.
    4. **non-finite trial** -- a NaN or infinite ``trial(step)`` fails the test
       (:func:`armijo_holds`), so the search backtracks out of an overflow.
    5. **early exit** (``early_exit=True``; off by default) -- the search stops,
       outcome ``"failed"``, when it cannot succeed: before a trial, when the linear
       model (``model``) says no step at or below the next one satisfies the condition
       (:func:`hopeless`); after a failed trial, when the trial value stopped changing
       (within the resolution of :math:`f`) and is not below :math:`f_{\text{old}} +
       \delta`. With ``on_failure="floor"`` the step is the one the full budget ends
       on. ``info["exit_round"]`` records when the test first fired even when
       ``early_exit`` is off: one run measures how often the prediction is wrong.

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
    early_exit, model, on_failure:
        stop a search that cannot succeed (guard 5); ``(phi0, slope)``, the trial's
        value and slope at step 0, or ``None``; the step of a failed search
        (:data:`ON_FAILURE`).
    eps:
        epsilon of the round-off guard; ``None``: that of ``f_old``'s type (a caller
        that read ``f_old`` off the device itself passes the tensor's).

    Notes
    -----
    ``trial`` may move parameters in place (:class:`~bisls_core.optim.SLS` does);
    if it raises, the exception propagates unchanged and the caller restores them.
    """
    start, c, w, delta, max_rounds = _check_search(start, c, w, delta, max_rounds, early_exit,
                                                   on_failure)
    eps = _epsilon(f_old) if eps is None else float(eps)
    f_old, sq_norm = float(f_old), float(sq_norm)
    if not (math.isfinite(f_old) and math.isfinite(sq_norm)):
        return LineSearchResult(start, 0, False, math.nan, "nonfinite")
    tol = ROUND_OFF * eps * abs(f_old)
    if c * start * sq_norm <= tol:
        return LineSearchResult(start, 0, True, f_old, "guard")
    margin0, slope = (None, None) if model is None else (
        float(model[0]) - f_old - delta, float(model[1]) + c * sq_norm)
    test = lambda value, step: armijo_holds(value, f_old, step, sq_norm, c, delta)  # noqa: E731
    return _backtrack(trial, test, start, w, max_rounds, early_exit, on_failure,
                      margin0, slope, tol, c * sq_norm, f_old + delta)


def _check_search(start, c, w, delta, max_rounds, early_exit, on_failure):
    """The settings of :func:`armijo_backtracking`, checked and normalised."""
    start = _check_step("start", start)
    c = check_positive("c", c, at_most=1.0)  # (8) states c < 1; Figure 5 runs SLS with c = 1
    w = _check_unit_interval("w", w)
    delta = check_positive("delta", delta, allow_zero=True)
    if isinstance(max_rounds, bool) or int(max_rounds) != max_rounds or max_rounds < 1:
        raise ValueError(f"max_rounds must be an integer >= 1, got {max_rounds!r}")
    check_bool("early_exit", early_exit)
    check_choice("on_failure", on_failure, ON_FAILURE)
    return start, c, w, delta, int(max_rounds)


def _backtrack(trial, test, start, w, max_rounds, early_exit, on_failure, margin0, slope,
               tol, rate, level) -> LineSearchResult:
    r"""The loop of :func:`armijo_backtracking` after its start guards: ``test(value,
    step)`` is the condition, ``rate * step`` the decrease it asks, ``level``
    :math:`f_{\text{old}} + \delta` (what a stalled trial must get below)."""
    info: dict = {"exit_round": None, "early_exit": False}
    step = start
    value = previous = math.nan
    rounds = 0
    while rounds < max_rounds:
        if info["exit_round"] is None and margin0 is not None and hopeless(margin0, slope, step, tol):
            info["exit_round"] = rounds
            if early_exit:
                break
        value = float(trial(step))
        rounds += 1
        if test(value, step):
            below = rate * step <= tol  # the decrease asked is below round-off
            return LineSearchResult(step, rounds, True, value, "guard" if below else "accepted",
                                    info)
        if info["exit_round"] is None and abs(value - previous) <= tol and value - level >= -tol:
            info["exit_round"] = rounds
            if early_exit:
                break
        previous = value
        if rounds < max_rounds:
            step *= w
    floor = _floor(start, w, max_rounds)
    info["early_exit"] = rounds < max_rounds
    info["floor"] = floor
    chosen = {"floor": floor, "none": 0.0, "reset": start}[on_failure]
    return LineSearchResult(chosen, rounds, False, value, "failed", info)


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
