"""Sphinx configuration of the documentation site (Markdown pages read by MyST). The test
command builds it with warnings as errors: ``sphinx-build -W -b html docs artifacts/docs``."""

from __future__ import annotations

import sys
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS)]  # the package, and reference_tables.py beside this

from reference_tables import TABLES  # noqa: E402

import keycloak_jwt_auth  # noqa: E402

project = "keycloak-jwt-auth"
author = "The keycloak-jwt-auth contributors"
copyright = f"2026, {author}"  # noqa: A001 (Sphinx's name)
release = keycloak_jwt_auth.__version__
version = ".".join(release.split(".")[:2])

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3  # "page.md#a-heading" links, as GitHub renders them
myst_enable_extensions = ["deflist"]
html_theme = "alabaster"
html_theme_options = {"page_width": "1240px", "body_max_width": "none"}  # room for the tables
html_title = f"keycloak-jwt-auth {release}"
html_show_sourcelink = False


class ReferenceTable(SphinxDirective):
    """``{reference-table} settings`` (or ``checks``) in a page: the table, as its Markdown."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        render = TABLES.get(self.arguments[0])
        if render is None:
            raise self.error(f"reference-table takes one of: {', '.join(TABLES)}")
        return self.parse_text_to_nodes(render())


def setup(app: Sphinx) -> None:
    app.add_directive("reference-table", ReferenceTable)
