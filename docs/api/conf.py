"""Sphinx configuration of omcache's API reference (``make docs``).

autodoc imports the installed package (``make docs`` installs it first), so
the reference documents what users get; importing omcache does not load the
Go engine, so no server and no engine are needed to build it.
"""

from __future__ import annotations

import omcache

project = "omcache"
author = "the omcache authors"
copyright = "the omcache authors, Apache-2.0"
version = release = omcache.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Type hints name aliases and protocol types that have no page of their own.
nitpicky = False
html_theme = "alabaster"
html_title = f"omcache {release} API reference"
exclude_patterns = ["_build"]
