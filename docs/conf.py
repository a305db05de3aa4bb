"""Sphinx configuration of tracker's documentation.

Build (warnings are errors)::

    .venv/bin/sphinx-build -W -b html docs docs/_build/html

The build needs no network: there are no intersphinx mappings, and autodoc
imports tracker from the project's virtualenv.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Import tracker from this source tree even when it is not installed.
sys.path.insert(0, str(ROOT))

import tracker  # noqa: E402

project = "tracker"
author = "tracker contributors"
copyright = "tracker contributors"
release = tracker.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# No intersphinx: the build must work without network access.
templates_path: list[str] = []
exclude_patterns = ["_build"]
root_doc = "index"
language = "en"

autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_class_signature = "separated"
# Type hints name SQLAlchemy and oslo.config classes that have no pages here.
nitpicky = False

html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Persistent resource tracker with an SQL metadata store",
    "fixed_sidebar": True,
}
