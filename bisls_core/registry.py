"""The claims registry: each claim of the book with its analysis fixed in advance (issue 25).

A :class:`Claim` names, before any run is looked at, the statistic a claim is judged
on, the window its final values come from (one book-wide default,
:data:`FINAL_WINDOW`: the mean over the last 10 % of the evaluations,
:func:`final_window`), the direction and decision point (or margin) of the rule, how its
parts combine, and whether its runs are paired by seed. :func:`judge` hands a
claim's per-run values to its rule (:mod:`bisls_core.verdicts`) and returns what the
claim record stores: every part's interval and verdict, the combined verdict, the
p-value the claim enters Holm's correction with (:func:`adjust`) and the verdicts of the
alternative analyses (a bootstrap interval of the mean; the neighbouring final-value
window), whose disagreement marks the verdict fragile.

A claim's parts may follow different rules (``parts``: a part-name pattern -> :class:`Rule`,
e.g. Figure 7's "alike" part is an equivalence while its "large" part is a one-sided
test); a rate claim (Theorems 1-3) tests the slope its theorem's bound implies over the
page's horizons (``rate``, :func:`rate_threshold`). A page hands each part as a
:class:`Part` (what :mod:`bisls_core.sweeps.claims` returns): it unpacks as
``(verdict, interval)`` and carries the per-run values and the rule the page used, which
:func:`judge` checks against the registered one. Where the values come from a final-value
window, :func:`judge` also re-decides the claim on the values of the neighbouring window
(:data:`NEIGHBOUR_WINDOW`).

Register a claim once (:func:`register`); registering it again with other fields is an
error (its analysis is fixed); :func:`lookup` of an unknown id raises
:class:`UnknownClaimError`. The book's claims are registered in
:mod:`bisls_core.claims_registry`, which imports this module (the claim records import
it: :mod:`bisls_core.records`).
"""

from __future__ import annotations

import difflib
import fnmatch
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import NamedTuple

import numpy as np
from scipy import stats

from . import verdicts as V

__all__ = ["DIRECTIONS", "FINAL_FRACTION", "FINAL_WINDOW", "NEIGHBOUR_FRACTION",
           "NEIGHBOUR_WINDOW", "NO_WINDOW", "RATES", "REGISTRY", "Claim", "Count", "Part", "Registry", "Rule",
           "MORE_RUNS", "MORE_RUNS_CHEAP", "MORE_RUNS_CHEAP_S", "MORE_RUNS_RULE",
           "RuleMismatchError", "UnknownClaimError", "adjust", "final_window", "judge", "lookup",
           "more_runs", "rate_threshold", "register", "window_width"]

#: The share of the evaluations, at the end of a run, whose mean is its final value.
FINAL_FRACTION = 0.1
#: The book-wide final-value window (:func:`final_window`); another needs a ``reason``.
FINAL_WINDOW = "mean over the last 10 % of evaluations"
#: The neighbouring window a claim whose values come from final values is re-decided on
#: (the alternative analysis of :func:`judge`; a verdict that changes is fragile).
NEIGHBOUR_FRACTION = 0.2
NEIGHBOUR_WINDOW = "mean over the last 20 % of evaluations"
#: The start of the ``window`` of a claim whose values come from no final-value window
#: (a slope over horizons, a count of runs, a first-hitting time, ...): it has no window
#: alternative and says why in its ``reason``.
NO_WINDOW = "none"
#: The K-dependence of the bounds of Theorems 1-3 (their leading term, log factor
#: included): a rate claim's decision point is the least-squares slope of its log
#: against log K over the page's horizons (:func:`rate_threshold`).
RATES = {
    "log K / sqrt K": lambda K: np.log(K) / np.sqrt(K),
    "log K / K": lambda K: np.log(K) / K,
}
#: A claim's rule: the quantity lies below or above ``threshold``, within ``margin`` of 0
#: (95 % interval, :func:`bisls_core.verdicts.decide_within`) or is equivalent to 0 within
#: ``margin`` (two one-sided tests, :func:`bisls_core.verdicts.equivalence`).
DIRECTIONS = ("below", "above", "within", "equivalent")


