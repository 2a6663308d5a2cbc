"""The claims registry: each claim of the book with its analysis fixed in advance (issue 25).

A :class:`Claim` names, before any run is looked at, the statistic a claim is judged
on, the window its final values come from (one book-wide default,
:data:`FINAL_WINDOW`: the mean over the last 10 % of the evaluations,
:func:`final_window`), the direction and decision point (or margin) of the rule, how its
parts combine, and whether its runs are paired by seed. :func:`judge` hands a
claim's per-run values to its rule (:mod:`bisls_core.verdicts`) and returns what the
claim record stores: every part's interval and verdict, the combined verdict, the
p-value the claim enters Holm's correction with (:func:`adjust`) and the verdict of the
alternative analysis (a bootstrap interval of the mean), whose disagreement marks the
verdict fragile.

Register a claim once (:func:`register`); registering it again with other fields is an
error (its analysis is fixed); :func:`lookup` of an unknown id raises
:class:`UnknownClaimError`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from scipy import stats

from . import verdicts as V

__all__ = ["DIRECTIONS", "FINAL_FRACTION", "FINAL_WINDOW", "REGISTRY", "Claim", "Count",
           "Registry", "UnknownClaimError", "adjust", "final_window", "judge", "lookup",
           "register"]

#: The share of the evaluations, at the end of a run, whose mean is its final value.
FINAL_FRACTION = 0.1
#: The book-wide final-value window (:func:`final_window`); another needs a ``reason``.
FINAL_WINDOW = "mean over the last 10 % of evaluations"
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
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    width = max(1, math.ceil(round(fraction * a.shape[1], 9)))
    return a[:, -width:].mean(axis=1)


@dataclass(frozen=True, kw_only=True)
class Claim:
    """One claim and its analysis, fixed in advance.

    ``id`` (the record's key), ``page`` (the notebook), ``text`` (the claim in words),
    ``statistic`` (the per-run quantity's name), ``window`` (how a final value is taken:
    :data:`FINAL_WINDOW` unless ``reason`` says why not), ``direction`` (one of
    :data:`DIRECTIONS`), ``threshold`` (the decision point of "below"/"above"),
    ``margin`` (of "within"/"equivalent", on the statistic's scale, e.g. ``log(1.05)``
    for a log-ratio), ``combine`` ("all" parts must hold, or "any" one), ``paired``
    (the runs compared share seeds; "equivalent" needs it) and ``reason``."""

    id: str
    page: str
    text: str
    statistic: str
    window: str = FINAL_WINDOW
    direction: str
    threshold: float = 0.0
    margin: float | None = None
    combine: str = "all"
    paired: bool = True
    reason: str = ""

    def __post_init__(self) -> None:
        for name in ("id", "page", "text", "statistic", "window"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"claim {self.id!r}: {name} must be a non-empty string")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.id!r}: direction must be one of {DIRECTIONS}, "
                             f"got {self.direction!r}")
        if self.combine not in V.MODES:
            raise ValueError(f"claim {self.id!r}: combine must be one of {V.MODES}")
        if self.window != FINAL_WINDOW and not self.reason.strip():
            raise ValueError(f"claim {self.id!r}: a window other than {FINAL_WINDOW!r} "
                             "needs a reason")
        self._check_rule()

    def _check_rule(self) -> None:
        if not math.isfinite(self.threshold):
            raise ValueError(f"claim {self.id!r}: threshold must be finite")
        two_sided = self.direction in ("within", "equivalent")
        if two_sided and (self.margin is None or not self.margin > 0 or self.threshold != 0):
            raise ValueError(f"claim {self.id!r}: {self.direction!r} needs a margin > 0 "
                             "around 0 (threshold 0)")
        if not two_sided and self.margin is not None:
            raise ValueError(f"claim {self.id!r}: a margin is for 'within'/'equivalent' only")
        if self.direction == "equivalent" and not self.paired:
            raise ValueError(f"claim {self.id!r}: an equivalence compares runs paired by seed")


class Count(NamedTuple):
    """A part judged as a count: ``k`` of ``n`` runs (e.g. diverged), Wilson interval."""

    k: int
    n: int


class UnknownClaimError(LookupError):
    """A claim id that is not registered."""


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


def judge(claim: Claim | str, parts_values) -> dict:
    """Judge ``claim`` (a :class:`Claim` or a registered id) on its parts' per-run values,
    ``{part name: values}`` (or the values of a single part, named after the statistic).

    A part's values: for "below"/"above"/"within", one value per run of the claim's
    statistic (a diverged run as +/-inf, never NaN; a paired claim's values already
    paired by seed, e.g. log-ratios); a :class:`Count` for a share of runs; for
    "equivalent", the arms (two or more arrays of per-run values on the margin's scale,
    paired by seed, NaN or inf for a diverged run: every pair of arms is tested,
    :func:`bisls_core.verdicts.equivalent_all`) or the paired differences themselves
    (NaN: both runs diverged).

    Returns a JSON-safe dict: ``claim``, ``statistic``, ``window``, ``direction``,
    ``threshold``, ``margin``, ``combine``; ``parts`` (per part: statistic, interval,
    estimate, threshold, margin, direction, runs, verdict, ``p_held``, ``p_not_held``,
    ``bootstrap_verdict``); ``verdict`` (combined); ``p_value`` (for :func:`adjust`,
    :func:`bisls_core.verdicts.combined_p_value`); ``bootstrap_verdict`` and ``fragile``
    (:func:`bisls_core.verdicts.fragile`)."""
    claim = lookup(claim) if isinstance(claim, str) else claim
    if not isinstance(parts_values, Mapping):
        parts_values = {claim.statistic: parts_values}
    if not parts_values:
        raise ValueError(f"claim {claim.id!r}: judge needs at least one part")
    parts = {str(name): _judge_part(claim, v) for name, v in parts_values.items()}
    verdict = V.combine({n: p["verdict"] for n, p in parts.items()}, mode=claim.combine)
    alternative = V.combine({n: p["bootstrap_verdict"] for n, p in parts.items()},
                            mode=claim.combine)
    p = V.combined_p_value({n: (q["p_held"], q["p_not_held"]) for n, q in parts.items()},
                           verdict, mode=claim.combine)
    return {"claim": claim.id, "statistic": claim.statistic, "window": claim.window,
            "direction": claim.direction, "threshold": claim.threshold, "margin": claim.margin,
            "combine": claim.combine, "parts": parts, "verdict": verdict, "p_value": p,
            "bootstrap_verdict": alternative, "fragile": V.fragile([verdict, alternative])}


def adjust(judged: Mapping[str, dict], alpha: float = V.ALPHA) -> dict[str, str]:
    """Holm's correction over a family of judged claims (``{id: judge(...)}``): per id,
    the verdict that stands (:func:`bisls_core.verdicts.adjusted_verdict`)."""
    rejected = V.holm({k: rec["p_value"] for k, rec in judged.items()}, alpha)
    return {k: V.adjusted_verdict(rec["verdict"], rejected[k]) for k, rec in judged.items()}


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


def _judge_part(claim: Claim, values) -> dict:
    """One part, handed to the rule its values call for."""
    if isinstance(values, Count):
        return _count_part(claim, values)
    if claim.direction == "equivalent":
        return _equivalence_part(claim, values)
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


def _equivalence_part(claim: Claim, values) -> dict:
    """An equivalence: paired differences (1-D) or arms (every pair tested)."""
    m, name = claim.margin, claim.statistic
    if not isinstance(values, Mapping) and np.ndim(values) == 1:
        e = V.equivalence(values, m, name)
        alt = V.equivalence(values, m, name, interval=V.bootstrap_mean_interval).verdict
        return _part_record(claim, e.interval, e.runs, e.verdict, alt,
                            (e.p_held, e.p_not_held), excluded=e.excluded, one_sided=e.one_sided)
    verdict, tests = V.equivalent_all(values, m, name, log=False)
    alt, _ = V.equivalent_all(values, m, name, log=False, interval=V.bootstrap_mean_interval)
    e = next(t for t in tests.values() if t.verdict == verdict)
    p = (V.combined_p_value([(t.p_held, t.p_not_held) for t in tests.values()], "held"),
         V.combined_p_value([(t.p_held, t.p_not_held) for t in tests.values()], "not held"))
    return _part_record(claim, e.interval, e.runs, verdict, alt, p, excluded=e.excluded,
                        one_sided=e.one_sided, pairs={k: t.as_record() | {"verdict": t.verdict}
                                                      for k, t in tests.items()})

