r"""The single-level experiment runner: one method of :mod:`bisls_core.optim` (or an
external baseline) on one problem of :mod:`bisls_core.problems`.

:func:`run_single_level` is the runner the figure notebooks give to
:func:`bisls_core.experiments.run_grid`. It sits beside :mod:`bisls_core.bilevel`,
above the optimizers, so that :mod:`bisls_core.optim` imports only
:mod:`bisls_core.stepsizes`.

A method is built by ``_make_stepper`` as a *stepper*: an object with
``step(x, idx) -> (step, bound, rounds, n_evals)`` (``None`` when the loss or the
gradient is not finite: the run has diverged) and ``reading()`` (a context in which
the parameters hold the point to report).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from . import stepsizes as ss
from ._validate import check_int, check_memory, check_work, progress_bar, resolve_device
from .optim import SLS, SPS, evaluating, external_step, make_external
from .problems import SingleLevelProblem, make

__all__ = ["EXTERNAL_METHODS", "METHODS", "run_single_level"]

#: Legend names of the external optimizers -> their configuration names
#: (:data:`bisls_core.optim.EXTERNAL_OPTIMIZERS`).
EXTERNAL_METHODS: dict[str, str] = {
    "Prodigy": "prodigy",
    "Schedule-free SGD": "schedulefree_sgd",
    "Schedule-free AdamW": "schedulefree_adamw",
    "DoG": "dog",
}

#: Legend names of the single-level methods. The external baselines
#: (:data:`EXTERNAL_METHODS`) are driven by their package's own rule, with
#: ``optimizer_kwargs`` for its constructor.
METHODS = ("SPS_max", "DecSPS", "SPSB", "SLS", "SLSB", "decaying-step SGD", *EXTERNAL_METHODS)

_CONFIG_KEYS = {"problem", "problem_args", "problem_seed", "method", "K", "eval_every",
                "keep_iterates", "average_from", "gamma_b0", "c", "schedule", "samples", "w",
                "reset", "eta", "max_rounds", "optimizer_kwargs"}
#: The step-size options of this package's methods (no meaning for an external optimizer).
_OWN_OPTION_KEYS = ("gamma_b0", "c", "schedule", "w", "reset", "eta", "max_rounds")


class _Closure:
    """An optimizer of :mod:`bisls_core.optim` (SPS, SLS): one ``step(closure)`` per
    iteration, the facts read from its history."""

    def __init__(self, opt, problem: SingleLevelProblem) -> None:
        self.opt, self.problem = opt, problem

    def step(self, x: torch.Tensor, idx: list):
        f = self.problem.f
        closure = (lambda: f(x, idx[0])) if len(idx) == 1 else (lambda s: f(x, idx[s]))
        try:
            self.opt.step(closure)
        except FloatingPointError:
            return None
        h = self.opt.state["history"]
        return (h["step"][-1], h["lr_bound"][-1], h["rounds"][-1],
                h["n_func_evals"][-1] + h["n_grad_evals"][-1])

    def reading(self):
        return contextlib.nullcontext()


class _Backward:
    """A ``.grad``-reading optimizer: decaying-step SGD (``torch.optim.SGD`` with a
    ``LambdaLR`` schedule, ``lr_sched``) or an external package's (``lr_sched=None``)."""

    def __init__(self, opt, problem: SingleLevelProblem, lr_sched=None) -> None:
        self.opt, self.problem, self.lr_sched = opt, problem, lr_sched

    def step(self, x: torch.Tensor, idx: list):
        self.opt.zero_grad()
        loss = self.problem.f(x, idx[0])
        if not math.isfinite(float(loss.detach())):
            return None
        loss.backward()
        if self.lr_sched is not None:  # decaying-step SGD
            lr = self.opt.param_groups[0]["lr"]
            self.opt.step()
            self.lr_sched.step()
            return lr, lr, 0, 2
        if not bool(torch.isfinite(x.grad).all()):
            return None
        return external_step(self.opt), math.nan, 0, 2

    def reading(self):
        return evaluating(self.opt) if self.lr_sched is None else contextlib.nullcontext()