def final_window(values, fraction: float = FINAL_FRACTION) -> np.ndarray:
    """Per run, the mean of the last ``ceil(fraction * evaluations)`` evaluations (at
    least one) of a curve array ``runs x evaluations`` (a 1-D array: one run). A run
    with a NaN or an infinity in its window (it diverged) gives NaN or an infinity,
    which the rules read as a diverged run.

    >>> final_window([[5.0, 4.0, 3.0, 2.0, 1.0] * 2, [1.0] * 10])
    array([1., 1.])
    >>> final_window(np.arange(30.0).reshape(1, 30))   # the last 3 of 30
    array([28.])
    """
    a = np.atleast_2d(np.asarray(values, dtype=float))
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"final_window needs a runs x evaluations array, got shape {a.shape}")
    return a[:, -window_width(a.shape[1], fraction):].mean(axis=1)


def window_width(n: int, fraction: float = FINAL_FRACTION) -> int:
    """How many of ``n`` evaluations the window of ``fraction`` holds:
    ``ceil(fraction * n)``, at least one (the one rule of :func:`final_window` and
    :func:`bisls_core.grids.final_values`).

    >>> window_width(30), window_width(31), window_width(31, 0.2), window_width(5)
    (3, 4, 7, 1)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    return max(1, math.ceil(round(fraction * n, 9)))


#: More runs where a verdict is undecided, by a rule fixed before the runs (issue 25): a
#: claim whose verdict after Holm's adjustment is inconclusive gets :data:`MORE_RUNS`
#: evaluation runs, :data:`MORE_RUNS_CHEAP` where one evaluation run of its page costs under
#: :data:`MORE_RUNS_CHEAP_S` seconds on the machine that decides; once (a claim that is
#: still inconclusive after its extra runs stays so). The decision is written into
#: ``results/<scale>/more_runs.json`` by ``scripts/more_runs.py``; a page runs that many
#: seeds for all its arms (:func:`bisls_core.records.decided_runs`).
MORE_RUNS = 10
MORE_RUNS_CHEAP = 20
MORE_RUNS_CHEAP_S = 60.0
MORE_RUNS_RULE = (f"a claim whose verdict after Holm's adjustment is inconclusive gets "
                  f"{MORE_RUNS} evaluation runs ({MORE_RUNS_CHEAP} where one run of its page "
                  f"costs under {MORE_RUNS_CHEAP_S:.0f} s on this machine), once; its page runs "
                  "that many seeds for all its arms, so the page's other claims gain them too")


def more_runs(adjusted_verdict: str, seconds_per_run: float, runs: int) -> int | None:
    """The evaluation runs :data:`MORE_RUNS_RULE` gives a claim with this adjusted verdict,
    whose page's runs cost ``seconds_per_run`` each and which rests on ``runs`` runs now;
    ``None`` when the rule gives it none (decided, or already at least that many runs).

    >>> more_runs("inconclusive", 12.0, 5), more_runs("inconclusive", 90.0, 5)
    (20, 10)
    >>> more_runs("held", 12.0, 5) is None, more_runs("inconclusive", 90.0, 10) is None
    (True, True)
    """
    if adjusted_verdict not in V.VERDICTS:
        raise ValueError(f"unknown verdict {adjusted_verdict!r}; one of {V.VERDICTS}")
    if not (isinstance(seconds_per_run, (int, float)) and math.isfinite(seconds_per_run)
            and seconds_per_run >= 0):
        raise ValueError(f"seconds_per_run must be a finite number >= 0, got {seconds_per_run!r}")
    if adjusted_verdict != "inconclusive":
        return None
    target = MORE_RUNS_CHEAP if seconds_per_run < MORE_RUNS_CHEAP_S else MORE_RUNS
    return target if runs < target else None


def rate_threshold(rate: str, horizons) -> float:
    """The decision point of a rate claim: the least-squares slope of ``log bound(K)``
    against ``log K`` over ``horizons`` (the horizons the page fits its slopes on), with
    ``bound`` the theorem's K-dependence :data:`RATES` ``[rate]`` (log factor included).
    The measured slope of the same fit is then below it exactly when the measured
    quantity decays faster than the bound over those horizons (a least-squares slope is
    linear in the data).

    >>> round(rate_threshold("log K / sqrt K", [50, 100, 200, 400, 800, 1500]), 3)
    -0.317
    """
    if rate not in RATES:
        raise ValueError(f"unknown rate {rate!r}; known: {', '.join(RATES)}")
    K = np.asarray(horizons, dtype=float).ravel()
    if K.size < 2 or not (K > 1).all():
        raise ValueError(f"a rate's slope needs at least two horizons K > 1, got {K.tolist()}")
    return float(np.polyfit(np.log(K), np.log(RATES[rate](K)), 1)[0])


@dataclass(frozen=True)
class Rule:
    """The rule one part of a claim is judged by: ``direction`` (one of :data:`DIRECTIONS`)
    against ``threshold`` ("below"/"above"; for a ``rate`` claim the threshold is
    :func:`rate_threshold` of the page's horizons) or ``margin`` ("within"/"equivalent",
    around 0)."""

    direction: str
    threshold: float = 0.0
    margin: float | None = None
    rate: str | None = None

    def check(self, where: str) -> None:
        """``ValueError`` naming ``where`` unless the rule is well formed."""
        if self.direction not in DIRECTIONS:
            raise ValueError(f"{where}: direction must be one of {DIRECTIONS}, "
                             f"got {self.direction!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"{where}: threshold must be finite")
        two_sided = self.direction in ("within", "equivalent")
        if two_sided and (self.margin is None or not self.margin > 0 or self.threshold != 0):
            raise ValueError(f"{where}: {self.direction!r} needs a margin > 0 "
                             "around 0 (threshold 0)")
        if not two_sided and self.margin is not None:
            raise ValueError(f"{where}: a margin is for 'within'/'equivalent' only")
        if self.rate is not None and (self.rate not in RATES or self.direction != "below"
                                      or self.threshold != 0):
            raise ValueError(f"{where}: a rate is one of {list(RATES)}, judged 'below' the "
                             "slope it implies (threshold left at 0)")

    def text(self) -> str:
        """The rule in words, e.g. ``"below 0"``, ``"equivalent within 0.0488"``."""
        if self.rate is not None:
            return f"below the slope of {self.rate} over the page's horizons"
        if self.margin is not None:
            return ("" if self.direction == "within" else f"{self.direction} ") + \
                f"within ±{self.margin:.3g}"
        return f"{self.direction} {self.threshold:.3g}"


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One claim and its analysis, fixed in advance.

    ``id`` (the record's key), ``page`` (the notebook), ``text`` (the claim in words),
    ``statistic`` (the per-run quantity's name), ``window`` (how a final value is taken:
    :data:`FINAL_WINDOW` unless ``reason`` says why not; a window starting with
    :data:`NO_WINDOW` says the values come from no final-value window), ``direction`` (one
    of :data:`DIRECTIONS`), ``threshold`` (the decision point of "below"/"above"),
    ``margin`` (of "within"/"equivalent", on the statistic's scale, e.g. ``log(1.05)``
    for a log-ratio), ``rate`` (a rate claim: the decision point is
    :func:`rate_threshold` of the page's horizons), ``combine`` ("all" parts must hold,
    or "any" one), ``paired`` (the runs compared share seeds; "equivalent" needs it),
    ``parts`` (part-name pattern, :mod:`fnmatch` style, -> :class:`Rule`: the parts whose
    rule differs from the claim's own; the first matching pattern wins, and every pattern
    must match a part the page hands in) and ``reason``."""

    id: str
    page: str
    text: str
    statistic: str
    window: str = FINAL_WINDOW
    direction: str
    threshold: float = 0.0
    margin: float | None = None
    rate: str | None = None
    combine: str = "all"
    paired: bool = True
    parts: Mapping[str, Rule] | tuple = ()
    reason: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "page", "text", "statistic", "window"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"claim {self.id!r}: {name} must be a non-empty string")
        if self.combine not in V.MODES:
            raise ValueError(f"claim {self.id!r}: combine must be one of {V.MODES}")
        if self.window != FINAL_WINDOW and not self.reason.strip():
            raise ValueError(f"claim {self.id!r}: a window other than {FINAL_WINDOW!r} "
                             "needs a reason")
        parts = tuple(self.parts.items()) if isinstance(self.parts, Mapping) else tuple(self.parts)
        object.__setattr__(self, "parts", parts)
        for pattern, rule in ((None, self.rule), *parts):
            self._check_rule(rule, pattern)

    def _check_rule(self, rule: Rule, pattern: str | None) -> None:
        where = f"claim {self.id!r}" + (f", parts {pattern!r}" if pattern else "")
        if not isinstance(rule, Rule):
            raise TypeError(f"{where}: a part's rule must be a Rule, got {type(rule).__name__}")
        rule.check(where)
        if rule.direction == "equivalent" and not self.paired:
            raise ValueError(f"{where}: an equivalence compares runs paired by seed")

    @property
    def rule(self) -> Rule:
        """The claim's own rule (that of every part no pattern of ``parts`` matches)."""
        return Rule(self.direction, self.threshold, self.margin, self.rate)

    @property
    def windowed(self) -> bool:
        """Whether the claim's values come from a final-value window (it then has the
        neighbouring window as an alternative analysis)."""
        return not self.window.startswith(NO_WINDOW)

    def rule_for(self, part: str) -> Rule:
        """The rule of the part named ``part``."""
        return next((rule for pattern, rule in self.parts if fnmatch.fnmatchcase(part, pattern)),
                    self.rule)


