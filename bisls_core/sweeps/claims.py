"""Turning per-run numbers into a claim's verdict (the rules of :mod:`bisls_core.verdicts`).

Each function returns a :class:`~bisls_core.registry.Part`: it unpacks as
``(verdict, interval)`` and carries the per-run values and the rule it was judged by, so
that :func:`judge` can hand the claim to the claims registry
(:func:`bisls_core.registry.judge`), which checks each part's rule against the one fixed
in advance and adds the p-value, the bootstrap and window alternatives and the
fragility flag that the claim record stores. A claim with several parts (two methods,
two hypergradients, ...) judges each part on its own interval and combines them
(:func:`bisls_core.verdicts.combine`: all parts must hold, or with the registered
``combine="any"`` one suffices); the record stores the interval of the part that
decides the verdict (the first part whose verdict is the claim's verdict) and every
part's record. A part that rests on one run has no interval: it is "inconclusive"
("1 run: no interval"), never a verdict from one run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import claims_registry  # noqa: F401  (fills the registry with the book's claims)
from .. import registry as R
from .. import verdicts as V
from ..registry import NEIGHBOUR_FRACTION, Part, final_window

__all__ = ["NEIGHBOUR_FRACTION", "ONE_RUN", "Paired", "Part", "alike", "differences", "final_window",
           "judge", "log_ratios", "part", "relative_tolerance", "seed_correlation", "share", "show",
           "spread", "worst_of"]

#: The reason given for a claim (or part) that rests on one run.
ONE_RUN = "1 run: no interval"


def part(values: Sequence[float], statistic: str, *, claim: str = "below",
         threshold: float = 0.0, within: float | None = None, horizons=None) -> Part:
    """Verdict and interval of one part from its per-run ``values``: ``decide`` against
    ``threshold`` (``claim`` "below"/"above"), or ``decide_within(within)`` when given.
    Fewer than :data:`bisls_core.verdicts.MIN_RUNS` values: ``("inconclusive", None)``.
    ``horizons``: the horizons a rate claim's slopes were fitted on
    (:func:`bisls_core.registry.rate_threshold`)."""
    correlation = getattr(values, "correlation", None)  # a paired comparison's (log_ratios)
    values = np.asarray(values, dtype=float).ravel()
    rule = dict(direction="within", threshold=0.0, margin=within) if within is not None \
        else dict(direction=claim, threshold=threshold)
    meta = dict(values=values, statistic=statistic, horizons=horizons, **rule)
    if values.size < V.MIN_RUNS:
        out = Part("inconclusive", None, **meta)
    else:
        iv = V.mean_interval(values, statistic)
        out = Part(V.decide_within(iv, within) if within is not None
                   else V.decide(iv, claim=claim, threshold=threshold), iv, **meta)
    out.correlation = correlation
    return out


def share(k: int, n: int, statistic: str, *, claim: str = "above",
          threshold: float = 0.0) -> Part:
    """Verdict and Wilson interval of a count ``k`` of ``n`` runs (e.g. runs that diverged):
    ``claim="above"``, ``threshold=0`` reads "it happens" (the interval excludes 0)."""
    iv = V.proportion_interval(int(k), int(n), statistic)
    return Part(V.decide(iv, claim=claim, threshold=threshold), iv, values=R.Count(int(k), int(n)),
                statistic=statistic, direction=claim, threshold=threshold)


def show(iv: V.Interval | None, fmt: str = ".3g") -> str:
    """``"0.012 [0.004, 0.020] over 5 runs"``, or ``"1 run: no interval"`` for ``None``."""
    return ONE_RUN if iv is None else f"{iv.text(fmt)} over {iv.runs} runs"


#: Per run (paired by seed), ``log(a / b)`` with a diverged run as the worst outcome
#: (:func:`bisls_core.verdicts.paired_log_ratios`, the rule of every paired comparison).
def log_ratios(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Per seed, ``log a - log b`` (:func:`bisls_core.verdicts.paired_log_ratios`: a diverged
    run the worst outcome, both diverged a tie), as an array that also carries the
    per-seed correlation of ``log a`` and ``log b`` (``correlation``: over the seeds where
    both are finite, ``None`` with fewer than 3 or no spread), which :func:`part` stores
    with the part: pairing pays when it is positive."""
    out = V.paired_log_ratios(a, b).view(Paired)
    with np.errstate(divide="ignore", invalid="ignore"):
        out.correlation = seed_correlation(np.log(np.asarray(a, float)), np.log(np.asarray(b, float)))
    return out


