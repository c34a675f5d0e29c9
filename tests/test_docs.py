"""The documentation site's generated pages (docs/_ext/lmf_docs.py), without building it.

The build itself (``python -m sphinx -W -b html docs <out>``) runs in CI; these check in a second what
would otherwise show only there: a public module with no API section, a README anchor link with no page.
"""

import pkgutil
import re
import sys
from pathlib import Path

import pytest

import lmf_omics

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
lmf_docs = pytest.importorskip("lmf_docs")


def test_every_public_module_has_an_api_section():
    modules = {f"lmf_omics.{m.name}" for m in pkgutil.iter_modules(lmf_omics.__path__) if not m.name.startswith("_")}
    assert modules - {"lmf_omics.R"} <= set(lmf_docs.API_SECTIONS)


def test_readme_anchor_links_point_to_the_page_of_their_heading():
    readme = (lmf_docs.ROOT / "README.md").read_text()
    anchors = lmf_docs.readme_anchors()
    for target in re.findall(r"\]\(#([^)\s]+)\)", readme):
        assert target in anchors, f"README links to #{target}, a heading it does not have"
    link = "[what K contains](#what-k-contains-integration)"
    assert lmf_docs.rewrite_links(link, "index") == "[what K contains](guide/what-k-contains-integration.md)"
    assert lmf_docs.rewrite_links(link, "guide/logging-and-progress") == (
        "[what K contains](what-k-contains-integration.md)"
    )
    assert lmf_docs.rewrite_links(link, "guide/what-k-contains-integration") == "what K contains"


def test_r_page_is_the_vignette_without_knitr_chunks():
    page = lmf_docs.r_vignette_page()
    assert page.startswith("# ") and "```r\n" in page
    assert "```{r" not in page and "VignetteEngine" not in page and "include = FALSE" not in page