class Count(NamedTuple):
    """A part judged as a count: ``k`` of ``n`` runs (e.g. diverged), Wilson interval."""

    k: int
    n: int


class Part(tuple):
    """One part of a claim as a page computed it (:mod:`bisls_core.sweeps.claims`): it
    unpacks as the 2-tuple ``(verdict, interval)`` and carries what :func:`judge` needs:
    ``values`` (the per-run values: an array, a :class:`Count`, or for an equivalence the
    arms ``{name: per-run values}`` on the margin's scale, NaN or inf for a diverged run),
    ``statistic``, the rule the page used (``direction``, ``threshold``, ``margin``),
    ``horizons`` (a rate claim's horizons) and ``reference`` (an equivalence's reference
    arm, ``None``: every pair)."""

    #: A paired comparison's per-seed correlation of its two arms (``claims.log_ratios``).
    correlation: float | None = None

    def __new__(cls, verdict: str, interval: V.Interval | None, *, values, statistic: str,
                direction: str, threshold: float = 0.0, margin: float | None = None,
                horizons=None, reference=None) -> "Part":
        self = super().__new__(cls, (verdict, interval))
        self.values, self.statistic, self.direction = values, statistic, direction
        self.threshold, self.margin = float(threshold), margin
        self.horizons, self.reference = horizons, reference
        return self

    @property
    def verdict(self) -> str:
        return self[0]

    @property
    def interval(self) -> V.Interval | None:
        return self[1]

    @property
    def rule(self) -> Rule:
        """The rule the page judged the part by."""
        return Rule(self.direction, self.threshold, self.margin)


