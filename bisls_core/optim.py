r"""Single-level optimizers with automatic step sizes (closure API, like ``torch.optim``).

* :class:`SPS` -- stochastic Polyak steps: SPS\ :sub:`max` (Eq. (5)), DecSPS
  (Eq. (6)) and SPSB (Eq. (7)).
* :class:`SLS` -- stochastic Armijo line search, SLS (constant bound) and SLSB
  (non-increasing bound :math:`\gamma_{b,k}`), Eq. (8).
* :func:`make_external`, :func:`external_step`, :func:`evaluating` -- parameter-free
  baselines from their own packages (Prodigy, schedule-free SGD/AdamW, DoG), not
  re-written here: the single-level runner (``bisls_core.single_level``) and the
  bilevel loop drive them.

The step-size formulas and the line search are not written here: the optimizers
call the pure rules of :mod:`bisls_core.stepsizes`, the only module this one
imports. Decaying-step SGD needs no class of its own: ``torch.optim.SGD`` with a
``LambdaLR`` schedule (see ``bisls_core.single_level.run_single_level``).

The closure
-----------
``step(closure)`` takes a closure that **returns the loss without calling**
``backward()``: the optimizer differentiates it with :func:`torch.autograd.grad`
(nothing is accumulated into ``.grad``) and calls it again, without gradients,
at the trial points of a line search. The closure must therefore compute the
loss of the *same* mini-batch each time it is called within one ``step``: draw
the batch before calling ``step``. A closure that calls ``backward()`` itself, or
parameters none of which requires a gradient, are refused with an error that says
so.

One or two samples
------------------
With ``samples=1`` (the default) the same mini-batch :math:`i_k` gives the
direction :math:`\nabla f_{i_k}(x^k)` and the step size. Theorems 1 and 2 of the
paper assume the step size is independent of the direction sample; with
``samples=2`` the optimizer uses two independent mini-batches :math:`i_k` and
:math:`j_k` ("two independent samples", Section 3.1):

.. math::

    x^{k+1} = x^k - \gamma_k \nabla f_{i_k}(x^k), \qquad
    \gamma_k = \text{rule}\bigl(f_{j_k}(x^k), \nabla f_{j_k}(x^k)\bigr),

e.g. for SPSB :math:`\gamma_k = \min\{(f_{j_k}(x^k) - l^*_{j_k})/(c_k\|\nabla f_{j_k}(x^k)\|^2), \gamma_{b,k}\}`
and for SLSB the Armijo search (8) runs on :math:`f_{j_k}` along
:math:`-\nabla f_{j_k}(x^k)`. The closure then takes one argument,
``closure(sample)``: ``sample=0`` must return the loss of the direction batch
:math:`i_k` and ``sample=1`` the loss of the step-size batch :math:`j_k`::

    batches = [next(it), next(it)]
    opt.step(lambda s: loss_fn(model(batches[s][0]), batches[s][1]))

The record
----------
Every ``step`` appends to the lists of ``optimizer.state["history"]``:
``step`` (the step size of the first param group), ``group_steps`` (one per
group), ``lr_bound`` (:math:`\gamma_{b,k}` of the first group), ``loss``
(:math:`f_{i_k}(x^k)`), ``grad_sq_norm`` (:math:`\|\nabla f_{i_k}(x^k)\|^2`),
``rounds`` (Armijo evaluations; 0 for SPS), ``success`` (whether the search
met its condition or was skipped by the round-off guard; always true for SPS),
``outcome`` (the search's outcome, one of :data:`bisls_core.stepsizes.OUTCOMES`:
``"accepted"`` by the condition, ``"guard"`` skipped by the round-off guard,
``"failed"``; ``None`` for SPS),
``n_func_evals`` and ``n_grad_evals``
(mini-batch evaluations of the loss and of its gradient in this step) and
``skipped`` (whether the step was skipped at a numerically zero gradient, see below:
the parameters did not move, ``step`` is the step the rule gave), so that
``plt.plot(opt.state["history"]["step"])`` plots the step sizes.

Non-finite losses
-----------------
If the loss (or the gradient) at the current point is NaN or infinite,
``step`` raises :class:`FloatingPointError` naming the iteration, and leaves
the parameters and the history unchanged: a diverged run never continues
silently. (``bisls_core.single_level.run_single_level`` catches it and
records the run as diverged from that iteration on.) A non-finite value at a
*trial* point of the line search simply fails the Armijo test.

Zero gradients
--------------
A zero gradient is not an error: the Polyak ratio is then :math:`+\infty`, so the
step is the bound, and the line search is skipped by its round-off guard. At a
*numerically* zero gradient :math:`\nabla f_{i_k}(x^k)` of the direction sample --
:func:`bisls_core.stepsizes.numerically_zero` at the step the rule starts from:
:math:`\sum_g s_g\|\nabla_g f_{i_k}\|^2 \le (8\epsilon)^2|f_{i_k}(x^k)|`, with
:math:`s_g` SLS's search start and SPS's step at an infinite Polyak ratio (its bound;
:math:`c_{k-1}\gamma_{k-1}/c_k` for DecSPS) -- neither optimizer moves the parameters:
the history records ``skipped=True`` and, in ``step``, the step the rule gave (the
search start when the guard skipped the search), and the rule's state (the memory of
Algorithm 3, DecSPS's :math:`\gamma_{k-1}`) advances as for a step taken. Taking that
unsearched step from a start above :math:`2/L` would multiply a round-off gradient by
:math:`|1 - sL|` at every step (from the exact minimiser of a least-squares problem,
:math:`10^{-15}` to :math:`10^{-8}` in a few steps), unseen by the line search whose test
rounding decides.

Real parameters only
--------------------
The Polyak ratio and the Armijo test need the real :math:`\|\nabla f\|^2`: a
parameter of complex dtype is refused with a ``TypeError`` naming its param group and
dtype, when the group is added (construction, ``add_param_group``) or at ``step``.
Optimise the real and imaginary parts as real tensors (``torch.view_as_real``).

Exceptions
----------
Whatever exception leaves ``step`` -- raised by the closure at a trial point, a
``KeyboardInterrupt``, a :class:`FloatingPointError` -- the parameters are first
restored to the values they had when ``step`` was called; the history and the
step counter are left as they were.

Param groups
------------
Every group may set its own ``lr_bound`` and ``bound_schedule`` (and, for
:class:`SPS`, ``c``, ``mode`` and ``f_star``; for :class:`SLS`, ``reset`` and
``eta``). The Polyak ratio and the Armijo test use the loss and the gradient
norm of the whole parameter vector. :class:`SLS` runs **one** joint search on
a common factor :math:`\tau = w^r`: group :math:`g` takes the step
:math:`\tau s_g` from its start :math:`s_g`, and the test is
:math:`f(x - \tau\sum_g s_g d_g) \le f(x) - \bar c\,\tau \sum_g s_g\|d_g\|^2`
(with one group, exactly Eq. (8)); so ``c``, ``w`` and ``max_rounds`` are
shared by all groups.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch.optim import Optimizer

from . import stepsizes as ss

__all__ = ["SLS", "SPS", "EXTERNAL_OPTIMIZERS", "check_optimizer_kwargs", "evaluating",
           "external_step", "make_external"]

SPS_MODES = ("max", "dec", "bounded")
_HISTORY_KEYS = ("step", "group_steps", "lr_bound", "loss", "grad_sq_norm", "rounds",
                 "success", "outcome", "n_func_evals", "n_grad_evals", "skipped")


def _caller_level() -> int:
    """The ``stacklevel`` of a warning from inside ``step`` that names the caller's line
    (past this module's frames and torch's decorators)."""
    frame, level = sys._getframe(1), 1
    torch_dir = os.path.dirname(torch.__file__)
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or frame.f_code.co_filename.startswith(torch_dir)):
        frame, level = frame.f_back, level + 1
    return level


def _check_samples(samples: Any) -> int:
    if samples not in (1, 2) or isinstance(samples, bool):
        raise ValueError(f"samples must be 1 or 2, got {samples!r}")
    return int(samples)


class _AutoStep(Optimizer):
    """Shared machinery: the guarded step, evaluation of the closure, gradients, the record."""

    def __init__(self, params, defaults: dict, samples: int):
        self.samples = _check_samples(samples)
        super().__init__(params, defaults)
        self.state["k"] = 0
        self.state["history"] = {key: [] for key in _HISTORY_KEYS}

    # -- groups -------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        try:
            self._check_real(len(self.param_groups) - 1, self.param_groups[-1]["params"])
            self._check_group(self.param_groups[-1])
        except BaseException:
            self.param_groups.pop()  # a refused group is not left half-added
            raise

    def _check_real(self, i: int, params) -> None:
        """``TypeError`` naming the group and the dtype for a complex parameter."""
        for p in params:
            if p.is_complex():
                raise TypeError(
                    f"{type(self).__name__}: param group {i} holds a parameter of complex dtype "
                    f"{p.dtype} (shape {tuple(p.shape)}); the Polyak ratio and the Armijo test "
                    "need the real squared norm of the gradient: optimise the real and "
                    "imaginary parts as real tensors (torch.view_as_real)")

    def _check_group(self, group: dict) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _group_state(self, i: int) -> dict:
        groups = self.state.setdefault("groups", [])
        while len(groups) <= i:
            groups.append({"prev": None})
        return groups[i]

    def _params(self) -> list[list[torch.Tensor]]:
        return [[p for p in g["params"] if p.requires_grad] for g in self.param_groups]

    # -- the step -----------------------------------------------------------
    @torch.no_grad()
    def step(self, closure: Callable) -> torch.Tensor:
        """One step (see the class docstring); returns the loss of the direction sample
        at the current point. On any exception the parameters are restored to their
        values at the call, and the history is left unchanged, before it propagates."""
        if closure is None:
            raise ValueError("closure is required: it must return the loss (without backward)")
        for i, group in enumerate(self.param_groups):  # tensors put in a group by hand
            self._check_real(i, group["params"])
        params = self._params()
        if not any(params):
            raise ValueError(
                f"{type(self).__name__}: no parameter requires a gradient (requires_grad=False "
                "on all of them); pass the tensors to optimise with requires_grad=True")
        start = [[p.detach().clone() for p in ps] for ps in params]
        try:
            return self._step(closure, params, start)
        except BaseException:
            for ps, xs in zip(params, start):
                for p, x in zip(ps, xs):
                    p.copy_(x)
            raise

    def _step(self, closure: Callable, params, start) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    # -- evaluations --------------------------------------------------------
    def _call(self, closure: Callable, sample: int):
        return closure() if self.samples == 1 else closure(sample)

    def _loss(self, closure: Callable, sample: int, flat) -> torch.Tensor:
        """The closure's loss (with its graph), refused when the closure ran backward()."""
        before = [p.grad for p in flat]
        with torch.enable_grad():
            loss = self._call(closure, sample)
        if any(p.grad is not g for p, g in zip(flat, before)):
            raise RuntimeError(self._backward_misuse())
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("the closure must return the loss as a one-element tensor, "
                            f"got {type(loss).__name__}")
        return loss

    def _backward_misuse(self) -> str:
        return (f"{type(self).__name__}: the closure called backward() itself; it must only "
                "return the loss (the optimizer differentiates it): remove loss.backward() "
                "and optimizer.zero_grad() from the closure")

    def _loss_and_grad(self, closure: Callable, sample: int, params):
        flat = [p for ps in params for p in ps]
        loss = self._loss(closure, sample, flat)
        value = float(loss.detach())
        k = self.state["k"]
        if not math.isfinite(value):
            raise FloatingPointError(
                f"{type(self).__name__}: the loss is {value} at iteration {k} (sample {sample}); "
                "the parameters were left unchanged")
        if not loss.requires_grad:
            raise RuntimeError(
                f"{type(self).__name__}: the closure's loss does not depend on the parameters "
                "through autograd; compute it from the parameters inside the closure, "
                "outside torch.no_grad() and without .detach()")
        try:
            with torch.enable_grad():
                grads = torch.autograd.grad(loss.reshape(()), flat, allow_unused=True)
        except RuntimeError as err:
            if "second time" in str(err):
                raise RuntimeError(self._backward_misuse()) from err
            raise
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(flat, grads)]
        out, pos = [], 0
        for ps in params:
            out.append(grads[pos:pos + len(ps)])
            pos += len(ps)
        sq = [float(sum((g.double() ** 2).sum() for g in gs)) if gs else 0.0 for gs in out]
        if not all(math.isfinite(s) for s in sq):
            raise FloatingPointError(
                f"{type(self).__name__}: the gradient is not finite at iteration {k} "
                f"(sample {sample}); the parameters were left unchanged")
        return loss.detach(), value, out, sq

    def _record(self, **entry) -> None:
        hist = self.state["history"]
        for key in _HISTORY_KEYS:
            hist[key].append(entry.get(key))
        self.state["k"] += 1


