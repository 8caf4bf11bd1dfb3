"""Sphinx configuration for genudp's docs: Markdown pages (MyST) and the API reference from the
docstrings (autodoc, Google style through napoleon). Built with warnings as errors by
tests/docs/test_docs.py: ``sphinx-build -W docs docs/_build``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import genudp

project = "genudp"
author = "the genudp authors"
copyright = "2026, the genudp authors"
release = version = genudp.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.intersphinx"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "alabaster"
html_title = f"genudp {release}"
napoleon_use_ivar = True
