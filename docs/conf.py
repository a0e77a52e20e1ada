"""Sphinx configuration of fmlearn's documentation: ``make docs`` builds it into docs/_build/html.

Why Sphinx with numpydoc: the docstrings are numpydoc, and the libraries fmlearn sits beside
(scikit-learn, implicit, LightGBM) document their APIs the same way, so readers find the
familiar layout. The guide pages are Markdown (myst-parser) so that tests/test_docs.py runs
their Python blocks as it runs the README's. Formulas are MathML written at build time
(_ext/mathml.py): no MathJax, no network, nothing that needs LaTeX.
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "fmlearn"
copyright = "fmlearn developers, BSD-3-Clause"
from fmlearn import __version__ as release  # noqa: E402

version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "mathml",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_math_renderer = "mathml"

# API pages are written by hand (docs/api/*.rst); the autosummary tables link to them.
autosummary_generate = False
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False

myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"fmlearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    # The guide's pages are short and their code is wide: no "on this page" column there.
    "secondary_sidebar_items": {"api/*": ["page-toc"], "guide/*": [], "dask": [], "index": []},
    "footer_start": ["copyright"],
    "footer_center": [],
    "footer_end": [],
}
html_sidebars = {"index": []}
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["fmlearn.css"]


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Leave out what estimators inherit from scikit-learn (score, set_output, metadata routing):
    its docstrings point into scikit-learn's own site."""
    defined_in = getattr(obj, "__module__", None) or ""
    return True if defined_in.split(".")[0] == "sklearn" else skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
