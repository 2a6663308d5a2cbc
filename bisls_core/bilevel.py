r"""The alternating bi-level loop: BiSLS-SGD/Adam, BiSPS and their baselines.

One loop (Algorithms 1 and 2 of the paper, read with ``ERRATA.md``),
:func:`run_bilevel`, serves every method of the paper's figures. A
:class:`BilevelConfig` names three small rules, each chosen by name from a registry:

* a **lower-level rule** (:data:`LOWER_RULES`) gives the step sizes of the :math:`T`
  steps :math:`y^{k,t+1} = y^{k,t} - \beta_{k,t}\nabla_y g(x^k, y^{k,t}; \psi_{k,t})`:
  ``"fixed"`` (:class:`FixedLower`), ``"sps"`` (Eq. (11), :class:`SPSLower`),
  ``"armijo"`` (condition (8) with Algorithm 3, :class:`ArmijoLower`) or
  ``"external"`` (a package optimizer, :class:`ExternalLower`);
* an **upper-level rule** (:data:`UPPER_RULES`) gives :math:`\alpha_k` and
  :math:`x^{k+1}`: ``"fixed"``, ``"decay"``, ``"bisps"`` (Eqs. (10), (12)),
  ``"bisls"`` (condition (14) with Algorithm 3) or ``"external"``;
* a **direction** (:data:`DIRECTIONS`) gives :math:`d_k`: ``"sgd"``
  (:math:`d_k = h_f^k`) or ``"adam"`` (:math:`d_k = A_k^{-1}\hat m_k`).

Each rule is a small class that owns its state (the previous accepted step, Adam's
moments, an external optimizer) and reports what it did (step, search rounds,
failures, oracle calls); the loop calls them in Algorithm 2's order and builds the
per-iteration record in one place (:class:`Record`). A new rule is one class and
one registry entry. The protocols:

``lower = LOWER_RULES[name](config, oracles)``
    ``lower.begin(k, y, restart) -> y^{k,0}``; ``lower.step(x, y, value, grad, idx)
    -> InnerStep`` for one of the :math:`T` steps (``value``, ``grad``:
    :math:`g` and :math:`\nabla_y g` on the step's batch ``idx``);
    ``lower.end(y) -> y^{k+1}``; ``lower.line14_step(last) -> β`` of Algorithm 2, line 14.
``upper = UPPER_RULES[name](config, oracles)``
    ``upper.step(UpperInput) -> UpperStep`` (:math:`\alpha_k`, :math:`x^{k+1}` and the
    facts); ``upper.output(x)``: the point to report (a schedule-free average);
    ``upper.record_keys``: extra per-iteration keys it reports in ``UpperStep.extra``.
``direction = DIRECTIONS[name](config, x0)``
    ``direction(k, h) -> (d_k, ‖h‖²_*)``, the squared norm condition (14) uses.

:class:`Oracles` is the rules' access to the problem: batches from the run's own
generator, :math:`g` and :math:`\nabla_y g`, and the hypergradient
(:func:`bisls_core.hypergrad.hypergradient`). The searches are the package's one
Armijo search, :func:`bisls_core.stepsizes.armijo_backtracking`, with its guards.

Public API: :class:`BilevelConfig`, :func:`run_bilevel`, :data:`METHODS`,
:func:`make_config`, :func:`run_config`, :data:`RECORD_KEYS` and the registries.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from ._validate import check_memory, check_work, progress_bar
from .hypergrad import ESTIMATORS, HypergradResult, hypergradient
from .optim import (
    EXTERNAL_OPTIMIZERS,
    check_optimizer_kwargs,
    evaluating,
    external_step,
    make_external,
)
from .problems import BilevelProblem, keeping_graphs
from .readings import PRIMARY_READING, reading_fields
from .stepsizes import (
    ON_FAILURE,
    OUTCOME_CODES,
    RESET_OPTIONS,
    SCHEDULES,
    _epsilon,
    armijo_backtracking,
    check_bool,
    check_choice,
    check_int,
    check_positive,
    envelope_step,
    polyak_ratio,
    reset,
    schedule,
    sps_max,
)

Tensor = torch.Tensor

__all__ = [
    "DIRECTIONS",
    "LOWER_RULES",
    "METHODS",
    "RECORD_KEYS",
    "UPPER_RULES",
    "BilevelConfig",
    "make_config",
    "run_bilevel",
    "run_config",
]

#: Right-hand sides of condition (14) (see ``BilevelConfig.reference``).
REFERENCES = ("paper", "one_step", "penultimate")

#: BiSLS-Adam's trial directions in condition (14) (see ``BilevelConfig.adam_trial``).
ADAM_TRIALS = ("m", "h")

#: Lower rules whose last inner step the ``"penultimate"`` reading can redo.
_REDOABLE = ("fixed", "sps", "armijo")

#: Keys of the per-iteration record returned by :func:`run_bilevel` (besides the
#: problem's metric keys, their ``initial_`` values, ``x_final``/``y_final``, and the
#: ``record_keys`` an upper rule may add).
RECORD_KEYS = (
    "upper_loss", "lower_loss", "alpha", "beta", "beta_last", "upper_rounds",
    "lower_rounds", "upper_failures", "lower_failures", "lower_guard", "n_hvp", "n_grad",
    "n_fun", "time", "diverged",
)


# ---------------------------------------------------------------- the configuration
@dataclass(frozen=True)
class BilevelConfig:
    r"""Everything that defines a run of the bi-level loop (validated on creation).

    Attributes
    ----------
    K:
        number of outer (upper-level) iterations.
    T:
        number of lower-level steps per outer iteration (:math:`T \ge 1`). A run of
        more than ``bisls_core._validate.MAX_STEPS`` (:math:`10^{10}`) lower steps,
        :math:`KT`, cannot finish and is refused (``ValueError`` naming ``K`` and ``T``).
    upper:
        a name of :data:`UPPER_RULES`: ``"fixed"`` :math:`\alpha_k = \alpha_{b,0}`;
        ``"decay"`` :math:`\alpha_{b,0}/\sqrt{k+1}`; ``"bisps"`` Eqs. (10), (12)
        (:class:`BiSPSUpper`); ``"bisls"`` backtracking on condition (14)
        (:class:`BiSLSUpper`); ``"external"`` the package optimizer
        ``upper_optimizer`` takes one step per outer iteration with :math:`h_f^k` as
        the gradient of :math:`x` (its own direction and step size).
    direction:
        ``"sgd"`` or ``"adam"`` (``"bisps"`` and ``"external"`` are defined for
        ``"sgd"`` only: an external optimizer makes its own direction).
    lower:
        a name of :data:`LOWER_RULES`: ``"fixed"``, ``"sps"`` (Eq. (11)),
        ``"armijo"`` (condition (8)) or ``"external"`` (the package optimizer
        ``lower_optimizer`` takes the :math:`T` steps with
        :math:`\nabla_y g(x^k, y^{k,t}; \psi_{k,t})` as the gradient of :math:`y`).
    upper_optimizer, lower_optimizer:
        with ``"external"``: ``"prodigy"``, ``"schedulefree_sgd"``,
        ``"schedulefree_adamw"`` or ``"dog"``, from their own packages
        (:data:`bisls_core.optim.EXTERNAL_OPTIMIZERS`); ``None`` (and must be)
        otherwise. One optimizer per level lives through the whole run (its state
        carries over outer iterations; with ``warm_start=False`` the lower one is
        created afresh at every restart). ``alpha``/``beta`` are not used by an
        external rule: its learning rate is the package default unless ``*_kwargs``
        sets ``lr``. A schedule-free optimizer is stepped in train mode and read in
        eval mode: the upper one's averaged point is where the metrics (and
        ``x_final``) are evaluated, the lower one's averaged point is :math:`y^{k+1}`.
    upper_kwargs, lower_kwargs:
        keyword arguments (JSON-able) of the external optimizer's constructor;
        ``None``: the package's defaults. Checked on creation by building the
        optimizer on a dummy tensor.
    alpha:
        :math:`\alpha_{b,0}`: the fixed step, the start of the decaying step, BiSPS's
        upper bound, BiSLS's first search start. Default 1.0: a search start
        (the paper shows BiSLS is insensitive to it over orders of magnitude);
        set it yourself for the fixed rules.
    beta:
        :math:`\beta_{b,0}`, the same roles at the lower level. Default 1.0.
    alpha_l0:
        :math:`\alpha_{l,0}` of BiSPS's lower envelope (Eq. (12)); ``None`` means
        ``alpha / 10`` (see :attr:`alpha_low`). Must satisfy
        :math:`\alpha_{l,0} \le \alpha_{b,0}` (Theorem 3).
    beta_schedule:
        bound :math:`\beta_{b,k}` of the ``"sps"`` lower rule: ``"constant"``,
        ``"inv_sqrt"`` or ``"inv"`` (default: :math:`\beta_{b,0}/(k+1)`, Theorem 3).
    p:
        the Polyak constant :math:`p` of Eqs. (11) and (12) (BiSPS and the ``"sps"``
        lower rule), in :math:`(0, 1]`; default 0.5: Theorem 3 asks :math:`p \ge 1/2`
        and it is the SPS default. It is also the constant of the two Armijo searches
        when ``p_upper``/``c_bar`` are ``None`` (the book's committed results).
    p_upper:
        :math:`p` of condition (14), BiSLS's upper search, in :math:`(0, 1]`; ``None``:
        ``p``. The paper gives none for its bilevel runs; its reported search costs
        (89 and 115 rounds per iteration from :math:`\alpha_{b,0} = 10` with option 1,
        Appendix A.2) are the tuned steps' size at :math:`w = 0.9`, i.e. searches that
        succeed, and the authors' single-level line search ships :math:`c = 0.1`
        (reading ``"paper-evidence"`` of :data:`bisls_core.readings.READINGS`).
        Theorem 3's :math:`p \ge 1/2` is the Polyak step's requirement, not Armijo's.
    c_bar:
        :math:`\bar c` of condition (8), the lower Armijo search, in :math:`(0, 1]`;
        ``None``: ``p``. With :math:`\bar c \le 1/2` Armijo accepts the :math:`1/L`
        step on a quadratic.
    adam_trial:
        BiSLS-Adam's trial direction in condition (14): ``"m"`` moves the trial along
        :math:`A_k^{-1}\hat m_k`, the update's direction (the committed results);
        ``"h"`` along :math:`A_k^{-1} h_f^k` as Algorithm 2, line 13 prints, whose slope
        matches the decrease :math:`p\alpha\|h_f^k\|^2_{A_k^{-1}}` that (14) asks. The
        accepted step then moves :math:`x` along :math:`A_k^{-1}\hat m_k` (line 16).
        Ignored by the SGD direction (both are :math:`h_f^k`).
    delta:
        slack :math:`\delta \ge 0` of condition (14); default 0 ("simply setting
        :math:`\delta = 0` works well", Section 2).
    w:
        backtracking factor :math:`0 < w < 1`; default 0.9, the factor the reported
        search costs imply (89 rounds per iteration with option 1, Appendix A.2, is
        about 4 decades at :math:`w = 0.9` and 27 at :math:`w = 0.5`).
    max_rounds:
        budget of condition evaluations per search (default 200, i.e. about 9 decades
        at :math:`w = 0.9`; Figure 7 starts 5 decades above the tuned step). When it
        runs out, the smallest tried step is taken and a failure is recorded; a
        failed search does not become the memory of Algorithm 3 (the next start is
        computed from the last *successful* step), otherwise one failure would pin
        the options ``"keep"``/``"grow"`` to a step :math:`w^{199}` times too small.
        The search's guards (:func:`bisls_core.stepsizes.armijo_backtracking`) skip a
        search whose requested decrease is below floating-point resolution (start
        step, 0 rounds) and one with nothing finite to search on (a failure).
    ladder:
        how many candidate steps of BiSLS's upper search (condition (14), the trial of
        Algorithm 2, line 14, backtracked by Algorithm 3) are evaluated in one batched
        call. 0 or 1 (default): one trial at a time. :math:`L \ge 2`: the search
        evaluates :math:`\alpha, \alpha w, \dots, \alpha w^{L-1}` at once
        (``torch.func.vmap`` over :math:`\alpha` of the trial, :class:`LadderTrial`) and
        tests them in the sequential order, so it accepts the step, and records the
        rounds, outcome, failure and early-exit round, that the sequential search does on
        the same values; a ladder that passes nothing is followed by one from
        :math:`\alpha w^L`, the last cut at ``max_rounds``. ``n_fun``/``n_grad`` count the
        candidates evaluated, those after the accepted one included. On a GPU a trial is
        launch-bound, so a ladder costs about one trial; on a CPU it is compute-bound (a
        prototype measured 0.92-2.2x the sequential time per candidate, this one 1.2-2.0x
        for ladders of 4-16 on the cpu preset, one thread), hence the sequential default
        on every device. The values are the sequential trial's to round-off, not always
        bit for bit (batched products sum in another order: one unit in the last place
        seen on the quadratic problem, three on the float32 hyper-representation problem,
        whose convolutions vmap turns into one grouped convolution), so a trial within
        round-off of the condition's boundary could be decided the other way; the iterates
        depend on the values only through the step accepted. A problem whose ``f``/``g``
        vmap cannot trace (in-place writes, control flow on values, ``.item()``) has its
        ladders evaluated by a loop of trials instead (a ``RuntimeWarning``, once per
        run). Ignored by the other upper rules.
    reset_upper, reset_lower:
        Algorithm 3's option for the next search start: ``"reset"`` (option 1),
        ``"keep"`` (2), ``"grow"`` (3). Defaults: ``"grow"`` upstairs (option 3 with
        :math:`\eta = 2` is the paper's recommendation, Appendix A.2, Figure 13a) and
        ``"reset"`` downstairs (the setting of Figures 11-13).
    eta:
        :math:`\eta \ge 1` of option 3 (default 2).
    samples:
        1 or 2. For ``"bisps"`` (and the ``"sps"`` lower rule): 1 computes the step
        on the same batch as the direction (the paper's experiments); 2 on an
        independent batch (Theorem 3's assumption that :math:`\alpha_k` is
        independent of :math:`h_f^k`; Figures 10 and 17).
    hypergrad, hypergrad_steps, hypergrad_lr:
        estimator name (a key of :data:`bisls_core.hypergrad.ESTIMATORS`), its
        ``steps`` and ``lr`` (see :func:`bisls_core.hypergrad.hypergradient`).
        Defaults: ``"cg"`` with 10 steps (Section 4 uses CG), ``lr=None`` (1).
    adam_betas, adam_eps:
        :math:`(\beta_1, \beta_2)` and :math:`\epsilon` of Adam (default
        (0.9, 0.999), 1e-8: Kingma & Ba; the paper gives none).
    warm_start:
        ``True``: :math:`y^{k+1,0} = y^{k+1}` (carried over); ``False``: restart every
        inner loop from ``problem.y0``.
    eval_every:
        evaluate ``problem.metrics`` every this many iterations (and at the last);
        NaN in between.
    reference:
        right-hand side of condition (14): ``"paper"`` compares with
        :math:`f(x^k, y^{k+1})` as printed; ``"one_step"`` compares with
        :math:`f(x^k, \hat y(x^k))`, the trial at :math:`\alpha = 0` (one more
        evaluation). With ``"paper"`` the one lower step of the trial changes
        :math:`f` even as :math:`\alpha \to 0`, so when that step increases
        :math:`f` no step satisfies (14) with :math:`\delta = 0` and the search
        fails; ``"one_step"`` removes that offset (a choice of this book);
        ``"penultimate"`` reads line 8's :math:`y^{k,T-1}`: the trial redoes the
        *last* lower step from :math:`y^{k,T-1}` with the candidate :math:`\hat x`, the
        same batch :math:`\psi_{k,T-1}` and step :math:`\beta_{k,T-1}`, so at
        :math:`\alpha = 0` it is :math:`y^{k+1}` and :math:`f(x^k, y^{k+1})` is
        consistent at no extra cost (lower rules ``"fixed"``, ``"sps"``, ``"armijo"``).
    diagnostics:
        record the trial function's offset :math:`\varphi(0) - f_{\text{ref}}` and
        slope :math:`\varphi'(0)` at every BiSLS search (``upper_offset``,
        ``upper_slope``; one more forward pass and one backward through the trial's
        lower step, counted in ``n_fun``, ``n_grad`` and ``n_hvp``; the forward passes at
        :math:`x^k` are the hypergradient's, kept for it, see :meth:`Line14Trial.model`).
        Default off.
    early_exit:
        stop a BiSLS search that cannot succeed (guard 5 of
        :func:`bisls_core.stepsizes.armijo_backtracking`; computes the slope as
        ``diagnostics`` does). Default off (the committed results).
    on_failure:
        the step of a failed BiSLS search: ``"floor"`` the smallest step the budget
        reaches (default, the committed results), ``"none"`` no step, ``"reset"`` the
        search's start step.
    keep_final:
        return the final ``x`` and ``y`` as ``x_final``/``y_final``.

    Integer fields accept integral floats (``3.0``) and store them as ``int``; every
    float field must be finite (a ``ValueError`` names the field otherwise).
    """

    K: int = 100
    T: int = 10
    upper: str = "bisls"
    direction: str = "sgd"
    lower: str = "armijo"
    alpha: float = 1.0
    beta: float = 1.0
    alpha_l0: float | None = None
    beta_schedule: str = "inv"
    p: float = 0.5
    p_upper: float | None = None
    c_bar: float | None = None
    adam_trial: str = "m"
    delta: float = 0.0
    w: float = 0.9
    max_rounds: int = 200
    ladder: int = 0
    reset_upper: str = "grow"
    reset_lower: str = "reset"
    eta: float = 2.0
    samples: int = 1
    hypergrad: str = "cg"
    hypergrad_steps: int = 10
    hypergrad_lr: float | None = None
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    warm_start: bool = True
    eval_every: int = 1
    keep_final: bool = False
    reference: str = "paper"
    diagnostics: bool = False
    early_exit: bool = False
    on_failure: str = "floor"
    upper_optimizer: str | None = None
    lower_optimizer: str | None = None
    upper_kwargs: dict | None = None
    lower_kwargs: dict | None = None

    def __post_init__(self) -> None:
        _check_rules(self)
        _check_steps(self)
        _check_rest(self)

    @property
    def alpha_low(self) -> float:
        r""":math:`\alpha_{l,0}`: ``alpha_l0``, or ``alpha / 10`` when it is ``None``.

        One decade below the upper bound: it keeps :math:`\alpha_{l,0} \le \alpha_{b,0}`
        and gives Theorem 3's :math:`\alpha_{b,0}^2/\alpha_{l,0} = 10\,\alpha_{b,0}`. It is
        resolved here, not stored, so that ``dataclasses.replace(config, alpha=...)``
        moves the envelope with ``alpha``.
        """
        return self.alpha / 10.0 if self.alpha_l0 is None else float(self.alpha_l0)

    @property
    def p14(self) -> float:
        """:math:`p` of condition (14): ``p_upper``, or ``p`` when it is ``None``."""
        return self.p if self.p_upper is None else float(self.p_upper)

    @property
    def c8(self) -> float:
        r""":math:`\bar c` of condition (8): ``c_bar``, or ``p`` when it is ``None``."""
        return self.p if self.c_bar is None else float(self.c_bar)


def _set(cfg: BilevelConfig, name: str, value: Any) -> None:
    object.__setattr__(cfg, name, value)


def _check_rules(cfg: BilevelConfig) -> None:
    """The rule names, the directions they allow, and the external optimizers' fields."""
    check_choice("upper", cfg.upper, UPPER_RULES)
    check_choice("direction", cfg.direction, DIRECTIONS)
    check_choice("lower", cfg.lower, LOWER_RULES)
    rule = UPPER_RULES[cfg.upper]
    if cfg.direction not in rule.directions:
        valid = ", ".join(repr(d) for d in rule.directions)
        raise ValueError(f"upper {cfg.upper!r} {rule.directions_why}; valid directions with "
                         f"{cfg.upper!r} are: {valid}")
    for level, rule in (("upper", cfg.upper), ("lower", cfg.lower)):
        name, kwargs = getattr(cfg, f"{level}_optimizer"), getattr(cfg, f"{level}_kwargs")
        if rule != "external":
            if name is not None or kwargs is not None:
                raise ValueError(
                    f"{level}_optimizer/{level}_kwargs are used by {level}='external' only, "
                    f"got {level}={rule!r} with {level}_optimizer={name!r}")
            continue
        check_choice(f"{level}_optimizer", name, EXTERNAL_OPTIMIZERS)
        kwargs = check_optimizer_kwargs(f"{level}_kwargs", kwargs)
        _set(cfg, f"{level}_kwargs", kwargs or None)
        try:  # the package's own checks, now rather than in the middle of a run
            make_external(name, [torch.zeros(1, requires_grad=True)], kwargs)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{level}_kwargs {kwargs!r} for {name!r}: {err}") from None


def _check_steps(cfg: BilevelConfig) -> None:
    """The step sizes and the constants of the searches (finite, in range)."""
    check_positive("alpha", cfg.alpha)
    check_positive("beta", cfg.beta)
    if cfg.alpha_l0 is not None and check_positive("alpha_l0", cfg.alpha_l0) > cfg.alpha:
        raise ValueError(f"alpha_l0 must be <= alpha (alpha_l0 <= alpha_b0, Theorem 3), "
                         f"got alpha_l0={cfg.alpha_l0!r} > alpha={cfg.alpha!r}")
    check_choice("beta_schedule", cfg.beta_schedule, SCHEDULES)
    check_positive("p", cfg.p, at_most=1.0)
    for name in ("p_upper", "c_bar"):
        if getattr(cfg, name) is not None:
            check_positive(name, getattr(cfg, name), at_most=1.0)
    check_choice("adam_trial", cfg.adam_trial, ADAM_TRIALS)
    check_positive("delta", cfg.delta, allow_zero=True)
    check_positive("w", cfg.w, below=1.0)
    check_choice("reset_upper", cfg.reset_upper, RESET_OPTIONS)
    check_choice("reset_lower", cfg.reset_lower, RESET_OPTIONS)
    if check_positive("eta", cfg.eta) < 1:
        raise ValueError(f"eta must be >= 1, got {cfg.eta!r}")
    try:
        b1, b2 = cfg.adam_betas
    except (TypeError, ValueError):
        raise ValueError(f"adam_betas must be a pair (beta1, beta2), got {cfg.adam_betas!r}"
                         ) from None
    for name, b in (("adam_betas[0]", b1), ("adam_betas[1]", b2)):
        check_positive(name, b, allow_zero=True, below=1.0)
    check_positive("adam_eps", cfg.adam_eps)
    check_choice("reference", cfg.reference, REFERENCES)
    check_choice("on_failure", cfg.on_failure, ON_FAILURE)
    if cfg.reference == "penultimate" and cfg.lower not in _REDOABLE:
        raise ValueError(f"reference='penultimate' redoes the last lower step, which lower "
                         f"{cfg.lower!r} does not expose; use lower in {_REDOABLE}")


def _check_rest(cfg: BilevelConfig) -> None:
    """Counts (stored as ``int``), the estimator, the switches."""
    for name, minimum in (("K", 1), ("T", 1), ("max_rounds", 1), ("ladder", 0),
                          ("eval_every", 1),
                          ("hypergrad_steps", 1 if cfg.hypergrad == "neumann_stochastic" else 0)):
        _set(cfg, name, check_int(name, getattr(cfg, name), minimum))
    check_work(cfg.K * cfg.T, f"K * T = {cfg.K} * {cfg.T} lower-level", "K and T")
    check_choice("samples", cfg.samples, (1, 2))
    check_choice("hypergrad", cfg.hypergrad, ESTIMATORS)
    if cfg.hypergrad_lr is not None:
        check_positive("hypergrad_lr", cfg.hypergrad_lr)
    check_bool("warm_start", cfg.warm_start)
    check_bool("keep_final", cfg.keep_final)
    check_bool("diagnostics", cfg.diagnostics)
    check_bool("early_exit", cfg.early_exit)


# ---------------------------------------------------------------- the rules' access to the problem
def _sq(t: Tensor) -> Tensor:
    return torch.sum(t * t)


def _is_finite(*values) -> bool:
    """Whether every value (tensors: every entry) is finite; the tensors are checked in
    one host synchronisation when they share a device."""
    flags = []
    for v in values:
        if isinstance(v, Tensor):
            flags.append(torch.isfinite(v).all())
        elif not math.isfinite(float(v)):
            return False
    if len({flag.device for flag in flags}) > 1:
        return all(bool(flag) for flag in flags)
    return not flags or bool(flags[0] if len(flags) == 1 else torch.stack(flags).all())


def _host(*values) -> list[float]:
    """``[float(v) for v in values]`` with one host synchronisation for the 0-d tensors of
    one dtype and device (the same numbers: ``tolist`` converts as ``float`` does)."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    if len(tensors) < 2 or len({(t.dtype, t.device) for t in tensors}) > 1 \
            or any(t.dim() for t in tensors):
        return [float(v) for v in values]
    read = iter(torch.stack([t.detach() for t in tensors]).tolist())
    return [next(read) if isinstance(v, Tensor) else float(v) for v in values]


@dataclass(frozen=True)
class Estimate:
    """A hypergradient with the batches it was taken on: ``idx_f`` (:math:`\\phi`) and
    ``idx_g`` (:math:`\\psi`)."""

    result: HypergradResult
    idx_f: Any
    idx_g: Any


class Oracles:
    """The rules' access to the problem: batches drawn from the run's own generator,
    :math:`g` with :math:`\\nabla_y g`, and the hypergradient of ``config``'s estimator."""

    def __init__(self, problem: BilevelProblem, cfg: BilevelConfig, gen: torch.Generator):
        self.problem, self.cfg, self.gen = problem, cfg, gen
        stochastic = cfg.hypergrad == "neumann_stochastic" and problem.batch_lower is not None
        self._factor_batches = problem.sample_lower if stochastic else None
        # BiSLS's trial model (diagnostics, early exit) reuses the hypergradient's graph
        self._keep_graph = cfg.upper == "bisls" and (cfg.diagnostics or cfg.early_exit)

    def lower_batch(self):
        """A fresh lower-level batch :math:`\\psi`."""
        return self.problem.sample_lower(self.gen)

    def g_and_grad(self, x: Tensor, y: Tensor, idx) -> tuple[Tensor, Tensor]:
        """``g(x, y; idx)`` and its gradient in ``y`` (detached; no ``.grad`` writes)."""
        with torch.enable_grad():
            y_ = y.detach().requires_grad_(True)
            value = self.problem.g(x.detach(), y_, idx)
            (grad,) = torch.autograd.grad(value, y_, allow_unused=True)
        grad = torch.zeros_like(y) if grad is None else grad
        return value.detach(), grad.detach()

    def hypergradient(self, x: Tensor, y: Tensor) -> Estimate:
        """:math:`h_f` at ``(x, y)`` on fresh batches :math:`\\phi, \\psi` (Eq. (2), :math:`v`
        by the configured estimator)."""
        cfg = self.cfg
        idx_f, idx_g = self.problem.sample_upper(self.gen), self.problem.sample_lower(self.gen)
        hg = hypergradient(self.problem.f, self.problem.g, x, y, idx_f, idx_g, cfg.hypergrad,
                           steps=cfg.hypergrad_steps, lr=cfg.hypergrad_lr, gen=self.gen,
                           index_sampler=self._factor_batches, keep_graph=self._keep_graph)
        return Estimate(hg, idx_f, idx_g)


def _warn_below_bound(what: str, value: float, name: str, bound: float, k: int, eq: str,
                      effect: str) -> bool:
    """A ``RuntimeWarning`` when a Polyak rule sees a loss below its stated lower bound
    (the ratio is then 0); whether it warned (the rules warn once per instance)."""
    if not value < float(bound):
        return False
    warnings.warn(f"{what} = {value!r} seen at outer iteration {k} is below {name} = "
                  f"{float(bound)!r}, the lower bound of the Polyak ratio of {eq}: the ratio "
                  f"is then 0 and {effect}; set the problem's {name} below every sampled "
                  "loss (warned once per run)", RuntimeWarning, stacklevel=2)
    return True


class _External:
    """One package optimizer (:func:`bisls_core.optim.make_external`) driving one level's
    variable, held as its own leaf tensor; the rule hands it gradients."""

    def __init__(self, name: str, start: Tensor, kwargs: dict | None) -> None:
        self.param = start.detach().clone().requires_grad_(True)
        self.opt = make_external(name, [self.param], kwargs)

    def step(self, grad: Tensor) -> float:
        """One step with ``grad`` as the gradient; the effective step size (or NaN)."""
        self.param.grad = grad.detach().clone()
        step = external_step(self.opt)
        self.param.grad = None
        return step

    def point(self) -> Tensor:
        """Where the next gradient is taken (a schedule-free optimizer's train-mode point)."""
        return self.param.detach().clone()

    def output(self) -> Tensor:
        """The point to report: a schedule-free optimizer's averaged (eval-mode) point,
        the current point otherwise."""
        with evaluating(self.opt):
            return self.param.detach().clone()


# ---------------------------------------------------------------- lower-level rules
@dataclass
class InnerStep:
    """What a lower rule did in one of the :math:`T` steps: the new point, the step
    :math:`\\beta_{k,t}`, condition evaluations, a failed search (0/1), gradient
    evaluations beyond the step's own, and ``stop`` (nothing finite to step on: the
    inner loop ends, the run diverges); ``guard`` (a search skipped by the round-off
    guard, 0/1), ``n_fun`` (function evaluations: search trials), and the step's base
    point :math:`y^{k,t}` and batch :math:`\\psi_{k,t}` (``base``, ``idx``: what the
    ``"penultimate"`` reading of condition (14) redoes)."""

    y: Tensor
    step: Any
    rounds: int = 0
    failed: int = 0
    n_grad: int = 0
    stop: bool = False
    guard: int = 0
    n_fun: int = 0
    base: Tensor | None = None
    idx: Any = None


class LowerRule:
    """Protocol of a lower-level rule (Algorithm 2, lines 3-8); the base class is the
    identity where a rule has nothing to do."""

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        self.cfg, self.oracles = cfg, oracles

    def begin(self, k: int, y: Tensor, restart: bool) -> Tensor:
        """:math:`y^{k,0}` from ``y`` (``restart``: ``y`` is ``problem.y0``)."""
        return y

    def step(self, x: Tensor, y: Tensor, value: Tensor, grad: Tensor, idx) -> InnerStep:
        raise NotImplementedError

    def end(self, y: Tensor) -> Tensor:
        """:math:`y^{k+1}` from :math:`y^{k,T}` (ERRATA: Algorithm 2, line 8)."""
        return y

    def line14_step(self, last) -> Any:
        """The :math:`\\beta` of Algorithm 2, line 14 (the trial's one lower step)."""
        return last


class FixedLower(LowerRule):
    """:math:`\\beta_{k,t} = \\beta_{b,0}` (Algorithm 1, line 4 with a constant step)."""

    def step(self, x, y, value, grad, idx) -> InnerStep:
        return InnerStep(y - self.cfg.beta * grad, self.cfg.beta, base=y, idx=idx)


class SPSLower(LowerRule):
    r"""Eq. (11): :math:`\beta_{k,t} = \min\{(g - l^*_g)/(p\|\nabla_y g\|^2), \beta_{b,k}\}`,
    :math:`\beta_{b,k}` of ``beta_schedule``, ``problem.g_lower_bound`` for :math:`l^*_g`
    (in place of :math:`g(x^k, y^*_{x^k,\psi}; \psi)`); with ``samples=2`` the ratio is
    taken on a second, independent batch (one more gradient). A loss :math:`g` below
    ``g_lower_bound`` (a wrong bound: the ratio is 0, the lower level stops) gives a
    ``RuntimeWarning`` naming it and the value seen, once per run (checked at the end of
    each inner loop, so the losses stay on the device in between)."""

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        super().__init__(cfg, oracles)
        self.lowest: Tensor | None = None  # the lowest g of the ratios of this iteration
        self.warned = False

    def begin(self, k: int, y: Tensor, restart: bool) -> Tensor:
        self.bound = schedule(self.cfg.beta_schedule, self.cfg.beta, k)
        self.k, self.lowest = k, None
        return y

    def step(self, x, y, value, grad, idx) -> InnerStep:
        grad_s, n_grad = grad, 0
        if self.cfg.samples == 2:
            value, grad_s = self.oracles.g_and_grad(x, y, self.oracles.lower_batch())
            n_grad = 1
        if not self.warned:  # kept on the device; compared once per outer iteration (end)
            self.lowest = value if self.lowest is None else torch.minimum(self.lowest, value)
        step = sps_max(value, _sq(grad_s), self.bound, c=self.cfg.p,
                       lower_bound=self.oracles.problem.g_lower_bound)
        return InnerStep(y - step * grad, step, n_grad=n_grad, base=y, idx=idx)

    def end(self, y: Tensor) -> Tensor:
        if self.lowest is not None:
            self.warned = _warn_below_bound(
                "the lower-level loss g", float(self.lowest), "g_lower_bound",
                self.oracles.problem.g_lower_bound, self.k, "Eq. (11)",
                "the lower level takes zero steps")
        return y


class ArmijoLower(LowerRule):
    r"""Condition (8): backtracking from :math:`\mathrm{reset}(\beta_{\text{prev}},
    \beta_{b,0})` (Algorithm 2, lines 4-5; Algorithm 3's option ``reset_lower``) until
    :math:`g(x, y - \beta\nabla_y g; \psi) \le g(x, y; \psi) - p\,\beta\|\nabla_y g\|^2`.
    Its state: :math:`\beta_{\text{prev}}`, the last *accepted* step (a failed search
    is not remembered), which is also the :math:`\beta` of line 14."""

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        super().__init__(cfg, oracles)
        self.prev: float | None = None

    def step(self, x, y, value, grad, idx) -> InnerStep:
        cfg, g = self.cfg, self.oracles.problem.g
        start = reset(self.prev, cfg.beta, cfg.reset_lower, cfg.eta)

        def trial(b: float) -> Tensor:
            with torch.no_grad():
                return g(x, y - b * grad, idx)

        f_old, sq_norm = _host(value, _sq(grad))  # one transfer
        res = armijo_backtracking(trial, f_old, sq_norm, start, c=cfg.c8, w=cfg.w,
                                  delta=0.0, max_rounds=cfg.max_rounds, eps=_epsilon(value))
        if res.outcome == "nonfinite":
            return InnerStep(torch.full_like(y, math.nan), res.step, failed=1, stop=True)
        if res.success:
            self.prev = res.step
        return InnerStep(y - res.step * grad, res.step, res.rounds, int(not res.success),
                         guard=int(res.outcome == "guard"), n_fun=res.rounds, base=y, idx=idx)

    def line14_step(self, last) -> Any:
        return self.prev if self.prev is not None else last


class ExternalLower(LowerRule):
    """The package optimizer ``lower_optimizer`` takes the :math:`T` steps with
    :math:`\\nabla_y g` as the gradient of :math:`y` (its own step rule); its state lives
    through the run, or restarts with :math:`y` when ``warm_start=False``."""

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        super().__init__(cfg, oracles)
        self.ext = _External(cfg.lower_optimizer, oracles.problem.y0, cfg.lower_kwargs)

    def begin(self, k: int, y: Tensor, restart: bool) -> Tensor:
        if restart:
            self.ext = _External(self.cfg.lower_optimizer, y, self.cfg.lower_kwargs)
        return self.ext.point()

    def step(self, x, y, value, grad, idx) -> InnerStep:
        if not _is_finite(value, grad):
            return InnerStep(torch.full_like(y, math.nan), math.nan, failed=1, stop=True)
        step = self.ext.step(grad)
        return InnerStep(self.ext.point(), step)

    def end(self, y: Tensor) -> Tensor:
        return self.ext.output() if _is_finite(y) else y  # the schedule-free average


#: Lower-level rules by name (``BilevelConfig.lower``).
LOWER_RULES: dict[str, type[LowerRule]] = {
    "fixed": FixedLower, "sps": SPSLower, "armijo": ArmijoLower, "external": ExternalLower,
}


# ---------------------------------------------------------------- upper-level rules
@dataclass(frozen=True)
class UpperInput:
    """What an upper rule sees at iteration ``k``: :math:`x^k`, :math:`y^{k+1}`, the
    direction :math:`d_k` and its squared norm :math:`\\|h_f^k\\|^2_*`, the hypergradient
    estimate (with its batches), the :math:`\\beta` of Algorithm 2, line 14, and the
    last inner step as the lower rule reported it (``last``)."""

    k: int
    x: Tensor
    y: Tensor
    d: Tensor
    sq_norm: Tensor
    estimate: Estimate
    beta_hat: Any
    last: InnerStep | None = None
    trial_d: Tensor | None = None

    @property
    def trial_direction(self) -> Tensor:
        """The direction along which condition (14) moves its trial point (``trial_d``,
        or :math:`d_k` when it is ``None``)."""
        return self.d if self.trial_d is None else self.trial_d


@dataclass
class UpperStep:
    """What an upper rule did: :math:`\\alpha_k`, :math:`x^{k+1}`, condition evaluations,
    a failed search (0/1), the gradient evaluations and second-order products it
    added, and ``extra`` values for the rule's own ``record_keys``."""

    alpha: Any
    x: Tensor
    rounds: int = 0
    failures: int = 0
    n_grad: int = 0
    n_hvp: int = 0
    n_fun: int = 0
    extra: dict = field(default_factory=dict)


class UpperRule:
    """Protocol of an upper-level rule (Algorithm 2, lines 9-16)."""

    #: directions the rule is defined for, and why when that is not all of them.
    directions: tuple[str, ...] = ("sgd", "adam")
    directions_why = ""
    #: extra per-iteration record keys the rule reports in ``UpperStep.extra``.
    record_keys: tuple[str, ...] = ()

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        self.cfg, self.oracles = cfg, oracles

    def step(self, it: UpperInput) -> UpperStep:
        raise NotImplementedError

    def output(self, x: Tensor) -> Tensor:
        """The point at which to report the metrics (and ``x_final``)."""
        return x


def _descend(it: UpperInput, alpha, **facts) -> UpperStep:
    """:math:`x^{k+1} = x^k - \\alpha_k d_k` (Algorithm 2, line 16)."""
    return UpperStep(alpha, it.x - alpha * it.d, **facts)


class FixedUpper(UpperRule):
    """:math:`\\alpha_k = \\alpha_{b,0}`."""

    def step(self, it: UpperInput) -> UpperStep:
        return _descend(it, self.cfg.alpha)


class DecayUpper(UpperRule):
    """:math:`\\alpha_k = \\alpha_{b,0}/\\sqrt{k+1}` (decaying-step SGD, Theorem 1's rate)."""

    def step(self, it: UpperInput) -> UpperStep:
        return _descend(it, self.cfg.alpha / math.sqrt(it.k + 1))


class BiSPSUpper(UpperRule):
    r"""BiSPS, Eqs. (10) and (12): :math:`\alpha_k = \min\{\max\{\alpha_{l,k},
    \tilde\alpha_k\}, \alpha_{b,k}\}` with :math:`\alpha_{l,k} = \alpha_{l,0}/\sqrt{k+1}`,
    :math:`\alpha_{b,k} = \alpha_{b,0}/\sqrt{k+1}` and
    :math:`\tilde\alpha_k = (f(x^k, y^{k+1}; \phi) - l^*_f)/(p\|h_f^k\|^2)`; with
    ``samples=2`` the ratio comes from a second hypergradient on fresh batches. A loss
    :math:`f` below ``f_lower_bound`` gives a ``RuntimeWarning`` naming it and the value
    seen, once per run."""

    directions = ("sgd",)
    directions_why = "is defined for direction 'sgd' only (Eq. (12))"

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        super().__init__(cfg, oracles)
        self.warned = False

    def step(self, it: UpperInput) -> UpperStep:
        cfg, hg, n_grad, n_hvp = self.cfg, it.estimate.result, 0, 0
        if cfg.samples == 2:
            hg = self.oracles.hypergradient(it.x, it.y).result
            n_grad, n_hvp = 2, hg.n_hvp
        root = math.sqrt(it.k + 1)
        if not self.warned:
            self.warned = _warn_below_bound(
                "the upper-level loss f", float(hg.f_value), "f_lower_bound",
                self.oracles.problem.f_lower_bound, it.k, "Eq. (10)",
                "alpha_k is the envelope's floor alpha_l,k")
        tilde = polyak_ratio(float(hg.f_value), float(_sq(hg.h)),
                             self.oracles.problem.f_lower_bound, c=cfg.p)
        alpha = envelope_step(tilde, cfg.alpha_low / root, cfg.alpha / root)
        return _descend(it, alpha, n_grad=n_grad, n_hvp=n_hvp)


class Line14Trial:
    r"""The trial of condition (14) (Algorithm 2, lines 13-14), as a reading of the paper
    sets it: :math:`\varphi(\alpha) = f(x^k - \alpha d, \hat y(\alpha); \phi)` with one
    lower step :math:`\hat y(\alpha) = b - \beta\nabla_y g(x^k - \alpha d, b; \psi)`,
    where :math:`d` is the trial direction (``adam_trial``) and :math:`(b, \psi, \beta)`
    are :math:`(y^{k+1}, \psi_k, \hat\beta)` (line 14: the hypergradient's own lower
    batch) or, with ``reference="penultimate"``, line 8's :math:`(y^{k,T-1},
    \psi_{k,T-1}, \beta_{k,T-1})`, so that :math:`\hat y(0) = y^{k+1}`.

    Its slope at 0 is :math:`\varphi'(0) = -\langle h_\beta, d\rangle` with
    :math:`h_\beta = \nabla_x f - \beta\nabla^2_{xy} g\,\nabla_y f` (the hypergradient
    with :math:`[\nabla^2_{yy} g]^{-1}` replaced by :math:`\beta I`; ``tests/`` checks it
    against autograd), which is what condition (14) can certify.
    """

    def __init__(self, oracles: Oracles, it: UpperInput, penultimate: bool) -> None:
        self.oracles, self.it, self.penultimate = oracles, it, penultimate
        self.d = it.trial_direction
        if penultimate:
            self.base, self.idx_g, self.beta = it.last.base, it.last.idx, it.last.step
        else:
            self.base, self.idx_g, self.beta = it.y, it.estimate.idx_g, it.beta_hat

    def __call__(self, a: float) -> Tensor:
        """:math:`\varphi(\alpha)`: one lower step from the base, then :math:`f`."""
        x_hat = self.it.x - a * self.d
        _, gy = self.oracles.g_and_grad(x_hat, self.base, self.idx_g)
        with torch.no_grad():
            return self.oracles.problem.f(x_hat, self.base - self.beta * gy, self.it.estimate.idx_f)

    def batch(self, steps: list[float]) -> list[float]:
        r""":math:`\varphi` at each of ``steps`` in one call (``BilevelConfig.ladder``):
        ``torch.func.vmap`` over :math:`\alpha` of the trial (``__call__``), the lower step's
        gradient by ``torch.func.grad`` (zero where :math:`g` does not depend on
        :math:`y`, as ``Oracles.g_and_grad``), read off the device in one transfer. Raises
        what vmap raises on a function it cannot trace (:class:`LadderTrial` then loops)."""
        f, g = self.oracles.problem.f, self.oracles.problem.g
        x, d, base = self.it.x.detach(), self.d.detach(), self.base.detach()
        beta = self.beta.detach() if isinstance(self.beta, Tensor) else self.beta
        idx_f, idx_g = self.it.estimate.idx_f, self.idx_g

        def phi(a: Tensor) -> Tensor:
            x_hat = x - a * d
            gy = torch.func.grad(lambda y: g(x_hat, y, idx_g))(base)
            return f(x_hat, base - beta * gy, idx_f)

        alphas = torch.tensor(steps, dtype=x.dtype, device=x.device)
        with torch.no_grad():  # torch.func.grad differentiates inside it all the same
            return torch.func.vmap(phi)(alphas).tolist()

    def model(self, reuse: bool = True) -> tuple[float, float]:
        r""":math:`\varphi(0)` and :math:`\varphi'(0)`: one forward pass and one backward
        through the trial's lower step (the diagnostics and the early exit).

        With ``reuse`` and the hypergradient's graph (``HypergradResult.graph``, kept when
        the run needs this model) nothing is evaluated twice: :math:`\nabla_y g(x^k,
        y^{k+1}; \psi_k)` is the hypergradient's own (with its graph; not with
        ``"penultimate"``, whose lower step starts elsewhere), the problem may hand back
        its forward passes at :math:`x^k` (:func:`bisls_core.problems.keeping_graphs`),
        and :math:`\varphi'(0) = -\langle\nabla_x\varphi, d\rangle` is reduced as
        autograd reduces it through :math:`\hat x = x^k - \alpha d`: the same numbers, bit
        for bit, as the graph through :math:`\alpha` (``reuse=False``). The caller passes
        ``reuse=False`` when :math:`d` may not be finite (at :math:`\alpha = 0`,
        :math:`x^k - 0\cdot d` is then NaN where :math:`x^k` is not)."""
        kept = self.it.estimate.result.graph
        if not reuse or kept is None or kept.x is None:
            if kept is not None:
                kept.release()
            return self._model_through_alpha()
        f, g = self.oracles.problem.f, self.oracles.problem.g
        beta = self.beta.detach() if isinstance(self.beta, Tensor) else self.beta
        x_ = kept.x
        with torch.enable_grad(), keeping_graphs():
            if self.penultimate:
                y_ = self.base.detach().requires_grad_(True)
                (gy,) = torch.autograd.grad(g(x_, y_, self.idx_g), y_, create_graph=True)
            else:
                y_, gy = kept.y, kept.gy
            phi = f(x_, y_ - beta * gy, self.it.estimate.idx_f)
            (grad,) = torch.autograd.grad(phi, x_, allow_unused=True)
        kept.release()
        if grad is None:
            return float(phi.detach()), 0.0
        # d(phi)/d(alpha) through x_hat = x - alpha * d: SubBackward gives -grad, MulBackward
        # (-grad) * d, and the engine sums it to alpha's shape (at::sum_to)
        slope = ((-grad) * self.d.detach()).sum(0, keepdim=True).view(())
        phi0, slope0 = _host(phi, slope)  # one transfer
        return phi0, slope0

    def _model_through_alpha(self) -> tuple[float, float]:
        f, g = self.oracles.problem.f, self.oracles.problem.g
        beta = self.beta.detach() if isinstance(self.beta, Tensor) else self.beta
        with torch.enable_grad():
            a = torch.zeros((), dtype=self.it.x.dtype, device=self.it.x.device,
                            requires_grad=True)
            x_hat = self.it.x.detach() - a * self.d.detach()
            y_ = self.base.detach().requires_grad_(True)
            (gy,) = torch.autograd.grad(g(x_hat, y_, self.idx_g), y_, create_graph=True)
            phi = f(x_hat, y_ - beta * gy, self.it.estimate.idx_f)
            (slope,) = torch.autograd.grad(phi, a, allow_unused=True)
        if slope is None:
            return float(phi.detach()), 0.0
        phi0, slope0 = _host(phi, slope)
        return phi0, slope0


class LadderTrial:
    r"""The trial of condition (14) evaluated ``size`` candidates at a time
    (``BilevelConfig.ladder``; Algorithm 2, line 14 at :math:`\alpha, \alpha w, \dots,
    \alpha w^{L-1}`, the steps Algorithm 3's backtracking tries next). Called at a step
    it holds no value for, it evaluates that step and the next ones the search would try
    (multiplied by :math:`w` as the search multiplies, bit for bit; cut at the budget
    left) in one batched call, and hands their values back one call at a time: the
    search's acceptance test, guards and bookkeeping are the sequential search's own.

    ``evaluated`` counts the candidates evaluated in the current search; ``vmap`` turns
    ``False`` (with a ``RuntimeWarning``) the first time vmap cannot trace the problem's
    functions, after which the ladders are loops of trials."""

    def __init__(self, size: int, w: float) -> None:
        self.size, self.w, self.vmap = size, w, True
        self.begin(None, 0)

    def begin(self, trial: Line14Trial | None, budget: int) -> LadderTrial:
        """Start a search of ``trial`` with ``budget`` rounds (``max_rounds``)."""
        self.trial, self.left, self.evaluated = trial, budget, 0
        self.held: list[tuple[float, float]] = []
        return self

    def __call__(self, step: float) -> float:
        if not self.held or self.held[0][0] != step:
            steps = [step]
            while len(steps) < min(self.size, self.left):
                steps.append(steps[-1] * self.w)
            self.held = list(zip(steps, self._values(steps)))
            self.evaluated += len(steps)
        self.left -= 1
        return self.held.pop(0)[1]

    def _values(self, steps: list[float]) -> list[float]:
        if self.vmap:
            try:
                return self.trial.batch(steps)
            except (RuntimeError, NotImplementedError) as err:
                self.vmap = False
                warnings.warn(f"ladder: torch.func.vmap cannot evaluate this problem's trial "
                              f"of condition (14) ({type(err).__name__}: {err}); its ladders "
                              "are evaluated one trial at a time", RuntimeWarning, stacklevel=2)
        return [float(self.trial(a)) for a in steps]


class BiSLSUpper(UpperRule):
    r"""BiSLS, condition (14) with Algorithm 3 (Algorithm 2, lines 9-15): from
    :math:`\mathrm{reset}(\alpha_{\text{prev}}, \alpha_{b,0})` multiply by :math:`w` until
    :math:`\varphi(\alpha) \le f_{\text{ref}} - p\,\alpha\|h_f^k\|^2_* + \delta`
    (:class:`Line14Trial`, :math:`p` = ``p_upper``); :math:`f_{\text{ref}}` is
    :math:`f(x^k, y^{k+1}; \phi)` (``reference="paper"``) or the trial at
    :math:`\alpha = 0` (``"one_step"``). State: the last accepted :math:`\alpha`. With
    ``ladder`` :math:`\ge 2` the trials are evaluated that many at a time
    (:class:`LadderTrial`), the search unchanged.

    Near a stationary point of :math:`F`, :math:`h_f \to 0` while :math:`h_f - h_\beta`
    does not (unless :math:`\beta\nabla^2_{yy} g = I`), so with :math:`\delta = 0` a
    share of the searches cannot succeed for any :math:`p`; with the identity estimator
    and :math:`f` independent of :math:`x`, :math:`h_\beta = \beta h_f` and a search
    with zero offset passes at small :math:`\alpha` iff :math:`\beta > p`.
    """

    #: ``upper_outcome``: the search's outcome as a code of
    #: :data:`bisls_core.stepsizes.OUTCOME_CODES` (0 accepted by (14), 1 skipped by the
    #: round-off guard, 2 failed, 3 nothing finite); ``upper_exit_round``: trials done
    #: when the early-exit test first fired (NaN: never); ``upper_asked``:
    #: :math:`-p\|h_f^k\|^2_*`; with ``diagnostics``, ``upper_offset``
    #: :math:`\varphi(0) - f_{\text{ref}}` and ``upper_slope`` :math:`\varphi'(0)`.
    record_keys = ("upper_outcome", "upper_exit_round", "upper_asked", "upper_offset",
                   "upper_slope")

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        super().__init__(cfg, oracles)
        self.prev: float | None = None
        self.ladder = LadderTrial(cfg.ladder, cfg.w) if cfg.ladder >= 2 else None

    def _reference(self, trial: Line14Trial, it: UpperInput) -> tuple[float, float, float, dict,
                                                                       Any, int]:
        r"""Line 14's right-hand side (read off the device with :math:`\|h_f^k\|^2_*` in
        one transfer, with the epsilon of its type for the round-off guard) and that
        norm, the diagnostics and the model of the trial (with ``diagnostics`` or
        ``early_exit``), and the oracle calls they cost."""
        cfg, f_ref = self.cfg, it.estimate.result.f_value
        f_old, sq_norm = _host(f_ref, it.sq_norm)
        eps = _epsilon(f_ref)
        extra, model, calls = {"upper_asked": -cfg.p14 * sq_norm}, None, 0
        if cfg.diagnostics or cfg.early_exit:
            # a finite ||h||^2_* means a finite d (SGD: d = h; Adam: h, m and v finite)
            model, calls = trial.model(reuse=math.isfinite(sq_norm)), 1
            if cfg.reference == "one_step":
                f_old, eps = model[0], _epsilon(model[0])
            extra |= {"upper_offset": model[0] - f_old, "upper_slope": model[1]}
        elif cfg.reference == "one_step":
            value, calls = trial(0.0), 1
            f_old, eps = float(value), _epsilon(value)
        return f_old, eps, sq_norm, extra, model, calls

    def step(self, it: UpperInput) -> UpperStep:
        """Lines 13-16: the trial, its reference, the search (in ladders with ``ladder``),
        the memory of Algorithm 3 and :math:`x^{k+1}`."""
        cfg = self.cfg
        trial = Line14Trial(self.oracles, it, cfg.reference == "penultimate")
        f_old, eps, sq_norm, extra, model, calls = self._reference(trial, it)
        search = trial if self.ladder is None else self.ladder.begin(trial, cfg.max_rounds)
        res = armijo_backtracking(search, f_old, sq_norm, reset(self.prev, cfg.alpha,
                                                                cfg.reset_upper, cfg.eta),
                                  c=cfg.p14, w=cfg.w, delta=cfg.delta,
                                  max_rounds=cfg.max_rounds, early_exit=cfg.early_exit,
                                  model=model, on_failure=cfg.on_failure, eps=eps)
        if res.success:  # a failed search does not become the next start
            self.prev = res.step
        exit_round = res.info.get("exit_round")
        extra |= {"upper_outcome": OUTCOME_CODES[res.outcome],
                  "upper_exit_round": math.nan if exit_round is None else exit_round}
        n_hvp = 1 if model is not None else 0
        trials = res.rounds if self.ladder is None else self.ladder.evaluated
        return _descend(it, res.step, rounds=res.rounds, failures=int(not res.success),
                        n_grad=calls + trials, n_fun=calls + trials, n_hvp=n_hvp, extra=extra)


class ExternalUpper(UpperRule):
    """The package optimizer ``upper_optimizer`` takes one step per outer iteration with
    :math:`h_f^k` as the gradient of :math:`x` (its own direction and step size)."""

    directions = ("sgd",)
    directions_why = "makes its own direction from the hypergradient"

    def __init__(self, cfg: BilevelConfig, oracles: Oracles) -> None:
        super().__init__(cfg, oracles)
        self.ext = _External(cfg.upper_optimizer, oracles.problem.x0, cfg.upper_kwargs)

    def step(self, it: UpperInput) -> UpperStep:
        h = it.estimate.result.h
        if not _is_finite(h):  # nothing to step on: the run has diverged
            return UpperStep(math.nan, torch.full_like(it.x, math.nan))
        alpha = self.ext.step(h)
        return UpperStep(alpha, self.ext.point())

    def output(self, x: Tensor) -> Tensor:
        return self.ext.output()  # the schedule-free average


#: Upper-level rules by name (``BilevelConfig.upper``).
UPPER_RULES: dict[str, type[UpperRule]] = {
    "fixed": FixedUpper, "decay": DecayUpper, "bisps": BiSPSUpper, "bisls": BiSLSUpper,
    "external": ExternalUpper,
}


# ---------------------------------------------------------------- directions
class SGDDirection:
    """:math:`d_k = h_f^k`, with :math:`\\|h_f^k\\|^2` (Algorithm 2, SGD)."""

    #: the trial direction of condition (14) (``None``: :math:`d_k` itself).
    trial: Tensor | None = None

    def __init__(self, cfg: BilevelConfig, x0: Tensor) -> None:
        pass

    def __call__(self, k: int, h: Tensor) -> tuple[Tensor, Tensor]:
        return h, _sq(h)


class AdamDirection:
    r"""Adam (Algorithm 2): :math:`m_k = \beta_1 m_{k-1} + (1-\beta_1) h_f^k` (the paper
    prints a minus: a typo, see ERRATA), :math:`v_k = \beta_2 v_{k-1} + (1-\beta_2)
    (h_f^k)^2`, :math:`A_k = \sqrt{v_k/(1-\beta_2^{k+1})} + \epsilon`,
    :math:`d_k = A_k^{-1} m_k/(1-\beta_1^{k+1})`; the norm of condition (14) is
    :math:`\|h_f^k\|^2_{A_k^{-1}} = \sum_i (h_f^k)_i^2/(A_k)_i`. State: the moments.
    With ``adam_trial="h"``, ``trial`` is :math:`A_k^{-1} h_f^k` (Algorithm 2, line 13)."""

    def __init__(self, cfg: BilevelConfig, x0: Tensor) -> None:
        self.b1, self.b2 = (float(b) for b in cfg.adam_betas)
        self.eps = cfg.adam_eps
        self.along_h = cfg.adam_trial == "h"
        self.m, self.v = torch.zeros_like(x0), torch.zeros_like(x0)
        self.trial: Tensor | None = None

    def __call__(self, k: int, h: Tensor) -> tuple[Tensor, Tensor]:
        b1, b2 = self.b1, self.b2
        self.m = b1 * self.m + (1 - b1) * h
        self.v = b2 * self.v + (1 - b2) * h * h
        a_mat = torch.sqrt(self.v / (1 - b2 ** (k + 1))) + self.eps
        self.trial = h / a_mat if self.along_h else None
        return (self.m / (1 - b1 ** (k + 1))) / a_mat, torch.sum(h * h / a_mat)


#: Directions by name (``BilevelConfig.direction``).
DIRECTIONS: dict[str, type] = {"sgd": SGDDirection, "adam": AdamDirection}


# ---------------------------------------------------------------- the record
@dataclass
class LowerTotals:
    """The :math:`T` inner steps of one iteration, summed: the steps (their sum and the
    last), search rounds, failed searches, gradient evaluations."""

    beta_sum: Any = 0.0
    beta_last: Any = 0.0
    rounds: int = 0
    failures: int = 0
    n_grad: int = 0
    guard: int = 0
    n_fun: int = 0
    last: InnerStep | None = None

    def add(self, s: InnerStep) -> None:
        self.n_grad += 1 + s.n_grad  # the step's own gradient, plus the rule's
        self.rounds += s.rounds
        self.failures += s.failed
        self.guard += s.guard
        self.n_fun += s.n_fun
        self.last = s
        if not s.stop:
            self.beta_sum = self.beta_sum + s.step
            self.beta_last = s.step


class Record:
    r"""The per-iteration record of :func:`run_bilevel`, built in one place from what
    the rules report.

    Arrays of length ``K`` (float64; ``diverged`` bool), entry ``k`` for iteration
    ``k``: ``upper_loss`` :math:`f(x^k, y^{k+1}; \phi)` (the hypergradient's batch);
    ``lower_loss`` :math:`g(x^k, y^{k+1}; \psi)`; one key per ``problem.metrics``
    entry, at :math:`(x^{k+1}, y^{k+1})` (NaN between evaluations when
    ``eval_every > 1``); ``alpha`` :math:`lpha_k`; ``beta`` mean of the :math:`T`
    lower steps (for an external rule: the effective step the optimizer exposes, see
    :func:`bisls_core.optim.external_step`, or NaN); ``beta_last`` the last lower
    step; ``upper_rounds`` evaluations of condition (14) (0 for the other rules);
    ``lower_rounds`` mean evaluations of condition (8) per lower step (0 unless
    ``"armijo"``); ``upper_failures`` (0/1), ``lower_failures`` (count over the
    :math:`T` steps): searches that ran out of budget or had nothing finite to search
    on; ``lower_guard``: lower searches skipped by the round-off guard (not failures,
    not accepted by (8) either); ``n_hvp`` second-order products; ``n_grad``
    first-order gradient evaluations (lower steps, SPS second samples, the two of
    the hypergradient, one per BiSLS trial); ``n_fun`` function evaluations that
    come without a gradient (search trials of both levels, the ``"one_step"``
    reference, the diagnostics' :math:`\varphi(0)`; absent from records computed
    before it existed); ``time`` cumulative wall seconds of the algorithm (metric evaluations
    excluded); ``diverged``; and the upper rule's ``record_keys``, if any. Plus
    ``initial_<metric>`` (0-d arrays: the metrics at :math:`(x^0, y^0)`) and, with
    ``keep_final``, ``x_final`` and ``y_final``.

    Divergence: when a loss, a metric, ``x`` or ``y`` becomes inf/NaN at iteration
    :math:`k`, that iteration's values are recorded as computed, ``diverged[k:]`` is
    ``True``, the loop stops and the later entries are NaN.
    """

    def __init__(self, problem: BilevelProblem, cfg: BilevelConfig, upper: UpperRule,
                 x: Tensor, y: Tensor) -> None:
        self.problem, self.cfg, self.upper = problem, cfg, upper
        self.initial = problem.metrics(x, y) if problem.metrics is not None else {}
        self.metric_keys = list(self.initial)
        own = (*RECORD_KEYS, *upper.record_keys)
        clash = set(self.metric_keys) & set(own)
        if clash:
            raise ValueError(f"problem.metrics keys {sorted(clash)} clash with the record's "
                             "own keys")
        n_float = len([key for key in (*own, *self.metric_keys) if key != "diverged"])
        check_memory("K", cfg.K, cfg.K * (8 * n_float + 1),
                     f"{n_float} float64 arrays and a bool array of length K")
        self.rec = {key: np.full(cfg.K, np.nan) for key in (*own, *self.metric_keys)
                    if key != "diverged"}
        self.rec["diverged"] = np.zeros(cfg.K, dtype=bool)

    def add(self, k: int, hg: HypergradResult, low: LowerTotals, up: UpperStep,
            elapsed: float, y: Tensor) -> bool:
        """Record iteration ``k`` (metrics at :math:`(x^{k+1}, y^{k+1})` when due);
        whether the run diverged there (then ``diverged[k:]`` is set)."""
        rec, T = self.rec, self.cfg.T
        f_value, g_value = _host(hg.f_value, hg.g_value)  # one transfer
        facts = {
            "upper_loss": f_value, "lower_loss": g_value,
            "alpha": float(up.alpha), "beta": float(low.beta_sum) / T,
            "beta_last": float(low.beta_last), "upper_rounds": up.rounds,
            "lower_rounds": low.rounds / T, "upper_failures": up.failures,
            "lower_failures": low.failures, "lower_guard": low.guard,
            "n_hvp": hg.n_hvp + up.n_hvp, "n_grad": low.n_grad + 2 + up.n_grad,
            "n_fun": low.n_fun + up.n_fun, "time": elapsed, **up.extra,
        }
        for key, value in facts.items():
            rec[key][k] = value
        values = {}
        if self.metric_keys and (k % self.cfg.eval_every == 0 or k == self.cfg.K - 1):
            values = self.problem.metrics(self.upper.output(up.x), y)
            for key, value in zip(self.metric_keys, _host(*(values[key] for key in
                                                            self.metric_keys))):
                rec[key][k] = value
        if _is_finite(rec["upper_loss"][k], rec["lower_loss"][k], up.x, y, *values.values()):
            return False
        rec["diverged"][k:] = True
        return True

    def result(self, x: Tensor, y: Tensor) -> dict[str, np.ndarray]:
        out = dict(self.rec)
        for key, val in zip(self.initial, _host(*self.initial.values())):
            out[f"initial_{key}"] = np.asarray(val)
        if self.cfg.keep_final:
            if _is_finite(x):
                x = self.upper.output(x)
            out["x_final"] = x.detach().cpu().numpy()
            out["y_final"] = y.detach().cpu().numpy()
        return out


# ---------------------------------------------------------------- the loop
def _inner_loop(lower: LowerRule, oracles: Oracles, cfg: BilevelConfig, x: Tensor,
                y: Tensor) -> tuple[Tensor, LowerTotals]:
    """Algorithm 2, lines 3-8: :math:`T` lower steps, each on a fresh batch
    :math:`\\psi_{k,t}`, with the lower rule's step sizes; :math:`y^{k+1} = y^{k,T}`."""
    totals = LowerTotals(beta_last=cfg.beta)
    for _t in range(cfg.T):
        idx = oracles.lower_batch()
        value, grad = oracles.g_and_grad(x, y, idx)
        s = lower.step(x, y, value, grad, idx)
        totals.add(s)
        y = s.y
        if s.stop:
            break
    return lower.end(y), totals


def _check_run(config: BilevelConfig, seed: int) -> None:
    if not isinstance(config, BilevelConfig):
        raise TypeError(f"config must be a BilevelConfig, got {type(config).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")


def run_bilevel(
    problem: BilevelProblem,
    config: BilevelConfig,
    seed: int = 0,
    progress: bool | None = None,
) -> dict[str, np.ndarray]:
    r"""Run ``config.K`` outer iterations on ``problem``; one record per iteration.

    Iteration :math:`k` (Algorithm 2): the lower rule's :math:`T` steps from
    :math:`y^{k,0}` (:math:`y^k`, or ``problem.y0`` without warm start) give
    :math:`y^{k+1}`; the hypergradient :math:`h_f^k` is estimated at
    :math:`(x^k, y^{k+1})` on fresh batches :math:`\phi, \psi`; the direction gives
    :math:`d_k`; the upper rule gives :math:`\alpha_k` and :math:`x^{k+1}`; the
    record is written and divergence checked. See :class:`BilevelConfig` and the rule
    classes (:data:`LOWER_RULES`, :data:`UPPER_RULES`, :data:`DIRECTIONS`).

    Parameters
    ----------
    problem:
        a :class:`~bisls_core.problems.BilevelProblem` (any device).
    config:
        a :class:`BilevelConfig`.
    seed:
        seed of the run's own ``torch.Generator`` (batches, :math:`\bar N`); the
        global RNG is neither used nor reseeded. Same seed, same record on CPU.
    progress:
        a ``tqdm`` bar over the ``K`` iterations, with the time left: ``True`` always,
        ``False`` never, ``None`` (default) for a long run watched from a terminal only
        -- it appears after 10 s, when standard error is a terminal and the run is not
        in a worker process; ``BISLS_RUN_PROGRESS=1`` shows it anyway, ``0`` never (see
        ``bisls_core._validate.progress_bar``). The notebooks' short runs print nothing.

    Returns
    -------
    dict[str, numpy.ndarray]
        The record (see :class:`Record`): arrays of length ``K``, entry ``k`` for
        iteration ``k`` -- the losses, :math:`\alpha_k`, the lower steps, search
        rounds and failures, oracle calls, wall time, the problem's metrics and
        ``diverged`` -- plus ``initial_<metric>`` and, with ``keep_final``,
        ``x_final``/``y_final``. When a loss, a metric, ``x`` or ``y`` becomes
        inf/NaN at iteration :math:`k`, ``diverged[k:]`` is ``True``, the loop stops
        and the later entries are NaN.

    Raises
    ------
    ValueError
        naming ``K`` when the record's arrays (one float64 array of length ``K`` per
        record key, about 17 of them) do not fit in the memory available now, before
        anything is allocated (and, from :class:`BilevelConfig`, naming ``K`` and ``T``
        when :math:`KT` exceeds :math:`10^{10}` lower steps).

    Notes
    -----
    The run never modifies ``problem``'s tensors: every iterate is a new tensor and
    every search trial is evaluated at a new point, so an exception raised in the
    middle of a search (``KeyboardInterrupt`` included) leaves nothing half-moved.

    """
    _check_run(config, seed)
    cfg = config
    oracles = Oracles(problem, cfg, torch.Generator().manual_seed(int(seed)))
    x, y0 = problem.x0.detach().clone(), problem.y0.detach().clone()
    y = y0.clone()
    lower = LOWER_RULES[cfg.lower](cfg, oracles)
    upper = UPPER_RULES[cfg.upper](cfg, oracles)
    direction = DIRECTIONS[cfg.direction](cfg, x)
    record = Record(problem, cfg, upper, x, y)
    iterations = progress_bar(range(cfg.K), cfg.K, f"{cfg.upper}/{cfg.direction}/{cfg.lower}",
                              progress)
    elapsed = 0.0
    for k in iterations:
        tic = time.perf_counter()
        y = lower.begin(k, y if cfg.warm_start else y0.clone(), restart=not cfg.warm_start)
        y, low = _inner_loop(lower, oracles, cfg, x, y)  # y^{k+1}
        est = oracles.hypergradient(x, y)  # h_f^k at (x^k, y^{k+1})
        d, sq_norm = direction(k, est.result.h)  # d_k
        up = upper.step(UpperInput(k, x, y, d, sq_norm, est, lower.line14_step(low.beta_last),
                                   low.last, direction.trial))
        x = up.x  # x^{k+1}
        if x.is_cuda:  # time the work, not its queuing
            torch.cuda.synchronize(x.device)
        elapsed += time.perf_counter() - tic
        if record.add(k, est.result, low, up, elapsed, y):  # diverged
            break
    return record.result(x, y)


#: The paper's legend names mapped to configuration fields (see :func:`make_config`).
#: "BiSPS" is the method of Eqs. (10)-(12) with the SPS lower level (11); Figures 6
#: and 16a run it with a fixed lower step: ``make_config("BiSPS", lower="fixed", beta=1e-4)``.
METHODS: dict[str, dict] = {
    "BiSLS-SGD": dict(upper="bisls", direction="sgd", lower="armijo"),
    "BiSLS-Adam": dict(upper="bisls", direction="adam", lower="armijo"),
    "BiSPS": dict(upper="bisps", direction="sgd", lower="sps"),
    "SGD": dict(upper="fixed", direction="sgd", lower="fixed"),
    "Adam": dict(upper="fixed", direction="adam", lower="fixed"),
    "decaying-step SGD": dict(upper="decay", direction="sgd", lower="fixed"),
    # Parameter-free baselines from their own packages, the same optimizer at both levels.
    "Prodigy": dict(upper="external", upper_optimizer="prodigy",
                    lower="external", lower_optimizer="prodigy"),
    "Schedule-free SGD": dict(upper="external", upper_optimizer="schedulefree_sgd",
                              lower="external", lower_optimizer="schedulefree_sgd"),
    "Schedule-free AdamW": dict(upper="external", upper_optimizer="schedulefree_adamw",
                                lower="external", lower_optimizer="schedulefree_adamw"),
    "DoG": dict(upper="external", upper_optimizer="dog", lower="external", lower_optimizer="dog"),
}


def make_config(method: str, reading: str | None = None, **overrides) -> BilevelConfig:
    """``BilevelConfig`` of a named method of :data:`METHODS`, read with the reading
    ``reading`` of the paper's open choices (a name of
    :data:`bisls_core.readings.READINGS`; ``None``: the book's primary reading,
    :data:`~bisls_core.readings.PRIMARY_READING`; ``"as-before"`` keeps the dataclass's
    constants), with fields overridden (``overrides`` win).

    >>> make_config("BiSLS-Adam", K=10, alpha=10.0).direction
    'adam'
    >>> make_config("BiSLS-Adam", reading="paper-evidence").p14
    0.1
    """
    check_choice("method", method, METHODS)
    overrides = {**reading_fields(PRIMARY_READING if reading is None else reading), **overrides}
    names = {fl.name for fl in fields(BilevelConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(
            f"unknown BilevelConfig field(s) {unknown}; valid fields are: {sorted(names)}"
        )
    return BilevelConfig(**{**METHODS[method], **overrides})


def run_config(config: dict, *, seed: int = 0, device: str = "cpu") -> dict[str, np.ndarray]:
    """Runner for :func:`bisls_core.experiments.run_grid`: one bilevel run from a
    JSON-able configuration.

    ``config`` holds ``"problem"`` (a name of :data:`bisls_core.problems.PROBLEMS`),
    optional ``"problem_args"`` (sizes passed to its ``make``), optional
    ``"problem_seed"`` (default: the run's seed, so each run also draws its own
    initialisation), ``"method"`` (a name of :data:`METHODS`), an optional ``"reading"``
    (:data:`bisls_core.readings.READINGS`) and any :class:`BilevelConfig` field.
    """
    from .problems import PROBLEMS, make

    config = dict(config)
    for key, valid in (("problem", PROBLEMS), ("method", METHODS)):
        if key not in config:
            names = ", ".join(repr(name) for name in valid)
            raise ValueError(f"the configuration lacks {key!r}; add one of: {names}")
    problem_name = config.pop("problem")
    problem_args = dict(config.pop("problem_args", {}))
    problem_seed = config.pop("problem_seed", seed)
    method = config.pop("method")
    if "adam_betas" in config:
        config["adam_betas"] = tuple(config["adam_betas"])
    reading = config.pop("reading", None)
    problem = make(problem_name, device=device, seed=problem_seed, **problem_args)
    return run_bilevel(problem, make_config(method, reading, **config), seed=seed)


run_config.cache_version = "1"


#: Where each field of a reading acts: the role of the method it needs (``upper``,
#: ``lower`` or ``direction`` of :data:`METHODS`) for the field to change a run.
_READING_ROLES = {"p_upper": {"upper": "bisls"}, "reference": {"upper": "bisls"},
                  "c_bar": {"lower": "armijo"},
                  "adam_trial": {"upper": "bisls", "direction": "adam"}}


def key_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A :func:`run_config` configuration as the results cache's key sees it: its reading
    (``"reading"``, else :data:`~bisls_core.readings.PRIMARY_READING`) resolved into the
    fields that change what its method does, so that the key names the run's constants,
    not the name of a reading or the primary reading of the day. A field the
    configuration sets wins; ``p_upper``/``c_bar`` equal to ``p`` and ``adam_trial="m"``
    are the dataclass's own behaviour and are left out, so the results computed before
    the readings existed (the ``"as-before"`` reading) keep their keys.

    >>> key_config({"method": "SGD", "reading": "paper-evidence", "alpha": 0.1})
    {'method': 'SGD', 'alpha': 0.1}
    >>> key_config({"method": "BiSLS-Adam", "reading": "paper-evidence"})
    {'method': 'BiSLS-Adam', 'p_upper': 0.1, 'adam_trial': 'h'}
    """
    cfg = {k: v for k, v in config.items() if k != "reading"}
    role = {**METHODS.get(cfg.get("method"), {}),
            **{k: cfg[k] for k in ("upper", "lower", "direction") if k in cfg}}
    for name, value in reading_fields(config.get("reading") or PRIMARY_READING).items():
        acts = all(role.get(k) == v for k, v in _READING_ROLES.get(name, {}).items())
        if acts and name not in cfg:
            cfg[name] = value
    for name in ("p_upper", "c_bar"):
        if name in cfg and (cfg[name] is None or float(cfg[name]) == float(cfg.get("p", 0.5))):
            del cfg[name]
    if cfg.get("adam_trial") == "m":
        del cfg["adam_trial"]
    return cfg


run_config.key_config = key_config