class SPS(_AutoStep):
    r"""Stochastic Polyak step sizes: SPS\ :sub:`max`, DecSPS and SPSB.

    With :math:`f_j, \nabla f_j` the loss and gradient of the step-size sample
    (the direction sample itself when ``samples=1``) and :math:`l^*` = ``f_star``:

    * ``mode="max"`` -- SPS\ :sub:`max`, Eq. (5):
      :math:`\gamma_k = \min\{(f_j - l^*)/(c\|\nabla f_j\|^2), \gamma_{b,0}\}`;
    * ``mode="dec"`` -- DecSPS, Eq. (6), with :math:`c_k = c\sqrt{k+1}`:
      :math:`\gamma_k = \frac{1}{c_k}\min\{(f_j - l^*)/\|\nabla f_j\|^2, c_{k-1}\gamma_{k-1}\}`,
      started from :math:`c_{-1}\gamma_{-1} := c_0\gamma_{b,0}`;
    * ``mode="bounded"`` -- SPSB, Eq. (7):
      :math:`\gamma_k = \min\{(f_j - l^*)/(c\|\nabla f_j\|^2), \gamma_{b,k}\}` with
      :math:`\gamma_{b,k}` = ``schedule(bound_schedule, lr_bound, k)``.

    Parameters
    ----------
    params:
        parameters or param groups.
    lr_bound:
        :math:`\gamma_{b,0} > 0`.
    mode:
        ``"max"``, ``"dec"`` or ``"bounded"``.
    c:
        :math:`c > 0` (the scale of :math:`c_k` for DecSPS).
    f_star:
        lower bound :math:`l_i^*` of every sampled loss (0 for non-negative losses). A
        loss below it is a wrong bound (the Polyak ratio is then 0: no step): the first
        one seen gives a ``RuntimeWarning`` naming ``f_star`` and the loss (once per
        optimizer).
    bound_schedule:
        ``"constant"``, ``"inv_sqrt"`` or ``"inv"`` (:func:`bisls_core.stepsizes.schedule`);
        default ``"constant"`` for ``"max"`` (the only one allowed: a decaying
        bound is SPSB) and ``"inv_sqrt"`` for ``"bounded"``; not used by ``"dec"``.
    samples:
        1 or 2 (see the module's documentation).

    Notes
    -----
    Every float setting must be finite (a ``ValueError`` names it otherwise). If
    ``step`` raises (any exception, ``KeyboardInterrupt`` included), the parameters
    are restored to their values at the call before the exception propagates.
    """

    def __init__(self, params, lr_bound: float = 1.0, mode: str = "bounded", c: float = 0.5,
                 f_star: float = 0.0, bound_schedule: str | None = None, samples: int = 1):
        defaults = dict(lr_bound=lr_bound, mode=mode, c=c, f_star=f_star,
                        bound_schedule=bound_schedule)
        self._warned_below_bound = False
        super().__init__(params, defaults, samples)

    def _check_group(self, group: dict) -> None:
        ss.check_positive("lr_bound", group["lr_bound"])
        ss.check_positive("c", group["c"])
        ss.check_choice("mode", group["mode"], SPS_MODES)
        try:
            ss.check_number("f_star", group["f_star"])
        except TypeError as err:  # one error type for every bad setting of a group
            raise ValueError(str(err)) from None
        sched = group["bound_schedule"]
        if sched is not None:
            ss.check_choice("bound_schedule", sched, ss.SCHEDULES)
        if group["mode"] == "max" and sched not in (None, "constant"):
            raise ValueError(f"bound_schedule={sched!r} with mode='max': SPS_max has a constant "
                             "bound; use mode='bounded' (SPSB) for a decaying bound")
        if group["mode"] == "dec" and sched is not None:
            raise ValueError("bound_schedule is not used by mode='dec' (DecSPS); leave it None")

    def _bound(self, group: dict, k: int) -> float:
        sched = group["bound_schedule"] or ("inv_sqrt" if group["mode"] == "bounded" else "constant")
        return ss.schedule(sched, group["lr_bound"], k)

    def _step(self, closure: Callable, params, start) -> torch.Tensor:
        k = self.state["k"]
        loss, f_i, d, sq_i = self._loss_and_grad(closure, 0, params)
        n_evals = 1
        if self.samples == 2:
            _, f_j, _, sq_j = self._loss_and_grad(closure, 1, params)
            n_evals = 2
        else:
            f_j, sq_j = f_i, sq_i
        self._check_lower_bound(k, f_j)
        groups = list(enumerate(self.param_groups))
        steps = [self._rule(group, self._group_state(gi), k, f_j, sum(sq_j))
                 for gi, group in groups]
        # the step at an infinite Polyak ratio (a zero gradient): the scale of the zero test
        caps = [self._rule(group, self._group_state(gi), k, f_j, 0.0) for gi, group in groups]
        skipped = any(cap > 0 for cap in caps) and ss.numerically_zero(
            loss, sum(cap * q for cap, q in zip(caps, sq_i)))
        if not skipped:
            for ps, ds, step in zip(params, d, steps):
                for p, g in zip(ps, ds):
                    p.add_(g, alpha=-step)
        for gi, step in enumerate(steps):
            self._group_state(gi)["prev"] = step
        first = self.param_groups[0]
        self._record(step=steps[0], group_steps=steps,
                     lr_bound=self._bound(first, k) if first["mode"] != "dec" else float("nan"),
                     loss=f_i, grad_sq_norm=sum(sq_i), rounds=0, success=True,
                     n_func_evals=n_evals, n_grad_evals=n_evals, skipped=skipped)
        return loss

    def _check_lower_bound(self, k: int, f_j: float) -> None:
        """A ``RuntimeWarning`` (once per optimizer) when the loss of the step-size sample
        is below the ``f_star`` of a group: the bound is then wrong, the Polyak ratio 0."""
        if self._warned_below_bound:
            return
        for gi, group in enumerate(self.param_groups):
            if f_j < float(group["f_star"]):
                self._warned_below_bound = True
                warnings.warn(
                    f"SPS: the loss {f_j!r} seen at iteration {k} is below f_star="
                    f"{float(group['f_star'])!r} (param group {gi}), the lower bound the Polyak "
                    "step assumes: the ratio is then 0 and the step does not move; pass an "
                    "f_star below every sampled loss (warned once per optimizer)",
                    RuntimeWarning, stacklevel=_caller_level())
                return

    def _rule(self, group: dict, st: dict, k: int, f_j: float, g2: float) -> float:
        """The step of one group: Eq. (5), (6) or (7)."""
        c, lb = float(group["c"]), float(group["f_star"])
        if group["mode"] == "dec":
            c_k = c * math.sqrt(k + 1)
            c_prev, gamma_prev = (c_k, float(group["lr_bound"])) if k == 0 else (
                c * math.sqrt(k), st["prev"])
            # A zero step stays zero (the ratio was 0: the loss met its lower bound).
            return 0.0 if gamma_prev == 0 else float(ss.dec_sps(f_j, g2, c_k, c_prev,
                                                                gamma_prev, lb))
        if group["mode"] == "max":
            return float(ss.sps_max(f_j, g2, self._bound(group, k), c, lb))
        return float(ss.spsb(f_j, g2, self._bound(group, k), c, lb))


