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
``"partly"``              only for a claim with several parts, when some parts
                          are held and others are not held (:func:`combine`)
========================  =====================================================

Intervals: a Student-t interval of the mean when every per-run value is finite;
when some are infinite (a diverged run counts as infinitely worse) a percentile
bootstrap interval of the **median** (seeded, so deterministic), which stays
finite as long as fewer than about half the runs diverged. Counts (``k`` of
``n`` runs diverged) get a Wilson score interval. A verdict never rests on one
run: :func:`mean_interval` refuses fewer than :data:`MIN_RUNS` values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "LEVEL",
    "MIN_RUNS",
    "VERDICTS",
    "Interval",
    "combine",
    "decide",
    "decide_within",
    "diverged_as_worst",
    "log_ratio_interval",
    "mean_interval",
    "paired_difference",
    "paired_log_ratios",
    "proportion_interval",
]

#: Every verdict a claim record may carry.
VERDICTS = ("held", "partly", "not held", "inconclusive")
#: Confidence level of every interval.
LEVEL = 0.95
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


def combine(parts: Mapping[str, str] | Sequence[str]) -> str:
    """Verdict of a claim with several parts: the common verdict when all agree,
    ``"partly"`` when some parts are held and others not held, otherwise
    ``"inconclusive"``."""
    verdicts = list(parts.values()) if isinstance(parts, Mapping) else list(parts)
    if not verdicts:
        raise ValueError("combine needs at least one part")
    for v in verdicts:
        if v not in VERDICTS:
            raise ValueError(f"unknown verdict {v!r}; known: {', '.join(VERDICTS)}")
    if len(set(verdicts)) == 1:
        return verdicts[0]
    if "held" in verdicts and ("not held" in verdicts or "partly" in verdicts):
        return "partly"
    return "inconclusive"
