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

from . import claims_registry  # noqa: F401  (fills the registry with the book's claims)
from . import verdicts
from .cache import REPRODUCE_RTOL, _umask_mode, committed_results_dir, results_dir
from .grids import plan_path
from .scales import SCALES, _use_scale
from .stepsizes import check_choice

__all__ = ["CLAIM_SCHEMA", "ClaimRecordError", "JUDGED_KEYS", "VERDICTS", "adjust_claims",
           "check_claims", "claims_path", "decided_runs", "holm_family", "more_runs_path",
           "read_claims", "read_more_runs", "record_claim", "write_more_runs"]

#: A number of an interval: JSON has no infinities, so they are the strings "inf",
#: "-inf" (and "nan"), as :meth:`bisls_core.verdicts.Interval.as_record` writes them.
_BOUND = {"oneOf": [{"type": "number"}, {"enum": ["inf", "-inf", "nan"]}]}

_VERDICT = {"enum": list(verdicts.VERDICTS)}
_NUMBER_OR_NULL = {"oneOf": [{"type": "number"}, {"type": "null"}]}
#: One part of a judged claim (:func:`bisls_core.registry.judge`): its rule, interval,
#: verdict, p-values and the verdicts of the alternative analyses.
_PART = {
    "type": "object",
    "required": ["verdict", "direction", "p_held", "p_not_held", "bootstrap_verdict"],
    "properties": {
        "verdict": _VERDICT, "bootstrap_verdict": _VERDICT, "window_verdict": _VERDICT,
        "direction": {"enum": ["below", "above", "within", "equivalent"]},
        "statistic": {"type": "string"}, "runs": {"type": "integer", "minimum": 0},
        "interval": {"oneOf": [{"type": "null"},
                               {"type": "array", "minItems": 2, "maxItems": 2, "items": _BOUND}]},
        "estimate": {"oneOf": [{"type": "null"}, _BOUND]},
        "threshold": {"type": "number"}, "margin": _NUMBER_OR_NULL,
        "p_held": {"type": "number", "minimum": 0, "maximum": 1},
        "p_not_held": {"type": "number", "minimum": 0, "maximum": 1},
        "excluded": {"type": "integer", "minimum": 0},
        "one_sided": {"type": "integer", "minimum": 0},
        "pairs": {"type": "object"},
        "correlation": {"type": "number", "minimum": -1, "maximum": 1},
    },
}
#: What a record keeps of a judged claim (:func:`bisls_core.sweeps.claims.judge` with the
#: claim's id); records written before issue 25 have none of it.
JUDGED_KEYS = ("combine", "window", "paired", "parts", "p_value", "bootstrap_verdict",
               "window_verdict", "window_alternative", "fragile")

#: The JSON schema of one page's claim file: ``{claim_id: record}``, at least one claim.
CLAIM_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "minProperties": 1,
    "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9-]*$"},
    "additionalProperties": {
        "type": "object",
        "required": ["claim", "paper", "ours", "verdict", "scale", "why", "notebook"],
        "additionalProperties": False,
        "properties": {
            "claim": {"type": "string", "minLength": 1},
            "paper": {"type": "string", "minLength": 1},
            "ours": {"type": "string", "minLength": 1},
            "verdict": {"enum": list(verdicts.VERDICTS)},
            "scale": {"enum": list(SCALES)},
            "why": {"type": "string"},
            "notebook": {"type": "string", "minLength": 1},
            "runs": {"type": "integer", "minimum": 1},
            "interval": {"type": "array", "minItems": 2, "maxItems": 2, "items": _BOUND},
            "statistic": {"type": "string", "minLength": 1},
            "combine": {"enum": list(verdicts.MODES)},
            "window": {"type": "string", "minLength": 1},
            "paired": {"type": "boolean"},
            "parts": {"type": "object", "minProperties": 1, "additionalProperties": _PART},
            "p_value": {"type": "number", "minimum": 0, "maximum": 1},
            "bootstrap_verdict": _VERDICT,
            "window_verdict": {"oneOf": [_VERDICT, {"type": "null"}]},
            "window_alternative": {"type": "string", "minLength": 1},
            "fragile": {"type": "boolean"},
            "adjusted_verdict": _VERDICT,
            "p_adjusted": _NUMBER_OR_NULL,
        },
        "dependentRequired": {"interval": ["runs", "statistic"], "runs": ["interval"],
                              "statistic": ["interval"],
                              **{k: list(JUDGED_KEYS) for k in JUDGED_KEYS}},
    },
}


