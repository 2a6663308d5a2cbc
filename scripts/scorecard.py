"""Generate book/scorecard.md (and its summary figure) from the claims the notebooks recorded.

Every figure and theorem notebook ends by recording, for each quantitative
claim of the paper it checks, the paper's number, ours and a verdict
(``bisls_core.experiments.record_claim``), under ``results/<scale>/claims/``.
This script collects those of the book's scale only (``experiments.book_scale()``:
``$BISLS_BOOK_SCALE``, else ``cpu``; ``make book SCALE=paper`` sets it), so that the
scorecard says what the pages say, into one page: a narrow table (page, verdict badge, claim)
with the paper's number, ours, the interval and the reason beneath each claim,
and a figure of the verdict counts per problem family
(``book/scorecard_summary.svg``). ``make book`` and ``make test`` run it, so the
page follows the results; it is never edited by hand. It also writes the scales page
(``book/scales.md``: the runs behind the book's scale, their hardware and time).

    python scripts/scorecard.py                     # book/scorecard.md, book/scales.md
    python scripts/scorecard.py --out .scratch/book # the same pages elsewhere (make smoke)
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bisls_core.experiments import book_scale, committed_results_dir  # noqa: E402
from bisls_core.records import ClaimRecordError, read_claims  # noqa: E402

OUT = ROOT / "book" / "scorecard.md"
SUMMARY_FIG = ROOT / "book" / "scorecard_summary.svg"
SCALES_OUT = ROOT / "book" / "scales.md"
#: Verdict -> sphinx-design badge role (text on a coloured background: readable
#: without an emoji font, and by a screen reader).
BADGE = {"held": "bdg-success", "partly": "bdg-warning", "not held": "bdg-danger",
         "inconclusive": "bdg-muted"}
#: Verdict -> colour of the summary figure: the badges' colours in the theme's light mode.
COLOR = {"held": "#00843f", "partly": "#f66a0a", "not held": "#d72d47", "inconclusive": "#29313d"}
LEGEND = {
    "held": "the claim held at the scale we ran",
    "partly": "some parts of the claim held and others did not",
    "not held": "our runs contradict the claim",
    "inconclusive": "our runs cannot tell (the evidence straddles the decision point)",
}
#: Problem family of each page of the paper (the summary figure's rows). A page
#: that records claims must be listed (tests/test_book_site.py checks it).
FAMILY = {
    "fig04_quadratics": "Quadratics", "fig10_quadratic_trajectories": "Quadratics",
    "fig05_w8a_logistic": "w8a logistic regression",
    "fig17_one_vs_two_samples": "w8a logistic regression",
    "thm1_convex_rate": "Convergence rates", "thm2_strongly_convex_rate": "Convergence rates",
    "thm3_bisps_nonconvex_rate": "Convergence rates",
    **{nb: "Hyper-representation" for nb in (
        "fig03_sgd_instability", "fig07_bisls_vs_tuned", "fig08_ablations", "fig11_reset_options",
        "fig12_eta_sweep", "fig13_search_cost", "fig14_delta_reset1", "fig15_delta_reset3",
        "fig18_bisps_one_vs_two_samples", "search_condition14")},
    **{nb: "Data distillation" for nb in (
        "fig06_bisps_vs_decaying", "fig09_distillation", "fig16_bisps_vs_bisls_T50",
        "fig19_bisps_one_vs_two_samples")},
}


def collect(scale: str | None = None) -> dict[str, tuple[str, dict]]:
    """``notebook -> (scale, {claim_id: entry})``: the claims recorded at ``scale``,
    the book's scale by default (:func:`bisls_core.experiments.book_scale`). The claims
    of any other scale are not the pages' and are left out."""
    scale = scale or book_scale()
    found = {path.stem: (scale, read_claims(path))  # checked: an invalid record stops the build
             for path in sorted((committed_results_dir() / scale / "claims").glob("*.json"))}
    return found


def check_complete(found: dict, scale: str | None = None) -> None:
    """Every page of :data:`FAMILY` has its claim file: a page whose file is gone would
    silently drop its claims from the scorecard."""
    missing = sorted(set(FAMILY) - set(found))
    if found and missing:
        raise ClaimRecordError(f"no claim file for the page(s) {missing} in "
                               f"{committed_results_dir() / (scale or book_scale()) / 'claims'}: "
                               "run `make results` (or restore the files from git)")


def is_beyond(notebook: str) -> bool:
    """A page of checks the paper does not make (not counted in the summary)."""
    return notebook.startswith("beyond")


