from __future__ import annotations

import os

import pytest

from tests.integration.runtime.bundle import make_rootfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def bundle(tmp_path):  # type: ignore[no-untyped-def]
    make_rootfs(str(tmp_path / "rootfs"))
    return str(tmp_path)
