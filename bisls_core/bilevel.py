r"""The alternating bi-level loop: BiSLS-SGD/Adam, BiSPS and their baselines.

One loop (Algorithms 1 and 2 of the paper, read with ``ERRATA.md``) serves every
method of the paper's figures; a :class:`BilevelConfig` picks

* the **lower-level rule** for the :math:`T` steps
  :math:`y^{k,t+1} = y^{k,t} - \beta_{k,t}\nabla_y g(x^k, y^{k,t}; \psi_{k,t})`:
  ``"fixed"`` (:math:`\beta_{k,t} = \beta_{b,0}`), ``"sps"`` (Eq. (11): SPS_max with the
  bound :math:`\beta_{b,k}` of ``beta_schedule`` and the lower bound ``g_lower_bound``
  in place of :math:`g(x^k, y^*_{x^k,\psi}; \psi)`), or ``"armijo"`` (backtracking on
  condition (8) from :math:`\mathrm{reset}(\beta_{\text{prev}}, \beta_{b,0})`, Algorithm 2
  lines 4-5);
* the **upper-level rule** for :math:`\alpha_k`: ``"fixed"``
  (:math:`\alpha_{b,0}`), ``"decay"`` (:math:`\alpha_{b,0}/\sqrt{k+1}`), ``"bisps"``
  (Eqs. (10) and (12)) or ``"bisls"`` (backtracking on condition (14), Algorithm 2
  lines 9-15);
* the **direction**: ``"sgd"`` (:math:`d_k = h_f^k`) or ``"adam"``
  (:math:`d_k = A_k^{-1}\hat m_k`);
* or, at either level, ``"external"``: a parameter-free baseline from its own
  package (``upper_optimizer``/``lower_optimizer`` in ``"prodigy"``,
  ``"schedulefree_sgd"``, ``"schedulefree_adamw"``, ``"dog"``; see
  :data:`bisls_core.optim.EXTERNAL_OPTIMIZERS`) steps on the hypergradient
  (:math:`\nabla_y g`) as its gradient, with its own direction and step.

Then :math:`y^{k+1} = y^{k,T}` (ERRATA: Algorithm 2, line 8 is garbled), the
hypergradient :math:`h_f^k` is estimated at :math:`(x^k, y^{k+1})` on fresh batches
:math:`\phi` (upper) and :math:`\psi` (lower) by :func:`bisls_core.hypergrad.hypergradient`,
and :math:`x^{k+1} = x^k - \alpha_k d_k`.

Public API: :class:`BilevelConfig`, :func:`run_bilevel`, :data:`METHODS`, :func:`make_config`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields

import numpy as np
import torch

from .hypergrad import ESTIMATORS, hypergradient
from .optim import (
    EXTERNAL_OPTIMIZERS,
    check_optimizer_kwargs,
    evaluating,
    external_step,
    make_external,
)
from .problems import BilevelProblem
from .stepsizes import (
    RESET_OPTIONS,
    SCHEDULES,
    armijo_backtracking,
    check_choice,
    check_positive,
    envelope_step,
    polyak_ratio,
    LineSearchResult,
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
]

#: Upper-level step-size rules.
UPPER_RULES = ("fixed", "decay", "bisps", "bisls", "external")
#: Upper-level directions.
DIRECTIONS = ("sgd", "adam")
#: Lower-level step-size rules.
LOWER_RULES = ("fixed", "sps", "armijo", "external")
#: Right-hand sides of condition (14) (see ``BilevelConfig.reference``).
REFERENCES = ("paper", "one_step")

#: Keys of the per-iteration record returned by :func:`run_bilevel` (besides the
#: problem's metric keys, their ``initial_`` values, and ``x_final``/``y_final``).
RECORD_KEYS = (
    "upper_loss", "lower_loss", "alpha", "beta", "beta_last", "upper_rounds",
    "lower_rounds", "upper_failures", "lower_failures", "n_hvp", "n_grad", "time", "diverged",
)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_bool(name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")


@dataclass(frozen=True)
class BilevelConfig:
    r"""Everything that defines a run of the bi-level loop (validated on creation).

    Attributes
    ----------
    K:
        number of outer (upper-level) iterations.
    T:
        number of lower-level steps per outer iteration (:math:`T \ge 1`).
    upper:
        ``"fixed"`` :math:`\alpha_k = \alpha_{b,0}`; ``"decay"``
        :math:`\alpha_{b,0}/\sqrt{k+1}`; ``"bisps"`` Eqs. (10), (12):
        :math:`\alpha_k = \min\{\max\{\alpha_{l,k}, \tilde\alpha_k\}, \alpha_{b,k}\}` with
        :math:`\alpha_{l,k} = \alpha_{l,0}/\sqrt{k+1}`,
        :math:`\alpha_{b,k} = \alpha_{b,0}/\sqrt{k+1}`,
        :math:`\tilde\alpha_k = (f(x^k, y^{k+1}; \phi) - l^*_f)/(p\|h_f^k\|^2)`;
        ``"bisls"`` backtracking on condition (14); ``"external"`` the package
        optimizer ``upper_optimizer`` takes one step per outer iteration with
        :math:`h_f^k` as the gradient of :math:`x` (its own direction and step size).
    direction:
        ``"sgd"`` or ``"adam"`` (``"bisps"`` and ``"external"`` are defined for
        ``"sgd"`` only: an external optimizer makes its own direction).
    lower:
        ``"fixed"``, ``"sps"`` (Eq. (11)), ``"armijo"`` (condition (8)) or
        ``"external"`` (the package optimizer ``lower_optimizer`` takes the :math:`T`
        steps with :math:`\nabla_y g(x^k, y^{k,t}; \psi_{k,t})` as the gradient of :math:`y`).
    upper_optimizer, lower_optimizer:
        with ``"external"``: ``"prodigy"`` (``prodigyopt.Prodigy``),
        ``"schedulefree_sgd"``/``"schedulefree_adamw"`` (``schedulefree.SGDScheduleFree``/
        ``AdamWScheduleFree``) or ``"dog"`` (``dog.DoG``), from their own packages
        (:data:`bisls_core.optim.EXTERNAL_OPTIMIZERS`); ``None`` (and must be) otherwise.
        One optimizer per level lives through the whole run (its state -- Prodigy's
        :math:`d`, DoG's :math:`\bar r, G`, the schedule-free averages -- carries over
        outer iterations; with ``warm_start=False`` the lower one is created afresh at
        every restart). ``alpha``/``beta`` are not used by an external rule: its learning
        rate is the package default unless ``*_kwargs`` sets ``lr``. A schedule-free
        optimizer is stepped in train mode and read in eval mode: the upper one's
        averaged point is where the metrics (and ``x_final``) are evaluated, the lower
        one's averaged point is :math:`y^{k+1}` (where the hypergradient is taken).
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
        the Armijo/Polyak constant (:math:`p` of Eqs. (11), (12), (14); :math:`\bar c`
        of (8)); default 0.5: Theorem 3 asks :math:`p \ge 1/2`, it is the SPS
        default, and with :math:`p \le 1/2` Armijo accepts the :math:`1/L` step on a
        quadratic.
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
        A search whose requested decrease at its start step is below floating-point
        resolution (:math:`p\,\gamma\|d\|^2 \le 8\epsilon|f|`) is skipped: start step, 0 rounds.
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
        fails; ``"one_step"`` removes that offset (a choice of this book).
    keep_final:
        return the final ``x`` and ``y`` as ``x_final``/``y_final``.
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
    delta: float = 0.0
    w: float = 0.9
    max_rounds: int = 200
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
    upper_optimizer: str | None = None
    lower_optimizer: str | None = None
    upper_kwargs: dict | None = None
    lower_kwargs: dict | None = None

    def __post_init__(self) -> None:
        _check_int("K", self.K, 1)
        _check_int("T", self.T, 1)
        check_choice("upper", self.upper, UPPER_RULES)
        check_choice("direction", self.direction, DIRECTIONS)
        check_choice("lower", self.lower, LOWER_RULES)
        if self.upper == "bisps" and self.direction != "sgd":
            raise ValueError(
                "upper 'bisps' is defined for direction 'sgd' only (Eq. (12)); "
                "valid directions with 'bisps' are: 'sgd'"
            )
        if self.upper == "external" and self.direction != "sgd":
            raise ValueError(
                "upper 'external' makes its own direction from the hypergradient; "
                "valid directions with 'external' are: 'sgd'"
            )
        for level, rule in (("upper", self.upper), ("lower", self.lower)):
            name = getattr(self, f"{level}_optimizer")
            kwargs = getattr(self, f"{level}_kwargs")
            if rule == "external":
                check_choice(f"{level}_optimizer", name, EXTERNAL_OPTIMIZERS)
                kwargs = check_optimizer_kwargs(f"{level}_kwargs", kwargs)
                object.__setattr__(self, f"{level}_kwargs", kwargs or None)
                try:  # the package's own checks, now rather than in the middle of a run
                    make_external(name, [torch.zeros(1, requires_grad=True)], kwargs)
                except (TypeError, ValueError) as err:
                    raise type(err)(f"{level}_kwargs {kwargs!r} for {name!r}: {err}") from None
            elif name is not None or kwargs is not None:
                raise ValueError(
                    f"{level}_optimizer/{level}_kwargs are used by {level}='external' only, "
                    f"got {level}={rule!r} with {level}_optimizer={name!r}"
                )
        check_positive("alpha", self.alpha)
        check_positive("beta", self.beta)
        if self.alpha_l0 is not None:
            check_positive("alpha_l0", self.alpha_l0)
            if self.alpha_l0 > self.alpha:
                raise ValueError(
                    f"alpha_l0 must be <= alpha (alpha_l0 <= alpha_b0, Theorem 3), "
                    f"got alpha_l0={self.alpha_l0!r} > alpha={self.alpha!r}"
                )
        check_choice("beta_schedule", self.beta_schedule, SCHEDULES)
        if not (check_positive("p", self.p) <= 1):
            raise ValueError(f"p must lie in (0, 1], got {self.p!r}")
        check_positive("delta", self.delta, allow_zero=True)
        if not (check_positive("w", self.w) < 1):
            raise ValueError(f"w must lie in (0, 1), got {self.w!r}")
        _check_int("max_rounds", self.max_rounds, 1)
        check_choice("reset_upper", self.reset_upper, RESET_OPTIONS)
        check_choice("reset_lower", self.reset_lower, RESET_OPTIONS)
        if check_positive("eta", self.eta) < 1:
            raise ValueError(f"eta must be >= 1, got {self.eta!r}")
        check_choice("samples", self.samples, (1, 2))
        check_choice("hypergrad", self.hypergrad, ESTIMATORS)
        _check_int("hypergrad_steps", self.hypergrad_steps,
                   1 if self.hypergrad == "neumann_stochastic" else 0)
        if self.hypergrad_lr is not None:
            check_positive("hypergrad_lr", self.hypergrad_lr)
        try:
            b1, b2 = self.adam_betas
        except (TypeError, ValueError):
            raise ValueError(
                f"adam_betas must be a pair (beta1, beta2), got {self.adam_betas!r}"
            ) from None
        for name, b in (("adam_betas[0]", b1), ("adam_betas[1]", b2)):
            if not (0 <= check_positive(name, b, allow_zero=True) < 1):
                raise ValueError(f"{name} must lie in [0, 1), got {b!r}")
        check_positive("adam_eps", self.adam_eps)
        _check_bool("warm_start", self.warm_start)
        _check_int("eval_every", self.eval_every, 1)
        _check_bool("keep_final", self.keep_final)
        check_choice("reference", self.reference, REFERENCES)

    @property
    def alpha_low(self) -> float:
        r""":math:`\alpha_{l,0}`: ``alpha_l0``, or ``alpha / 10`` when it is ``None``.

        One decade below the upper bound: it keeps :math:`\alpha_{l,0} \le \alpha_{b,0}`
        and gives Theorem 3's :math:`\alpha_{b,0}^2/\alpha_{l,0} = 10\,\alpha_{b,0}`. It is
        resolved here, not stored, so that ``dataclasses.replace(config, alpha=...)``
        moves the envelope with ``alpha``.
        """
        return self.alpha / 10.0 if self.alpha_l0 is None else float(self.alpha_l0)


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