class ClaimRecordError(ValueError):
    """A claim file that cannot be read or does not follow :data:`CLAIM_SCHEMA`; the
    message names the file, the claim and the key."""


def _bound(v: Any) -> float:
    return float(v)  # "inf", "-inf", "nan" and numbers alike


def check_claims(claims: Any, path: Path | str, writing: bool = False) -> dict[str, dict]:
    """``claims`` checked against :data:`CLAIM_SCHEMA` and the rules a schema cannot say
    (each record's ``notebook`` is the file's name; an interval's low end is not above
    its high end); :class:`ClaimRecordError` naming ``path``, the claim and the key."""
    import jsonschema

    path = Path(path)
    errors = sorted(jsonschema.Draft202012Validator(CLAIM_SCHEMA).iter_errors(claims),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        err = errors[0]
        where = list(err.absolute_path)
        claim = f"claim {where[0]!r}" if where else "the file"
        key = f", key {where[1]!r}" if len(where) > 1 else ""
        hint = ("the page computed a record the schema refuses: nothing was written" if writing
                else f"restore the file with `git checkout -- {path}` or rerun its page")
        raise ClaimRecordError(f"claim record {path}: {claim}{key}: {err.message} "
                               f"({len(errors)} problem(s); {hint})")
    for claim_id, record in claims.items():
        if record["notebook"] != path.stem:
            raise ClaimRecordError(f"claim record {path}: claim {claim_id!r}, key 'notebook': "
                                   f"{record['notebook']!r} is not the file's page {path.stem!r}")
        if "interval" in record:
            low, high = map(_bound, record["interval"])
            if low > high:
                raise ClaimRecordError(f"claim record {path}: claim {claim_id!r}, key 'interval': "
                                       f"its low end {low} is above its high end {high}")
    return claims


def read_claims(path: Path | str) -> dict[str, dict]:
    """The claims of one page's file, checked (:func:`check_claims`); a file that is not
    valid JSON is a :class:`ClaimRecordError` naming it and the line."""
    path = Path(path)
    try:
        claims = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ClaimRecordError(f"claim record {path} is not valid JSON ({err}); restore it with "
                               f"`git checkout -- {path}` or rerun its page") from err
    return check_claims(claims, path)

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


def claims_path(scale: str, notebook: str, reading: str | None = None) -> Path:
    """The claim record of a page: ``<results>/<scale>/claims/<notebook>.json`` under the
    book's primary reading, ``.../claims/readings/<reading>/<notebook>.json`` under
    another (``reading=None``: this process's, :func:`bisls_core.scales.reading_in_use`),
    with ``<results>`` from :func:`results_dir`."""
    from .readings import PRIMARY_READING
    from .scales import reading_in_use

    reading = reading_in_use() if reading is None else reading
    folder = results_dir(scale) / scale / "claims"
    if reading != PRIMARY_READING:
        folder = folder / "readings" / reading
    return folder / f"{notebook}.json"


def more_runs_path(scale: str) -> Path:
    """The decision of :data:`bisls_core.registry.MORE_RUNS_RULE` at ``scale``:
    ``<committed results>/<scale>/more_runs.json`` (written once by ``scripts/more_runs.py``)."""
    return committed_results_dir() / scale / "more_runs.json"


def read_more_runs(scale: str) -> dict | None:
    """The decision file at ``scale`` (:func:`more_runs_path`), ``None`` when there is none;
    a file that is not JSON or has no ``pages`` mapping is a :class:`ClaimRecordError`
    naming it."""
    path = more_runs_path(scale)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data["pages"], dict):
            raise TypeError(f"'pages' is a {type(data['pages']).__name__}, not a mapping")
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ClaimRecordError(f"{path} is not a decision of more runs ({err}); restore it "
                               f"with `git checkout -- {path}`") from err
    return data


