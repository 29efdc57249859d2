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
from tests.integration.runtime.lifekit import wait_for

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


def test_create_apply_pids_destroy(cg: V2Manager, children: Children) -> None:
    assert os.path.isfile(os.path.join(cg.dirs()[""], "cgroup.freeze"))
    pid = children.spawn(BUSYBOX, "sleep", "60")
    assert cg.pids() == [pid]
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"0::{cg.dirs()[''].removeprefix(UNIFIED.mountpoint if UNIFIED else '')}" in f.read()


def test_freeze_thaw_and_cpu_stats(cg: V2Manager, children: Children) -> None:
    children.spawn(BUSYBOX, "sh", "-c", "while :; do :; done")
    assert wait_for(lambda: cg.stats().cpu.usage_ns > 0)
    cg.freeze()
    assert cg.state() is FreezerState.FROZEN
    before = cg.stats().cpu.usage_ns
    time.sleep(0.3)
    assert cg.stats().cpu.usage_ns - before < 5_000_000
    cg.thaw()
    assert cg.state() is FreezerState.THAWED
    before = cg.stats().cpu.usage_ns
    # Running again: CPU time grows (the host is shared, so no rate is asserted).
    assert wait_for(lambda: cg.stats().cpu.usage_ns - before > 20_000_000)


def test_limits_without_controllers_fail_clearly(cg: V2Manager) -> None:
    from runtime.cgroups import CgroupError

    with pytest.raises(CgroupError, match=r"linux\.resources\.pids\.limit: pids\.max does not "
                                          r"exist .*not enabled"):
        cg.set(Resources.from_oci({"pids": {"limit": 5}}))


def test_device_ebpf_filter(cg: V2Manager, children: Children) -> None:
    cg.set(Resources.from_oci({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "r"},
    ]}))
    ok = children.spawn(BUSYBOX, "sh", "-c", "echo hi > /dev/null")
    denied = children.spawn(BUSYBOX, "head", "-c", "1", "/dev/zero")
    read_only = children.spawn(BUSYBOX, "head", "-c", "1", "/dev/urandom")
    write_denied = children.spawn(BUSYBOX, "sh", "-c", "echo x > /dev/urandom")
    assert [os.waitstatus_to_exitcode(children.wait(p))
            for p in (ok, denied, read_only, write_denied)] == [0, 1, 0, 1]
    # A second set() replaces the program: now /dev/zero is allowed too.
    cg.set(Resources.from_oci({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "r"},
    ]}))
    zero = children.spawn(BUSYBOX, "head", "-c", "1", "/dev/zero")
    null = children.spawn(BUSYBOX, "sh", "-c", "echo hi > /dev/null")
    assert [os.waitstatus_to_exitcode(children.wait(p)) for p in (zero, null)] == [0, 1]


def test_kill_uses_cgroup_kill(cg: V2Manager, children: Children) -> None:
    pid = children.spawn(BUSYBOX, "sh", "-c", "sleep 60 & sleep 60 & wait")
    assert wait_for(lambda: len(cg.pids()) == 3)
    cg.kill()
    assert os.WTERMSIG(children.wait(pid)) == 9
    assert wait_for(lambda: cg.pids() == [])
