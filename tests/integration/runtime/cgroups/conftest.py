"""The ``children`` fixture: processes a test starts in its ``cg`` (each module defines ``cg``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.cgroups import CgroupManager
from tests.integration.runtime.cgroups.children import Children


@pytest.fixture
def children(cg: CgroupManager) -> Iterator[Children]:
    c = Children(cg)
    try:
        yield c
    finally:
        c.kill_all()
