"""Turning per-run numbers into a claim's verdict (the rules of :mod:`bisls_core.verdicts`).

A claim with several parts (two methods, two hypergradients, ...) judges each part
on its own interval and combines them (:func:`bisls_core.verdicts.combine`: all parts
must hold, or with ``mode="any"`` one suffices); the record stores the interval of the
part that decides the verdict (the first part whose verdict is the claim's verdict),
and ``ours`` lists every part. A part that rests on one run has no interval: it is
"inconclusive" ("1 run: no interval"), never a verdict from one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import verdicts as V

__all__ = ["ONE_RUN", "alike", "judge", "log_ratios", "part", "relative_tolerance", "share", "show",
           "spread"]

#: The reason given for a claim (or part) that rests on one run.
ONE_RUN = "1 run: no interval"


def part(values: Sequence[float], statistic: str, *, claim: str = "below",
         threshold: float = 0.0, within: float | None = None) -> tuple[str, V.Interval | None]:
    """Verdict and interval of one part from its per-run ``values``: ``decide`` against
    ``threshold`` (``claim`` "below"/"above"), or ``decide_within(within)`` when given.
    Fewer than :data:`bisls_core.verdicts.MIN_RUNS` values: ``("inconclusive", None)``."""
    values = np.asarray(values, dtype=float).ravel()
    if values.size < V.MIN_RUNS:
        return "inconclusive", None
    iv = V.mean_interval(values, statistic)
    return (V.decide_within(iv, within) if within is not None
            else V.decide(iv, claim=claim, threshold=threshold)), iv


def share(k: int, n: int, statistic: str, *, claim: str = "above",
          threshold: float = 0.0) -> tuple[str, V.Interval]:
    """Verdict and Wilson interval of a count ``k`` of ``n`` runs (e.g. runs that diverged):
    ``claim="above"``, ``threshold=0`` reads "it happens" (the interval excludes 0)."""
    iv = V.proportion_interval(int(k), int(n), statistic)
    return V.decide(iv, claim=claim, threshold=threshold), iv


def show(iv: V.Interval | None, fmt: str = ".3g") -> str:
    """``"0.012 [0.004, 0.020] over 5 runs"``, or ``"1 run: no interval"`` for ``None``."""
    return ONE_RUN if iv is None else f"{iv.text(fmt)} over {iv.runs} runs"


#: Per run (paired by seed), ``log(a / b)`` with a diverged run as the worst outcome
#: (:func:`bisls_core.verdicts.paired_log_ratios`, the rule of every paired comparison).
log_ratios = V.paired_log_ratios


def spread(finals: Sequence[Sequence[float]], statistic: str = "spread of log final loss",
           rel: float = 0.05) -> tuple[str, V.Interval | None]:
    """"These configurations end alike" (within ``rel``): per seed, the spread (max - min)
    of the log final values over the configurations (a diverged run: infinite), judged
    with ``decide_within(log(1 + rel))``. ``finals``: one array of per-run values per
    configuration, paired by seed."""
    a = np.asarray([np.asarray(v, dtype=float).ravel() for v in finals], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(a)
    per_seed = np.where(np.isfinite(logs).all(axis=0), np.ptp(np.nan_to_num(logs), axis=0), np.inf)
    return part(per_seed, statistic, within=relative_tolerance(rel))


def relative_tolerance(rel: float) -> float:
    """A tolerance on a log-ratio for "within ``rel`` of each other" (e.g. 0.05: 5 %)."""
    if not 0 < rel < 1:
        raise ValueError(f"rel must lie in (0, 1), got {rel!r}")
    return float(np.log1p(rel))


def alike(finals: Mapping[str, Sequence[float]] | Sequence[Sequence[float]],
          statistic: str = "log final loss", rel: float = 0.05, *,
          reference: int | str | None = None) -> tuple[str, V.Interval | None]:
    """"These configurations end alike" (within ``rel``) as an equivalence test: for every
    pair of configurations (or each against ``reference``), the two one-sided tests of
    the per-seed log-ratio of the final values against ``log(1 + rel)``
    (:func:`bisls_core.verdicts.equivalent_all`; a pair of seeds that both diverged is
    left out). Returns the verdict and the 90 % interval of the deciding pair (the first
    whose verdict is the claim's), ``None`` when it has fewer than two finite pairs.

    >>> alike([[1.0, 2.0, 3.0], [1.01, 2.0, 2.99]])[0]
    'held'
    """
    verdict, tests = V.equivalent_all(finals, relative_tolerance(rel), statistic,
                                      reference=reference, log=True)
    deciding = next(e for e in tests.values() if e.verdict == verdict)
    return verdict, deciding.interval


def judge(parts: Mapping[str, tuple[str, V.Interval | None]], *, mode: str = "all",
          fmt: str = ".3g") -> dict:
    """Combine the parts ``{name: (verdict, interval)}`` of a claim.

    Returns ``verdict`` (:func:`bisls_core.verdicts.combine` with ``mode``: "all" parts
    must hold, or "any" one), ``interval`` (of the deciding part, the first whose
    verdict is the claim's; ``None`` if it rests on one run), ``text`` (every part: its
    estimate, interval, runs and verdict) and ``why`` (names the parts resting on one
    run, else the parts not held or inconclusive, else empty)."""
    if not parts:
        raise ValueError("judge needs at least one part")
    verdict = V.combine({name: v for name, (v, _) in parts.items()}, mode=mode)
    deciding = next((name for name, (v, _) in parts.items() if v == verdict), next(iter(parts)))
    texts, one_run, weak = [], [], []
    for name, (v, iv) in parts.items():
        if iv is None:
            one_run.append(name)
            texts.append(f"{name}: 1 run")
        else:
            texts.append(f"{name}: {show(iv, fmt)}, {v}")
        if v != "held" and iv is not None:
            weak.append(f"{name} {v}")
    why = (f"{ONE_RUN} ({', '.join(one_run)})" if one_run and len(parts) > 1 else ONE_RUN) \
        if one_run else "; ".join(weak)
    return {"verdict": verdict, "interval": parts[deciding][1], "text": "; ".join(texts),
            "why": why}
