r"""Statistical verdicts: the rules that turn per-run statistics into a claim's verdict.

Every claim of the paper that the book checks is a statement about a quantity
(a difference of final losses, a ratio of costs, a spread, a slope). A notebook
computes that quantity **per run** (paired across seeds where the compared
methods share seeds), this module gives a 95 % interval of it, and one rule
turns the interval into a verdict:

========================  =====================================================
verdict                   when
========================  =====================================================
``"held"``                the interval lies on the side of the decision point
                          that the claim asserts
``"not held"``            the interval lies on the other side
``"inconclusive"``        the interval straddles the decision point
========================  =====================================================

A claim with several parts combines its parts' verdicts (:func:`combine`): a
conjunction ("A and B", ``mode="all"``) is not held as soon as one part is not held,
held when every part is held; a disjunction (``mode="any"``) is held as soon as one
part is held, not held when every part is not held; anything else is inconclusive.
Old records may carry ``"partly"`` (the former "some parts held, others not"): it is
still a valid verdict to read, and :func:`combine` reads it as "not held", but no rule
produces it any more.

Intervals: a Student-t interval of the mean when every per-run value is finite;
when some are infinite (a diverged run counts as infinitely worse) a percentile
bootstrap interval of the **median** (seeded, so deterministic). Its end on the side
of the diverged runs stays finite only while few runs diverged: at most
:func:`finite_bootstrap_limit` ``(n)`` of ``n`` runs, which is **none** at n = 5 (one
diverged run of five already makes the upper end infinite: the runs
``[-0.3, -0.2, -0.25, -0.1, inf]`` give ``[-0.3, inf]``), one at n = 10 and five at
n = 20. Counts (``k`` of ``n`` runs diverged) get a Wilson score interval. A verdict
never rests on one run: :func:`mean_interval` refuses fewer than :data:`MIN_RUNS`
values.

"Alike" claims are equivalence tests (:func:`equivalent`, two one-sided tests): held
when the 90 % interval of the paired differences lies inside ``[-margin, margin]``,
not held when the 95 % interval lies wholly outside. A family of claims can be judged
with Holm's step-down correction (:func:`decision_p_values`, :func:`holm`,
:func:`adjusted_verdict`), and a verdict re-decided with a bootstrap interval of the
mean (:func:`bootstrap_mean_interval`, :func:`fragile`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "ALPHA",
    "LEVEL",
    "MIN_RUNS",
    "MODES",
    "PRODUCED",
    "TOST_LEVEL",
    "VERDICTS",
    "Equivalence",
    "Interval",
    "adjusted_verdict",
    "bootstrap_mean_interval",
    "combine",
    "combined_p_value",
    "decide",
    "decide_within",
    "decision_p_values",
    "diverged_as_worst",
    "equivalence",
    "equivalent",
    "equivalent_all",
    "finite_bootstrap_limit",
    "fragile",
    "holm",
    "holm_adjusted",
    "log_ratio_interval",
    "mean_interval",
    "p_value",
    "paired_difference",
    "paired_log_ratios",
    "proportion_decision_p_values",
    "proportion_interval",
    "proportion_p_value",
]

#: Every verdict a claim record may carry ("partly" only in old records: see :func:`combine`).
VERDICTS = ("held", "partly", "not held", "inconclusive")
#: The verdicts the rules produce.
PRODUCED = ("held", "not held", "inconclusive")
#: How :func:`combine` joins the parts of a claim: all must hold, or any may.
MODES = ("all", "any")
#: Confidence level of every interval.
LEVEL = 0.95
#: Family-wise error rate of :func:`holm`: the level the 95 % intervals test at.
ALPHA = 1 - LEVEL
#: Level of the interval an equivalence is held on (two one-sided tests at 5 %).
TOST_LEVEL = 0.90
#: The fewest runs an interval may rest on.
MIN_RUNS = 2
#: Bootstrap resamples for the median interval (seeded: deterministic).
_N_BOOT = 4000


@dataclass(frozen=True)
class Interval:
    """A ``LEVEL`` interval ``[low, high]`` of ``statistic`` over ``runs`` runs."""

    statistic: str
    low: float
    high: float
    runs: int
    estimate: float = math.nan

    def as_record(self) -> dict:
        """The fields a claim record stores: ``runs``, ``interval`` and ``statistic``."""
        return {"runs": int(self.runs), "interval": [_num(self.low), _num(self.high)],
                "statistic": self.statistic}

    def text(self, fmt: str = ".3g") -> str:
        """``"0.012 [0.004, 0.020]"``: the estimate and its interval."""
        return f"{self.estimate:{fmt}} [{self.low:{fmt}}, {self.high:{fmt}}]"


def _num(v: float) -> float | str:
    """JSON has no infinities: store them as the strings ``"inf"``/``"-inf"``."""
    v = float(v)
    return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")


def _values(values: Iterable[float], name: str) -> np.ndarray:
    a = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float).ravel()
    if a.size < MIN_RUNS:
        raise ValueError(f"{name}: a verdict needs at least {MIN_RUNS} runs, got {a.size}")
    if np.isnan(a).any():
        raise ValueError(f"{name}: NaN among the per-run values (map diverged runs to +/-inf first)")
    return a


def mean_interval(values: Iterable[float], statistic: str, *, level: float = LEVEL,
                  seed: int = 0) -> Interval:
    r"""Interval of the centre of ``values`` (one value per run).

    All finite: :math:`\bar v \pm t_{n-1,(1+\text{level})/2}\, s/\sqrt n` (mean).
    Some infinite: percentile bootstrap of the median (``_N_BOOT`` resamples from a
    generator seeded by ``seed``). The statistic's name says which was used.
    """
    a = _values(values, statistic)
    n = a.size
    if np.isfinite(a).all():
        mean = float(a.mean())
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * a.std(ddof=1) / math.sqrt(n))
        return Interval(f"mean {statistic}", mean - half, mean + half, n, mean)
    rng = np.random.default_rng(seed)
    boot = np.median(a[rng.integers(0, n, size=(_N_BOOT, n))], axis=1)
    low, high = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2], method="lower")
    return Interval(f"median {statistic}", float(low), float(high), n, float(np.median(a)))


def finite_bootstrap_limit(n: int, level: float = LEVEL) -> int:
    """The most diverged runs of ``n`` (infinite values of one sign) for which the end of
    :func:`mean_interval`'s bootstrap median interval on their side stays finite.

    A resample's median is infinite when at least ``ceil(n / 2)`` of its ``n`` draws are
    (the median of an even count averages the two middle values); with ``k`` diverged
    runs that has the binomial chance ``P(Bin(n, k/n) >= ceil(n/2))``, and the interval's
    end (its ``(1 + level)/2`` quantile) is infinite once that chance exceeds
    ``(1 - level)/2``. Exact for many resamples; the :data:`_N_BOOT` seeded resamples of
    :func:`mean_interval` can fall either way within sampling noise of that boundary
    (n = 24 with 7 diverged: chance 0.0253 against 0.025).

    >>> [finite_bootstrap_limit(n) for n in (5, 10, 20)]
    [0, 1, 5]
    """
    if n < 1:
        raise ValueError(f"need n >= 1, got {n}")
    need, tail = n - n // 2, (1 - level) / 2
    return max(k for k in range(n + 1) if stats.binom.sf(need - 1, n, k / n) <= tail)


def bootstrap_mean_interval(values: Iterable[float], statistic: str, level: float = LEVEL,
                            seed: int = 0) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` (:data:`_N_BOOT` resamples
    from a generator seeded by ``seed``: deterministic), the alternative analysis a
    verdict is re-decided with (:func:`fragile`). An infinite value (a diverged run)
    makes every resample that draws it infinite.

    >>> iv = bootstrap_mean_interval([1.0, 2.0, 3.0, 4.0, 5.0], "x")
    >>> iv.statistic, 1.0 < iv.low < 3.0 < iv.high < 5.0
    ('bootstrap mean x', True)
    """
    a = _values(values, statistic)
    rng = np.random.default_rng(seed)
    boot = np.mean(a[rng.integers(0, a.size, size=(_N_BOOT, a.size))], axis=1)
    low, high = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2], method="lower")
    return Interval(f"bootstrap mean {statistic}", float(low), float(high), a.size,
                    float(a.mean()))


