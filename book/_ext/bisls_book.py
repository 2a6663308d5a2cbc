r"""Sphinx extension of the book, loaded by both editions (``_config.yml``,
``sphinx.local_extensions``).

The book is published as two Jupyter Book builds under one site: the English
edition at the site's root and the French edition under ``fr/`` (its own build,
so that its interface -- search box, "Suivant", "Sommaire" -- is French). This
extension does what the two builds need beyond Jupyter Book's configuration:

* **Links between the editions.** A page links to a page of the other edition
  the ordinary way, ``[English version](../en/intro.md)``. When the target is not
  part of this build but is listed in the other edition's table of contents
  (``bisls_other_edition["toc"]``), the link is rewritten into a relative link to
  that page in the other build (``bisls_other_edition["root"]``, the other
  site's root relative to this one's). A target in neither build is left to
  MyST, which reports it. The sidebar shows a link to the other edition: to the
  page's counterpart (the first link to the other edition on the page, by
  convention the language-switch line at its top, or the same page when both
  builds hold it), else to the other edition's first page.
* **Plain navigation titles.** A page title with math (``$\eta$``) is shown
  with MathJax in the page itself, but the sidebar, the previous/next buttons
  and the browser's title bar are rendered on pages that may load no MathJax,
  where ``\(\eta\)`` would show raw. The title used for navigation is turned into
  plain Unicode text (η, δ, Õ(1/√K)); the page's own heading keeps its math.
* **Docstrings read as NumPy style.** Several docstrings of ``bisls_core`` end a
  ``Parameters`` section with a plain paragraph. NumPy style (and napoleon) would
  read that paragraph as more parameters; before napoleon reads a docstring, a
  blank line is doubled where such a paragraph starts, which ends the section.
  The fields of a NamedTuple, described in its ``Attributes`` section, are not
  listed a second time.
* **No button to a placeholder repository.** While
  ``bisls_repository_placeholder`` is true (``_config.yml``), the buttons that
  link to ``repository.url`` (repository, issues, edit, Binder, Colab,
  JupyterHub, Thebe) are switched off; the download buttons stay.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import yaml
from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- titles
_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
    "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ",
    "chi": "χ", "psi": "ψ", "omega": "ω", "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ",
    "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}
_SYMBOLS = {
    "sqrt": "√", "infty": "∞", "leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "neq": "≠",
    "approx": "≈", "times": "×", "cdot": "·", "nabla": "∇", "partial": "∂", "sum": "∑",
    "in": "∈", "to": "→", "log": "log", "min": "min", "max": "max", "star": "*",
}
_BB = {"R": "ℝ", "N": "ℕ", "E": "𝔼", "Z": "ℤ", "Q": "ℚ", "C": "ℂ", "P": "ℙ"}
_TILDE = {"O": "Õ", "o": "õ", "a": "ã", "n": "ñ", "x": "x̃", "y": "ỹ"}


def latex_to_text(tex: str) -> str:
    r"""Plain-text rendering of the small LaTeX found in titles: ``\eta`` -> ``η``,
    ``\tilde O(1/\sqrt K)`` -> ``Õ(1/√K)``. Unknown commands lose their backslash."""
    s = tex.strip()
    s = re.sub(r"\\tilde\s*\{?\s*([A-Za-z])\s*\}?", lambda m: _TILDE.get(m[1], m[1] + "\u0303"), s)
    s = re.sub(r"\\mathbb\s*\{?\s*([A-Za-z])\s*\}?", lambda m: _BB.get(m[1], m[1]), s)
    s = re.sub(r"\\(?:mathrm|mathbf|mathit|mathcal|text|operatorname)\s*\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\([,;:! ])", " ", s)

    def command(m: re.Match) -> str:
        name = m[1]
        return _GREEK.get(name) or _SYMBOLS.get(name) or name

    s = re.sub(r"\\([A-Za-z]+)(?:\s+(?=[A-Za-z0-9{]))?", command, s)
    s = re.sub(r"√\s*\{([^{}]*)\}", r"√\1", s)
    s = s.replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", s).strip()


def plain_title(title: nodes.Element) -> nodes.title:
    """A copy of ``title`` whose math nodes are replaced by their plain-text rendering."""
    new = title.deepcopy()
    for math in list(new.findall(nodes.math)):
        math.replace_self(nodes.Text(latex_to_text(math.astext())))
    return new


def _plain_titles(app: Sphinx, env) -> None:
    """Navigation reads titles from ``env.titles``/``env.longtitles`` (previous/next,
    the title bar) and from ``env.tocs`` (the sidebar): plain text in all three."""
    for store in (env.titles, env.longtitles):
        for docname, title in list(store.items()):
            if any(True for _ in title.findall(nodes.math)):
                store[docname] = plain_title(title)
    for toc in env.tocs.values():
        for math in list(toc.findall(nodes.math)):
            math.replace_self(nodes.Text(latex_to_text(math.astext())))


# ------------------------------------------------------------------------- docstrings
_SECTION = re.compile(r"^(Parameters|Other Parameters|Attributes|Returns|Yields|Raises|Warns|"
                      r"Keyword Arguments|Keyword Args|Methods)\s*$")
_FIELD = re.compile(r"^\*{0,2}[A-Za-z_][\w.]*(\s*,\s*\*{0,2}[A-Za-z_][\w.]*)*\s*(:.*)?$")


def end_field_sections(lines: list[str]) -> None:
    """In place: a paragraph that follows a NumPy field section (``Parameters`` ...)
    after a blank line, at the section's indentation, and is not itself a field
    (``name:``, ``a, b : type``), gets a second blank line before it, which is
    how napoleon recognises the end of a section."""
    in_section = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _SECTION.match(line) and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            in_section, i = True, i + 2
            continue
        if in_section and not line.strip() and i + 1 < len(lines):
            nxt = lines[i + 1]
            if nxt.strip() and not nxt[0].isspace():
                if set(nxt.strip()) == {"-"} or (i + 2 < len(lines) and set(lines[i + 2].strip()) == {"-"}):
                    in_section = False  # the next section header
                elif not _FIELD.match(nxt.strip()):
                    lines.insert(i + 1, "")
                    in_section = False
                    i += 2
                    continue
        i += 1


def _process_docstring(app, what, name, obj, options, lines) -> None:
    end_field_sections(lines)


def _skip_member(app, what, name, obj, skip, options):
    """A NamedTuple's fields are documented by its ``Attributes`` section; autodoc
    would list them a second time ("Alias for field number 0")."""
    if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    return None


# ----------------------------------------------------------------------- two editions
def toc_docnames(toc_path: Path) -> list[str]:
    """Every document a Jupyter Book ``_toc.yml`` lists (root first), as docnames."""
    data = yaml.safe_load(toc_path.read_text(encoding="utf8"))
    found = [str(data["root"])]

    def walk(item) -> None:
        if isinstance(item, dict):
            if "file" in item:
                found.append(str(item["file"]))
            for key in ("parts", "chapters", "sections"):
                for sub in item.get(key, []) or []:
                    walk(sub)
        elif isinstance(item, list):
            for sub in item:
                walk(sub)

    walk(data)
    return [posixpath.splitext(d)[0] if d.endswith((".md", ".ipynb")) else d for d in found]


def _other(app: Sphinx) -> dict:
    other = app.config.bisls_other_edition or {}
    if not other:
        return {}
    cache = getattr(app, "_bisls_other", None)
    if cache is None:
        toc = Path(app.srcdir) / other["toc"]
        cache = {**other, "docs": toc_docnames(toc)}
        app._bisls_other = cache
    return cache


def other_edition_uri(app: Sphinx, fromdoc: str, target: str, anchor: str | None = None) -> str:
    """Relative URI, from ``fromdoc``'s HTML page, of ``target`` in the other build."""
    other = _other(app)
    here = posixpath.dirname(app.builder.get_target_uri(fromdoc)) or "."
    dest = posixpath.normpath(posixpath.join(other["root"], target + ".html"))
    uri = posixpath.relpath(dest, here)
    return uri + (f"#{anchor}" if anchor else "")


