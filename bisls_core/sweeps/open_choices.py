"""The page on the paper's open choices (``notebooks/open_choices``): the readings of
:data:`bisls_core.readings.READINGS` measured on Figure 13's setting, the primary reading
chosen by :data:`~bisls_core.readings.PRIMARY_RULE`, and the contested claims' verdicts
under every reading that was run.

The measurement is Figure 13's option-1 row (BiSLS-SGD and BiSLS-Adam, the search
restarted from :math:`\\alpha_{b,0} = 10` at every iteration, hyper-representation sizes of
:mod:`bisls_core.sweeps.hyperrep`), once per reading; its runs share the cache
``"hyperrep"`` with Figure 13 (the ``as-before`` row *is* Figure 13's option 1).
"""

from __future__ import annotations

import math

import numpy as np

from . import hyperrep as H

__all__ = ["CONTESTED", "METHODS", "choose", "claim_table", "committed_claims", "configs", "costs"]

METHODS = ("BiSLS-SGD", "BiSLS-Adam")

#: The claims whose verdicts rest on the upper search (issue: Figures 7a, 7b-c, 8a, 11,
#: 13, 14/15 and the delta = 0 search), by page.
CONTESTED: dict[str, tuple[str, ...]] = {
    "fig07_bisls_vs_tuned": ("fig07-bisls-beats-tuned", "fig07-robust-large-steps"),
    "fig08_ablations": ("fig08-upper-search-essential", "fig08-generalises", "fig08-robust-starts"),
    "fig11_reset_options": ("fig11-option2-worse",),
    "fig13_search_cost": ("fig13-option3-cheaper",),
    "fig14_delta_reset1": ("fig14-delta-robust", "fig14-delta-safeguard"),
    "fig15_delta_reset3": ("fig15-delta-robust", "fig15-delta-safeguard"),
    "search_condition14": ("cond14-delta0-search",),
}


def configs(sz: dict, readings) -> dict[str, dict]:
    """``"<method>, <reading>"`` -> Figure 13's option-1 configuration under that reading."""
    return {f"{m}, {r}": H.bisls(sz, m, reset_upper="reset", reading=r)
            for r in readings for m in METHODS}


def _accepted(rec) -> np.ndarray:
    ok = np.asarray(rec["upper_failures"]) == 0
    return np.asarray(rec["alpha"], float)[ok]


def costs(grid: dict, sz: dict, readings) -> dict[tuple[str, str], dict]:
    """Per (reading, method): ``rounds`` (mean upper rounds per iteration over every search
    and run), ``decades`` (the same times :math:`\\log_{10}(1/w)`), ``failed`` (share of
    failed searches), ``rounds_ok`` (mean rounds of the searches that succeeded) and
    ``step`` (median accepted step)."""
    per_round = math.log10(1 / sz["w"])
    out = {}
    for r in readings:
        for m in METHODS:
            rec = grid[f"{m}, {r}"]
            rounds = np.asarray(rec["upper_rounds"], float)
            failed = np.asarray(rec["upper_failures"]) > 0
            step = _accepted(rec)
            out[r, m] = {"rounds": float(rounds.mean()), "decades": float(rounds.mean() * per_round),
                         "failed": float(failed.mean()),
                         "rounds_ok": float(rounds[~failed].mean()) if (~failed).any() else math.nan,
                         "step": float(np.median(step)) if step.size else math.nan}
    return out


def choose(cost: dict, readings) -> tuple[str, dict[str, float]]:
    """:data:`~bisls_core.readings.PRIMARY_RULE` applied: the reading of smallest
    :func:`~bisls_core.readings.rule_score`; ties within 0.05 go to ``as-before``, then to
    the reading with fewer fields. Returns ``(reading, {reading: score})``."""
    from ..readings import READINGS, rule_score

    score = {r: rule_score({m: cost[r, m]["decades"] for m in METHODS}) for r in readings}
    best = min(score.values())
    tied = [r for r in readings if score[r] <= best + 0.05]
    order = sorted(tied, key=lambda r: (r != "as-before", len(READINGS[r].fields), score[r]))
    return order[0], score


def committed_claims(scale: str, page: str, reading: str) -> dict:
    """The committed claim record of ``page`` under ``reading`` (``{}`` if that reading's
    page was not run): ``results/<scale>/claims/<page>.json`` for the primary reading,
    ``results/<scale>/claims/readings/<reading>/<page>.json`` for the others."""
    from ..cache import committed_results_dir
    from ..readings import PRIMARY_READING
    from ..records import read_claims

    folder = committed_results_dir() / scale / "claims"
    if reading != PRIMARY_READING:
        folder = folder / "readings" / reading
    path = folder / f"{page}.json"
    return read_claims(path) if path.is_file() else {}


def claim_table(scale: str, readings) -> list[list[str]]:
    """Rows ``[claim, cell per reading...]`` for :data:`CONTESTED`: the verdict and interval
    recorded under each reading (:func:`committed_claims`), ``"not run"`` where that
    reading's page was not run."""
    rows = []
    for page, ids in CONTESTED.items():
        recs = {r: committed_claims(scale, page, r) for r in readings}
        rows += [[cid] + [_cell(recs[r].get(cid)) for r in readings] for cid in ids]
    return rows


def _cell(rec: dict | None) -> str:
    if rec is None:
        return "not run"
    iv = rec.get("interval")
    text = f"{rec['verdict']} [{iv[0]:.3g}, {iv[1]:.3g}]" if iv else rec["verdict"]
    runs = _runs(rec)
    return f"{text} n={runs}" if runs else text


def _runs(rec: dict) -> int | None:
    """The runs a claim record rests on: its own ``runs``, else its parts' largest (a
    reading's page may have run more seeds than another's: the scorecard's rule of more
    runs applies to the primary reading only)."""
    if isinstance(rec.get("runs"), int):
        return rec["runs"]
    runs = [p["runs"] for p in (rec.get("parts") or {}).values() if isinstance(p.get("runs"), int)]
    return max(runs) if runs else None
