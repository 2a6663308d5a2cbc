r"""Single-level optimizers with automatic step sizes (closure API, like ``torch.optim``).

* :class:`SPS` -- stochastic Polyak steps: SPS\ :sub:`max` (Eq. (5)), DecSPS
  (Eq. (6)) and SPSB (Eq. (7)).
* :class:`SLS` -- stochastic Armijo line search, SLS (constant bound) and SLSB
  (non-increasing bound :math:`\gamma_{b,k}`), Eq. (8).
* :func:`run_single_level` -- the runner the figure notebooks give to
  :func:`bisls_core.experiments.run_grid`.
* :func:`make_external`, :func:`external_step`, :func:`evaluating` -- parameter-free
  baselines from their own packages (Prodigy, schedule-free SGD/AdamW, DoG), not
  re-written here: the single-level runner and the bilevel loop drive them.

The step-size formulas are not written here: the optimizers call the pure rules
of :mod:`bisls_core.stepsizes`. Decaying-step SGD needs no class of its own:
``torch.optim.SGD`` with a ``LambdaLR`` schedule (see :func:`run_single_level`).

The closure
-----------
``step(closure)`` takes a closure that **returns the loss without calling**
``backward()``: the optimizer differentiates it with :func:`torch.autograd.grad`
(nothing is accumulated into ``.grad``) and calls it again, without gradients,
at the trial points of a line search. The closure must therefore compute the
loss of the *same* mini-batch each time it is called within one ``step``: draw
the batch before calling ``step``.

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
met its condition; always true for SPS), ``n_func_evals`` and ``n_grad_evals``
(mini-batch evaluations of the loss and of its gradient in this step), so that
``plt.plot(opt.state["history"]["step"])`` plots the step sizes.

Non-finite losses
-----------------
If the loss (or the gradient) at the current point is NaN or infinite,
``step`` raises :class:`FloatingPointError` naming the iteration, and leaves
the parameters and the history unchanged: a diverged run never continues
silently. (:func:`run_single_level` catches it and records the run as diverged
from that iteration on.) A non-finite value at a *trial* point of the line
search simply fails the Armijo test. A zero gradient is not an error: the
Polyak ratio is then :math:`+\infty`, so the step is the bound and the
parameters do not move.

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
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.optim import Optimizer

from . import stepsizes as ss

__all__ = ["SLS", "SPS", "METHODS", "EXTERNAL_METHODS", "EXTERNAL_OPTIMIZERS",
           "check_optimizer_kwargs", "evaluating", "external_step", "make_external",
           "run_single_level"]

SPS_MODES = ("max", "dec", "bounded")
_HISTORY_KEYS = ("step", "group_steps", "lr_bound", "loss", "grad_sq_norm", "rounds",
                 "success", "n_func_evals", "n_grad_evals")


def _check_samples(samples: Any) -> int:
    if samples not in (1, 2) or isinstance(samples, bool):
        raise ValueError(f"samples must be 1 or 2, got {samples!r}")
    return int(samples)


class _AutoStep(Optimizer):
    """Shared machinery: evaluation of the closure, gradients, the record."""

    def __init__(self, params, defaults: dict, samples: int):
        self.samples = _check_samples(samples)
        super().__init__(params, defaults)
        self.state["k"] = 0
        self.state["history"] = {key: [] for key in _HISTORY_KEYS}

    # -- groups -------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1])

    def _check_group(self, group: dict) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _group_state(self, i: int) -> dict:
        groups = self.state.setdefault("groups", [])
        while len(groups) <= i:
            groups.append({"prev": None})
        return groups[i]

    def _params(self) -> list[list[torch.Tensor]]:
        return [[p for p in g["params"] if p.requires_grad] for g in self.param_groups]

    # -- evaluations --------------------------------------------------------
    def _call(self, closure: Callable, sample: int):
        return closure() if self.samples == 1 else closure(sample)

    def _loss_and_grad(self, closure: Callable, sample: int, params):
        flat = [p for ps in params for p in ps]
        with torch.enable_grad():
            loss = self._call(closure, sample)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError("the closure must return the loss as a one-element tensor, "
                            f"got {type(loss).__name__}")
        value = float(loss.detach())
        k = self.state["k"]
        if not math.isfinite(value):
            raise FloatingPointError(
                f"{type(self).__name__}: the loss is {value} at iteration {k} (sample {sample}); "
                "the parameters were left unchanged")
        with torch.enable_grad():
            grads = torch.autograd.grad(loss.reshape(()), flat, allow_unused=True)
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
            hist[key].append(entry[key])
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
        lower bound :math:`l_i^*` of every sampled loss (0 for non-negative losses).
    bound_schedule:
        ``"constant"``, ``"inv_sqrt"`` or ``"inv"`` (:func:`bisls_core.stepsizes.schedule`);
        default ``"constant"`` for ``"max"`` (the only one allowed: a decaying
        bound is SPSB) and ``"inv_sqrt"`` for ``"bounded"``; not used by ``"dec"``.
    samples:
        1 or 2 (see the module's documentation).
    """

    def __init__(self, params, lr_bound: float = 1.0, mode: str = "bounded", c: float = 0.5,
                 f_star: float = 0.0, bound_schedule: str | None = None, samples: int = 1):
        defaults = dict(lr_bound=lr_bound, mode=mode, c=c, f_star=f_star,
                        bound_schedule=bound_schedule)
        super().__init__(params, defaults, samples)

    def _check_group(self, group: dict) -> None:
        ss.check_positive("lr_bound", group["lr_bound"])
        ss.check_positive("c", group["c"])
        ss.check_choice("mode", group["mode"], SPS_MODES)
        f_star = group["f_star"]
        if isinstance(f_star, bool) or not isinstance(f_star, (int, float)) or math.isnan(f_star):
            raise ValueError(f"f_star must be a number, got {f_star!r}")
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

    @torch.no_grad()
    def step(self, closure: Callable) -> torch.Tensor:
        """One SPS step; returns the loss of the direction sample at the current point."""
        if closure is None:
            raise ValueError("closure is required: it must return the loss (without backward)")
        k = self.state["k"]
        params = self._params()
        loss, f_i, d, sq_i = self._loss_and_grad(closure, 0, params)
        n_evals = 1
        if self.samples == 2:
            _, f_j, _, sq_j = self._loss_and_grad(closure, 1, params)
            n_evals = 2
        else:
            f_j, sq_j = f_i, sq_i
        g2 = sum(sq_j)
        steps = []
        for gi, group in enumerate(self.param_groups):
            st = self._group_state(gi)
            c, lb = float(group["c"]), float(group["f_star"])
            if group["mode"] == "dec":
                c_k = c * math.sqrt(k + 1)
                c_prev, gamma_prev = (c_k, float(group["lr_bound"])) if k == 0 else (
                    c * math.sqrt(k), st["prev"])
                # A zero step stays zero (the ratio was 0: the loss met its lower bound).
                step = 0.0 if gamma_prev == 0 else float(ss.dec_sps(f_j, g2, c_k, c_prev,
                                                                     gamma_prev, lb))
            elif group["mode"] == "max":
                step = float(ss.sps_max(f_j, g2, self._bound(group, k), c, lb))
            else:
                step = float(ss.spsb(f_j, g2, self._bound(group, k), c, lb))
            st["prev"] = step
            steps.append(step)
            for p, g in zip(params[gi], d[gi]):
                p.add_(g, alpha=-step)
        self._record(step=steps[0], group_steps=steps, lr_bound=self._bound(self.param_groups[0], k)
                     if self.param_groups[0]["mode"] != "dec" else float("nan"),
                     loss=f_i, grad_sq_norm=sum(sq_i), rounds=0, success=True,
                     n_func_evals=n_evals, n_grad_evals=n_evals)
        return loss


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
        c = ss.check_positive("c", group["c"])
        if c > 1:
            raise ValueError(f"c must lie in (0, 1], got {group['c']!r}")
        w = ss.check_positive("w", group["w"])
        if w >= 1:
            raise ValueError(f"w must lie in (0, 1), got {group['w']!r}")
        ss.check_choice("bound_schedule", group["bound_schedule"], ss.SCHEDULES)
        ss.check_choice("reset", group["reset"], ss.RESET_OPTIONS)
        eta = ss.check_positive("eta", group["eta"])
        if eta < 1:
            raise ValueError(f"eta must be >= 1, got {group['eta']!r}")
        m = group["max_rounds"]
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"max_rounds must be an integer >= 1, got {m!r}")
        first = self.param_groups[0]
        for key in self._SHARED:
            if group[key] != first[key]:
                raise ValueError(f"{key} must be the same in every param group (one joint line "
                                 f"search), got {first[key]!r} and {group[key]!r}")

    @torch.no_grad()
    def step(self, closure: Callable) -> torch.Tensor:
        """One SLS step; returns the loss of the direction sample at the current point."""
        if closure is None:
            raise ValueError("closure is required: it must return the loss (without backward)")
        k = self.state["k"]
        params = self._params()
        loss, f_i, d, sq_i = self._loss_and_grad(closure, 0, params)
        n_func = n_grad = 1
        if self.samples == 2:
            _, f_j, e, sq_j = self._loss_and_grad(closure, 1, params)
            n_func, n_grad, sample = 2, 2, 1
        else:
            f_j, e, sq_j, sample = f_i, d, sq_i, 0
        bounds, starts = [], []
        for gi, group in enumerate(self.param_groups):
            bound = ss.schedule(group["bound_schedule"], group["lr_bound"], k)
            prev = self._group_state(gi)["prev"]
            start = ss.reset(prev if prev else None, bound, group["reset"], group["eta"])
            bounds.append(bound)
            starts.append(min(start, bound))
        x0 = [[p.detach().clone() for p in ps] for ps in params]

        def move(tau: float, direction) -> None:
            for ps, xs, ds, s in zip(params, x0, direction, starts):
                for p, x, g in zip(ps, xs, ds):
                    p.copy_(x).add_(g, alpha=-tau * s)

        def trial(tau: float) -> float:
            move(tau, e)
            return float(self._call(closure, sample))

        first = self.param_groups[0]
        res = ss.armijo_backtracking(
            trial, f_j, sum(s * q for s, q in zip(starts, sq_j)), 1.0,
            c=first["c"], w=first["w"], max_rounds=first["max_rounds"])
        n_func += res.rounds
        move(res.step, d)
        steps = [res.step * s for s in starts]
        if res.success:  # a failed search's tiny step does not become the next start
            for gi, step in enumerate(steps):
                self._group_state(gi)["prev"] = step
        self._record(step=steps[0], group_steps=steps, lr_bound=bounds[0], loss=f_i,
                     grad_sq_norm=sum(sq_i), rounds=res.rounds, success=res.success,
                     n_func_evals=n_func, n_grad_evals=n_grad)
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