def family(notebook: str) -> str:
    return "Beyond the paper" if is_beyond(notebook) else FAMILY.get(notebook, "Other")


def cell(text: str) -> str:
    """One line of Markdown inside a table cell."""
    return " ".join(str(text).split())


def page_label(notebook: str) -> str:
    """``fig04_quadratics`` -> ``Figure 4``; ``thm1_...`` -> ``Theorem 1``."""
    m = re.match(r"(fig|thm)0*(\d+)", notebook)
    if m:
        return f"{'Figure' if m[1] == 'fig' else 'Theorem'} {m[2]}"
    return notebook.split("_", 1)[-1].replace("_", " ").capitalize() if is_beyond(notebook) \
        else notebook.replace("_", " ")


def _num(v) -> str:
    if isinstance(v, str):
        return {"inf": "∞", "-inf": "−∞", "nan": "NaN"}.get(v, v)
    v = float(v)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.3g}".replace("-", "−")


def interval_text(c: dict) -> str:
    """``95 % interval of <statistic>: [low, high], n runs`` from the optional
    ``runs``, ``interval`` (``[low, high]``) and ``statistic`` of a claim record."""
    parts = []
    iv = c.get("interval")
    if isinstance(iv, dict):
        iv = [iv.get("low"), iv.get("high")]
    if isinstance(iv, (list, tuple)) and len(iv) >= 2:
        stat = c.get("statistic") or (iv[2] if len(iv) > 2 else "")
        parts.append(f"95 % interval{' of ' + cell(stat) if stat else ''}: "
                     f"[{_num(iv[0])}, {_num(iv[1])}]")
    if c.get("runs") is not None:
        parts.append(f"{int(c['runs'])} runs")
    return ", ".join(parts)


def verdict_rules() -> list[str]:
    """The verdict rules as a Markdown table, read from the table in the docstring of
    :mod:`bisls_core.verdicts` (written once there), and the paragraph after it on
    the intervals."""
    import bisls_core.verdicts as V

    doc = V.__doc__ or ""
    lines = doc.splitlines()
    bars = [i for i, line in enumerate(lines) if re.fullmatch(r"=+\s+=+", line.strip())]
    if len(bars) < 3:
        raise ValueError("bisls_core.verdicts: its docstring lost the table of verdict rules")
    rows, current = [], None
    for line in lines[bars[1] + 1:bars[2]]:
        head, _, rest = line.partition("  ")
        if head.strip():
            current = [head.strip().strip("`").strip('"'), rest.strip()]
            rows.append(current)
        elif current is not None:
            current[1] += " " + line.strip()
    after = " ".join(line.strip() for line in lines[bars[2] + 1:] if line.strip())
    md = lambda s: re.sub(r":(?:func|data|class):`~?([^`]+)`", r"`\1`", s).replace("``", "`")
    out = ["| verdict | when |", "| --- | --- |"]
    out += [f"| {{{BADGE.get(v, 'bdg-muted')}}}`{v}` | {md(cell(w))} |" for v, w in rows]
    after = md(after).replace("`MIN_RUNS` values", f"{V.MIN_RUNS} values")
    return out + ["", after + f" (`bisls_core.verdicts`, level {V.LEVEL:.0%}.)"]


def counts(found: dict[str, tuple[str, dict]], adjusted: dict[str, str] | None = None) -> dict[str, int]:
    """Verdict counts of the paper's claims (not those beyond the paper): their registered
    verdicts, or with ``adjusted`` (:func:`holm_verdicts`) the verdicts after Holm's
    adjustment (a claim without a p-value counted with its unadjusted verdict)."""
    n = {v: 0 for v in BADGE}
    for notebook, (_scale, claims) in found.items():
        if not is_beyond(notebook):
            for cid, c in claims.items():
                n[(adjusted or {}).get(cid) or c["verdict"]] += 1
    return n


def holm_verdicts(found: dict[str, tuple[str, dict]]) -> dict[str, str | None]:
    """Per claim of the paper, its verdict after Holm's adjustment across the paper's
    claims that store a p-value (:func:`bisls_core.records.holm_family`, family-wise 5 %,
    the adjustment ``make notebooks`` writes into the records); ``None`` for a record
    without one (written before the registry: not adjusted). The claims beyond the paper
    are not in the family."""
    from bisls_core.records import holm_family

    paper = {cid for nb, (_s, claims) in found.items() if not is_beyond(nb) for cid in claims}
    adjusted = holm_family({nb: claims for nb, (_s, claims) in found.items()})[0]
    return {cid: adjusted.get(cid) for cid in paper}


