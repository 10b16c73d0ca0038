"""Sphinx configuration for omniman's documentation.

Build with ``sphinx-build -W -b html docs docs/_build/html`` from the repository root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Our own extensions: openapi_reference renders the HTTP reference from the schema.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

# autodoc imports the package, so Django must be set up first.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django  # noqa: E402

django.setup()

import omniman  # noqa: E402

project = "omniman"
author = "omniman contributors"
copyright = "omniman contributors"  # noqa: A001
release = omniman.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "openapi_reference",
]

# The build machine has no network: no intersphinx.
nitpicky = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_mock_imports: list[str] = []

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []
html_static_path = ["_static"]
html_title = f"omniman {release}"

try:
    import furo  # noqa: F401
except ImportError:  # a plain sphinx install still builds the docs
    html_theme = "alabaster"
else:
    html_theme = "furo"

suppress_warnings = ["ref.python"]


# -- the guide's order -----------------------------------------------------------
# The guide is read in this order; a page not listed here still appears, after
# these, so that a new page needs no edit of index.rst. (A plain ``:glob:`` would
# sort alphabetically, and a glob next to a full list fails -W when it matches
# nothing new.)
GUIDE_ORDER = [
    "quickstart", "example", "concepts", "ops", "pricing", "http-api", "imports", "python-api", "directives",
    "order-life", "payments", "celery", "reliability", "deployment", "performance", "bench",
]
GUIDE_MARKER = "   .. the guide pages, in reading order: filled in by conf.py\n"


def guide_pages() -> list[str]:
    present = {p.stem for p in (Path(__file__).parent / "guide").glob("*.rst")}
    ordered = [name for name in GUIDE_ORDER if name in present]
    return ordered + sorted(present - set(ordered))


def _fill_guide(app: object, docname: str, source: list[str]) -> None:
    if docname == "index":
        source[0] = source[0].replace(GUIDE_MARKER, "".join(f"   guide/{name}\n" for name in guide_pages()))


def _reread_index(app: object, env: object, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    return ["index"]  # its guide list depends on which pages exist


def setup(app: object) -> None:
    app.connect("source-read", _fill_guide)  # type: ignore[attr-defined]
    app.connect("env-get-outdated", _reread_index)  # type: ignore[attr-defined]