def write_more_runs(scale: str, data: dict) -> Path:
    """Write the decision file at ``scale`` (atomically, sorted keys); its path."""
    path = more_runs_path(scale)
    _write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return path


def decided_runs(page: str, scale: str, n_runs: int | None) -> int | None:
    """The evaluation runs of ``page`` at ``scale``: ``n_runs`` when the reader set it;
    else the number :data:`bisls_core.registry.MORE_RUNS_RULE` gave the page, where its
    decision file (:func:`read_more_runs`) lists the page as ``applied`` (its runs are
    in the cache); else ``None`` (the scale's preset).

    >>> decided_runs("fig04_quadratics", "smoke", None) is None
    True
    """
    if n_runs is not None:
        return n_runs
    data = read_more_runs(scale)
    entry = data["pages"].get(page) if data else None
    if not entry or not entry.get("applied"):
        return None
    runs = entry.get("runs")
    if not isinstance(runs, int) or isinstance(runs, bool) or runs < 1:
        raise ClaimRecordError(f"{more_runs_path(scale)}: page {page!r} has no valid 'runs' "
                               f"({runs!r})")
    return runs


def record_claim(
    notebook: str,
    claim_id: str,
    *,
    claim: str,
    paper: str,
    ours: str,
    verdict: str | None = None,
    scale: str,
    why: str = "",
    interval: verdicts.Interval | None = None,
    judged: Mapping[str, Any] | None = None,
) -> str:
    """Record one claim of the paper beside what this run measured.

    ``claim_id`` must be registered (:mod:`bisls_core.claims_registry`: its analysis is
    fixed in advance): an unknown id is a :class:`bisls_core.registry.UnknownClaimError`
    and nothing is written, so a page cannot record a verdict computed outside the
    registry (nor a claim registered for another page). ``judged`` (what
    :func:`bisls_core.sweeps.claims.judge` returns for this claim id) adds the registered analysis to the record (:data:`JUDGED_KEYS`: every
    part's rule, interval, verdict and p-values, the claim's p-value for Holm's
    correction, the verdicts under the bootstrap and the neighbouring-window
    alternatives and whether the verdict is fragile); ``verdict`` and ``interval``
    default to its own and must agree with it.

    Written to :func:`claims_path` (``results_dir(scale)/<scale>/claims/<notebook>.json``
    under the primary reading; the committed ``results/`` only at the book's scale, see
    :func:`results_dir`), atomically, one
    entry per ``claim_id``, and only when it changes (a record whose floats differ from
    the stored one by round-off, to :data:`REPRODUCE_RTOL`, keeps the stored one);
    ``scripts/scorecard.py`` turns every such file into the book's replication scorecard. Returns the line a notebook prints, e.g.
    ``"claim fig04-spsb-fast: held (SPSB ...)"``.

    ``interval`` (a :class:`bisls_core.verdicts.Interval`, the 95 % interval of the
    quantity the claim is about) adds ``runs``, ``interval`` and ``statistic`` to the
    record (:meth:`~bisls_core.verdicts.Interval.as_record`).
    """
    from .registry import UnknownClaimError, lookup

    try:  # a claim outside the registry is never recorded
        registered = lookup(claim_id)
    except UnknownClaimError as err:
        raise UnknownClaimError(f"{err} (page {notebook!r}): register it, with its analysis, in "
                                "bisls_core/claims_registry.py before recording it") from None
    if registered.page != notebook:
        raise ValueError(f"claim {claim_id!r} is registered for the page {registered.page!r}, "
                         f"not {notebook!r}")
    verdict, interval = _from_judged(claim_id, verdict, interval, judged)
    check_choice("verdict", verdict, VERDICTS)
    if interval is not None and not isinstance(interval, verdicts.Interval):
        raise TypeError(f"interval must be a bisls_core.verdicts.Interval or None, "
                        f"got {type(interval).__name__}")
    check_choice("scale", scale, SCALES)
    _use_scale(scale)
    line = f"claim {claim_id}: {verdict} -- ours: {ours}; paper: {paper}" + (f" ({why})" if why else "")
    if plan_path() is not None:  # a plan records no claim (its records are stand-ins)
        return line
    record = {"claim": claim, "paper": paper, "ours": ours, "verdict": verdict,
              "scale": scale, "why": why, "notebook": notebook}
    if interval is not None:
        record.update(interval.as_record())
    if judged is not None:
        record.update({k: judged[k] for k in JUDGED_KEYS})
    _write_record(claims_path(scale, notebook), claim_id, record)
    return line