def adjusted_p_values(found: dict[str, tuple[str, dict]]) -> dict[str, float]:
    """Holm-adjusted p-values of the paper's claims that store one."""
    from bisls_core.records import holm_family

    return holm_family({nb: claims for nb, (_s, claims) in found.items()})[1]


def rows(found: dict[str, tuple[str, dict]], beyond: bool) -> list[str]:
    """The rows of a ``list-table``: page, verdict badges (the registered verdict, the
    verdict after Holm's adjustment, fragile), claim with its numbers beneath."""
    out = []
    holm, p_adj = holm_verdicts(found), adjusted_p_values(found)
    for notebook in sorted(found):
        if is_beyond(notebook) != beyond:
            continue
        scale, claims = found[notebook]
        for cid in sorted(claims):
            c = claims[cid]
            detail = [f"**Paper:** {cell(c['paper'])}.", f"**Ours** ({scale} scale): {cell(c['ours'])}."]
            iv = interval_text(c)
            if iv:
                detail.append(f"**Evidence:** {iv}.")
            if c.get("why"):
                detail.append(f"**Why:** {cell(c['why'])}")
            detail.append(f"**Analysis:** {analysis_text(c, p_adj.get(cid), beyond)}")
            other = other_readings(scale, notebook, cid, c["verdict"])
            if other:
                detail.append(f"**Under other readings** ([open choices](../notebooks/open_choices.ipynb)): "
                              f"{cell(other)}.")
            out += [
                f"* - [{page_label(notebook)}](../notebooks/{notebook}.ipynb)",
                *verdict_cell(c, holm.get(cid), beyond),
                f"  - (claim-{cid})=",
                f"    {cell(c['claim'])}",
                "",
                "    ```{container} scorecard-detail",
                *"\n\n".join(f"    {d}" for d in detail).split("\n"),
                "    ```",
            ]
    return out


def verdict_cell(c: dict, adjusted: str | None, beyond: bool) -> list[str]:
    """The verdict column of a row: the registered verdict's badge, then (a claim of the
    paper) the verdict after Holm's adjustment or "no p-value", then "fragile"."""
    lines = [f"  - {{{BADGE[c['verdict']]}}}`{c['verdict']}`"]
    if not beyond:
        lines += ["", f"    Holm: {{{BADGE[adjusted]}}}`{adjusted}`" if adjusted is not None
                  else "    Holm: no p-value"]
    if c.get("fragile"):
        lines += ["", "    {bdg-warning-line}`fragile`"]
    return lines


def analysis_text(c: dict, p_adjusted: float | None, beyond: bool) -> str:
    """The registered analysis of a record: how its parts combine, its p-value (Holm-
    adjusted beside it), the verdicts of the alternatives; a record from before the
    registry says it has none."""
    if c.get("p_value") is None:
        return ("recorded before the claims registry: no p-value and no alternative analyses "
                "(not adjusted; rerun the page).")
    parts = c.get("parts") or {}
    rules = "; ".join(f"{cell(name)} {_rule(p)}: {p['verdict']}" for name, p in parts.items())
    holm = "beyond the paper: not in Holm's family" if beyond else \
        f"Holm-adjusted {_p(p_adjusted)}" if p_adjusted is not None else "not adjusted"
    window = c.get("window_verdict")
    alt = (f"bootstrap interval: {c['bootstrap_verdict']}; "
           + (f"{c['window_alternative']}: {window}" if window is not None
              else f"no window alternative ({cell(c.get('window_alternative', ''))})"))
    fragile = " **Fragile**: an alternative analysis changes the verdict." if c.get("fragile") else ""
    return (f"{rules} (parts combined with {c.get('combine', 'all')}, runs "
            f"{'paired by seed' if c.get('paired') else 'not paired'}); p = {_p(c['p_value'])} "
            f"({holm}); {alt}.{fragile}")


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def _rule(part: dict) -> str:
    """``"below 0"``, ``"equivalent within ±0.0488"`` from a part's record."""
    if part.get("margin") is not None:
        return ("" if part["direction"] == "within" else f"{part['direction']} ") + \
            f"within ±{_num(part['margin'])}"
    return f"{part['direction']} {_num(part['threshold'])}"