class SLS(_AutoStep):
    r"""Stochastic Armijo line search: SLS and SLSB, Eq. (8).

    At iteration :math:`k` the search starts from
    :math:`s_k = \min\{\text{reset}(\gamma_{k-1}, \gamma_{b,k}), \gamma_{b,k}\}`
    (Algorithm 3: ``reset="reset"`` restarts from :math:`\gamma_{b,k}`, ``"keep"``
    from :math:`\gamma_{k-1}`, ``"grow"`` from :math:`\eta\gamma_{k-1}`) and
    multiplies the step by ``w`` until

    .. math:: f_j(x^k - \gamma \nabla f_j(x^k)) \le f_j(x^k) - \bar c\,\gamma\,\|\nabla f_j(x^k)\|^2

    (:func:`bisls_core.stepsizes.armijo_backtracking`); then
    :math:`x^{k+1} = x^k - \gamma_k \nabla f_{i_k}(x^k)`. SLS is
    ``bound_schedule="constant"``; SLSB a decaying :math:`\gamma_{b,k}`
    (``"inv_sqrt"`` in Figure 5). When ``max_rounds`` evaluations do not meet
    the condition, the smallest tried step is taken and ``success=False`` is
    recorded.

    Parameters
    ----------
    lr_bound:
        :math:`\gamma_{b,0} > 0`.
    c:
        :math:`\bar c \in (0, 1]` (the paper states :math:`\bar c < 1` but runs SLS with 1).
    w:
        backtracking factor in (0, 1).
    bound_schedule:
        ``"constant"``, ``"inv_sqrt"`` or ``"inv"``.
    reset, eta:
        the option of Algorithm 3 and its growth factor :math:`\eta \ge 1`.
    max_rounds:
        budget of Armijo evaluations per step (>= 1).
    samples:
        1 or 2 (see the module's documentation).

    Notes
    -----
    The search is :func:`bisls_core.stepsizes.armijo_backtracking`, with its guards:
    when the decrease it would ask for is below the resolution of the loss, the start
    step is taken without a search (0 rounds, outcome ``"guard"``). When, moreover, the
    gradient is numerically zero at the start step
    (:func:`bisls_core.stepsizes.numerically_zero`), the parameters are left where they
    are and ``skipped=True`` is recorded (see the module's documentation).
    Every float setting must be finite (a ``ValueError`` names it otherwise). If
    ``step`` raises (any exception, ``KeyboardInterrupt`` included, e.g. from the
    closure at a trial point), the parameters are restored to their values at the
    call before the exception propagates.
    """

    _SHARED = ("c", "w", "max_rounds")

    def __init__(self, params, lr_bound: float = 1.0, c: float = 0.1, w: float = 0.5,
                 bound_schedule: str = "constant", reset: str = "reset", eta: float = 2.0,
                 max_rounds: int = 100, samples: int = 1):
        defaults = dict(lr_bound=lr_bound, c=c, w=w, bound_schedule=bound_schedule,
                        reset=reset, eta=eta, max_rounds=max_rounds)
        super().__init__(params, defaults, samples)

    def _check_group(self, group: dict) -> None:
        ss.check_positive("lr_bound", group["lr_bound"])
        ss.check_positive("c", group["c"], at_most=1.0)
        ss.check_positive("w", group["w"], below=1.0)
        ss.check_choice("bound_schedule", group["bound_schedule"], ss.SCHEDULES)
        ss.check_choice("reset", group["reset"], ss.RESET_OPTIONS)
        if ss.check_positive("eta", group["eta"]) < 1:
            raise ValueError(f"eta must be >= 1, got {group['eta']!r}")
        m = group["max_rounds"]
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"max_rounds must be an integer >= 1, got {m!r}")
        first = self.param_groups[0]
        for key in self._SHARED:
            if group[key] != first[key]:
                raise ValueError(f"{key} must be the same in every param group (one joint line "
                                 f"search), got {first[key]!r} and {group[key]!r}")

    def _step(self, closure: Callable, params, start) -> torch.Tensor:
        k = self.state["k"]
        loss, f_i, d, sq_i = self._loss_and_grad(closure, 0, params)
        n_func = n_grad = 1
        if self.samples == 2:
            loss_j, _, e, sq_j = self._loss_and_grad(closure, 1, params)
            n_func, n_grad, sample = 2, 2, 1
        else:
            loss_j, e, sq_j, sample = loss, d, sq_i, 0
        bounds, starts = [], []
        for gi, group in enumerate(self.param_groups):
            bound = ss.schedule(group["bound_schedule"], group["lr_bound"], k)
            prev = self._group_state(gi)["prev"]
            first_try = ss.reset(prev if prev else None, bound, group["reset"], group["eta"])
            bounds.append(bound)
            starts.append(min(first_try, bound))

        def move(tau: float, direction) -> None:
            for ps, xs, ds, s in zip(params, start, direction, starts):
                for p, x, g in zip(ps, xs, ds):
                    p.copy_(x).add_(g, alpha=-tau * s)

        def trial(tau: float) -> float:
            move(tau, e)
            return float(self._call(closure, sample))

        first = self.param_groups[0]
        res = ss.armijo_backtracking(
            trial, loss_j, sum(s * q for s, q in zip(starts, sq_j)), 1.0,
            c=first["c"], w=first["w"], max_rounds=first["max_rounds"])
        n_func += res.rounds
        steps = [res.step * s for s in starts]
        skipped = ss.numerically_zero(loss, sum(s * q for s, q in zip(starts, sq_i)))
        if skipped:  # back to x^k: a trial of the search (samples=2) may have moved it
            for ps, xs in zip(params, start):
                for p, x in zip(ps, xs):
                    p.copy_(x)
        else:
            move(res.step, d)
        if res.success:  # a failed search's tiny step does not become the next start
            for gi, step in enumerate(steps):
                self._group_state(gi)["prev"] = step
        self._record(step=steps[0], group_steps=steps, lr_bound=bounds[0], loss=f_i,
                     grad_sq_norm=sum(sq_i), rounds=res.rounds, success=res.success,
                     outcome=res.outcome, n_func_evals=n_func, n_grad_evals=n_grad,
                     skipped=skipped)
        return loss


