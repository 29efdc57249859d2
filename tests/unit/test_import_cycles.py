"""No two modules of ours import each other.

import-linter's contracts say which package may import which; a 2-cycle between two modules
(each importing the other, even lazily inside a function) is what they let through, and it is the
first sign that one job was split across two files or that a type lives in the wrong one.
"""

from __future__ import annotations

import grimp

PACKAGES = ("crid", "runtime", "imagestore")


def two_cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """Every pair of modules that import each other directly, each pair once, sorted."""
    pairs = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if module in graph.find_modules_directly_imported_by(imported):
                pairs.add(tuple(sorted((module, imported))))
    return sorted(pairs)


def test_no_module_of_ours_imports_one_that_imports_it() -> None:
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    assert two_cycles(graph) == []


def test_a_two_cycle_is_found() -> None:
    graph = grimp.ImportGraph()
    for name in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(name)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    assert two_cycles(graph) == [("pkg.a", "pkg.b")]