def other_readings(scale: str, notebook: str, cid: str, verdict: str) -> str:
    """The verdicts of claim ``cid`` that differ from ``verdict`` under the readings of the
    paper's open choices other than the primary one (their records under
    ``claims/readings/<reading>/``), e.g. ``"not held [0.07, 0.3] under as-before
    (p = 0.5 ...)"``; empty when none differs or none was run."""
    from bisls_core.readings import PRIMARY_READING, READINGS
    from bisls_core.sweeps.open_choices import committed_claims

    out = []
    for name, reading in READINGS.items():
        if name == PRIMARY_READING:
            continue
        rec = committed_claims(scale, notebook, name).get(cid)
        if rec is not None and rec["verdict"] != verdict:
            iv = rec.get("interval")
            iv = f" [{_num(iv[0])}, {_num(iv[1])}]" if isinstance(iv, list) and len(iv) >= 2 else ""
            out.append(f"{rec['verdict']}{iv} under `{name}` ({_fields(reading.fields)})")
    return "; ".join(out)


def _fields(fields) -> str:
    names = {"p_upper": "p in (14)", "c_bar": "c̄ in (8)", "adam_trial": "Adam's trial along",
             "reference": "line-14 reference"}
    return ", ".join(f"{names.get(k, k)} {v}" for k, v in fields.items()) or \
        "p = c̄ = 0.5, Adam's trial along m, line 14 as printed"


def holm_summary(found: dict[str, tuple[str, dict]]) -> list[str]:
    """The headline of the verdicts after Holm's adjustment, and of the fragile ones."""
    holm = holm_verdicts(found)
    family = [cid for cid, v in holm.items() if v is not None]
    if not family:
        return ["**After Holm's adjustment:** no claim of the paper stores a p-value yet (its "
                "records predate the claims registry): every verdict above is unadjusted."]
    n = counts(found, holm)
    missing = len(holm) - len(family)
    fragile = sum(bool(c.get("fragile")) for nb, (_s, claims) in found.items()
                  if not is_beyond(nb) for c in claims.values())
    return [f"**After Holm's adjustment** across the {len(family)} claims of the paper with a "
            "stored p-value (family-wise error 5 %; a verdict stands only where Holm rejects "
            "its null, else it becomes inconclusive): "
            + " ".join(f"{{{BADGE[v]}}}`{k} {v}`" for v, k in n.items() if v != "partly" or k)
            + (f" ({missing} claim(s) without a p-value, recorded before the registry, are "
               "counted with their unadjusted verdict)." if missing else "."),
            "",
            f"**Fragile:** {fragile} claim(s) of the paper change verdict under an alternative "
            "analysis (a bootstrap interval instead of the t-interval, or the neighbouring "
            "final-value window); each is marked {bdg-warning-line}`fragile` in its row."]


def protocol() -> list[str]:
    """The verdict protocol, fixed before the runs were read, in words (from the constants
    of :mod:`bisls_core.registry`, :mod:`bisls_core.claims_registry` and
    :mod:`bisls_core.verdicts`)."""
    import math

    from bisls_core import claims_registry as CR
    from bisls_core import registry as R
    from bisls_core import verdicts as V

    rel = math.expm1(CR.ALIKE_MARGIN)
    return [
        "## The protocol, fixed in advance",
        "",
        f"- **Registry.** Every claim a page records is registered, with its analysis, in "
        f"`bisls_core/claims_registry.py` ({len(R.REGISTRY)} claims) before its runs are read: "
        "the per-run statistic, the final-value window, the rule of each part (a direction "
        "and decision point, or the margin of an equivalence), how the parts combine and "
        "whether the runs are paired. A page hands its per-run values to the registry, which "
        "checks the page's rule against the registered one (a mismatch is an error), and the "
        "claim record refuses an id that is not registered.",
        f"- **Window.** A run's final value is the {R.FINAL_WINDOW} (at least one), the same "
        "everywhere unless the claim says why not (a slope over horizons, a count of runs, a "
        "first-hitting time, a value at a budget).",
        f"- **Equivalence.** \"These end alike\" claims are equivalence tests of the per-seed "
        f"log-ratio of the final values of every pair of arms, margin ±log(1 + {rel:.0%}) = "
        f"±{CR.ALIKE_MARGIN:.4f}: held when the {V.TOST_LEVEL:.0%} interval lies inside it "
        f"(two one-sided tests at 5 %), not held when the {V.LEVEL:.0%} interval lies wholly "
        "outside it. A seed where both runs diverged says nothing and is left out (the record "
        "counts it); one where one run diverged opens the interval on that side, so the "
        "pair cannot be held.",
        "- **Divergence.** In a paired comparison a run that diverged is the worst outcome "
        "(+∞ for a loss; both diverged: a tie); no rule drops it. With an infinite value the "
        "interval is a bootstrap interval of the median, whose end on the diverged side stays "
        f"finite only while few runs diverged: at most {V.finite_bootstrap_limit(5)} of 5, "
        f"{V.finite_bootstrap_limit(10)} of 10, {V.finite_bootstrap_limit(20)} of 20 (one "
        "diverged run of five makes that end infinite, so the claim it counts against cannot "
        "be held).",
        "- **Pairing and choices.** Methods compared run on the same seeds and are compared "
        "seed by seed. Every tuned, \"best\" or \"lowest\" choice is made on tuning runs "
        "(at least three per grid point at the `cpu` and `paper` scales, on seeds that no "
        "evaluation run uses, by the mean final value, a diverged run the worst); the choice is "
        "then judged on the evaluation runs.",
        "- **Rates.** Theorems 1-3 are judged on the per-run log-log slope against the slope "
        "their bound implies over the same horizons, log factor included (the least-squares "
        "slope of log(bound) against log K).",
        "- **Holm.** Each claim stores the p-value of its verdict's rule (a conjunction that "
        "holds takes its parts' largest; one that fails, the smallest times the number of "
        "parts). Holm's step-down correction runs across the claims of the paper (not those "
        "beyond it); a verdict stands after it only where Holm rejects its null, else it is "
        "inconclusive. Both verdicts are shown.",
        f"- **Fragility.** Each verdict is re-decided under two alternatives computed "
        "automatically: a percentile bootstrap interval of the mean instead of the t-interval "
        f"(a share of runs: the exact interval instead of Wilson's), and, where the values "
        f"come from a final-value window, the {R.NEIGHBOUR_WINDOW}. A verdict that changes "
        "under either is marked fragile.",
        "",
        "```{dropdown} The registered rules of every claim",
        "",
        *CR.rules_table(),
        "```",
    ]


