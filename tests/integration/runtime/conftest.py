from __future__ import annotations

import os

import pytest

from tests.integration.runtime.bundle import make_rootfs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def bundle(tmp_path):  # type: ignore[no-untyped-def]
    make_rootfs(str(tmp_path / "rootfs"))
    yield str(tmp_path)
    # every container mount lives in the container's own mount namespace: none may show here
    with open("/proc/self/mountinfo") as f:
        leaked = [line for line in f if str(tmp_path) in line or "crt-init-" in line]
    assert leaked == []