# ============================================================================ external optimizers
#: Parameter-free (or schedule-free) optimizers used as baselines, from their own
#: packages (not re-written here): configuration name -> (import name, class, pip
#: requirement). Each is a ``torch.optim.Optimizer`` that reads ``.grad``.
EXTERNAL_OPTIMIZERS: dict[str, tuple[str, str, str]] = {
    "prodigy": ("prodigyopt", "Prodigy", "prodigyopt==1.1.2"),
    "schedulefree_sgd": ("schedulefree", "SGDScheduleFree", "schedulefree==1.4.1"),
    "schedulefree_adamw": ("schedulefree", "AdamWScheduleFree", "schedulefree==1.4.1"),
    "dog": ("dog", "DoG", "dog-optimizer==1.0.3"),
}

def check_optimizer_kwargs(name: str, kwargs: Any) -> dict[str, Any]:
    """``kwargs`` as a plain ``dict`` of JSON-able values (``None`` -> ``{}``), or a
    ``TypeError`` naming the parameter ``name``."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise TypeError(f"{name} must be a mapping with string keys (or None), got {kwargs!r}")
    try:
        json.dumps(dict(kwargs), allow_nan=True)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must hold JSON-able values, got {kwargs!r}") from None
    return dict(kwargs)


def make_external(name: str, params, kwargs: Mapping[str, Any] | None = None) -> Optimizer:
    """The package optimizer ``name`` of :data:`EXTERNAL_OPTIMIZERS` on ``params``.

    ``kwargs`` go to its constructor (lists become tuples, e.g. ``betas``); with
    none, the package's defaults are used -- for Prodigy and DoG the defaults are
    the point (``lr=1`` is a multiplier they recommend leaving alone); schedule-free
    SGD/AdamW have a real learning rate (defaults 1.0 and 0.0025). A schedule-free
    optimizer is returned in train mode (``.train()``), ready for ``step``.
    """
    ss.check_choice("optimizer", name, EXTERNAL_OPTIMIZERS)
    module, cls_name, requirement = EXTERNAL_OPTIMIZERS[name]
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except ImportError as err:
        raise ImportError(f"the optimizer {name!r} needs the package {requirement!r} "
                          f"(pip install {requirement})") from err
    kw = {k: tuple(v) if isinstance(v, list) else v
          for k, v in check_optimizer_kwargs("kwargs", kwargs).items()}
    opt = cls(params, **kw)
    if _is_schedule_free(opt):
        opt.train()
    return opt


def _is_schedule_free(opt: Optimizer) -> bool:
    return callable(getattr(opt, "train", None)) and callable(getattr(opt, "eval", None))


def external_step(opt: Optimizer) -> float:
    r"""One ``opt.step()`` with the gradients already in ``.grad``; returns the
    effective step size of the first param group, or NaN when it exposes none.

    * Prodigy: :math:`d_k\,\mathrm{lr}` (times Adam's bias correction when
      ``use_bias_correction``), the learning rate of its Adam update, read before the
      step (the step then updates :math:`d`);
    * DoG: :math:`\eta_k = \mathrm{lr}\,\bar r_k/\sqrt{G_k}`, set by the step;
    * schedule-free SGD/AdamW: the (warmed-up) learning rate ``scheduled_lr`` of the
      :math:`z` sequence (the train-mode point moves by an interpolation of it).
    """
    group = opt.param_groups[0]
    step = math.nan
    if "d" in group and "d_coef" in group:  # Prodigy
        step = float(group["d"]) * float(group["lr"])
        if group.get("use_bias_correction"):
            b1, b2 = group["betas"]
            k = group["k"]
            step *= math.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1))
    opt.step()
    if "eta" in group and "rbar" in group:  # DoG
        step = float(group["eta"][0])
    elif "scheduled_lr" in group:  # schedule-free
        step = float(group["scheduled_lr"])
    return step


@contextlib.contextmanager
def evaluating(opt: Optimizer) -> Iterator[None]:
    """Inside the block, the parameters of a schedule-free ``opt`` hold its
    evaluation point (the average :math:`x_k`, ``opt.eval()``); on exit the train-mode
    point is restored exactly (``opt.train()``, then the saved values, so the
    round trip adds no round-off to the run). A no-op for other optimizers."""
    if not _is_schedule_free(opt):
        yield
        return
    params = [p for group in opt.param_groups for p in group["params"]]
    saved = [p.detach().clone() for p in params]
    opt.eval()
    try:
        yield
    finally:
        opt.train()
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