def more_runs_section(scale: str) -> list[str]:
    """The rule of more runs where a verdict was undecided, and what it decided at
    ``scale`` (``results/<scale>/more_runs.json``, written by ``scripts/more_runs.py``)."""
    from bisls_core import registry as R
    from bisls_core.records import read_more_runs

    lines = ["", "### More runs where a verdict was undecided", "",
             f"The rule, written before any extra run: {R.MORE_RUNS_RULE}. "
             "`scripts/more_runs.py` reads the adjusted verdicts, times each page by the "
             "runs it reads (the median of the seconds its evaluation runs recorded) and "
             "writes the decision; a page reads its new number of runs once the decision "
             "is applied and the runs are in the cache. Each record stores the runs its "
             "parts rest on. A page not run yet shows its extra runs and their time on one "
             "core at the median run's cost (the page's costlier runs make it "
             "more)."]
    decision = read_more_runs(scale)
    if decision is None:
        return lines + ["", "No decision yet at this scale."]
    pages = decision["pages"]
    lines += ["", "| page | claims decided | runs | cost per run | state |", "| --- | --- | --- | --- | --- |"]
    for page, e in sorted(pages.items()):
        state = ("run" if e["applied"] else
                 f"not run yet: {e['extra_runs']} more, about {e['estimate_hours']:.1f} h")
        lines.append(f"| {page_label(page)} | {', '.join(f'`{c}`' for c in e['claims'])} | "
                     f"{e['runs_before']} → {e['runs']} | {e['seconds_per_run']:.0f} s | {state} |")
    return lines


def table(body: list[str]) -> list[str]:
    return ["````{list-table}", ":header-rows: 1", ":widths: 12 17 71", ":class: scorecard", "",
            "* - Page", "  - Verdict", "  - Claim, the paper's number and ours", *body, "````"]