#: Legend names of the external optimizers -> their configuration names.
EXTERNAL_METHODS: dict[str, str] = {
    "Prodigy": "prodigy",
    "Schedule-free SGD": "schedulefree_sgd",
    "Schedule-free AdamW": "schedulefree_adamw",
    "DoG": "dog",
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


# ============================================================================ runner
#: Legend names of the single-level methods -> how the runner builds them.
#: The external baselines (:data:`EXTERNAL_METHODS`) are driven by their package's
#: own rule, with ``optimizer_kwargs`` for its constructor.
METHODS = ("SPS_max", "DecSPS", "SPSB", "SLS", "SLSB", "decaying-step SGD", *EXTERNAL_METHODS)

_CONFIG_KEYS = {"problem", "problem_args", "problem_seed", "method", "K", "eval_every",
                "keep_iterates", "average_from", "gamma_b0", "c", "schedule", "samples", "w",
                "reset", "eta", "max_rounds", "optimizer_kwargs"}
#: The step-size options of this module's methods (no meaning for an external optimizer).
_OWN_OPTION_KEYS = ("gamma_b0", "c", "schedule", "w", "reset", "eta", "max_rounds")


def _make_optimizer(cfg: Mapping[str, Any], x: torch.Tensor, lower_bound: float):
    method = cfg["method"]
    ss.check_choice("method", method, METHODS)
    g0 = cfg.get("gamma_b0", 1.0)
    samples = cfg.get("samples", 1)
    if method in EXTERNAL_METHODS:
        own = [key for key in _OWN_OPTION_KEYS if key in cfg]
        if own:
            raise ValueError(f"the configuration key(s) {own} have no meaning for {method!r}: "
                             "pass its options as optimizer_kwargs (e.g. {'lr': 0.1})")
        if samples != 1:
            raise ValueError(f"samples=2 has no meaning for {method!r}")
        return make_external(EXTERNAL_METHODS[method], [x], cfg.get("optimizer_kwargs")), None
    if "optimizer_kwargs" in cfg:
        raise ValueError(f"optimizer_kwargs is for the external methods "
                         f"{list(EXTERNAL_METHODS)}, not {method!r}")
    if method == "SPS_max":
        return SPS([x], lr_bound=g0, mode="max", c=cfg.get("c", 1.0), f_star=lower_bound,
                   samples=samples), None
    if method == "DecSPS":
        return SPS([x], lr_bound=g0, mode="dec", c=cfg.get("c", 1.0), f_star=lower_bound,
                   samples=samples), None
    if method == "SPSB":
        return SPS([x], lr_bound=g0, mode="bounded", c=cfg.get("c", 1.0), f_star=lower_bound,
                   bound_schedule=cfg.get("schedule", "inv_sqrt"), samples=samples), None
    if method in ("SLS", "SLSB"):
        sched = cfg.get("schedule", "constant" if method == "SLS" else "inv_sqrt")
        return SLS([x], lr_bound=g0, c=cfg.get("c", 1.0 if method == "SLS" else 0.1),
                   w=cfg.get("w", 0.5), bound_schedule=sched, reset=cfg.get("reset", "reset"),
                   eta=cfg.get("eta", 2.0), max_rounds=cfg.get("max_rounds", 100),
                   samples=samples), None
    # decaying-step SGD: gamma_k = schedule(gamma_b0, k), torch.optim.SGD + LambdaLR.
    if samples != 1:
        raise ValueError("samples=2 has no meaning for decaying-step SGD")
    sched = cfg.get("schedule", "inv_sqrt")
    ss.check_choice("schedule", sched, ss.SCHEDULES)
    ss.check_positive("gamma_b0", g0)
    opt = torch.optim.SGD([x], lr=g0)
    lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: ss.schedule(sched, 1.0, k))
    return opt, lr