def _make_stepper(cfg: Mapping[str, Any], x: torch.Tensor, problem: SingleLevelProblem):
    """The stepper of ``cfg["method"]`` on the parameter ``x`` (see the module docstring)."""
    method = cfg["method"]
    ss.check_choice("method", method, METHODS)
    g0, samples, lb = cfg.get("gamma_b0", 1.0), cfg.get("samples", 1), problem.lower_bound
    if method in EXTERNAL_METHODS:
        own = [key for key in _OWN_OPTION_KEYS if key in cfg]
        if own:
            raise ValueError(f"the configuration key(s) {own} have no meaning for {method!r}: "
                             "pass its options as optimizer_kwargs (e.g. {'lr': 0.1})")
        if samples != 1:
            raise ValueError(f"samples=2 has no meaning for {method!r}")
        opt = make_external(EXTERNAL_METHODS[method], [x], cfg.get("optimizer_kwargs"))
        return _Backward(opt, problem)
    if "optimizer_kwargs" in cfg:
        raise ValueError(f"optimizer_kwargs is for the external methods "
                         f"{list(EXTERNAL_METHODS)}, not {method!r}")
    if method in ("SPS_max", "DecSPS", "SPSB"):
        mode = {"SPS_max": "max", "DecSPS": "dec", "SPSB": "bounded"}[method]
        sched = cfg.get("schedule", "inv_sqrt") if method == "SPSB" else None
        return _Closure(SPS([x], lr_bound=g0, mode=mode, c=cfg.get("c", 1.0), f_star=lb,
                            bound_schedule=sched, samples=samples), problem)
    if method in ("SLS", "SLSB"):
        sched = cfg.get("schedule", "constant" if method == "SLS" else "inv_sqrt")
        return _Closure(SLS([x], lr_bound=g0, c=cfg.get("c", 1.0 if method == "SLS" else 0.1),
                            w=cfg.get("w", 0.5), bound_schedule=sched,
                            reset=cfg.get("reset", "reset"), eta=cfg.get("eta", 2.0),
                            max_rounds=cfg.get("max_rounds", 100), samples=samples), problem)
    # decaying-step SGD: gamma_k = schedule(gamma_b0, k), torch.optim.SGD + LambdaLR.
    if samples != 1:
        raise ValueError("samples=2 has no meaning for decaying-step SGD")
    sched = cfg.get("schedule", "inv_sqrt")
    ss.check_choice("schedule", sched, ss.SCHEDULES)
    ss.check_positive("gamma_b0", g0)
    opt = torch.optim.SGD([x], lr=g0)
    lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: ss.schedule(sched, 1.0, k))
    return _Backward(opt, problem, lr)


class _Record:
    """The runner's arrays, and the evaluation of the full objective at a point."""

    def __init__(self, cfg: Mapping[str, Any], problem: SingleLevelProblem, x: torch.Tensor,
                 K: int, every: int) -> None:
        nan = math.nan
        self.problem, self.f_star = problem, problem.f_star or 0.0
        self.k0 = cfg.get("average_from")
        self.K, self.every = K, every
        n = len(range(0, K, every)) + 1  # every `every` iterations, and K
        keep = bool(cfg.get("keep_iterates"))
        n_per_eval = 2 + (problem.x_star is not None) + (self.k0 is not None)
        check_memory("K", K, 8 * (4 * K + n_per_eval * n + keep * (K + 1) * x.numel()),
                     f"4 float64 arrays of length K, {n_per_eval} of length {n} (the evaluations)"
                     + (f" and the iterates, {K + 1} x {x.numel()}" if keep else ""))
        self.out = {"eval_at": np.append(np.arange(0, K, every, dtype=np.int64), np.int64(K)),
                    "loss": np.full(n, nan),
                    "step": np.full(K, nan), "bound": np.full(K, nan),
                    "rounds": np.full(K, nan), "n_evals": np.full(K, nan)}
        if problem.x_star is not None:
            self.out["dist"] = np.full(n, nan)
        if self.k0 is not None:
            self.out["avg_loss"] = np.full(n, nan)
            self.x_sum = torch.zeros_like(x, dtype=torch.float64)
        if keep:
            self.out["x"] = np.full((K + 1, x.numel()), nan)

    def _position(self, k: int) -> int | None:
        """Index of iteration ``k`` in ``eval_at`` (``None``: not evaluated there)."""
        if k == self.K:
            return len(self.out["eval_at"]) - 1
        return k // self.every if k % self.every == 0 else None

    def point(self, k: int, x: torch.Tensor) -> bool:
        """Record iterate ``k`` (and the objectives at an evaluation); whether it is finite."""
        out, p = self.out, self.problem
        if "x" in out:
            out["x"][k] = x.detach().cpu().double().numpy()
        i = self._position(k)
        if i is None:
            return bool(torch.isfinite(x).all())
        value = float(p.f(x, None)) - self.f_star
        out["loss"][i] = value
        if "dist" in out:
            out["dist"][i] = float(torch.linalg.vector_norm(x - p.x_star))
        if self.k0 is not None and k > self.k0:
            xb = (self.x_sum / (k - self.k0)).to(x.dtype)
            out["avg_loss"][i] = float(p.f(xb, None)) - self.f_star
        return math.isfinite(value)

    def accumulate(self, k: int, x: torch.Tensor) -> None:
        """Add :math:`x^k` to the running sum of the average (from ``average_from`` on)."""
        if self.k0 is not None and k >= self.k0:
            self.x_sum += x.detach().double()