def render(found: dict[str, tuple[str, dict]], scale: str | None = None) -> str:
    """The scorecard page of the claims ``found`` at ``scale`` (the book's by default)."""
    from bisls_core.readings import PRIMARY_READING, READINGS

    scale = scale or book_scale()
    lines = [
        "# Replication scorecard",
        "",
        "Each claim of the paper that a page of this book checks, with our verdict. Beneath",
        "each claim: the paper's number, ours, the scale we ran at, and why a claim did not",
        "fully hold. The page is generated by `scripts/scorecard.py` from the claims the",
        "notebooks record in the results cache (`results/<scale>/claims/`), so it changes",
        "when the results change; it is never edited by hand.",
        "",
        f"Every verdict below comes from runs at the `{scale}` scale, the scale of the whole",
        "book (its pages, figures and this scorecard; [the scales page](scales.md) says how",
        "to switch it), under the book's primary reading of the paper's open choices,",
        f"`{PRIMARY_READING}` ({_fields(READINGS[PRIMARY_READING].fields)}), chosen by a rule",
        "fixed before its runs ([open choices](../notebooks/open_choices.ipynb)); a claim whose",
        "verdict differs under another reading that was run says so in its row.",
        "",
    ]
    paper_rows = rows(found, beyond=False)
    if not paper_rows:
        return "\n".join(lines + ["No claim has been recorded yet at this scale: run "
                                  "`make results`."]) + "\n"
    n = counts(found)
    total = sum(n.values())
    lines += [
        "**Summary** (each claim's registered verdict, unadjusted): "
        + " ".join(f"{{{BADGE[v]}}}`{k} {v}`" for v, k in n.items())
        + f" of {total} claims of the paper.",
        "",
        *holm_summary(found),
        "",
        "```{image} scorecard_summary.svg",
        ":alt: Verdict counts of the paper's claims per problem family",
        ":width: 80%",
        "```",
        "",
        "Verdicts: " + "; ".join(f"{{{BADGE[v]}}}`{v}` {LEGEND[v]}" for v in BADGE) + ".",
        "",
        "## How a verdict is decided",
        "",
        "Each claim computes the quantity it is about once per run (paired by seed where the",
        "compared methods share seeds) and a 95 % interval of it; one rule turns the interval",
        "into the verdict. A claim that rests on one run has no interval and is inconclusive.",
        "",
        *verdict_rules(),
        "",
        *protocol(),
        *more_runs_section(scale),
        "",
        "## Claims of the paper",
        "",
        *table(paper_rows),
    ]
    beyond_rows = rows(found, beyond=True)
    if beyond_rows:
        lines += ["", "## Beyond the paper", "",
                  "Checks of questions the paper does not ask; they are not counted in the summary.",
                  "", *table(beyond_rows)]
    return "\n".join(lines) + "\n"


