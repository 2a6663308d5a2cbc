"""Check the built site (both editions) for what a reader would hit.

    python scripts/check_site.py [_build/html]

`make book` and `make test` (book-check) run it right after building; it exits
non-zero, listing every problem, when

* a local link or image of any page points at a file that is not in the site
  (links between the two editions included);
* a page links to the repository address of ``_config.yml`` while that address is
  marked as a placeholder (``bisls_repository_placeholder``): launch, repository
  or edit buttons that would lead nowhere;
* a prose page of either edition (``book/en/*.md``, ``book/fr/*.md``) has no link to
  a page of the other edition, or the French edition is missing, is not marked
  ``lang="fr"`` or shows an English interface ("Search", "Next", "Contents");
* a navigation title (sidebar, previous/next buttons, the browser's title bar)
  shows raw LaTeX such as ``\\(\\eta\\)``, which renders only on pages that load MathJax.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
#: Folders of the site that hold assets, not pages.
ASSET_DIRS = {"_static", "_sources", "_downloads", "_images", "_sphinx_design_static"}
FRENCH_UI = ("Rechercher", ">suivant<", ">précédent<")
ENGLISH_UI = (">Search<", ">next<", ">previous<", "Search this book", ">Contents<")


class Page(HTMLParser):
    """Links, the ``<html lang>``, edition-switch links and navigation titles of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (attribute, value)
        self.lang = ""
        self.edition_links: list[str] = []
        self.nav_text: list[str] = []
        self._nav_depth = 0  # inside the sidebar navigation or a prev/next title
        self._stack: list[bool] = []
        self._title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang", "")
        for key in ("href", "src"):
            if a.get(key):
                self.links.append((key, a[key]))
        classes = set((a.get("class") or "").split())
        if tag == "a" and "edition-link" in classes and a.get("href"):
            self.edition_links.append(a["href"])
        if tag == "title":
            self._title = True
        nav = bool(classes & {"bd-docs-nav", "prev-next-title"})
        if tag not in ("br", "img", "meta", "link", "input", "hr", "source"):
            self._stack.append(nav)
            self._nav_depth += nav

    def handle_endtag(self, tag):
        if tag == "title":
            self._title = False
        if tag not in ("br", "img", "meta", "link", "input", "hr", "source") and self._stack:
            self._nav_depth -= self._stack.pop()

    def handle_data(self, data):
        if self._title or self._nav_depth > 0:
            self.nav_text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf8", errors="replace"))
    return page


def pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html")
                  if not (set(p.relative_to(site).parts[:-1]) & ASSET_DIRS))


def local_target(page: Path, url: str) -> Path | None:
    """The file a relative link of ``page`` points at, or None for external links."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("#", "//", "data:", "javascript:")):
        return None
    if not parts.path:
        return None
    target = (page.parent / unquote(parts.path)).resolve()
    return target / "index.html" if target.is_dir() else target


def placeholder() -> list[str]:
    """The placeholder repository address and its ``owner/name`` (empty when it is real)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    if not config.get("sphinx", {}).get("config", {}).get("bisls_repository_placeholder"):
        return []
    url = config.get("repository", {}).get("url", "").rstrip("/")
    if not url:
        return []
    path = urlsplit(url).path.strip("/")
    return [url, path] if path else [url]


def page_problems(site: Path, path: Path, page: Page, banned: list[str]) -> list[str]:
    """Dead local links, links to the placeholder repository, raw LaTeX in the
    navigation and the wrong ``<html lang>`` of one page of the site."""
    problems = []
    rel = path.relative_to(site)
    for attr, url in page.links:
        if any(b in url for b in banned):
            problems.append(f"{rel}: links to the placeholder repository ({url})")
            continue
        target = local_target(path, url)
        if target is not None and not target.exists():
            problems.append(f"{rel}: dead local {attr} {url!r}")
    nav = " ".join(page.nav_text)
    if "\\(" in nav or "\\[" in nav:
        raw = re.search(r"[^\s]*\\\(.{0,40}", nav)
        problems.append(f"{rel}: raw LaTeX in a navigation title: {raw[0] if raw else nav[:60]!r}")
    want = "fr" if rel.parts[0] == "fr" else "en"
    if page.lang and page.lang != want:
        problems.append(f"{rel}: <html lang={page.lang!r}>, expected {want!r}")
    return problems


def check(site: Path) -> list[str]:
    problems: list[str] = []
    if not (site / "index.html").is_file():
        return [f"{site}/index.html is missing: build the site first (make book)"]
    french = site / "fr"
    if not (french / "index.html").is_file():
        problems.append(f"the French edition is missing ({french}/index.html)")
    banned = placeholder()
    parsed: dict[Path, Page] = {}
    for path in pages(site):
        parsed[path] = parse(path)
        problems += page_problems(site, path, parsed[path], banned)

    # Every prose page links to the other edition.
    for lang, other in (("en", "fr"), ("fr", "en")):
        for md in sorted((ROOT / "book" / lang).glob("*.md")):
            html = (french if lang == "fr" else site) / "book" / lang / f"{md.stem}.html"
            if not html.is_file():
                problems.append(f"{html.relative_to(site)}: not built (is book/{lang}/{md.name} "
                                f"in {'_toc_fr.yml' if lang == 'fr' else '_toc.yml'}?)")
                continue
            page = parsed.get(html) or parse(html)
            into_other = [u for u in page.edition_links
                          if f"/book/{other}/" in "/" + str(local_target(html, u) or "")]
            if not into_other:
                problems.append(f"{html.relative_to(site)}: no link to the {other} edition "
                                f"(the language-switch line at the top of book/{lang}/{md.name})")

    # The French interface.
    sample = french / "book" / "fr" / "optimisation.html"
    if sample.is_file():
        text = re.sub(r">\s+", ">", re.sub(r"\s+<", "<", sample.read_text(encoding="utf8")))
        missing = [s for s in FRENCH_UI if s not in text]
        english = [s for s in ENGLISH_UI if s in text]
        if missing or english:
            problems.append(f"fr/book/fr/optimisation.html: French interface strings missing "
                            f"{missing}, English ones present {english}")
    return problems


def main(argv: list[str]) -> int:
    site = Path(argv[1]) if len(argv) > 1 else ROOT / "_build" / "html"
    problems = check(site)
    n = len(pages(site)) if site.is_dir() else 0
    if problems:
        print(f"check_site: {len(problems)} problem(s) in {site}:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    print(f"check_site: {n} pages of both editions checked: no dead local link, no link to a "
          "placeholder repository, every prose page links to the other edition")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