class UnknownClaimError(LookupError):
    """A claim id that is not registered."""


class RuleMismatchError(ValueError):
    """A page judged a part of a claim by another rule than the registered one."""


class Registry:
    """Claims by id: :meth:`register` once, :meth:`lookup` by id."""

    def __init__(self) -> None:
        self._claims: dict[str, Claim] = {}

    def register(self, claim: Claim | None = None, /, **fields) -> Claim:
        """Register ``claim`` (or ``Claim(**fields)``) and return it. Registering the same
        claim again is harmless; the same id with other fields is an error."""
        if (claim is None) == (not fields):
            raise TypeError("register takes a Claim or its fields, not both or neither")
        claim = claim if claim is not None else Claim(**fields)
        old = self._claims.get(claim.id)
        if old is not None and old != claim:
            changed = [k for k, v in asdict(claim).items() if asdict(old)[k] != v]
            raise ValueError(f"claim {claim.id!r} is already registered with other "
                             f"{', '.join(changed)}: its analysis is fixed in advance")
        self._claims[claim.id] = claim
        return claim

    def lookup(self, claim_id: str) -> Claim:
        """The claim registered as ``claim_id``; :class:`UnknownClaimError` if none."""
        try:
            return self._claims[claim_id]
        except KeyError:
            close = difflib.get_close_matches(str(claim_id), self._claims, n=3)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else \
                f"; {len(self._claims)} claims are registered" if self._claims else \
                "; no claim is registered"
            raise UnknownClaimError(f"unknown claim id {claim_id!r}{hint}") from None

    @contextmanager
    def scoped(self, *claims: Claim) -> Iterator[None]:
        """Register ``claims`` for the duration of a ``with`` block (tests), then remove
        them; an id already registered is refused."""
        taken = [c.id for c in claims if c.id in self._claims]
        if taken:
            raise ValueError(f"claims {taken} are already registered")
        try:
            for c in claims:
                self.register(c)
            yield
        finally:
            for c in claims:
                self._claims.pop(c.id, None)

    def __contains__(self, claim_id: object) -> bool:
        return claim_id in self._claims

    def __iter__(self) -> Iterator[str]:
        return iter(self._claims)

    def __len__(self) -> int:
        return len(self._claims)