def summary_figure(found: dict[str, tuple[str, dict]]) -> bytes:
    """Horizontal stacked bars: verdict counts of the paper's claims per problem family
    (an SVG with no date and fixed ids, so the same claims give the same bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per: dict[str, dict[str, int]] = {}
    for notebook, (_scale, claims) in found.items():
        if is_beyond(notebook):
            continue
        fam = per.setdefault(family(notebook), {v: 0 for v in BADGE})
        for c in claims.values():
            fam[c["verdict"]] += 1
    order = [f for f in dict.fromkeys(FAMILY.values()) if f in per] + sorted(set(per) - set(FAMILY.values()))
    # matplotlib's defaults, whatever style a caller set (the same bytes in any process)
    with plt.style.context("default"), \
            plt.rc_context({"svg.hashsalt": "scorecard", "font.size": 10, "svg.fonttype": "none"}):
        fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(order) + 1.1))
        left = [0] * len(order)
        y = list(range(len(order)))[::-1]
        for v in BADGE:
            widths = [per[f][v] for f in order]
            if not any(widths):
                continue
            bars = ax.barh(y, widths, left=left, color=COLOR[v], label=v, height=0.6)
            for bar, w in zip(bars, widths):
                if w:
                    ax.text(bar.get_x() + w / 2, bar.get_y() + bar.get_height() / 2, str(w),
                            ha="center", va="center", fontsize=9,
                            color="white")
            left = [a + b for a, b in zip(left, widths)]
        ax.set_yticks(y, [f"{f} ({sum(per[f].values())})" for f in order])
        ax.set_xlabel("claims")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(ncols=len(BADGE), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
        plt.close(fig)
    return buf.getvalue()


def collect_runs(scale: str | None = None) -> dict[tuple[str, str], dict]:
    """``(scale, cache folder) -> {runs, seconds, devices}`` from the metadata of the
    entries at ``scale`` (the book's by default)."""
    import numpy as np

    out: dict[tuple[str, str], dict] = {}
    for scale in (scale or book_scale(),):
        base = committed_results_dir() / scale
        if not base.is_dir():
            continue
        for folder in sorted(p for p in base.iterdir() if p.is_dir() and any(p.glob("*.npz"))):
            stats = {"runs": 0, "seconds": 0.0, "devices": set()}
            for entry in sorted(folder.glob("*.npz")):
                try:
                    with np.load(entry, allow_pickle=False) as data:
                        meta = json.loads(str(data["__meta__"]))
                except Exception:  # an unreadable entry is recomputed by run_grid
                    continue
                stats["runs"] += 1
                stats["seconds"] += float(meta.get("seconds", 0.0))
                stats["devices"].add(meta.get("device", "?"))
            out[(scale, folder.name)] = stats
    return out


def render_scales(runs: dict[tuple[str, str], dict], scale: str | None = None) -> str:
    """The scales page: the runs behind the book's ``scale`` and how to switch it."""
    scale = scale or book_scale()
    lines = [
        "# Scale of each result",
        "",
        f"Every page, figure and verdict of this book comes from one scale: `{scale}`.",
        "Below, the runs behind it, with the hardware and the compute time they took. Generated",
        "by `scripts/scorecard.py` from the metadata that every entry of the results cache",
        "records (`results/<scale>/<folder>/*.npz`); notebooks that share a problem share a",
        "folder (`hyperrep`, `distillation`), so a configuration used by several figures is run",
        "once. Each figure file also states its scale in its metadata (PNG and SVG",
        "`Description`: `scale: <scale>`).",
        "",
        "The compute time of a folder is the sum of its runs' wall-clock seconds, each measured",
        "in the worker process that ran it. `make results` runs two pages at a time, each with",
        "two worker processes (`BISLS_EXECUTOR=process:2`), so on a 2-core machine four",
        "processes share two cores and a run's seconds include its waits: the column is an",
        "upper bound on the CPU time, and the time `make results` takes from an empty cache is",
        "about the column's total divided by four.",
        "",
    ]
    if not runs:
        lines += ["No results yet at this scale.", ""]
    else:
        lines += ["| scale | cache folder | runs | compute time | device |",
                  "| --- | --- | --- | --- | --- |"]
        for (sc, folder), st in sorted(runs.items()):
            lines.append(f"| {sc} | `{folder}` | {st['runs']} | {st['seconds'] / 60:.1f} min "
                         f"| {', '.join(sorted(st['devices']))} |")
        lines.append("")
    lines += [
        "## Rerunning on another machine",
        "",
        "A run is deterministic on one machine: the same parameters and seed give the same",
        "numbers bit for bit, which is what `make nbval` checks. On another CPU the last bits",
        "of some operations differ (the vector instructions the math libraries choose; for",
        "MKL's linear solves, possibly the memory alignment of the arrays), and runs with",
        "line searches or",
        "many float32 iterations carry such differences forward, so their numbers differ.",
        *render_reproduction(scale),
        "The verdicts rest on 95 % intervals over five runs (more on the pages that the",
        "scorecard's rule of more runs extended), not on one run's last digits.",
        "Only the commands meant to update the book (`make results`, `make notebooks`) write",
        "into `results/`, `figures/` and the claim records; any other run, with or without",
        "`recompute`, writes into `.scratch/`, so a rerun on another machine leaves `git status`",
        "empty whatever its last bits.",
        "",
        *render_timings(scale),
        *render_bench(scale),
        "## Switching the book's scale",
        "",
        "One setting, `BISLS_BOOK_SCALE` (`smoke`, `cpu` or `paper`; `cpu` when unset),",
        "chooses the scale of every notebook (their `scale` parameter defaults to it), of the",
        "figures, of this page and of the scorecard. `make paper` fills `results/paper/` (on a",
        "GPU when there is one; it resumes after an interruption, and `make paper PLAN=1` lists",
        "its runs and estimates their time without computing them); then",
        "`make book SCALE=paper` builds the whole book from those results.",
        "`make notebooks SCALE=paper` re-executes the committed notebooks at that scale.",
    ]
    if scale != "paper":
        lines += ["", "No result at paper scale is in this book yet (no GPU was available to this "
                  "project so far)."]
    return "\n".join(lines) + "\n"


def render_reproduction(scale: str) -> list[str]:
    """The lines of the scales page on ``results/<scale>/reproduce.json``, the report of
    ``make reproduce SAVE=1`` (``scripts/reproduce.py``); none typed by hand."""
    path = committed_results_dir() / scale / "reproduce.json"
    if not path.is_file():
        return ["No reproduction report is committed at this scale yet (`make reproduce SAVE=1`).",
                ""]
    rep = json.loads(path.read_text(encoding="utf-8"))
    lines = [f"`make reproduce` recomputed these pages on {rep['cpu']} ({rep['cores']} cores,",
             f"{rep['date']}) and compared each cache entry and claim with the committed book",
             "(`results/" + scale + "/reproduce.json`). An entry is *identical* (bit for bit),",
             "*within 1e-12* (relative), or *drifted*, with the largest relative difference of",
             "its runs' final values; a claim keeps its verdict or not, and the centre of the",
             "recomputed interval lies inside the committed interval or not.", "",
             "| page | entries | identical | within 1e-12 | drifted | claims: same verdict, "
             "centre inside |",
             "| --- | --- | --- | --- | --- | --- |"]
    for page, row in sorted(rep["pages"].items()):
        claims = row["claims"].values()
        same = sum(c["same_verdict"] for c in claims)
        inside = [c["centre_inside"] for c in claims if "centre_inside" in c]
        drift = str(row["drifted"])
        if row["drifted"]:
            drift += f", largest {row['largest_rel_diff']:.2g}"
        if row.get("diverged_on_one_machine"):
            drift += f"; {row['diverged_on_one_machine']} diverged on one machine only"
        lines.append(f"| `{page}` | {row['entries']} | {row['identical']} | "
                     f"{row['within 1e-12']} | {drift} | "
                     f"{same}/{len(row['claims'])}, {sum(inside)}/{len(inside)} |")
    return [*lines, ""]


def render_timings(scale: str) -> list[str]:
    """The measured wall times of ``make results`` and ``make test`` (files under
    ``results/<scale>/timings/`` written by the commands themselves)."""
    folder = committed_results_dir() / scale / "timings"
    lines = ["## Measured wall times", ""]
    results = folder / "make_results.json"
    if results.is_file():
        r = json.loads(results.read_text(encoding="utf-8"))
        lines.append(f"`make results` from the state of the cache at the time: "
                     f"{r['seconds'] / 60:.0f} min on {r['cpu']} ({r['cores']} cores, "
                     f"`BISLS_EXECUTOR={r['executor']}`, {r['date']}).")
    else:
        lines.append("No timing of `make results` is committed at this scale yet (the command "
                     "writes `results/<scale>/timings/make_results.json` when every page succeeded).")
    test = folder / "make_test.json"
    if test.is_file():
        t = json.loads(test.read_text(encoding="utf-8"))
        stages = ", ".join(f"{name} {st['seconds']:.0f} s" for name, st in t["stages"].items())
        total = sum(st["seconds"] for st in t["stages"].values())
        lines.append("")
        lines.append(f"`make test`: {total / 60:.1f} min on {t['cpu']} ({t['date']}): {stages}.")
    return [*lines, ""]


def render_bench(scale: str) -> list[str]:
    """The lines of the scales page on ``results/<scale>/bench.json`` (``make bench``,
    saved with ``benchmarks/run.py --save``): BiSLS's cost per iteration against the
    fixed step and against its floor; none typed by hand."""
    path = committed_results_dir() / scale / "bench.json"
    if not path.is_file():
        return []
    b = json.loads(path.read_text(encoding="utf-8"))
    load = ", ".join(f"{v:.1f}" for v in b["loadavg_before"])
    lines = ["## Cost of an iteration (`make bench`)", "",
             f"Hyper-representation at the `cpu` preset's sizes ({b['K']} iterations, "
             f"{b['repeats']} interleaved repeats, {b['threads']} torch thread, "
             f"{b['cpus']} CPUs, load average {load} before the run, {b['when'][:10]}). The "
             "floor is the fixed-step iteration plus what BiSLS cannot avoid: one "
             "evaluation of $f$ per upper trial and one forward pass per lower trial, at the "
             "measured costs of each piece and the counted trials.", "",
             "| method | ms per iteration | against the fixed step | floor | against the floor | upper trials | lower trials |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, m in b["per_method"].items():
        lines.append(f"| {name} | {1e3 * m['s_per_iter']:.1f} | {m['ratio_to_fixed']:.2f}× | "
                     f"{m['floor_ratio_to_fixed']:.2f}× | {m['ratio_to_floor']:.2f}× | "
                     f"{m['upper_trials']:.2f} | {m['lower_trials']:.1f} |")
    return [*lines, ""]


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
        print(f"wrote {_rel(path)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "book",
                    help="folder of the pages (default: book/)")
    ap.add_argument("--allow-missing", action="store_true",
                    help="build from the claim files there are (default: every page's)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    found = collect()
    if not args.allow_missing:
        check_complete(found)
    _write(out / OUT.name, render(found))
    if found:
        data = summary_figure(found)
        fig = out / SUMMARY_FIG.name
        if not fig.exists() or fig.read_bytes() != data:
            fig.write_bytes(data)
            print(f"wrote {_rel(fig)}")
    _write(out / SCALES_OUT.name, render_scales(collect_runs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