def make_config(method: str, **overrides) -> BilevelConfig:
    """``BilevelConfig`` of a named method of :data:`METHODS`, with fields overridden.

    >>> make_config("BiSLS-Adam", K=10, alpha=10.0).direction
    'adam'
    """
    check_choice("method", method, METHODS)
    names = {fl.name for fl in fields(BilevelConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(
            f"unknown BilevelConfig field(s) {unknown}; valid fields are: {sorted(names)}"
        )
    return BilevelConfig(**{**METHODS[method], **overrides})


# ---------------------------------------------------------------- helpers
def _value_and_grad_y(fun, x: Tensor, y: Tensor, idx) -> tuple[Tensor, Tensor]:
    """``fun(x, y; idx)`` and its gradient in ``y`` (detached; no ``.grad`` writes)."""
    with torch.enable_grad():
        y_ = y.detach().requires_grad_(True)
        value = fun(x.detach(), y_, idx)
        (grad,) = torch.autograd.grad(value, y_, allow_unused=True)
    grad = torch.zeros_like(y) if grad is None else grad
    return value.detach(), grad.detach()


def _sq(t: Tensor) -> Tensor:
    return torch.sum(t * t)


def _is_finite(*values) -> bool:
    for v in values:
        if isinstance(v, Tensor):
            if not bool(torch.isfinite(v).all()):
                return False
        elif not math.isfinite(float(v)):
            return False
    return True


#: A search is skipped when the decrease it asks for at its start step is below
#: ``_RESOLUTION * eps * |f|`` (see :func:`_search`).
_RESOLUTION = 8.0


def _search(trial, f_old: Tensor, sq_norm: Tensor, start: float, cfg: BilevelConfig,
            delta: float) -> LineSearchResult:
    r"""Armijo backtracking (:func:`~bisls_core.stepsizes.armijo_backtracking`) with one guard.

    When :math:`p\,\gamma_{	ext{start}}\|d\|^2 \le 8\,\epsilon_{	ext{mach}}|f|`, the
    decrease the condition asks for is below the floating-point resolution of
    :math:`f`: the test would then pass or fail on round-off (this happens at a
    converged lower level whose sampled losses do not vanish). The search is
    skipped: the start step is taken (it moves the point by a negligible amount),
    0 rounds, success.
    """
    f_val, sq = float(f_old), float(sq_norm)
    eps = torch.finfo(f_old.dtype).eps if f_old.is_floating_point() else 0.0
    if cfg.p * start * sq <= _RESOLUTION * eps * abs(f_val):
        return LineSearchResult(start, 0, True, f_val)
    return armijo_backtracking(trial, f_val, sq, start, c=cfg.p, w=cfg.w, delta=delta,
                               max_rounds=cfg.max_rounds)


class _External:
    """One package optimizer (:func:`bisls_core.optim.make_external`) driving one level's
    variable, held as its own leaf tensor; the loop hands it gradients."""

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


# ---------------------------------------------------------------- the loop
def run_bilevel(
    problem: BilevelProblem,
    config: BilevelConfig,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    r"""Run ``config.K`` outer iterations on ``problem``; one record per iteration.

    Iteration :math:`k`:

    1. :math:`T` lower steps from :math:`y^{k,0} = y^k` (warm start) with the lower
       rule, a fresh batch :math:`\psi_{k,t}` each; :math:`y^{k+1} = y^{k,T}`.
    2. :math:`h_f^k` at :math:`(x^k, y^{k+1})` on fresh batches :math:`\phi, \psi`
       (one second batch pair more for ``"bisps"`` with ``samples=2``).
    3. Direction :math:`d_k`: SGD :math:`h_f^k`; Adam
       :math:`m_{k} = \beta_1 m_{k-1} + (1-\beta_1) h_f^k` (the paper prints a minus:
       a typo, see ERRATA), :math:`v_k = \beta_2 v_{k-1} + (1-\beta_2) (h_f^k)^2`,
       :math:`A_k = \sqrt{v_k/(1-\beta_2^{k+1})} + \epsilon`,
       :math:`d_k = A_k^{-1} m_k/(1-\beta_1^{k+1})`.
    4. Step :math:`\alpha_k` by the upper rule. For ``"bisls"``, from
       :math:`\mathrm{reset}(\alpha_{k-1}, \alpha_{b,0})` multiply by :math:`w` until
       condition (14) holds:

       .. math::

          f(\hat x, \hat y; \phi) \le f(x^k, y^{k+1}; \phi) - p\,\alpha\,\|h_f^k\|^2_{*} + \delta,
          \quad \hat x = x^k - \alpha d_k,\quad
          \hat y = y^{k+1} - \beta\,\nabla_y g(\hat x, y^{k+1}; \psi),

       one lower step with the last accepted lower step :math:`\beta` (Algorithm 2,
       line 14). :math:`\|h\|_*^2 = \|h\|^2` for SGD and
       :math:`\|h\|^2_{A_k^{-1}} = \sum_i h_i^2/(A_k)_i` for Adam, as printed in (14).
       For Adam the trial point uses the direction of the actual update,
       :math:`A_k^{-1}\hat m_k` (so the accepted step is the one that was tested),
       while the decrease term keeps (14)'s :math:`\|h_f^k\|^2_{A_k^{-1}}` (the two
       coincide when :math:`\beta_1 = 0`).
    5. :math:`x^{k+1} = x^k - \alpha_k d_k`.

    With ``"external"`` at a level, its package optimizer replaces steps 1 (the
    :math:`T` lower steps, each from :math:`\nabla_y g`) or 3-5 (one step from
    :math:`h_f^k`); see :class:`BilevelConfig`.

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
        show a ``tqdm`` bar.

    Returns
    -------
    dict[str, numpy.ndarray]
        Arrays of length ``K`` (float64; ``diverged`` bool), entry ``k`` for
        iteration ``k``:

        ``upper_loss``  :math:`f(x^k, y^{k+1}; \phi)` (the hypergradient's batch);
        ``lower_loss``  :math:`g(x^k, y^{k+1}; \psi)`;
        one key per ``problem.metrics`` entry, at :math:`(x^{k+1}, y^{k+1})`
        (NaN between evaluations when ``eval_every > 1``);
        ``alpha``  :math:`\alpha_k`; ``beta``  mean of the :math:`T` lower steps
        (for an external rule: the effective step the optimizer exposes, see
        :func:`bisls_core.optim.external_step` -- Prodigy's :math:`d\,\mathrm{lr}`, DoG's
        :math:`\eta`, schedule-free's learning rate -- or NaN if it exposes none);
        ``beta_last``  the last lower step; ``upper_rounds``  evaluations of
        condition (14) (0 for the other rules); ``lower_rounds``  mean evaluations of
        condition (8) per lower step (0 unless ``"armijo"``); ``upper_failures``
        (0/1), ``lower_failures`` (count over the :math:`T` steps): searches that ran
        out of budget; ``n_hvp``  second-order products; ``n_grad``  first-order
        gradient evaluations (lower steps, SPS second samples, the two of the
        hypergradient, one per BiSLS trial); ``time``  cumulative wall seconds of the
        algorithm (metric evaluations excluded); ``diverged``.

        Plus ``initial_<metric>`` (0-d arrays: the metrics at :math:`(x^0, y^0)`) and,
        when ``config.keep_final``, ``x_final`` and ``y_final``.

        Divergence: when a loss, a metric, ``x`` or ``y`` becomes inf/NaN at
        iteration :math:`k`, that iteration's values are recorded as computed,
        ``diverged[k:]`` is ``True``, the loop stops and the later entries are NaN.

    Notes
    -----
    Condition (14) tests a surrogate of :math:`F`: with one lower step, near
    :math:`y^{k+1} \approx y^*(x^k)` its slope at :math:`\alpha = 0` is
    :math:`-\langle \nabla_x f - \nabla^2_{xy} g\,\beta\,\nabla_y f, d_k\rangle`, i.e. the
    hypergradient with :math:`[\nabla^2_{yy} g]^{-1}` replaced by :math:`\beta I`.
    When :math:`\beta\nabla^2_{yy} g \ne I` and :math:`\nabla_y f \ne 0` at the solution,
    the condition can become unsatisfiable (with :math:`\delta = 0`) close to a
    stationary point of :math:`F`, and the accepted steps shrink: on the quadratic
    test problem BiSLS-SGD then stalls at a small but non-zero gap, while with
    :math:`\nabla^2_{yy} g = I` (:math:`\beta = 1` exact) it converges.
    """
    if not isinstance(config, BilevelConfig):
        raise TypeError(f"config must be a BilevelConfig, got {type(config).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    cfg = config
    gen = torch.Generator().manual_seed(int(seed))
    f, g = problem.f, problem.g
    K, T = cfg.K, cfg.T

    x = problem.x0.detach().clone()
    y0 = problem.y0.detach().clone()
    y = y0.clone()

    initial = problem.metrics(x, y) if problem.metrics is not None else {}
    metric_keys = list(initial)
    clash = set(metric_keys) & set(RECORD_KEYS)
    if clash:
        raise ValueError(f"problem.metrics keys {sorted(clash)} clash with the record's own keys")
    rec: dict[str, np.ndarray] = {
        key: np.full(K, np.nan) for key in (*RECORD_KEYS, *metric_keys) if key != "diverged"
    }
    rec["diverged"] = np.zeros(K, dtype=bool)

    b1, b2 = (float(b) for b in cfg.adam_betas)
    m_adam = torch.zeros_like(x)
    v_adam = torch.zeros_like(x)
    alpha_prev: float | None = None
    beta_prev: float | None = None
    stochastic_factors = cfg.hypergrad == "neumann_stochastic" and problem.batch_lower is not None
    index_sampler = problem.sample_lower if stochastic_factors else None

    def hypergrad_at(x_: Tensor, y_: Tensor):
        """Hypergradient on fresh batches; returns it with its batches (phi, psi)."""
        idx_f, idx_g = problem.sample_upper(gen), problem.sample_lower(gen)
        hg = hypergradient(
            f, g, x_, y_, idx_f, idx_g, cfg.hypergrad, steps=cfg.hypergrad_steps,
            lr=cfg.hypergrad_lr, gen=gen, index_sampler=index_sampler,
        )
        return hg, idx_f, idx_g

    up_ext = (_External(cfg.upper_optimizer, x, cfg.upper_kwargs)
              if cfg.upper == "external" else None)
    low_ext = (_External(cfg.lower_optimizer, y, cfg.lower_kwargs)
               if cfg.lower == "external" else None)

    iterator = range(K)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"{cfg.upper}/{cfg.direction}/{cfg.lower}")

    elapsed = 0.0
    for k in iterator:
        tic = time.perf_counter()
        n_grad = 0
        # ------------------------------------------------ lower level: T steps
        if not cfg.warm_start:
            y = y0.clone()
            if low_ext is not None:  # a restart: a fresh optimizer from y0
                low_ext = _External(cfg.lower_optimizer, y, cfg.lower_kwargs)
        if low_ext is not None:  # the point the optimizer steps from (train mode)
            y = low_ext.point()
        beta_sum: Tensor | float = 0.0
        beta_last: Tensor | float = cfg.beta
        lower_rounds = 0
        lower_failures = 0
        beta_bk = schedule(cfg.beta_schedule, cfg.beta, k) if cfg.lower == "sps" else cfg.beta
        for _t in range(T):
            idx = problem.sample_lower(gen)
            g_val, grad = _value_and_grad_y(g, x, y, idx)
            n_grad += 1
            if cfg.lower == "external":
                if not _is_finite(g_val, grad):
                    lower_failures += 1
                    y = torch.full_like(y, math.nan)
                    break
                step = low_ext.step(grad)
                y = low_ext.point()
                beta_sum = beta_sum + step
                beta_last = step
                continue
            if cfg.lower == "fixed":
                step: Tensor | float = cfg.beta
            elif cfg.lower == "sps":
                if cfg.samples == 2:
                    g_val_s, grad_s = _value_and_grad_y(g, x, y, problem.sample_lower(gen))
                    n_grad += 1
                else:
                    g_val_s, grad_s = g_val, grad
                step = sps_max(g_val_s, _sq(grad_s), beta_bk, c=cfg.p,
                               lower_bound=problem.g_lower_bound)
            else:  # armijo, condition (8)
                start = reset(beta_prev, cfg.beta, cfg.reset_lower, cfg.eta)
                if not math.isfinite(float(g_val)):
                    lower_failures += 1
                    y = torch.full_like(y, math.nan)
                    break

                def lower_trial(b: float, y=y, grad=grad, idx=idx) -> Tensor:
                    with torch.no_grad():
                        return g(x, y - b * grad, idx)

                res = _search(lower_trial, g_val, _sq(grad), start, cfg, delta=0.0)
                step = res.step
                if res.success:  # a failed search does not become the next start
                    beta_prev = res.step
                lower_rounds += res.rounds
                lower_failures += int(not res.success)
            y = y - step * grad
            beta_sum = beta_sum + step
            beta_last = step
        y_next = y
        if low_ext is not None and _is_finite(y):  # the schedule-free average
            y_next = low_ext.output()

        # ------------------------------------------------ hypergradient at (x^k, y^{k+1})
        hg, idx_f, idx_g = hypergrad_at(x, y_next)
        h = hg.h
        n_hvp = hg.n_hvp
        n_grad += 2

        # ------------------------------------------------ direction
        if cfg.direction == "sgd":  # (also "external": its optimizer makes its own)
            d = h
            sq_norm = _sq(h)
        else:
            m_adam = b1 * m_adam + (1 - b1) * h
            v_adam = b2 * v_adam + (1 - b2) * h * h
            a_mat = torch.sqrt(v_adam / (1 - b2 ** (k + 1))) + cfg.adam_eps
            d = (m_adam / (1 - b1 ** (k + 1))) / a_mat
            sq_norm = torch.sum(h * h / a_mat)

        # ------------------------------------------------ upper step
        upper_rounds = 0
        upper_failures = 0
        root = math.sqrt(k + 1)
        if cfg.upper == "external":
            if _is_finite(h):
                alpha = up_ext.step(h)
                x_new = up_ext.point()
            else:  # nothing to step on: the run has diverged (recorded below)
                alpha = math.nan
                x_new = torch.full_like(x, math.nan)
        elif cfg.upper == "fixed":
            alpha = cfg.alpha
        elif cfg.upper == "decay":
            alpha = cfg.alpha / root
        elif cfg.upper == "bisps":
            if cfg.samples == 2:
                hg_s, _, _ = hypergrad_at(x, y_next)
                n_hvp += hg_s.n_hvp
                n_grad += 2
                f_s, h_s = hg_s.f_value, hg_s.h
            else:
                f_s, h_s = hg.f_value, h
            tilde = polyak_ratio(float(f_s), float(_sq(h_s)), problem.f_lower_bound, c=cfg.p)
            alpha = envelope_step(tilde, cfg.alpha_low / root, cfg.alpha / root)
        else:  # bisls, condition (14)
            start = reset(alpha_prev, cfg.alpha, cfg.reset_upper, cfg.eta)
            # Algorithm 2, line 14: the last *accepted* lower step (a failed lower
            # search's tiny step is not a lower-level learning rate).
            beta_hat = beta_prev if cfg.lower == "armijo" and beta_prev is not None else beta_last

            def upper_trial(a: float) -> Tensor:
                x_hat = x - a * d
                _, gy = _value_and_grad_y(g, x_hat, y_next, idx_g)
                with torch.no_grad():
                    return f(x_hat, y_next - beta_hat * gy, idx_f)

            f_ref = hg.f_value
            if cfg.reference == "one_step":  # f(x^k, y_hat(x^k)): the trial at alpha = 0
                f_ref = upper_trial(0.0)
                n_grad += 1
            if _is_finite(f_ref, sq_norm):
                res = _search(upper_trial, f_ref, sq_norm, start, cfg, delta=cfg.delta)
                alpha = res.step
                if res.success:  # a failed search does not become the next start
                    alpha_prev = res.step
                upper_rounds = res.rounds
                upper_failures = int(not res.success)
                n_grad += res.rounds
            else:  # nothing to search on: the run has diverged (recorded below)
                alpha = start
                upper_failures = 1
        x = x_new if cfg.upper == "external" else x - alpha * d
        if x.is_cuda:  # time the work, not its queuing
            torch.cuda.synchronize(x.device)
        elapsed += time.perf_counter() - tic

        # ------------------------------------------------ record
        rec["upper_loss"][k] = float(hg.f_value)
        rec["lower_loss"][k] = float(hg.g_value)
        rec["alpha"][k] = float(alpha)
        rec["beta"][k] = float(beta_sum) / T
        rec["beta_last"][k] = float(beta_last)
        rec["upper_rounds"][k] = upper_rounds
        rec["lower_rounds"][k] = lower_rounds / T
        rec["upper_failures"][k] = upper_failures
        rec["lower_failures"][k] = lower_failures
        rec["n_hvp"][k] = n_hvp
        rec["n_grad"][k] = n_grad
        rec["time"][k] = elapsed
        values = {}
        if metric_keys and (k % cfg.eval_every == 0 or k == K - 1):
            x_eval = up_ext.output() if up_ext is not None else x
            values = problem.metrics(x_eval, y_next)
            for key in metric_keys:
                rec[key][k] = float(values[key])
        y = y_next
        if not _is_finite(rec["upper_loss"][k], rec["lower_loss"][k], x, y, *values.values()):
            rec["diverged"][k:] = True
            break

    out = dict(rec)
    for key, val in initial.items():
        out[f"initial_{key}"] = np.asarray(float(val))
    if cfg.keep_final:
        if up_ext is not None and _is_finite(x):  # the schedule-free average
            x = up_ext.output()
        out["x_final"] = x.detach().cpu().numpy()
        out["y_final"] = y.detach().cpu().numpy()
    return out


def run_config(config: dict, *, seed: int = 0, device: str = "cpu") -> dict[str, np.ndarray]:
    """Runner for :func:`bisls_core.experiments.run_grid`: one bilevel run from a
    JSON-able configuration.

    ``config`` holds ``"problem"`` (a name of :data:`bisls_core.problems.PROBLEMS`),
    optional ``"problem_args"`` (sizes passed to its ``make``), optional
    ``"problem_seed"`` (default: the run's seed, so each run also draws its own
    initialisation), ``"method"`` (a name of :data:`METHODS`) and any
    :class:`BilevelConfig` field.
    """
    from .problems import make

    config = dict(config)
    problem_name = config.pop("problem")
    problem_args = dict(config.pop("problem_args", {}))
    problem_seed = config.pop("problem_seed", seed)
    method = config.pop("method")
    if "adam_betas" in config:
        config["adam_betas"] = tuple(config["adam_betas"])
    problem = make(problem_name, device=device, seed=problem_seed, **problem_args)
    return run_bilevel(problem, make_config(method, **config), seed=seed)


run_config.cache_version = "1"
