"""The README and docs/ link only to files that exist inside the repository (a fresh clone, a
source tarball and $PREFIX/share/doc have nothing beside it)."""

from __future__ import annotations

import re
from pathlib import Path

TOP = Path(__file__).resolve().parents[1].parent
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return [TOP / "README.md", *sorted((TOP / "docs").glob("*.md"))]


def test_relative_links_resolve_inside_the_repository() -> None:
    bad = []
    for page in _pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.is_relative_to(TOP) or not path.exists():
                bad.append(f"{page.relative_to(TOP)}: {target}")
    assert bad == []


def test_readme_names_no_path_outside_the_repository() -> None:
    assert "../" not in (TOP / "README.md").read_text()