def run_single_level(config: Mapping[str, Any], *, seed: int, device="cpu",
                     progress: bool | None = None) -> dict[str, np.ndarray]:
    r"""Run one single-level method on one problem; the runner of the figure notebooks.

    Configuration keys
    ------------------
    ``problem`` (name for :func:`bisls_core.problems.make`), ``problem_args``
    (its sizes), ``problem_seed`` (default 0: the problem is the same in every
    run; ``seed`` only drives the sampling), ``method`` (one of :data:`METHODS`),
    ``K`` (iterations), ``eval_every`` (default 1), ``keep_iterates`` (default
    false), ``average_from`` (``k0``: also record :math:`f(\bar x) - f^*` for
    :math:`\bar x` the mean of :math:`x^{k_0}, \dots, x^{k-1}`), and the
    method's options ``gamma_b0`` (default 1), ``c`` (default 1; 0.1 for SLSB),
    ``schedule`` (the bound's; default ``"inv_sqrt"`` for SPSB, SLSB and SGD),
    ``samples`` (1 or 2), ``w``, ``reset``, ``eta``, ``max_rounds``; for the
    external baselines of :data:`EXTERNAL_METHODS` only ``optimizer_kwargs``
    (JSON-able keyword arguments of the package's constructor; default: its
    defaults). A schedule-free optimizer's loss is recorded at its evaluation point
    (``.eval()``, see :func:`bisls_core.optim.evaluating`), its gradients taken at
    the train-mode point.

    Returns
    -------
    dict of arrays
        ``eval_at`` (iterations where the full objective was evaluated: every
        ``eval_every`` and ``K``), ``loss`` (:math:`f(x^k) - f^*` when
        :math:`f^*` is known, else :math:`f(x^k)`), ``dist``
        (:math:`\|x^k - x^*\|`, when :math:`x^*` is known), ``avg_loss`` (with
        ``average_from``), per iteration ``step``, ``bound``
        (:math:`\gamma_{b,k}`; NaN for DecSPS and the external optimizers, whose
        ``step`` is :func:`bisls_core.optim.external_step`'s), ``rounds``,
        ``n_evals`` (mini-batch loss plus gradient evaluations in that iteration),
        ``x`` (iterates, shape ``(K+1, d)``, with ``keep_iterates``) and
        ``diverged`` (first iteration whose loss was not finite, -1 if none).
        Values after a divergence are NaN.

    Other parameters
    ----------------
    progress:
        a ``tqdm`` bar over the iterations: ``True`` always, ``False`` never, ``None``
        (default) after 10 s of a run watched from a terminal only (see
        :func:`bisls_core.bilevel.run_bilevel`).

    Raises
    ------
    ValueError
        naming ``K``, before anything is allocated, when the run's arrays (four of
        length ``K``, those of the evaluations, the iterates with ``keep_iterates``) do not
        fit in the memory available now, or ``K`` exceeds :math:`10^{10}` iterations.
    """
    cfg = dict(config)
    unknown = set(cfg) - _CONFIG_KEYS
    if unknown:
        raise ValueError(f"unknown configuration key(s) {sorted(unknown)}; "
                         f"valid keys are: {sorted(_CONFIG_KEYS)}")
    for key in ("problem", "method", "K"):
        if key not in cfg:
            extra = f" (one of {list(METHODS)})" if key == "method" else ""
            raise ValueError(f"the configuration lacks {key!r}{extra}")
    problem = make(cfg["problem"], device=resolve_device(device),
                   seed=cfg.get("problem_seed", 0), **cfg.get("problem_args", {}))
    K, every = check_int("K", cfg["K"], 1), check_int("eval_every", cfg.get("eval_every", 1), 1)
    check_work(K, f"K = {K} single-level", "K")
    samples = cfg.get("samples", 1)
    if samples not in (1, 2) or isinstance(samples, bool):
        raise ValueError(f"samples must be 1 or 2, got {samples!r}")
    x = problem.x0.detach().clone().requires_grad_(True)
    stepper = _make_stepper(cfg, x, problem)
    gen = torch.Generator().manual_seed(int(seed))
    rec, diverged = _Record(cfg, problem, x, K, every), -1
    for k in progress_bar(range(K + 1), K + 1, str(cfg["method"]), progress):
        with torch.no_grad(), stepper.reading():
            finite = rec.point(k, x)
        if not finite:
            diverged = k
            break
        if k == K:
            break
        rec.accumulate(k, x)
        facts = stepper.step(x, [problem.sample(gen) for _ in range(int(samples))])
        if facts is None:
            diverged = k
            break
        for key, value in zip(("step", "bound", "rounds", "n_evals"), facts):
            rec.out[key][k] = value
    rec.out["diverged"] = np.array(diverged)
    return rec.out


run_single_level.cache_version = "1"
#: The runner's identity in the results cache (it moved here from ``bisls_core.optim``;
#: the committed entries keep their keys).
run_single_level.cache_id = "bisls_core.optim.run_single_level"
