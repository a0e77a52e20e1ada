"""Sphinx math rendered as MathML at build time: no JavaScript, no CDN, nothing to install.

docutils converts the LaTeX (its ``latex2mathml``, the subset that formulas here use) and
the browser typesets the ``<math>`` element natively (MathML Core: Chromium 109+,
Firefox, Safari), so the pages show formulas offline and in the tests' headless Chromium.
"""
from docutils import nodes
from docutils.utils.math import latex2mathml


def _inline(translator, node):
    translator.body.append(latex2mathml.tex2mathml(node.astext()))
    raise nodes.SkipNode


def _block(translator, node):
    translator.body.append(translator.starttag(node, "div", CLASS="math"))
    translator.body.append(latex2mathml.tex2mathml(node.astext(), as_block=True))
    translator.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app):
    app.add_html_math_renderer("mathml", (_inline, None), (_block, None))
    return {"parallel_read_safe": True, "parallel_write_safe": True}
