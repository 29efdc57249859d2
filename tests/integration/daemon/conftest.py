from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rig.daemon import CridProcess, start_crid


@pytest.fixture
def crid(tmp_path: Path) -> Iterator[CridProcess]:
    daemon = start_crid(tmp_path)
    yield daemon
    assert daemon.stop() == 0, daemon.log()
