"""docs/index.md is the map of the documentation: it lists every page in docs/, and the pages
this area owns (index, getting-started, python-api) link only to files that exist."""

import re

from conftest import REPO

DOCS = REPO / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
GENERATED = {"cli.md"}  # written by `reference_markdown()`; tests/docs checks it is current


def test_index_lists_every_page():
    text = (DOCS / "index.md").read_text()
    linked = set(LINK.findall(text))
    pages = set(p.name for p in DOCS.glob("*.md")) - {"index.md"}
    assert pages <= linked, "docs/index.md does not list: %s" % ", ".join(sorted(pages - linked))


def test_links_of_our_pages_resolve():
    for name in ("index.md", "getting-started.md", "python-api.md"):
        for target in LINK.findall((DOCS / name).read_text()):
            if target.startswith(("http://", "https://")) or target in GENERATED:
                continue
            assert (DOCS / target).exists(), "%s links to missing %s" % (name, target)


def test_examples_named_in_the_docs_exist():
    text = (DOCS / "python-api.md").read_text()
    for script in re.findall(r"`(\d\d_[a-z_]+\.py)", text):
        assert (REPO / "examples" / script).exists(), script