class CrossEditionLinks(SphinxPostTransform):
    """Rewrite MyST links to documents of the other edition (see the module docstring).
    Runs before MyST's own resolver (priority 9), which would report them as missing."""

    default_priority = 8

    def run(self, **kwargs) -> None:
        other = _other(self.app)
        if not other or self.app.builder.format != "html":
            return
        docname = self.env.docname
        switches = self.app._bisls_switch
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst" or node.get("refdomain") != "doc":
                continue
            target = node["reftarget"]
            if target in self.env.all_docs or target not in other["docs"]:
                continue
            uri = other_edition_uri(self.app, docname, target, node.get("reftargetid"))
            ref = nodes.reference("", "", internal=False, refuri=uri,
                                  classes=["edition-link"])
            if node.astext().strip():
                for child in node.children:
                    ref += child.deepcopy()
            else:
                ref += nodes.literal(target, target)
            node.replace_self(ref)
            switches.setdefault(docname, uri.split("#")[0])


def _switch_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """The sidebar's link to the other edition (template ``edition-switch.html``)."""
    other = _other(app)
    if not other:
        return
    uri = app._bisls_switch.get(pagename)
    if uri is None:
        target = pagename if pagename in other["docs"] else other["docs"][0]
        uri = other_edition_uri(app, pagename, target)
    context["bisls_switch_url"] = uri
    context["bisls_switch_label"] = other["label"]
    context["bisls_switch_lang"] = other["language"]