#: The book's claims.
REGISTRY = Registry()


def register(claim: Claim | None = None, /, **fields) -> Claim:
    """:meth:`Registry.register` on the book's :data:`REGISTRY`."""
    return REGISTRY.register(claim, **fields)


def lookup(claim_id: str) -> Claim:
    """:meth:`Registry.lookup` on the book's :data:`REGISTRY`."""
    return REGISTRY.lookup(claim_id)


# ------------------------------------------------------------------ judging a claim


def judge(claim: Claim | str, parts_values, window=None) -> dict:
    """Judge ``claim`` (a :class:`Claim` or a registered id) on its parts' per-run values,
    ``{part name: values}`` (or the values of a single part, named after the statistic).

    A part's values: a :class:`Part` (its rule is checked against the registered one:
    :class:`RuleMismatchError` naming the claim and the part), or, for "below"/"above"/
    "within", one value per run of the claim's statistic (a diverged run as +/-inf, never
    NaN; a paired claim's values already paired by seed, e.g. log-ratios); a
    :class:`Count` for a share of runs; for "equivalent", the arms (two or more arrays of
    per-run values on the margin's scale, paired by seed, NaN or inf for a diverged run:
    every pair of arms is tested, :func:`bisls_core.verdicts.equivalent_all`) or the
    paired differences themselves (NaN: both runs diverged). Every pattern of the
    claim's ``parts`` must match a part.

    ``window``: the same parts (or some of them: the others are taken as they are)
    computed from the neighbouring final-value window (:data:`NEIGHBOUR_WINDOW`); only
    for a claim whose values come from a window (:attr:`Claim.windowed`).

    Returns a JSON-safe dict: ``claim``, ``statistic``, ``window``, ``direction``,
    ``threshold``, ``margin``, ``combine``, ``paired``; ``parts`` (per part: statistic,
    interval, estimate, threshold, margin, direction, runs, verdict, ``p_held``,
    ``p_not_held``, ``bootstrap_verdict``, with ``window`` its ``window_verdict``);
    ``verdict`` (combined); ``p_value`` (for :func:`adjust`,
    :func:`bisls_core.verdicts.combined_p_value`); ``bootstrap_verdict``,
    ``window_verdict`` (``None`` without ``window``), ``window_alternative`` (the
    alternative window, or why there is none) and ``fragile``
    (:func:`bisls_core.verdicts.fragile` of the three)."""
    claim = lookup(claim) if isinstance(claim, str) else claim
    named = _named(claim, parts_values)
    parts = {name: _judge_part(claim, name, v) for name, v in named.items()}
    for name, v in named.items():  # a paired part's per-seed correlation of its two arms
        if getattr(v, "correlation", None) is not None:
            parts[name]["correlation"] = float(v.correlation)
    _check_patterns(claim, parts)
    verdict = V.combine({n: p["verdict"] for n, p in parts.items()}, mode=claim.combine)
    alternative = V.combine({n: p["bootstrap_verdict"] for n, p in parts.items()},
                            mode=claim.combine)
    p = V.combined_p_value({n: (q["p_held"], q["p_not_held"]) for n, q in parts.items()},
                           verdict, mode=claim.combine)
    windowed = _window_verdict(claim, named, window, parts)
    others = [alternative] + ([windowed] if windowed is not None else [])
    return {"claim": claim.id, "statistic": claim.statistic, "window": claim.window,
            "direction": claim.direction, "threshold": claim.threshold, "margin": claim.margin,
            "combine": claim.combine, "paired": claim.paired, "parts": parts, "verdict": verdict,
            "p_value": p, "bootstrap_verdict": alternative, "window_verdict": windowed,
            "window_alternative": _window_text(claim, windowed),
            "fragile": V.fragile([verdict, *others])}


