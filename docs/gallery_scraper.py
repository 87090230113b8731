"""A sphinx-gallery image scraper for the figures of :mod:`digitrec.plotting`.

digitrec builds :class:`matplotlib.figure.Figure` objects without ``pyplot``, so
sphinx-gallery's matplotlib scraper, which asks ``pyplot`` for its open figures, never
sees them. This scraper shows a figure the way a notebook does: when it is the value of
the last expression of a code block. ``conf.py`` names it by its import path
(``gallery_scraper.figure_scraper``) because Sphinx cannot cache a function object in
its configuration.
"""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure
from sphinx_gallery.scrapers import figure_rst

# sphinx-gallery keeps the value of a block's last expression under this name in the
# example's globals; it stays there until another block ends in an expression.
_LAST_VALUE = "___"
_SHOWN = "digitrec_shown_figures"


def figure_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """Save the figure a block ends with, once, and return the reST that shows it."""
    value = block_vars["example_globals"].get(_LAST_VALUE)
    # block_vars lives as long as the example: remember the figures already shown,
    # so that a later block that does not end in an expression does not show one again.
    shown: list[Figure] = block_vars.setdefault(_SHOWN, [])
    if not isinstance(value, Figure) or any(value is figure for figure in shown):
        return ""
    shown.append(value)
    path = next(block_vars["image_path_iterator"])
    value.savefig(path, dpi=100)
    return str(figure_rst([path], gallery_conf["src_dir"]))