# ------------------------------------------------------------------ placeholder buttons
_REPO_BUTTONS = ("use_repository_button", "use_issues_button", "use_edit_page_button",
                 "use_source_button")
_LAUNCHERS = ("binderhub_url", "jupyterhub_url", "colab_url")


def _theme_options(app: Sphinx, config) -> None:
    opts = dict(config.html_theme_options or {})
    if config.bisls_search_bar_text:
        opts["search_bar_text"] = config.bisls_search_bar_text
    if not config.bisls_repository_placeholder:
        config.html_theme_options = opts
        return
    for key in _REPO_BUTTONS:
        opts[key] = False
    launch = dict(opts.get("launch_buttons") or {})
    for key in _LAUNCHERS:
        launch[key] = ""
    launch["thebe"] = False
    opts["launch_buttons"] = launch
    # Without a repository URL the theme renders no link to it anywhere.
    opts.pop("repository_url", None)
    config.html_theme_options = opts


_TEMPLATES = str(Path(__file__).resolve().parents[1] / "_templates")
#: sphinx-book-theme's sidebar, with the link to the other edition above the navigation.
_SIDEBAR = ["navbar-logo.html", "icon-links.html", "search-button-field.html",
            "edition-switch.html", "sbt-sidebar-nav.html"]


def _sidebar(app: Sphinx, config) -> None:
    if _TEMPLATES not in config.templates_path:
        config.templates_path = [*config.templates_path, _TEMPLATES]
    if config.bisls_other_edition and not config.html_sidebars:
        config.html_sidebars = {"**": _SIDEBAR}


def setup(app: Sphinx) -> dict:
    app.add_config_value("bisls_repository_placeholder", False, "html", [bool])
    # {"toc": "_toc_fr.yml", "root": "fr", "language": "fr", "label": "Version française"}
    app.add_config_value("bisls_other_edition", {}, "env", [dict])
    app._bisls_switch = {}
    # The search box's placeholder text (the theme's default is English only).
    app.add_config_value("bisls_search_bar_text", "", "html", [str])
    app.connect("config-inited", _theme_options)
    app.connect("env-updated", _plain_titles)
    app.add_post_transform(CrossEditionLinks)
    app.connect("html-page-context", _switch_context)
    # Before napoleon (priority 500) turns the NumPy sections into fields.
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("config-inited", _sidebar)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