def adjust(judged: Mapping[str, dict], alpha: float = V.ALPHA) -> dict[str, str]:
    """Holm's correction over a family of judged claims (``{id: judge(...)}``): per id,
    the verdict that stands (:func:`bisls_core.verdicts.adjusted_verdict`)."""
    rejected = V.holm({k: rec["p_value"] for k, rec in judged.items()}, alpha)
    return {k: V.adjusted_verdict(rec["verdict"], rejected[k]) for k, rec in judged.items()}


def _named(claim: Claim, parts_values) -> dict:
    """``{part name: values}``: a single part is named after the claim's statistic."""
    if not isinstance(parts_values, Mapping):
        parts_values = {claim.statistic: parts_values}
    if not parts_values:
        raise ValueError(f"claim {claim.id!r}: judge needs at least one part")
    return {str(name): v for name, v in parts_values.items()}


def _check_patterns(claim: Claim, parts: Mapping[str, dict]) -> None:
    """Every registered part pattern matches a part the page handed in."""
    for pattern, _ in claim.parts:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in parts):
            raise RuleMismatchError(f"claim {claim.id!r}: no part matches the registered "
                                    f"pattern {pattern!r} (parts: {', '.join(parts)})")


def _window_verdict(claim: Claim, named: dict, window, parts: dict) -> str | None:
    """The combined verdict on the neighbouring window's values (``None`` without them);
    each part's record gets its own ``window_verdict``."""
    if window is None:
        return None
    if not claim.windowed:
        raise ValueError(f"claim {claim.id!r}: its values come from no final-value window "
                         f"({claim.window}), so it has no window alternative")
    window = {str(k): v for k, v in window.items()} if isinstance(window, Mapping) \
        else _named(claim, window)  # {}: every part as it is
    unknown = sorted(set(window) - set(named))
    if unknown:
        raise ValueError(f"claim {claim.id!r}: window parts {unknown} are not parts of the claim")
    alt = {n: _judge_part(claim, n, window.get(n, v))["verdict"] for n, v in named.items()}
    for name, verdict in alt.items():
        parts[name]["window_verdict"] = verdict
    return V.combine(alt, mode=claim.combine)


def _window_text(claim: Claim, windowed: str | None) -> str:
    """The window alternative in words, or why there is none."""
    if windowed is not None:
        return NEIGHBOUR_WINDOW
    if not claim.windowed:
        return claim.window
    return "not computed: no values under the neighbouring window were given"


def _decider(claim: Claim):
    """The rule that turns an interval into the claim's verdict."""
    if claim.direction == "within":
        return lambda iv: V.decide_within(iv, claim.margin)
    return lambda iv: V.decide(iv, claim=claim.direction, threshold=claim.threshold)


def _part_record(claim: Claim, iv: V.Interval | None, runs: int, verdict: str,
                 alternative: str, p: tuple[float, float], **extra) -> dict:
    """The fields stored for one part."""
    rec = {"statistic": claim.statistic, "interval": None, "estimate": None, "runs": int(runs)}
    if iv is not None:
        rec.update(iv.as_record(), estimate=V._num(iv.estimate))
    return {**rec, "threshold": claim.threshold, "margin": claim.margin,
            "direction": claim.direction, "verdict": verdict, "p_held": float(p[0]),
            "p_not_held": float(p[1]), "bootstrap_verdict": alternative, **extra}