class Paired(np.ndarray):
    """Per-seed values of a paired comparison, with the two arms' ``correlation``."""

    correlation: float | None = None


def seed_correlation(a, b) -> float | None:
    """Pearson correlation of two arms' per-seed values over the seeds where both are
    finite; ``None`` with fewer than 3 such seeds or no spread in an arm."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return None
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def differences(a: Sequence[float], b: Sequence[float], *,
                lower_is_better: bool = True) -> np.ndarray:
    """Per seed, ``a - b`` of two methods' per-run values (paired by seed) with a diverged
    run (NaN) the worst outcome (:func:`bisls_core.verdicts.diverged_as_worst`); both
    diverged: a tie (0).

    >>> nan = float("nan")
    >>> differences([0.9, nan, nan], [0.8, 0.7, nan], lower_is_better=False)
    array([ 0.1, -inf,  0. ])
    """
    a, b = V.diverged_as_worst(a, b, lower_is_better=lower_is_better)
    with np.errstate(invalid="ignore"):
        out = a - b
    return np.where(np.isnan(out), 0.0, out)


def worst_of(*values: Sequence[float], lower_is_better: bool = True) -> np.ndarray:
    """Per seed, the worse of several methods' per-run values (paired by seed), a diverged
    run (NaN) the worst outcome (:func:`bisls_core.verdicts.diverged_as_worst`): ``inf``
    when lower is better. Never drops a diverged run, as ``np.fmax``/``np.fmin`` would.

    >>> worst_of([1.0, float("nan")], [2.0, 1.0])
    array([ 2., inf])
    """
    worst = np.inf if lower_is_better else -np.inf
    arrays = [np.where(np.isnan(v), worst, v) for v in
              (np.asarray(x, dtype=float).ravel() for x in values)]
    return (np.max if lower_is_better else np.min)(np.vstack(arrays), axis=0)


def spread(finals: Sequence[Sequence[float]], statistic: str = "spread of log final loss",
           rel: float = 0.05) -> Part:
    """"These configurations end alike" (within ``rel``) as the former rule: per seed, the
    spread (max - min) of the log final values over the configurations (a diverged run:
    infinite), judged with ``decide_within(log(1 + rel))``. ``finals``: one array of
    per-run values per configuration, paired by seed. The book's "alike" claims use the
    equivalence test of :func:`alike` instead."""
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
          reference: int | str | None = None) -> Part:
    """"These configurations end alike" (within ``rel``) as an equivalence test: for every
    pair of configurations (or each against ``reference``), the two one-sided tests of
    the per-seed log-ratio of the final values against ``log(1 + rel)``
    (:func:`bisls_core.verdicts.equivalent_all`; a pair of seeds that both diverged is
    left out and counted; one diverged: the pair is not alike on that side). Returns the
    verdict and the 90 % interval of the deciding pair (the first whose verdict is the
    claim's), ``None`` when it has fewer than two finite pairs. ``finals``: per-run final
    values of each configuration, paired by seed (NaN or inf: a diverged run).

    >>> alike([[1.0, 2.0, 3.0], [1.01, 2.0, 2.99]])[0]
    'held'
    """
    named = dict(finals) if isinstance(finals, Mapping) else dict(enumerate(finals))
    arms = {}
    for name, v in named.items():
        v = np.asarray(v, dtype=float).ravel()
        ok = np.isfinite(v)
        if (v[ok] <= 0).any():
            raise ValueError(f"{statistic}: alike compares log final values, which must be positive")
        arms[str(name)] = np.where(ok, np.log(np.where(ok, v, 1.0)), np.nan)  # NaN: diverged
    margin = relative_tolerance(rel)
    verdict, tests = V.equivalent_all(arms, margin, statistic, reference=reference, log=False)
    deciding = next(e for e in tests.values() if e.verdict == verdict)
    return Part(verdict, deciding.interval, values=arms, statistic=statistic,
                direction="equivalent", margin=margin, reference=reference)


def judge(parts: Mapping[str, tuple[str, V.Interval | None]], *, claim: str | None = None,
          mode: str | None = None, fmt: str = ".3g", window: Mapping | None = None) -> dict:
    """Combine the parts ``{name: (verdict, interval)}`` of a claim.

    Returns ``verdict`` (:func:`bisls_core.verdicts.combine` with ``mode``: "all" parts
    must hold, or "any" one), ``interval`` (of the deciding part, the first whose
    verdict is the claim's; ``None`` if it rests on one run), ``text`` (every part: its
    estimate, interval, runs and verdict) and ``why`` (names the parts resting on one
    run, else the parts not held or inconclusive, else empty).

    ``claim``: the registered id (every page's claims): the parts must be
    :class:`Part` objects (from :func:`part`, :func:`share`, :func:`alike`), ``mode`` is
    the registered one (another is an error), each part's rule is checked against the
    registered rule and the result adds what :func:`bisls_core.registry.judge` returns
    (``parts``, ``p_value``, ``bootstrap_verdict``, ``window_verdict``,
    ``window_alternative``, ``fragile``, ...). ``window``: the parts computed from the
    neighbouring final-value window (:data:`bisls_core.registry.NEIGHBOUR_FRACTION`);
    required when the claim's values come from a window, refused otherwise."""
    if not parts:
        raise ValueError("judge needs at least one part")
    record = _registered(parts, claim, mode, window) if claim is not None else {}
    mode = record.get("combine", mode or "all")
    verdict = V.combine({name: v for name, (v, _) in parts.items()}, mode=mode)
    if record and record["verdict"] != verdict:
        raise AssertionError(f"claim {claim!r}: the parts give {verdict!r}, the registry "
                             f"{record['verdict']!r}")
    deciding = next((name for name, (v, _) in parts.items() if v == verdict), next(iter(parts)))
    return {**record, "verdict": verdict, "interval": parts[deciding][1],
            "text": _text(parts, fmt), "why": _why(parts)}


def _registered(parts: Mapping, claim: str, mode: str | None, window: Mapping | None) -> dict:
    """:func:`bisls_core.registry.judge` of the registered ``claim`` on ``parts``."""
    registered = R.lookup(claim)
    if mode is not None and mode != registered.combine:
        raise R.RuleMismatchError(f"claim {claim!r}: combined with mode {mode!r}, the registry "
                                  f"says {registered.combine!r}")
    bare = [name for name, p in parts.items() if not isinstance(p, Part)]
    if bare:
        raise TypeError(f"claim {claim!r}: parts {bare} carry no per-run values (build them "
                        "with claims.part, share or alike)")
    if registered.windowed and window is None:
        raise ValueError(f"claim {claim!r}: its values come from a final-value window "
                         f"({registered.window}): pass window=, the parts computed from the "
                         f"neighbouring window ({R.NEIGHBOUR_WINDOW})")
    return R.judge(registered, dict(parts), window=window)


def _text(parts: Mapping, fmt: str) -> str:
    """Every part: its estimate, interval, runs and verdict."""
    return "; ".join(f"{name}: 1 run" if iv is None else f"{name}: {show(iv, fmt)}, {v}"
                     for name, (v, iv) in parts.items())


def _why(parts: Mapping) -> str:
    """The parts resting on one run, else the parts not held or inconclusive."""
    one_run = [name for name, (_, iv) in parts.items() if iv is None]
    if one_run:
        return f"{ONE_RUN} ({', '.join(one_run)})" if len(parts) > 1 else ONE_RUN
    return "; ".join(f"{name} {v}" for name, (v, iv) in parts.items() if v != "held")