def paired_difference(a: Sequence[float], b: Sequence[float], statistic: str, *,
                      lower_is_better: bool = True, level: float = LEVEL) -> Interval:
    """Interval of ``a - b`` paired by seed (``a[i]`` and ``b[i]`` share seed ``i``).

    A NaN (a run that diverged) is the worst outcome: ``+inf`` when lower is better,
    ``-inf`` otherwise, so a diverged run always counts against its method.
    """
    a, b = diverged_as_worst(a, b, statistic, lower_is_better=lower_is_better)
    diff = a - b
    diff = np.where(np.isnan(diff), 0.0, diff)  # both diverged: a tie
    return mean_interval(diff, statistic, level=level)


def diverged_as_worst(a: Sequence[float], b: Sequence[float], statistic: str = "paired runs", *,
                      lower_is_better: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The one rule for a run that diverged in a paired comparison: its NaN becomes the
    worst outcome (``+inf`` when lower is better, ``-inf`` otherwise), so it always counts
    against its method; two diverged runs then give ``inf - inf``, which the callers
    read as a tie. ``a`` and ``b`` must be paired by seed (the same length)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{statistic}: paired runs must match, got {a.size} and {b.size}")
    worst = math.inf if lower_is_better else -math.inf
    return np.where(np.isnan(a), worst, a), np.where(np.isnan(b), worst, b)


def paired_log_ratios(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Per seed, ``log a - log b`` of two positive values (lower is better), with
    :func:`diverged_as_worst`: ``+inf`` when only ``a`` diverged, ``-inf`` when only ``b``
    did, 0 (a tie) when both did."""
    a, b = diverged_as_worst(a, b, "log-ratios")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(a) - np.log(b)
    return np.where(np.isnan(out), 0.0, out)


def log_ratio_interval(a: Sequence[float], b: Sequence[float], statistic: str, *,
                       level: float = LEVEL) -> Interval:
    """Interval of the ratio ``a / b`` (paired, positive values): a t-interval of the
    mean log-ratio, mapped back (a geometric-mean ratio)."""
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError(f"{statistic}: ratios need positive values")
    iv = mean_interval(np.log(a / b), statistic, level=level)
    return Interval(f"geometric-mean ratio {statistic}", math.exp(iv.low), math.exp(iv.high),
                    iv.runs, math.exp(iv.estimate))


def proportion_interval(k: int, n: int, statistic: str, *, level: float = LEVEL) -> Interval:
    """Wilson score interval of a proportion ``k / n`` (e.g. runs that diverged)."""
    if not 0 <= k <= n or n < 1:
        raise ValueError(f"{statistic}: need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(f"share {statistic} ({k}/{n})", max(0.0, centre - half), min(1.0, centre + half),
                    n, p)


def decide(interval: Interval, *, claim: str, threshold: float = 0.0) -> str:
    """Verdict for a claim ``quantity < threshold`` (``claim="below"``) or
    ``quantity > threshold`` (``claim="above"``) from the quantity's interval."""
    if claim not in ("below", "above"):
        raise ValueError(f"claim must be 'below' or 'above', got {claim!r}")
    low, high = interval.low, interval.high
    supports, contradicts = (high < threshold, low >= threshold) if claim == "below" else \
        (low > threshold, high <= threshold)
    return "held" if supports else "not held" if contradicts else "inconclusive"


def decide_within(interval: Interval, tolerance: float) -> str:
    """Verdict for a claim ``|quantity| <= tolerance`` (e.g. "insensitive to delta"):
    held when the whole interval lies within ``[-tolerance, tolerance]``, not held when
    it lies wholly outside, inconclusive otherwise."""
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0, got {tolerance!r}")
    if -tolerance <= interval.low and interval.high <= tolerance:
        return "held"
    if interval.low > tolerance or interval.high < -tolerance:
        return "not held"
    return "inconclusive"


def combine(parts: Mapping[str, str] | Sequence[str], mode: str = "all") -> str:
    """Verdict of a claim with several parts.

    ``mode="all"`` (a conjunction, "A and B"): "not held" when any part is not held,
    "held" when every part is held, otherwise "inconclusive".
    ``mode="any"`` (a disjunction, "A or B"): "held" when any part is held, "not held"
    when every part is not held, otherwise "inconclusive".

    ``"partly"`` (the verdict the former rule gave for "some parts held, others not
    held", still found in old records) is accepted as a part's verdict and read as
    "not held", what a conjunction with a failed part now is; it is never returned.

    >>> combine(["held", "not held"]), combine(["held", "not held"], mode="any")
    ('not held', 'held')
    >>> combine({"a": "held", "b": "inconclusive"})
    'inconclusive'
    """
    verdicts = list(parts.values()) if isinstance(parts, Mapping) else list(parts)
    if not verdicts:
        raise ValueError("combine needs at least one part")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    for v in verdicts:
        if v not in VERDICTS:
            raise ValueError(f"unknown verdict {v!r}; known: {', '.join(VERDICTS)}")
    verdicts = ["not held" if v == "partly" else v for v in verdicts]
    decisive, other = ("not held", "held") if mode == "all" else ("held", "not held")
    if decisive in verdicts:
        return decisive
    return other if all(v == other for v in verdicts) else "inconclusive"


# ------------------------------------------------------------------ equivalence ("alike")


@dataclass(frozen=True)
class Equivalence:
    """An equivalence test of paired differences (:func:`equivalence`).

    ``interval``: the :data:`TOST_LEVEL` (90 %) interval "held" rests on; ``outer``: the
    :data:`LEVEL` (95 %) interval "not held" rests on (both ``None`` with fewer than two
    finite pairs; both open to infinity on the side of a pair where one run diverged);
    ``runs``: the pairs it rests on (every pair but the excluded); ``excluded``: pairs
    where both runs diverged (left out); ``one_sided``: pairs where one run diverged;
    ``p_held``, ``p_not_held``: the p-values of the two rules (:func:`decision_p_values`)."""

    verdict: str
    interval: Interval | None
    outer: Interval | None
    margin: float
    runs: int = 0
    excluded: int = 0
    one_sided: int = 0
    p_held: float = 1.0
    p_not_held: float = 1.0

    def as_record(self) -> dict:
        """The fields a claim record stores (the 90 % interval's, as
        :meth:`Interval.as_record`), with ``runs``, ``margin``, ``excluded`` and
        ``one_sided``."""
        rec = self.interval.as_record() if self.interval is not None else {}
        return {**rec, "runs": self.runs, "margin": float(self.margin), "excluded": self.excluded,
                "one_sided": self.one_sided}


def equivalence(diffs: Iterable[float], margin: float, statistic: str, *,
                level: float = TOST_LEVEL, interval=None) -> Equivalence:
    r"""Equivalence (two one-sided tests, TOST) of signed paired differences, one per seed.

    Rule: **held** when the ``level`` (90 %) interval of the mean difference lies inside
    ``[-margin, margin]`` (each one-sided test at 5 %); **not held** when the 95 %
    interval lies wholly outside it; **inconclusive** otherwise. Diverged runs:

    * ``NaN`` (both runs of the pair diverged, ``inf - inf``): the pair is left out and
      counted (``excluded``): it says nothing about the margin;
    * ``+inf``/``-inf`` (one run diverged): that seed's runs are not alike, so the
      intervals are open to infinity on that side: the claim cannot be held, and it is
      not held only when the finite pairs' interval, so opened, still lies outside;
    * fewer than two finite pairs: inconclusive, no interval.

    The intervals of the finite pairs come from ``interval`` (default
    :func:`mean_interval`; :func:`bootstrap_mean_interval` for the alternative).

    >>> e = equivalence([0.01, -0.02, 0.0, 0.015, -0.005], 0.05, "d")
    >>> e.verdict, e.excluded, round(e.p_held, 4) < 0.05
    ('held', 0, True)
    """
    d = np.asarray(list(diffs) if not isinstance(diffs, np.ndarray) else diffs, dtype=float).ravel()
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    both = np.isnan(d)
    d = d[~both]
    finite = d[np.isfinite(d)]
    base = {"margin": float(margin), "runs": int(d.size), "excluded": int(both.sum()),
            "one_sided": int(d.size - finite.size)}
    if finite.size < MIN_RUNS:
        return Equivalence("inconclusive", None, None, **base)
    rule = interval or mean_interval
    down, up = bool((d == -np.inf).any()), bool((d == np.inf).any())
    inner = _opened(rule(finite, statistic, level=level), down, up, d.size)
    outer = _opened(rule(finite, statistic, level=LEVEL), down, up, d.size)
    verdict = "held" if decide_within(inner, margin) == "held" else \
        "not held" if decide_within(outer, margin) == "not held" else "inconclusive"
    p_held, p_not = _tost_p_values(finite, float(margin), down, up)
    return Equivalence(verdict, inner, outer, p_held=p_held, p_not_held=p_not, **base)


def _opened(iv: Interval, down: bool, up: bool, runs: int) -> Interval:
    """``iv`` opened to ``-inf`` (``down``) and/or ``+inf`` (``up``), over ``runs`` pairs."""
    return Interval(iv.statistic, -math.inf if down else iv.low, math.inf if up else iv.high,
                    runs, iv.estimate)


def _tost_p_values(finite: np.ndarray, margin: float, down: bool, up: bool) -> tuple[float, float]:
    """``(p_held, p_not_held)`` of :func:`equivalence`, from t-tests of the finite pairs; a
    side opened by a one-sided divergence can show nothing (its one-sided p-value is 1)."""
    above_low = 1.0 if down else _one_sided(finite, "above", -margin)   # mean > -margin
    below_high = 1.0 if up else _one_sided(finite, "below", margin)     # mean < margin
    out_high = 1.0 if down else _one_sided(finite, "above", margin)     # mean > margin
    out_low = 1.0 if up else _one_sided(finite, "below", -margin)       # mean < -margin
    return max(above_low, below_high), min(1.0, 2 * min(out_high, out_low))


def equivalent(a: Sequence[float], b: Sequence[float], margin: float, statistic: str, *,
               log: bool = True, level: float = TOST_LEVEL, interval=None) -> Equivalence:
    """:func:`equivalence` of two arms paired by seed (``a[i]``, ``b[i]``: seed ``i``):
    per seed ``log a - log b`` (``log=True``: ``margin`` is a log-ratio, e.g.
    ``log(1.05)``) or ``a - b``. A run diverged when its value is not finite (NaN or
    infinite): both diverged, the pair is excluded; one diverged, its difference is
    ``+inf`` (``a`` diverged) or ``-inf`` (``b`` diverged).

    >>> e = equivalent([1.0, 2.0, float("nan")], [1.01, 1.98, float("nan")], 0.05, "x")
    >>> e.verdict, e.excluded, e.interval.runs
    ('inconclusive', 1, 2)
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{statistic}: paired runs must match, got {a.size} and {b.size}")
    ok_a, ok_b = np.isfinite(a), np.isfinite(b)
    if log and ((a[ok_a] <= 0).any() or (b[ok_b] <= 0).any()):
        raise ValueError(f"{statistic}: log=True needs positive values")
    f = np.log if log else (lambda x: x)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = f(np.where(ok_a, a, 1.0)) - f(np.where(ok_b, b, 1.0))
    one = np.where(ok_a, -np.inf, np.inf)             # b diverged: -inf; a diverged: +inf
    diff = np.where(ok_a & ok_b, diff, np.where(ok_a | ok_b, one, np.nan))
    return equivalence(diff, margin, statistic, level=level, interval=interval)


def equivalent_all(arms: Mapping[str, Sequence[float]] | Sequence[Sequence[float]],
                   margin: float, statistic: str, *, reference: int | str | None = None,
                   log: bool = True, level: float = TOST_LEVEL,
                   interval=None) -> tuple[str, dict[str, Equivalence]]:
    """"These k configurations end alike": :func:`equivalent` for every pair of arms
    (``reference=None``) or for each arm against ``reference`` (a name or index), joined
    with ``combine(mode="all")`` (an intersection of equivalence tests: no correction for
    the number of pairs is needed for "held"). Returns the verdict and the tests, named
    ``"A vs B"`` (names of a mapping, else indices).

    >>> v, pairs = equivalent_all([[1.0, 2.0, 3.0], [1.0, 2.01, 3.0], [1.0, 2.0, 3.02]], 0.05, "x")
    >>> v, list(pairs)
    ('held', ['0 vs 1', '0 vs 2', '1 vs 2'])
    """
    named = dict(arms) if isinstance(arms, Mapping) else {str(i): v for i, v in enumerate(arms)}
    if len(named) < 2:
        raise ValueError(f"{statistic}: need at least two arms, got {len(named)}")
    names = list(named)
    if reference is None:
        pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1:]]
    else:
        ref = names[reference] if isinstance(reference, int) else str(reference)
        if ref not in named:
            raise ValueError(f"{statistic}: unknown reference {reference!r}; arms: {names}")
        pairs = [(ref, y) for y in names if y != ref]
    tests = {f"{x} vs {y}": equivalent(named[x], named[y], margin, statistic, log=log,
                                       level=level, interval=interval) for x, y in pairs}
    return combine({k: e.verdict for k, e in tests.items()}, mode="all"), tests


# ------------------------------------------------------------------ p-values and Holm


def _t_p(a: np.ndarray, side: str, point: float, inclusive: bool = False) -> float:
    """One-sided one-sample t-test: the p-value of H1 ``mean < point`` (``side="below"``)
    or ``mean > point`` (``"above"``). Runs that do not vary: 0 or 1; exactly at
    ``point``, 0 when the side includes it (``inclusive``), else 1."""
    se = a.std(ddof=1) / math.sqrt(a.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (a.mean() - point) / se
    if np.isnan(t):
        return 0.0 if inclusive else 1.0
    return float(stats.t.cdf(t, a.size - 1) if side == "below" else stats.t.sf(t, a.size - 1))


def _sign_p(a: np.ndarray, side: str, point: float, inclusive: bool = False) -> float:
    """One-sided exact sign test of the median: the p-value of H1 ``median < point``
    (``"below"``) or ``> point``. Values at ``point`` are left out, or count for the side
    when it includes the point (``inclusive``)."""
    wins = (a < point) if side == "below" else (a > point)
    ties = int((a == point).sum())
    k, n = int(wins.sum()) + (ties if inclusive else 0), a.size - (0 if inclusive else ties)
    return float(stats.binom.sf(k - 1, n, 0.5)) if n else 1.0


def _one_sided(a: np.ndarray, side: str, point: float, inclusive: bool = False) -> float:
    """:func:`_t_p` when every value is finite, else (a diverged run) :func:`_sign_p`."""
    return (_t_p if np.isfinite(a).all() else _sign_p)(a, side, point, inclusive)


def _margin(margin: float | None, claim: str) -> float:
    if margin is None or not margin > 0:
        raise ValueError(f"claim {claim!r} needs a margin > 0, got {margin!r}")
    return float(margin)


def p_value(values: Iterable[float], claim: str, threshold: float = 0.0, *,
            margin: float | None = None) -> float:
    """One-sided p-value of the claim's own direction, from per-run ``values``.

    ``"below"``: H1 mean < ``threshold``; ``"above"``: H1 mean > ``threshold`` (one-sample
    t-test). ``"within"`` (:func:`decide_within`) and ``"equivalent"``
    (:func:`equivalence`, where a NaN is a pair that both diverged): two one-sided tests
    against ``[-margin, margin]``, the larger of their p-values. With an infinite value
    (a diverged run; the interval is then the bootstrap median's) the t-tests become
    exact sign tests of the median. ``threshold`` is not used by "within" and
    "equivalent" (their margin lies around 0). Counts: :func:`proportion_p_value`.

    >>> round(p_value([1.0, 2.0, 3.0], "above", 0.0), 4)
    0.0371
    """
    if claim == "equivalent":
        return equivalence(values, _margin(margin, claim), "p-value").p_held
    a = _values(values, "p-value")
    if claim in ("below", "above"):
        return _one_sided(a, claim, threshold)
    if claim == "within":
        m = _margin(margin, claim)
        return max(_one_sided(a, "above", -m), _one_sided(a, "below", m))
    raise ValueError(f"claim must be below, above, within or equivalent, got {claim!r}")


def decision_p_values(values: Iterable[float], claim: str, threshold: float = 0.0, *,
                      margin: float | None = None) -> tuple[float, float]:
    """``(p_held, p_not_held)``: the p-values of the rule that holds the claim and of the
    one that rejects it, each scaled so that its rule is "p < :data:`ALPHA`" (exactly so
    for t-intervals; the Wilson and bootstrap-median intervals agree only nearly).

    * ``"below"``/``"above"`` (a 95 % interval, a 2.5 % test each side): twice the
      one-sided p-value of the claim's direction, and twice that of the reverse
      (``mean >= threshold`` for "below": a tie with no spread is not held, as in
      :func:`decide`);
    * ``"within"``: twice the :func:`p_value` (both sides at 2.5 %), and twice the smaller
      one-sided p-value of lying outside (mean > margin, mean < -margin);
    * ``"equivalent"``: the TOST p-value itself (90 % interval), and the outside one as
      for "within" (:func:`equivalence`).
    """
    if claim == "equivalent":
        e = equivalence(values, _margin(margin, claim), "p-value")
        return e.p_held, e.p_not_held
    a = _values(values, "p-value")
    if claim in ("below", "above"):
        reverse = "above" if claim == "below" else "below"
        return (min(1.0, 2 * _one_sided(a, claim, threshold)),
                min(1.0, 2 * _one_sided(a, reverse, threshold, inclusive=True)))
    if claim == "within":
        m = _margin(margin, claim)
        out = min(_one_sided(a, "above", m), _one_sided(a, "below", -m))
        return min(1.0, 2 * p_value(a, claim, margin=m)), min(1.0, 2 * out)
    raise ValueError(f"claim must be below, above, within or equivalent, got {claim!r}")


def proportion_p_value(k: int, n: int, claim: str, threshold: float) -> float:
    """Exact one-sided binomial p-value of a count ``k`` of ``n``: H1 share < ``threshold``
    (``"below"``: ``P(X <= k)``) or > ``threshold`` (``"above"``: ``P(X >= k)``), ``X``
    binomial with the share ``threshold``.

    >>> proportion_p_value(0, 5, "below", 0.5)
    0.03125
    """
    if not 0 <= k <= n or n < 1 or not 0 <= threshold <= 1:
        raise ValueError(f"need 0 <= k <= n, n >= 1 and 0 <= threshold <= 1; "
                         f"got k={k}, n={n}, threshold={threshold}")
    if claim not in ("below", "above"):
        raise ValueError(f"claim must be 'below' or 'above', got {claim!r}")
    return float(stats.binom.cdf(k, n, threshold) if claim == "below"
                 else stats.binom.sf(k - 1, n, threshold))


def proportion_decision_p_values(k: int, n: int, claim: str,
                                 threshold: float) -> tuple[float, float]:
    """``(p_held, p_not_held)`` of a count (:func:`decision_p_values`' scale): twice the
    exact binomial p-value of the claim's direction and of the reverse."""
    reverse = "above" if claim == "below" else "below"
    return (min(1.0, 2 * proportion_p_value(k, n, claim, threshold)),
            min(1.0, 2 * proportion_p_value(k, n, reverse, threshold)))


def combined_p_value(parts: Mapping[str, tuple[float, float]] | Sequence[tuple[float, float]],
                     verdict: str, mode: str = "all") -> float:
    """The p-value a claim of several parts (each ``(p_held, p_not_held)``) enters
    :func:`holm` with: that of its ``verdict`` (:func:`combine` with ``mode``).

    A verdict that needs every part (held under "all", not held under "any") takes the
    largest of the parts' p-values (an intersection-union test: no correction); one
    that any single part gives (not held under "all", held under "any") takes the
    smallest times the number of parts (Bonferroni). Inconclusive: the smaller of the
    two. One part: its own p-values.
    """
    pairs = list(parts.values()) if isinstance(parts, Mapping) else list(parts)
    if not pairs or mode not in MODES:
        raise ValueError(f"need at least one part and a mode in {MODES}")
    held, not_held = (np.array(x, dtype=float) for x in zip(*pairs))
    every, single = (held, not_held) if mode == "all" else (not_held, held)
    p_every, p_single = float(every.max()), min(1.0, float(single.min()) * len(pairs))
    p_held, p_not = (p_every, p_single) if mode == "all" else (p_single, p_every)
    return p_held if verdict == "held" else p_not if verdict in ("not held", "partly") \
        else min(p_held, p_not)


def holm_adjusted(pvalues: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values: with the ``m`` p-values sorted, the ``i``-th (from 0)
    becomes ``max_{j <= i} min(1, (m - j) p_(j))``.

    >>> holm_adjusted({"a": 0.01, "b": 0.04, "c": 0.03})
    {'a': 0.03, 'b': 0.06, 'c': 0.06}
    """
    order = sorted(pvalues, key=lambda k: pvalues[k])
    if any(not 0 <= pvalues[k] <= 1 for k in order):
        raise ValueError(f"p-values must lie in [0, 1], got {dict(pvalues)}")
    adjusted, running = {}, 0.0
    for i, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * float(pvalues[key])))
        adjusted[key] = running
    return {k: adjusted[k] for k in pvalues}


def holm(pvalues: Mapping[str, float], alpha: float = ALPHA) -> dict[str, bool]:
    """Holm-Bonferroni step-down at family-wise level ``alpha``: with the ``m`` p-values
    sorted, reject the smallest while ``p_(i) <= alpha / (m - i)`` (``i`` from 0) and
    stop at the first that is not; returns, per name, whether its null is rejected.

    >>> holm({"a": 0.01, "b": 0.04, "c": 0.03})
    {'a': True, 'b': False, 'c': False}
    """
    return {k: p <= alpha for k, p in holm_adjusted(pvalues).items()}


def adjusted_verdict(verdict: str, rejected: bool) -> str:
    """A verdict after Holm (:func:`holm` over the claims' :func:`combined_p_value`): a
    "held" or "not held" verdict stands only when Holm rejects the null of its own rule
    (``p_held`` for held, ``p_not_held`` for not held: :func:`decision_p_values`);
    otherwise it is "inconclusive". "inconclusive" stays. "partly" (old records) is read
    as "not held". In a family of one claim the verdict is unchanged (for t-intervals).

    >>> adjusted_verdict("held", True), adjusted_verdict("not held", False)
    ('held', 'inconclusive')
    """
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; known: {', '.join(VERDICTS)}")
    verdict = "not held" if verdict == "partly" else verdict
    return verdict if verdict != "inconclusive" and rejected else "inconclusive"


# ------------------------------------------------------------------ fragility


def fragile(verdicts: Sequence[str]) -> bool:
    """Whether a verdict is fragile: the registered analysis's verdict (``verdicts[0]``)
    differs from that of any alternative analysis (``verdicts[1:]``, e.g. with
    :func:`bootstrap_mean_interval`, or after :func:`adjusted_verdict`).

    >>> fragile(["held", "held"]), fragile(["held", "held", "inconclusive"])
    (False, True)
    """
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("fragile needs at least the registered verdict")
    for v in verdicts:
        if v not in VERDICTS:
            raise ValueError(f"unknown verdict {v!r}; known: {', '.join(VERDICTS)}")
    return any(v != verdicts[0] for v in verdicts[1:])
