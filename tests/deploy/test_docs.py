"""The user documentation hangs together: the index links every page, and no link is dangling.

Anchors are checked with GitHub's heading slugs (lower case, punctuation dropped, spaces to
hyphens), which is how the pages are read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

DOCS = ROOT / "docs"
OWN_PAGES = [
    "index.md",
    "install.md",
    "objects.md",
    "status-and-events.md",
    "security-model.md",
    "pipeline.md",
    "webhooks.md",
]
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text())
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def _links(path: Path) -> list[str]:
    return _LINK.findall(_FENCE.sub("", path.read_text()))


def test_index_links_every_page() -> None:
    linked = {link.split("#")[0] for link in _links(DOCS / "index.md")}
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages <= linked, f"not linked from docs/index.md: {sorted(pages - linked)}"
    assert "../README.md#quick-start" in _links(DOCS / "index.md")


@pytest.mark.parametrize("page", OWN_PAGES)
def test_relative_links_resolve(page: str) -> None:
    source = DOCS / page
    broken = []
    for link in _links(source):
        if re.match(r"^[a-z]+:", link):
            continue  # an external URL
        target_text, _, anchor = link.partition("#")
        target = (source.parent / target_text).resolve() if target_text else source
        exists = target.exists()
        checked = exists and bool(anchor) and target.suffix == ".md"
        if not exists or (checked and anchor not in _anchors(target)):
            broken.append(link)
    assert broken == []