def _checked_rule(claim: Claim, name: str, rule: Rule, part: Part) -> Rule:
    """The registered ``rule`` of a part (a rate's threshold resolved on the part's
    horizons), checked against the rule the page judged the part by."""
    where = f"claim {claim.id!r}, part {name!r}"
    want = rule
    if rule.rate is not None:
        if part.horizons is None:
            raise RuleMismatchError(f"{where}: a rate claim's part needs its horizons")
        want = Rule(rule.direction, rate_threshold(rule.rate, part.horizons))
    got = part.rule
    close = lambda a, b: (a is None and b is None) or (  # noqa: E731
        a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12))
    if got.direction != want.direction or not close(got.threshold, want.threshold) \
            or not close(got.margin, want.margin):
        raise RuleMismatchError(f"{where}: the page judged it {got.text()}, the registry "
                                f"says {want.text()}" + (f" ({rule.text()})" if rule.rate else ""))
    return want


def _judge_part(claim: Claim, name: str, values) -> dict:
    """One part, handed to the rule its values call for."""
    rule, statistic, reference = claim.rule_for(name), claim.statistic, None
    if isinstance(values, Part):
        rule = _checked_rule(claim, name, rule, values)
        statistic, reference, values = values.statistic, values.reference, values.values
    elif rule.rate is not None:
        raise RuleMismatchError(f"claim {claim.id!r}, part {name!r}: a rate claim's part "
                                "must be a Part with its horizons")
    claim = replace(claim, statistic=statistic, direction=rule.direction,
                    threshold=rule.threshold, margin=rule.margin, rate=None, parts=())
    if isinstance(values, Count):
        return _count_part(claim, values)
    if claim.direction == "equivalent":
        return _equivalence_part(claim, values, reference)
    a = np.asarray(values, dtype=float).ravel()
    if a.size < V.MIN_RUNS:
        return _part_record(claim, None, a.size, "inconclusive", "inconclusive", (1.0, 1.0))
    decide = _decider(claim)
    iv = V.mean_interval(a, claim.statistic)
    p = V.decision_p_values(a, claim.direction, claim.threshold, margin=claim.margin)
    return _part_record(claim, iv, a.size, decide(iv),
                        decide(V.bootstrap_mean_interval(a, claim.statistic)), p)


def _count_part(claim: Claim, count: Count) -> dict:
    """A share of runs: the Wilson interval decides, the exact (Clopper-Pearson) interval
    is the alternative, exact binomial p-values."""
    if claim.direction not in ("below", "above"):
        raise ValueError(f"claim {claim.id!r}: a Count is judged 'below' or 'above'")
    k, n = int(count.k), int(count.n)
    iv = V.proportion_interval(k, n, claim.statistic)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=V.LEVEL, method="exact")
    exact = V.Interval(f"exact share {claim.statistic}", float(ci.low), float(ci.high), n, k / n)
    decide = _decider(claim)
    p = V.proportion_decision_p_values(k, n, claim.direction, claim.threshold)
    return _part_record(claim, iv, n, decide(iv), decide(exact), p)


def _equivalence_part(claim: Claim, values, reference=None) -> dict:
    """An equivalence: paired differences (1-D) or arms (every pair tested, or each
    against ``reference``; ``excluded``/``one_sided``: the most seeds any pair left out
    because both runs diverged / opened because one did, each pair's in ``pairs``)."""
    m, name = claim.margin, claim.statistic
    if not isinstance(values, Mapping) and np.ndim(values) == 1:
        e = V.equivalence(values, m, name)
        alt = V.equivalence(values, m, name, interval=V.bootstrap_mean_interval).verdict
        return _part_record(claim, e.interval, e.runs, e.verdict, alt,
                            (e.p_held, e.p_not_held), excluded=e.excluded, one_sided=e.one_sided)
    verdict, tests = V.equivalent_all(values, m, name, reference=reference, log=False)
    alt, _ = V.equivalent_all(values, m, name, reference=reference, log=False,
                              interval=V.bootstrap_mean_interval)
    e = next(t for t in tests.values() if t.verdict == verdict)
    p = (V.combined_p_value([(t.p_held, t.p_not_held) for t in tests.values()], "held"),
         V.combined_p_value([(t.p_held, t.p_not_held) for t in tests.values()], "not held"))
    return _part_record(claim, e.interval, e.runs, verdict, alt, p,
                        excluded=max(t.excluded for t in tests.values()),
                        one_sided=max(t.one_sided for t in tests.values()),
                        pairs={k: t.as_record() | {"verdict": t.verdict} for k, t in tests.items()})

