"""The guide's build: Sphinx with MyST (Markdown), checked strictly by tests/test_docs.py.

Sphinx + MyST rather than MkDocs: Sphinx is kept by a team that releases several times a year,
MyST-Parser by the Executable Books project, and Sphinx's strict mode (-W --keep-going -n)
fails on what goes stale here: a link to a page or heading that is not there, a page that no
table of contents lists, a table of contents that names a missing page. MkDocs 1.x has had no
maintained release line since 2024 and its announced 2.0 drops the plugin and theme systems.
The theme is Sphinx's own (alabaster, installed with it): the build fetches nothing.
"""

project = "bench"
author = "bench"
copyright = "bench's authors"

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Every heading down to ### is a link target (GitHub's slugs), so [x](page.md#a-heading) is
# checked; a link to a heading that is renamed or gone fails the build.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "alabaster"
# The catalogue tables are wide: the page as wide as the report's (1,200 px).
html_theme_options = {"page_width": "1200px"}
html_title = "bench: the guide"
html_static_path: list[str] = []
# No "view source" links to a host that may not be reachable; the pages are read offline too.
html_show_sourcelink = False
html_copy_source = False
