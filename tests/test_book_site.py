"""The book's two editions, its generated pages and its site checks.

The built site itself is checked by ``scripts/check_site.py``, which `make book`
and `make test` (book-check) run right after building both editions; these tests
check the pieces without building: the tables of contents, the French
configuration, the scorecard's rendering, the API page, the Sphinx extension's
helpers, the site checker on a small hand-made site, and the encrypted kernels.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ext = _load("bisls_book", ROOT / "book" / "_ext" / "bisls_book.py")
book = _load("book_script", ROOT / "scripts" / "book.py")
check_site = _load("check_site", ROOT / "scripts" / "check_site.py")
scorecard = _load("scorecard_script", ROOT / "scripts" / "scorecard.py")


def _toc(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf8"))


def _files(part: dict) -> list[str]:
    return [c["file"] for c in part["chapters"]]


# ----------------------------------------------------------------------- tables of contents
def test_every_toc_entry_exists():
    for name in ("_toc.yml", "_toc_fr.yml"):
        for doc in ext.toc_docnames(ROOT / name):
            assert any((ROOT / f"{doc}{suffix}").is_file() for suffix in (".md", ".ipynb")), \
                f"{name} lists {doc}, which does not exist"


def test_shared_parts_list_the_same_files_in_both_editions():
    en, fr = _toc("_toc.yml")["parts"], _toc("_toc_fr.yml")["parts"]
    assert len(en) == len(fr), "the two tables of contents have different numbers of parts"
    for e, f in zip(en[1:], fr[1:]):
        assert _files(e) == _files(f), (
            f"part {e['caption']!r} of _toc.yml and {f['caption']!r} of _toc_fr.yml differ: "
            "a page shared by both editions goes into both files")


@pytest.mark.parametrize("lang,toc", [("en", "_toc.yml"), ("fr", "_toc_fr.yml")])
def test_every_prose_page_is_in_its_edition(lang, toc):
    listed = set(ext.toc_docnames(ROOT / toc))
    missing = [p.name for p in sorted((ROOT / "book" / lang).glob("*.md"))
               if f"book/{lang}/{p.stem}" not in listed]
    assert not missing, f"{toc} does not list {missing}"
    other = "fr" if lang == "en" else "en"
    assert not [d for d in listed if d.startswith(f"book/{other}/")], \
        f"{toc} lists pages of the other edition (they are linked across the two sites)"


def test_every_notebook_is_in_the_book():
    listed = set(ext.toc_docnames(ROOT / "_toc.yml"))
    missing = [p.stem for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
               if f"notebooks/{p.stem}" not in listed]
    assert not missing, f"_toc.yml (and _toc_fr.yml) do not list {missing}"


# ---------------------------------------------------------------------------- configuration
def test_french_configuration_is_the_english_one_with_the_overlay():
    en, fr = book.edition_config("en", None), book.edition_config("fr", None)
    assert en["sphinx"]["config"]["language"] == "en"
    assert fr["sphinx"]["config"]["language"] == "fr"
    assert fr["sphinx"]["config"]["bisls_other_edition"]["toc"] == "_toc.yml"
    assert en["sphinx"]["config"]["bisls_other_edition"]["toc"] == "_toc_fr.yml"
    # everything else is shared: the overlay only adds or replaces its own keys
    overlay = yaml.safe_load((ROOT / "_config_fr.yml").read_text(encoding="utf8"))
    assert fr == book.merge(en, overlay)
    assert fr["repository"] == en["repository"] and fr["bibtex_bibfiles"] == en["bibtex_bibfiles"]
    assert book.edition_config("en", "off")["execute"]["execute_notebooks"] == "off"


def test_merge_merges_mappings_and_replaces_the_rest():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert book.merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_repository_address_is_written_once():
    url = _toc_url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    owner_name = url.rstrip("/").split("github.com/")[-1]
    hits = []
    for path in ROOT.rglob("*"):
        if any(part in {".git", ".venv", "_build", ".scratch", "__pycache__", "results",
                        "bisls_core.egg-info"} for part in path.parts):
            continue
        if path.is_file() and path.suffix in {".md", ".py", ".yml", ".toml", ".cfg", ".sh", ".ipynb"}:
            if owner_name in path.read_text(encoding="utf8", errors="replace"):
                hits.append(str(path.relative_to(ROOT)))
    assert hits == ["_config.yml"], f"the repository address is also written in {hits}"
    assert _toc_url


# ------------------------------------------------------------------------------- scorecard
def test_every_page_with_claims_has_a_problem_family():
    found = scorecard.collect()
    assert found, "no claim records: run `make results`"
    assert not [nb for nb in found if scorecard.family(nb) == "Other"], \
        "add the page to scorecard.FAMILY"


def test_every_verdict_has_a_badge():
    from bisls_core.verdicts import VERDICTS

    assert set(scorecard.BADGE) == set(VERDICTS) == set(scorecard.LEGEND) == set(scorecard.COLOR)


def test_scorecard_shows_runs_and_interval_when_a_record_has_them():
    found = {
        "fig04_quadratics": ("cpu", {
            "fig04-x": {"claim": "SPSB is fast", "paper": "qualitative", "ours": "k = 33",
                        "verdict": "held", "why": "", "runs": 5, "interval": [0.0123, "inf"],
                        "statistic": "mean difference of final losses"},
            "fig04-y": {"claim": "SPS_max stalls", "paper": "qualitative", "ours": "gap 7e-4",
                        "verdict": "inconclusive", "why": "the interval straddles 0"}}),
    }
    page = scorecard.render(found)
    assert "95 % interval of mean difference of final losses: [0.0123, ∞], 5 runs" in page
    assert "{bdg-muted}`inconclusive`" in page and "{bdg-success}`held`" in page
    assert "(claim-fig04-x)=" in page and "**Why:** the interval straddles 0" in page
    assert "{bdg-success}`1 held`" in page and "{bdg-muted}`1 inconclusive`" in page
    assert page.count("Evidence:") == 1
    assert scorecard.summary_figure(found) == scorecard.summary_figure(found)  # reproducible bytes


def test_committed_summary_figure_matches_the_claims():
    found = scorecard.collect()
    assert scorecard.SUMMARY_FIG.read_bytes() == scorecard.summary_figure(found), \
        "book/scorecard_summary.svg is stale: run python scripts/scorecard.py"


def test_scorecard_has_no_emoji():
    text = (ROOT / "book" / "scorecard.md").read_text(encoding="utf8")
    assert not re.search("[\U0001F300-\U0001FAFF\u2600-\u27BF]", text)


# ---------------------------------------------------------------------------------- API page
API = (ROOT / "book" / "api.md").read_text(encoding="utf8")
DOCUMENTED = re.findall(r"^\.\. automodule:: ([\w.]+)", API, flags=re.M)


@pytest.mark.parametrize("module", ["bisls_core.optim", "bisls_core.bilevel", "bisls_core.hypergrad",
                                    "bisls_core.stepsizes", "bisls_core.problems"])
def test_api_page_documents_the_core_modules(module):
    assert module in DOCUMENTED


def test_api_page_documents_every_problem_and_only_real_modules():
    import bisls_core.problems as problems

    subs = {f"bisls_core.problems.{m.name}" for m in pkgutil.iter_modules(problems.__path__)
            if not m.name.startswith("_")}
    assert subs <= set(DOCUMENTED), f"book/api.md misses {sorted(subs - set(DOCUMENTED))}"
    for module in DOCUMENTED:
        importlib.import_module(module)
    if (ROOT / "bisls_core" / "single_level.py").is_file():
        assert "bisls_core.single_level" in DOCUMENTED


def test_readme_points_at_the_api_page():
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    assert "API page" in readme or "API reference" in readme
    assert "book/api" in readme, "the README's mention of the API page should link to book/api.md"


# --------------------------------------------------------------------- the Sphinx extension
@pytest.mark.parametrize("tex,text", [
    (r"\eta", "η"), (r"\delta", "δ"), (r"\eta = 10", "η = 10"),
    (r"\tilde O(1/\sqrt K)", "Õ(1/√K)"), (r"\tilde{O}(1/\sqrt{K})", "Õ(1/√K)"),
    (r"x \in \mathbb R", "x ∈ ℝ"),
])
def test_navigation_titles_become_plain_text(tex, text):
    assert ext.latex_to_text(tex) == text


def test_a_paragraph_after_a_parameters_section_ends_it():
    lines = textwrap.dedent("""\
        Summary.

        Parameters
        ----------
        a, b:
            numbers.
        c : int
            another.

        Every setting must be finite. If
        ``step`` raises, nothing changes.

        Returns
        -------
        int
            the sum.
        """).splitlines()
    out = list(lines)
    ext.end_field_sections(out)
    i = out.index("Every setting must be finite. If")
    assert out[i - 2:i] == ["", ""], "a second blank line ends the section before the paragraph"
    assert len(out) == len(lines) + 1, "fields and the next section are left alone"


# -------------------------------------------------------------------------- the site check
def _site(tmp_path: Path, pages: dict[str, str]) -> Path:
    site = tmp_path / "html"
    for rel, body in pages.items():
        p = site / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body, encoding="utf8")
    return site


def test_site_check_finds_dead_links_placeholder_links_and_raw_math(tmp_path):
    url = "https://github.com/someone/something"
    site = _site(tmp_path, {
        "index.html": '<html lang="en"><head><title>Home</title></head><body>'
                      '<a href="book/a.html">a</a> <a href="book/missing.html">x</a>'
                      f'<a href="https://mybinder.org/v2/gh/someone/something/main">launch</a>'
                      '<nav class="bd-docs-nav"><a href="book/a.html">Figure 12: \\(\\eta\\)</a></nav>'
                      '</body></html>',
        "book/a.html": '<html lang="en"><body><img src="../_images/p.png"><a href="../index.html#top">'
                       'home</a></body></html>',
        "fr/book/b.html": '<html lang="en"><body></body></html>',
    })
    (site / "_images").mkdir()
    (site / "_images" / "p.png").write_bytes(b"")
    banned = [url, "someone/something"]
    problems = []
    for path in check_site.pages(site):
        problems += check_site.page_problems(site, path, check_site.parse(path), banned)
    text = "\n".join(problems)
    assert "index.html: dead local href 'book/missing.html'" in text
    assert "placeholder repository (https://mybinder.org/v2/gh/someone/something/main)" in text
    assert "raw LaTeX in a navigation title" in text
    assert "fr/book/b.html: <html lang='en'>, expected 'fr'" in text
    assert not any(p.startswith("book/a.html") for p in problems)


def test_site_check_knows_the_placeholder_while_it_is_one():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    flag = config["sphinx"]["config"]["bisls_repository_placeholder"]
    assert bool(check_site.placeholder()) == bool(flag)
    if flag:
        assert config["repository"]["url"] in check_site.placeholder()


# ------------------------------------------------------------------------- encrypted kernels
def test_the_provisioner_name_is_the_same_everywhere():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set(meta["entry-points"]["jupyter_client.kernel_provisioners"])
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"export JUPYTER_DEFAULT_PROVISIONER_NAME := (\S+)", make)[1] in names
    assert book.PROVISIONER in names


_KERNEL = """
from jupyter_client.manager import KernelManager
km = KernelManager(kernel_name="python3")
km.start_kernel()
kc = km.client(); kc.start_channels(); kc.wait_for_ready(timeout=60)
reply = kc.execute_interactive("print(6 * 7)", timeout=60)
print("status", reply["content"]["status"], "encrypted", km.curve_publickey is not None)
kc.stop_channels(); km.shutdown_kernel(now=True)
"""


@pytest.mark.parametrize("provisioner", [None, "bisls-encrypted-provisioner"])
def test_kernels_started_through_the_provisioner_are_encrypted_and_quiet(provisioner, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_DEFAULT_PROVISIONER_NAME"}
    if provisioner:
        env["JUPYTER_DEFAULT_PROVISIONER_NAME"] = provisioner
    else:  # the control: ipykernel's own kernelspec, not the venv's (which names the provisioner)
        from ipykernel.kernelspec import write_kernel_spec

        write_kernel_spec(tmp_path / "jp" / "kernels" / "python3")
        env["JUPYTER_PATH"] = str(tmp_path / "jp")
    proc = subprocess.run([sys.executable, "-c", _KERNEL], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert "status ok" in proc.stdout, proc.stdout + proc.stderr
    warned = "without encryption" in proc.stderr
    if provisioner:
        assert "encrypted True" in proc.stdout and not warned, proc.stderr
    else:  # the control: the default provisioner is what printed the warning
        assert "encrypted False" in proc.stdout and warned