def _from_judged(claim_id: str, verdict: str | None, interval, judged) -> tuple:
    """``verdict`` and ``interval``, defaulting to those of ``judged`` and checked against
    them (``judged`` must be this claim's)."""
    if judged is None:
        if verdict is None:
            raise TypeError(f"claim {claim_id!r}: record_claim needs a verdict or judged=")
        return verdict, interval
    missing = [k for k in ("claim", "verdict", *JUDGED_KEYS) if k not in judged]
    if missing:
        raise ValueError(f"claim {claim_id!r}: judged= lacks {missing}: pass what "
                         "claims.judge(parts, claim=...) returns")
    if judged["claim"] != claim_id:
        raise ValueError(f"claim {claim_id!r}: judged= was judged as {judged['claim']!r}")
    if verdict is not None and verdict != judged["verdict"]:
        raise ValueError(f"claim {claim_id!r}: verdict {verdict!r} differs from the judged "
                         f"{judged['verdict']!r}")
    return judged["verdict"], interval if interval is not None else judged.get("interval")


def _write_record(path: Path, claim_id: str, record: dict) -> None:
    """Write ``record`` as ``claim_id`` into the claim file ``path`` (atomically, only
    when it changes beyond round-off)."""
    before, claims = None, {}
    if path.is_file():  # an invalid stored file is an error, never silently replaced
        before = path.read_text(encoding="utf-8")
        claims = read_claims(path)
    # the round-off of another CPU in the statistics keeps the stored record
    if not _same_claim(record, claims.get(claim_id)):
        claims[claim_id] = record
    check_claims({claim_id: record}, path, writing=True)  # what is written follows it too
    text = json.dumps(claims, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if text != before:  # the same claims leave the file untouched
        _write_atomic(path, text)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".claims.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        _umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def holm_family(claims_by_page: dict[str, dict[str, dict]]) -> tuple[dict[str, str], dict[str, float]]:
    """Holm's adjustment across the paper's claims (pages not named ``beyond*``) that store
    a p-value: per claim id, the verdict that stands
    (:func:`bisls_core.registry.adjust`) and the Holm-adjusted p-value."""
    from .registry import adjust

    family = {cid: rec for page, claims in claims_by_page.items() if not page.startswith("beyond")
              for cid, rec in claims.items() if rec.get("p_value") is not None}
    if not family:
        return {}, {}
    return adjust(family), verdicts.holm_adjusted({k: r["p_value"] for k, r in family.items()})


def adjust_claims(scale: str) -> list[Path]:
    """Write each claim's verdict after Holm's adjustment (``adjusted_verdict``,
    ``p_adjusted``) into the claim records of ``scale`` (the book's primary reading), once
    the pages have recorded them: a claim outside the family (beyond the paper, or without
    a p-value) keeps its own verdict, with ``p_adjusted`` null. Called by the commands that
    update the book after their pages ran (``scripts/run_notebooks.py``); returns the
    files it changed."""
    folder = results_dir(scale) / scale / "claims"
    files = sorted(folder.glob("*.json"))
    by_page = {path.stem: read_claims(path) for path in files}
    adjusted, p_adj = holm_family(by_page)
    changed = []
    for path in files:
        claims = by_page[path.stem]
        for cid, rec in claims.items():
            rec["adjusted_verdict"] = adjusted.get(cid, rec["verdict"])
            rec["p_adjusted"] = p_adj.get(cid)
        check_claims(claims, path, writing=True)
        text = json.dumps(claims, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        if text != path.read_text(encoding="utf-8"):
            _write_atomic(path, text)
            changed.append(path)
    return changed
