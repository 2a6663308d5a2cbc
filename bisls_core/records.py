"""Claim records: one JSON file per page, one entry per claim of the paper.

``scripts/scorecard.py`` turns them into the book's replication scorecard.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from . import verdicts
from .cache import REPRODUCE_RTOL, results_dir
from .grids import plan_path
from .scales import SCALES, _use_scale
from .stepsizes import check_choice

__all__ = ["VERDICTS", "record_claim"]

def _same_claim(new: Any, old: Any) -> bool:
    """Does a recomputed claim record ``new`` reproduce the stored ``old``: the same
    keys, text and integers, floats equal to :data:`REPRODUCE_RTOL` (an interval is
    computed from stored arrays, but its last bits can depend on the CPU's vector
    instructions)?"""
    if isinstance(new, float) or isinstance(old, float):
        if isinstance(new, bool) or isinstance(old, bool):
            return False
        if not all(isinstance(v, (int, float)) for v in (new, old)):
            return False
        return bool(np.isclose(new, old, rtol=REPRODUCE_RTOL, atol=0.0, equal_nan=True))
    if isinstance(new, Mapping) and isinstance(old, Mapping):
        return set(new) == set(old) and all(_same_claim(new[k], old[k]) for k in new)
    if isinstance(new, (list, tuple)) and isinstance(old, (list, tuple)):
        return len(new) == len(old) and all(_same_claim(a, b) for a, b in zip(new, old))
    return type(new) is type(old) and new == old


VERDICTS = verdicts.VERDICTS


def record_claim(
    notebook: str,
    claim_id: str,
    *,
    claim: str,
    paper: str,
    ours: str,
    verdict: str,
    scale: str,
    why: str = "",
    interval: verdicts.Interval | None = None,
) -> str:
    """Record one claim of the paper beside what this run measured.

    Written to ``results_dir(scale)/<scale>/claims/<notebook>.json`` (the committed
    ``results/`` only at the book's scale, see :func:`results_dir`), atomically, one
    entry per ``claim_id``, and only when it changes (a record whose floats differ from
    the stored one by round-off, to :data:`REPRODUCE_RTOL`, keeps the stored one);
    ``scripts/scorecard.py`` turns every such file into the book's replication scorecard. Returns the line a notebook prints, e.g.
    ``"claim fig04-spsb-fast: held (SPSB ...)"``.

    ``interval`` (a :class:`bisls_core.verdicts.Interval`, the 95 % interval of the
    quantity the claim is about) adds ``runs``, ``interval`` and ``statistic`` to the
    record (:meth:`~bisls_core.verdicts.Interval.as_record`).
    """
    check_choice("verdict", verdict, VERDICTS)
    if interval is not None and not isinstance(interval, verdicts.Interval):
        raise TypeError(f"interval must be a bisls_core.verdicts.Interval or None, "
                        f"got {type(interval).__name__}")
    check_choice("scale", scale, SCALES)
    _use_scale(scale)
    line = f"claim {claim_id}: {verdict} -- ours: {ours}; paper: {paper}" + (f" ({why})" if why else "")
    if plan_path() is not None:  # a plan records no claim (its records are stand-ins)
        return line
    path = results_dir(scale) / scale / "claims" / f"{notebook}.json"
    try:
        before = path.read_text(encoding="utf-8")
        claims = json.loads(before)
    except (OSError, ValueError):
        before, claims = None, {}
    if not isinstance(claims, dict):
        claims = {}
    record = {"claim": claim, "paper": paper, "ours": ours, "verdict": verdict,
              "scale": scale, "why": why, "notebook": notebook}
    if interval is not None:
        record.update(interval.as_record())
    # the round-off of another CPU in the statistics keeps the stored record
    if not _same_claim(record, claims.get(claim_id)):
        claims[claim_id] = record
    text = json.dumps(claims, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if text != before:  # the same claims leave the file untouched
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".claims.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return line

