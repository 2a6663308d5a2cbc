"""Each French page names the English page (and its SHA-256 prefix) it was
translated from; a stale translation fails here so that it is visible."""

import hashlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FR = sorted((ROOT / "book" / "fr").glob("*.md"))
PATTERN = re.compile(r"source\s*:\s*(book/en/[\w./-]+\.md)\s*@\s*sha256:([0-9a-f]{12})")


@pytest.mark.parametrize("page", FR, ids=lambda p: p.stem)
def test_french_page_matches_its_english_source(page):
    m = PATTERN.search(page.read_text())
    assert m, f"{page.name} does not say which English page it translates"
    source, prefix = m.groups()
    actual = hashlib.sha256((ROOT / source).read_bytes()).hexdigest()[:12]
    assert actual == prefix, (
        f"{page.name} was translated from {source} @ {prefix}, which is now @ {actual}: "
        "update the translation, then its hash"
    )


@pytest.mark.parametrize("page", sorted((ROOT / "book" / "en").glob("*.md")) + FR, ids=lambda p: p.stem)
def test_every_page_has_a_language_switch(page):
    text = page.read_text()
    assert ("../fr/" in text) or ("../en/" in text), f"{page.name} has no link to the other edition"
