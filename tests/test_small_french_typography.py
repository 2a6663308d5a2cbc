"""The French edition shows apostrophes, not closing quotes, and no translation notes.

Sphinx's smart quotes educate each text node apart: an apostrophe just before inline
markup (``l'**issue**``, ``d'*interpolation*``, ``l'[édition](...)``) has no letter after
it in its node and became the French closing quote, "l”issue". The French pages are
parsed here as the book parses them (MyST with the book's extensions, Sphinx with the
French edition's settings, ``scripts/book.py``), and the text a reader sees may hold no
quote mark between two letters, nor the source hash of the English page that each
French page records for tests/test_translations.py (issue 22)."""

from __future__ import annotations

from _scripts import load_script
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FR = sorted((ROOT / "book" / "fr").glob("*.md"))
BETWEEN_LETTERS = re.compile(r"(?<=[^\W\d_])[“”](?=[^\W\d_])")


def _book_script():
    return load_script("book", "book_script_fr")


def test_sources_have_no_quote_between_letters():
    bad = [f"{p.name}:{n}: {line.strip()}" for p in FR
           for n, line in enumerate(p.read_text(encoding="utf8").splitlines(), 1)
           if BETWEEN_LETTERS.search(line)]
    assert not bad, "a quote mark where an apostrophe belongs:\n" + "\n".join(bad)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    """The text of every French page after Sphinx read it with the French settings."""
    from sphinx.application import Sphinx

    config = _book_script().edition_config("fr", None)
    sphinx_config = config["sphinx"]["config"]
    src = tmp_path_factory.mktemp("fr")
    for page in FR:
        shutil.copy(page, src / page.name)
    (src / "index.md").write_text("# Index\n\n```{toctree}\n"
                                  + "\n".join(p.stem for p in FR) + "\n```\n", encoding="utf8")
    overrides = {
        "extensions": ["myst_parser"],
        "myst_enable_extensions": config["parse"]["myst_enable_extensions"],
        "language": sphinx_config["language"],
        "suppress_warnings": ["*"],
    }
    for key in ("smartquotes", "smartquotes_action", "smartquotes_excludes"):
        if key in sphinx_config:
            overrides[key] = sphinx_config[key]
    (src / "conf.py").write_text("", encoding="utf8")
    out = tmp_path_factory.mktemp("out")
    app = Sphinx(str(src), str(src), str(out / "html"), str(out / "doctrees"), "dummy",
                 confoverrides=overrides, status=None, warning=None, freshenv=True)
    app.build()
    return {p.stem: _shown(app.env.get_doctree(p.stem)) for p in FR}


def _shown(doctree) -> str:
    """The text of a doctree without its comments (a writer leaves them out of the page)."""
    from docutils import nodes

    for comment in list(doctree.findall(nodes.comment)):
        comment.parent.remove(comment)
    return doctree.astext()


@pytest.mark.parametrize("page", [p.stem for p in FR])
def test_rendered_page_has_apostrophes_not_quotes(rendered, page):
    text = rendered[page]
    bad = sorted({text[max(m.start() - 12, 0):m.end() + 12].replace("\n", " ")
                  for m in BETWEEN_LETTERS.finditer(text)})
    assert not bad, f"{page}: a quote mark where an apostrophe belongs: {bad}"


@pytest.mark.parametrize("page", [p.stem for p in FR])
def test_rendered_page_hides_the_source_hash(rendered, page):
    assert "sha256" not in rendered[page] and "book/en/" not in rendered[page].replace(
        "../en/", ""), f"{page} shows its translation note to readers"
