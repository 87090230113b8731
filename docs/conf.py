"""Sphinx configuration for the digitrec documentation.

Build with ``sphinx-build -W --keep-going -n -b html docs docs/_build/html``.
Nothing here fetches anything over the network: there is no intersphinx.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

# Import the package from the source tree even when it is not installed, and the
# gallery's image scraper (docs/gallery_scraper.py) by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sphinx.ext.autodoc.typehints import record_typehints

import digitrec

# -- Project -----------------------------------------------------------------

project = "digitrec"
author = "digitrec developers"
copyright = "digitrec developers"
release = digitrec.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_nb",
    "sphinx_gallery.gen_gallery",
]
# The gallery's downloadable notebooks are not pages of their own.
exclude_patterns = ["_build", "gallery/*.ipynb", "**/.ipynb_checkpoints"]
# Keep quotes and "..." as typed, so that types such as Literal['mlp', 'cnn'] and
# tuple[float, ...] read as Python; only "--" becomes a dash.
smartquotes_action = "D"
nitpicky = False  # turned on for checks with ``sphinx-build -n``

# -- autodoc and napoleon -----------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "all"
# Show ``device`` parameters as the documented alias rather than its expansion.
autodoc_type_aliases = {"DeviceLike": "DeviceLike"}

# digitrec.plotting needs matplotlib (the ``plot`` extra, included in ``docs``).
# Mock it only where it is missing, so the real types render whenever possible.
autodoc_mock_imports = [] if importlib.util.find_spec("matplotlib") else ["matplotlib"]

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
napoleon_use_rtype = True

# Without intersphinx (the build must work offline), references to the types of
# other projects cannot resolve. Ignore exactly those, so that ``-n`` still
# reports every broken reference to digitrec's own API.
nitpick_ignore_regex = [
    (r"py:class", r"(torch|numpy|matplotlib)\..+"),
    (r"py:class", r"os\.PathLike|pathlib\.Path|collections\.abc\..+"),
]


def _resolve_public_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve a public name to where the reference documents it.

    Docstrings refer to the public API by its flat name, ``digitrec.Trainer`` or
    just ``Trainer.fit``, while the reference documents each object in the module
    that defines it (``digitrec.training.Trainer``), or under ``digitrec`` when
    that module is private (``digitrec.DeviceLike``). Names outside
    ``digitrec.__all__`` are left alone, so they still warn.
    """
    if node.get("refdomain") != "py":
        return None
    target: str = node.get("reftarget", "").lstrip("~.")
    if target.startswith("digitrec."):
        target = target[len("digitrec.") :]
    name, _, attribute = target.partition(".")
    if name not in digitrec.__all__:
        return None
    module = getattr(getattr(digitrec, name), "__module__", None)
    # The defining module, then each package above it: objects are documented where
    # their sub-package re-exports them (digitrec.models.DigitClassifier).
    homes = ["digitrec"]
    if isinstance(module, str) and module.startswith("digitrec."):
        parts = module.split(".")
        homes = [".".join(parts[:end]) for end in range(len(parts), 0, -1)]
    domain = env.get_domain("py")
    for home in homes:
        canonical = ".".join(part for part in (home, name, attribute) if part)
        resolved = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
        )
        if resolved is not None:
            return resolved
    return None


def _record_init_typehints(
    app: Any, what: str, name: str, obj: Any, options: Any, args: Any, retann: Any
) -> None:
    """Take a class's parameter types from its ``__init__``.

    For a class, autodoc reads the types of the constructor's parameters from the
    class itself, which leaves them as unevaluated strings under ``from __future__
    import annotations`` (``'DeviceLike'`` instead of ``str | torch.device``).
    """
    if what == "class" and isinstance(obj, type) and "__init__" in vars(obj):
        record_typehints(app, "method", name, obj.__init__, options, args, retann)


def _drop_type_docstrings(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Drop the docstring a constant "inherits" from its type (``tuple``, ``str | torch.device``).

    A constant that autodoc finds no ``#:`` comment for would otherwise be
    described by the docstring of its type; the reference gives it its own text.
    """
    if what == "data" and not isinstance(obj, type):
        ours = [line.strip() for line in lines if line.strip()]
        inherited = [line.strip() for line in (type(obj).__doc__ or "").splitlines()]
        if ours and ours == [line for line in inherited if line]:
            lines.clear()


def setup(app: Any) -> None:
    app.connect("autodoc-process-docstring", _drop_type_docstrings, priority=400)
    app.connect("autodoc-process-signature", _record_init_typehints, priority=600)
    app.connect("missing-reference", _resolve_public_alias)


# -- Executed tutorials (myst-nb) and gallery (sphinx-gallery) ---------------------

# The tutorials' source of truth is examples/notebooks/*.py in jupytext's py:percent
# format (reviewable diffs, checked by ruff and mypy). Each build writes them as
# output-free notebooks into docs/tutorials/ (generated, not committed), and myst-nb
# executes those and the quickstart page (docs/quickstart.md) on every build, so the
# outputs shown are always those of the current code; a cell that raises fails the build.
DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
TUTORIALS = DOCS / "tutorials"


def _write_tutorial_notebooks() -> None:
    import jupytext

    TUTORIALS.mkdir(exist_ok=True)
    for script in sorted((ROOT / "examples" / "notebooks").glob("*.py")):
        text = jupytext.writes(jupytext.read(script), fmt="ipynb")
        target = TUTORIALS / f"{script.stem}.ipynb"
        # Rewrite only on change, so an incremental build rereads only what changed.
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")


_write_tutorial_notebooks()

nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300  # seconds per cell; the longest, training a CNN, takes 10-30 s

# examples/gallery/plot_*.py run on every build where they changed; their outputs and
# figures make docs/gallery/ (generated, not committed). A script that raises fails
# the build once every script has run.
sphinx_gallery_conf = {
    "examples_dirs": ["../examples/gallery"],
    "gallery_dirs": ["gallery"],
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    # digitrec's figures are not pyplot's: show the Figure a block ends with.
    "image_scrapers": ("gallery_scraper.figure_scraper",),
    "ignore_repr_types": r"matplotlib\.figure\.Figure",
    "remove_config_comments": True,
    "download_all_examples": False,
    "write_computation_times": False,
    "only_warn_on_example_error": False,
    "first_notebook_cell": "%matplotlib inline",
}

# -- HTML --------------------------------------------------------------------

html_theme = "furo"
html_title = f"digitrec {release}"
