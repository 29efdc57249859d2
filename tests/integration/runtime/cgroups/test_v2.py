"""V2Manager on the host's real cgroup2 mount (empty of controllers on this hybrid host).

Each test works in its own sub-tree /sys/fs/cgroup/unified/crt-cg-*, handed to the manager as
the mount, so nothing is enabled in the host's root cgroup.subtree_control.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import pytest

from runtime.cgroups import CgroupPath, FreezerState, Mount, Resources, V2Manager, read_mounts
from tests.integration.runtime.cgroups.children import Children

BUSYBOX = "/bin/busybox"
UNIFIED = next((m for m in read_mounts() if m.version == 2), None)

pytestmark = pytest.mark.skipif(UNIFIED is None, reason="no cgroup2 mount")


@pytest.fixture
def cg() -> Iterator[V2Manager]:
    assert UNIFIED is not None
    name = f"crt-cg-{secrets.token_hex(4)}"
    top = os.path.join(UNIFIED.mountpoint, name)
    os.mkdir(top)
    m = V2Manager(CgroupPath("/pod/ctr"), Mount(top, "/", 2, frozenset()))
    try:
        m.create()
        yield m
    finally:
        if m.exists() and m.state() is not FreezerState.THAWED:
            m.thaw()
        m.destroy()
        os.rmdir(os.path.join(top, "pod"))
        os.rmdir(top)


@pytest.fixture
def children(cg: V2Manager) -> Iterator[Children]:
    c = Children(cg)
    try:
        yield c
    finally:
        c.kill_all()


def test_create_apply_pids_destroy(cg: V2Manager, children: Children) -> None:
    assert os.path.isfile(os.path.join(cg.dirs()[""], "cgroup.freeze"))
    pid = children.spawn(BUSYBOX, "sleep", "60")
    assert cg.pids() == [pid]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"0::{cg.dirs()[''].removeprefix(UNIFIED.mountpoint if UNIFIED else '')}" in f.read()


def test_freeze_thaw_and_cpu_stats(cg: V2Manager, children: Children) -> None:
    children.spawn(BUSYBOX, "sh", "-c", "while :; do :; done")
    time.sleep(0.2)
    assert cg.stats().cpu.usage_ns > 0
    cg.freeze()
    assert cg.state() is FreezerState.FROZEN
    before = cg.stats().cpu.usage_ns
    time.sleep(0.3)
    assert cg.stats().cpu.usage_ns - before < 5_000_000
    cg.thaw()
    assert cg.state() is FreezerState.THAWED
    before = cg.stats().cpu.usage_ns
    time.sleep(0.3)
    assert cg.stats().cpu.usage_ns - before > 100_000_000


def test_limits_without_controllers_fail_clearly(cg: V2Manager) -> None:
    from runtime.cgroups import CgroupError

    with pytest.raises(CgroupError, match=r"linux\.resources\.pids\.limit: pids\.max does not "
                                          r"exist .*not enabled"):
        cg.set(Resources.from_oci({"pids": {"limit": 5}}))
