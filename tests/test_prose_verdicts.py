"""The prose of the book states each claim's verdict exactly as the claim records do.

A page that discusses a claim of the paper marks it with the claim's id (the key
that ``bisls_core.experiments.record_claim`` wrote under ``results/<scale>/claims/``)
in a link whose text is our verdict, in the page's language (English: held,
partly, not held, inconclusive; French: see ``WORDS``):

    [partly](#claim-fig07-bisls-beats-tuned)       the label of the claim's row,
                                                   written by scripts/scorecard.py
    {ref}`partly <claim-fig07-bisls-beats-tuned>`  the same, as a role
    [partly](../scorecard.md "claim-fig07-bisls-beats-tuned")
                                                   the scorecard page, id in the title

and it gives the counts of the scorecard's summary as

    [17 held, 10 partly, 5 not held, 0 inconclusive (of 32)](../scorecard.md "claim-counts")

The records are read through ``scripts/scorecard.py`` (the rows the scorecard
shows: the largest scale present for each notebook; the same rule for what lies
beyond the paper and for the counts). Changing a record's verdict, or the set of
claims, fails here until the prose says the same; the message names the page,
the claim and the word to write.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest

from bisls_core.verdicts import VERDICTS

ROOT = Path(__file__).resolve().parents[1]

#: The verdict words of each edition (the link text of a marker).
WORDS = {
    "en": {"held": "held", "partly": "partly", "not held": "not held",
           "inconclusive": "inconclusive"},
    "fr": {"held": "vérifiée", "partly": "en partie", "not held": "non vérifiée",
           "inconclusive": "non tranchée"},
}
#: How the counts marker names each verdict (plural in French), and "of".
COUNT_WORDS = {
    "en": ({"held": "held", "partly": "partly", "not held": "not held",
            "inconclusive": "inconclusive"}, "of"),
    "fr": ({"held": "vérifiées", "partly": "en partie", "not held": "non vérifiées",
            "inconclusive": "non tranchées"}, "sur"),
}

_ID = r"[A-Za-z0-9_.-]+"
_TEXT = r"\[(?P<text>[^\]\n]+)\]"
MARKERS = [
    re.compile(_TEXT + r"\((?:\.\./)*scorecard\.md\s+\"claim-(?P<id>" + _ID + r")\"\)"),
    re.compile(_TEXT + r"\(#claim-(?P<id>" + _ID + r")\)"),
    re.compile(r"\{ref\}`(?P<text>[^<`\n]+?)\s*<claim-(?P<id>" + _ID + r")>`"),
]
#: Any mention of a claim label, parsed or not (a malformed marker must not pass silently).
ANY_LABEL = re.compile(r"claim-" + _ID)


def _pages() -> list[tuple[Path, str]]:
    pages = [(ROOT / "book" / "index.md", "en")]
    pages += [(p, "en") for p in sorted((ROOT / "book" / "en").glob("*.md"))]
    pages += [(p, "fr") for p in sorted((ROOT / "book" / "fr").glob("*.md"))]
    return pages


PAGES = _pages()


def _scorecard():
    spec = importlib.util.spec_from_file_location("scorecard", ROOT / "scripts" / "scorecard.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SCORECARD = _scorecard()


def load_records() -> dict[str, dict]:
    """``claim_id -> record`` (with its ``notebook``), as the scorecard shows them."""
    records: dict[str, dict] = {}
    for notebook, (_scale, claims) in SCORECARD.collect().items():
        for cid, entry in claims.items():
            records[cid] = {**entry, "notebook": notebook}
    return records


def is_beyond(record: dict) -> bool:
    """A check of a question the paper does not ask (not counted in the summary)."""
    return SCORECARD.is_beyond(record["notebook"])


def markers(text: str) -> list[tuple[str, str]]:
    """``(claim_id, verdict text)`` of every marker on a page, in order."""
    found = []
    for pattern in MARKERS:
        found += [(m.start(), m["id"], m["text"].strip()) for m in pattern.finditer(text)]
    return [(cid, word) for _, cid, word in sorted(found)]


def counts_text(records: dict[str, dict], lang: str) -> str:
    words, of = COUNT_WORDS[lang]
    paper = [r["verdict"] for r in records.values() if not is_beyond(r)]
    n = Counter(paper)
    return ", ".join(f"{n[v]} {words[v]}" for v in VERDICTS) + f" ({of} {len(paper)})"


def mismatches(text: str, lang: str, records: dict[str, dict]) -> list[str]:
    """What a page says differently from the records (empty when they agree)."""
    out = []
    for cid, word in markers(text):
        if cid == "counts":
            want = counts_text(records, lang)
            if word != want:
                out.append(f"the counts read {word!r}; the records give {want!r}")
            continue
        if cid not in records:
            out.append(f"{cid}: no such claim in the records (renamed or removed?)")
            continue
        want = WORDS[lang][records[cid]["verdict"]]
        if word != want:
            out.append(f"{cid}: the page says {word!r}, the record says {want!r} "
                       f"({records[cid]['verdict']}); update the word and the sentence around it")
    return out


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    recs = load_records()
    assert recs, "no claim records: run `make results`"
    return recs


def test_every_verdict_has_a_word_in_each_edition():
    for lang in WORDS:
        assert set(WORDS[lang]) == set(VERDICTS), lang
        assert set(COUNT_WORDS[lang][0]) == set(VERDICTS), lang


@pytest.mark.parametrize("page,lang", PAGES, ids=lambda p: getattr(p, "stem", p))
def test_page_states_the_recorded_verdicts(page, lang, records):
    text = page.read_text()
    problems = mismatches(text, lang, records)
    assert not problems, f"{page.relative_to(ROOT)}:\n  " + "\n  ".join(problems)
    # every claim label on the page is a well-formed marker
    labels = [m.group(0) for m in ANY_LABEL.finditer(text)]
    assert len(labels) == len(markers(text)), (
        f"{page.relative_to(ROOT)}: a claim label outside the marker syntax "
        f"(see this test's docstring): {labels}")


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_each_edition_gives_every_claim_its_verdict(lang, records):
    marked = {cid for page, lg in PAGES if lg == lang for cid, _ in markers(page.read_text())}
    missing = sorted(set(records) - marked)
    assert not missing, (f"the {lang} edition never states the verdict of {missing}: "
                         "discuss each claim (attributed to the paper) with its marker")


def test_landing_page_gives_the_counts_and_names_every_claim_not_held(records):
    found = dict(markers((ROOT / "book" / "index.md").read_text()))
    assert "counts" in found, "book/index.md gives no counts marker"
    not_held = sorted(cid for cid, r in records.items()
                      if r["verdict"] == "not held" and not is_beyond(r))
    missing = [cid for cid in not_held if cid not in found]
    assert not missing, f"book/index.md does not name these claims that did not hold: {missing}"


def test_a_verdict_changed_by_hand_is_caught(records):
    """The check itself: a record whose verdict is changed by hand fails the pages that
    state the claim, and the counts of the landing page."""
    page, lang = next((p, lg) for p, lg in PAGES
                      if any(cid != "counts" for cid, _ in markers(p.read_text())))
    text = page.read_text()
    cid, word = next((cid, word) for cid, word in markers(text) if cid != "counts")
    said = {w: v for v, w in WORDS[lang].items()}[word]   # what the page says now
    agree = copy.deepcopy(records)
    agree[cid]["verdict"] = said
    assert not [m for m in mismatches(text, lang, agree) if m.startswith(cid)]
    for other in VERDICTS:
        if other == said:
            continue
        flipped = copy.deepcopy(agree)
        flipped[cid]["verdict"] = other
        assert any(m.startswith(cid) for m in mismatches(text, lang, flipped)), (cid, other)
        if not is_beyond(records[cid]):
            index = (ROOT / "book" / "index.md").read_text()
            assert counts_text(flipped, "en") != counts_text(agree, "en")
            assert not any(m.startswith("the counts") for m in mismatches(
                index.replace(_counts_marker(index), counts_text(agree, "en")), "en", agree))
            assert any(m.startswith("the counts") for m in mismatches(
                index.replace(_counts_marker(index), counts_text(agree, "en")), "en", flipped))


def _counts_marker(text: str) -> str:
    """The link text of the counts marker on a page."""
    return next(word for cid, word in markers(text) if cid == "counts")


def test_counts_are_the_scorecard_summary(records):
    n = SCORECARD.counts(SCORECARD.collect())
    words, of = COUNT_WORDS["en"]
    assert counts_text(records, "en") == (", ".join(f"{n.get(v, 0)} {words[v]}" for v in VERDICTS)
                                          + f" ({of} {sum(n.values())})")