def run_single_level(config: Mapping[str, Any], *, seed: int, device="cpu") -> dict[str, np.ndarray]:
    """Run one single-level method on one problem; the runner of the figure notebooks.

    Configuration keys
    ------------------
    ``problem`` (name for :func:`bisls_core.problems.make`), ``problem_args``
    (its sizes), ``problem_seed`` (default 0: the problem is the same in every
    run; ``seed`` only drives the sampling), ``method`` (one of :data:`METHODS`),
    ``K`` (iterations), ``eval_every`` (default 1), ``keep_iterates`` (default
    false), ``average_from`` (``k0``: also record :math:`f(\\bar x) - f^*` for
    :math:`\\bar x` the mean of :math:`x^{k_0}, \\dots, x^{k-1}`), and the
    method's options ``gamma_b0`` (default 1), ``c`` (default 1; 0.1 for SLSB),
    ``schedule`` (the bound's; default ``"inv_sqrt"`` for SPSB, SLSB and SGD),
    ``samples`` (1 or 2), ``w``, ``reset``, ``eta``, ``max_rounds``; for the
    external baselines of :data:`EXTERNAL_METHODS` (``"Prodigy"``, ``"Schedule-free SGD"``,
    ``"Schedule-free AdamW"``, ``"DoG"``) only ``optimizer_kwargs`` (JSON-able keyword
    arguments of the package's constructor; default: its defaults). A schedule-free
    optimizer's loss is recorded at its evaluation point (``.eval()``, see
    :func:`evaluating`), its gradients taken at the train-mode point.

    Returns
    -------
    dict of arrays
        ``eval_at`` (iterations where the full objective was evaluated: every
        ``eval_every`` and ``K``), ``loss`` (:math:`f(x^k) - f^*` when
        :math:`f^*` is known, else :math:`f(x^k)`), ``dist``
        (:math:`\\|x^k - x^*\\|`, when :math:`x^*` is known), ``avg_loss`` (with
        ``average_from``), per iteration ``step``, ``bound``
        (:math:`\\gamma_{b,k}`; NaN for DecSPS and the external optimizers, whose
        ``step`` is :func:`external_step`'s), ``rounds``, ``n_evals``
        (mini-batch loss plus gradient evaluations in that iteration),
        ``x`` (iterates, shape ``(K+1, d)``, with ``keep_iterates``) and
        ``diverged`` (first iteration whose loss was not finite, -1 if none).
        Values after a divergence are NaN.
    """
    from .experiments import resolve_device
    from .problems import make

    cfg = dict(config)
    unknown = set(cfg) - _CONFIG_KEYS
    if unknown:
        raise ValueError(f"unknown configuration key(s) {sorted(unknown)}; "
                         f"valid keys are: {sorted(_CONFIG_KEYS)}")
    for key in ("problem", "method", "K"):
        if key not in cfg:
            raise ValueError(f"the configuration lacks {key!r}")
    dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
    problem = make(cfg["problem"], device=dev, seed=cfg.get("problem_seed", 0),
                   **cfg.get("problem_args", {}))
    K, every = int(cfg["K"]), int(cfg.get("eval_every", 1))
    if K < 1 or every < 1:
        raise ValueError(f"K and eval_every must be >= 1, got K={K}, eval_every={every}")
    samples = _check_samples(cfg.get("samples", 1))
    x = problem.x0.detach().clone().requires_grad_(True)
    opt, lr_sched = _make_optimizer(cfg, x, problem.lower_bound)
    external = cfg["method"] in EXTERNAL_METHODS
    gen = torch.Generator().manual_seed(int(seed))
    f_star = problem.f_star or 0.0
    k0 = cfg.get("average_from")
    eval_at = sorted(set(range(0, K, every)) | {K})
    pos = {k: i for i, k in enumerate(eval_at)}
    nan = float("nan")
    out = {"eval_at": np.array(eval_at), "loss": np.full(len(eval_at), nan),
           "step": np.full(K, nan), "bound": np.full(K, nan), "rounds": np.full(K, nan),
           "n_evals": np.full(K, nan)}
    if problem.x_star is not None:
        out["dist"] = np.full(len(eval_at), nan)
    if k0 is not None:
        out["avg_loss"] = np.full(len(eval_at), nan)
        x_sum = torch.zeros_like(x, dtype=torch.float64)
    if cfg.get("keep_iterates"):
        out["x"] = np.full((K + 1, x.numel()), nan)
    diverged = -1

    def record_point(k: int) -> bool:
        with torch.no_grad(), (evaluating(opt) if external else contextlib.nullcontext()):
            if "x" in out:
                out["x"][k] = x.detach().cpu().double().numpy()
            if k in pos:
                value = float(problem.f(x, None)) - f_star
                out["loss"][pos[k]] = value
                if "dist" in out:
                    out["dist"][pos[k]] = float(torch.linalg.vector_norm(x - problem.x_star))
                if k0 is not None and k > k0:
                    xb = (x_sum / (k - k0)).to(x.dtype)
                    out["avg_loss"][pos[k]] = float(problem.f(xb, None)) - f_star
                return math.isfinite(value)
        return bool(torch.isfinite(x).all())

    for k in range(K):
        if not record_point(k):
            diverged = k
            break
        if k0 is not None and k >= k0:
            x_sum += x.detach().double()
        idx = [problem.sample(gen) for _ in range(samples)]
        if external:
            opt.zero_grad()
            loss = problem.f(x, idx[0])
            if not math.isfinite(float(loss.detach())):
                diverged = k
                break
            loss.backward()
            if not bool(torch.isfinite(x.grad).all()):
                diverged = k
                break
            out["step"][k] = external_step(opt)
            out["rounds"][k], out["n_evals"][k] = 0, 2
        elif lr_sched is None:
            closure = (lambda: problem.f(x, idx[0])) if samples == 1 else (
                lambda s: problem.f(x, idx[s]))
            try:
                opt.step(closure)
            except FloatingPointError:
                diverged = k
                break
            hist = opt.state["history"]
            out["step"][k], out["bound"][k] = hist["step"][-1], hist["lr_bound"][-1]
            out["rounds"][k] = hist["rounds"][-1]
            out["n_evals"][k] = hist["n_func_evals"][-1] + hist["n_grad_evals"][-1]
        else:
            opt.zero_grad()
            loss = problem.f(x, idx[0])
            if not math.isfinite(float(loss.detach())):
                diverged = k
                break
            loss.backward()
            out["step"][k] = out["bound"][k] = opt.param_groups[0]["lr"]
            out["rounds"][k], out["n_evals"][k] = 0, 2
            opt.step()
            lr_sched.step()
    else:
        if not record_point(K):
            diverged = K
    out["diverged"] = np.array(diverged)
    return out


run_single_level.cache_version = "1"
