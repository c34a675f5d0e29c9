"""Sphinx configuration: API reference (autosummary + numpydoc), the README's guide and the tutorials (MyST)."""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # document this checkout, not an installed copy
CHECKOUT_DATA = DOCS.parents[1] / "shared" / "data"
if not os.environ.get("LMF_OMICS_DATA") and CHECKOUT_DATA.is_dir():
    os.environ["LMF_OMICS_DATA"] = str(CHECKOUT_DATA)  # the tutorials read the data beside the checkout

import lmf_omics  # noqa: E402

project = "lmf_omics"
author = "lmf_omics developers"
copyright = "lmf_omics developers"  # noqa: A001
version = release = lmf_omics.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "lmf_docs",
]
root_doc = "generated/index"
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_ext"]
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

autosummary_generate = ["generated/api.md"]  # the one page with autosummary tables (lmf_docs writes it)
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

html_theme = "sphinx_book_theme"
html_title = f"lmf_omics {release}"
html_theme_options = {"show_toc_level": 2}
