"""CgroupManager on this host's real cgroup v1 hierarchies (cgroups named crt-cg-*)."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator

import pytest

from runtime.cgroups import (
    CgroupError,
    CgroupManager,
    FreezerState,
    Resources,
    cgroup_paths_of,
    detect_version,
    open_cgroup,
    parse_cgroups_path,
    read_mounts,
)
from tests.integration.runtime.cgroups.children import Children
from tests.integration.runtime.lifekit import wait_for

BUSYBOX = "/bin/busybox"
MiB = 1 << 20

pytestmark = pytest.mark.skipif(detect_version(read_mounts()) != 1, reason="needs cgroup v1")


@pytest.fixture
def cg() -> Iterator[CgroupManager]:
    m = open_cgroup(parse_cgroups_path(f"crt-cg-{secrets.token_hex(4)}", "unused"))
    m.create()
    try:
        yield m
    finally:
        if m.exists() and m.state() is not FreezerState.THAWED:
            m.thaw()
        m.destroy()
        assert not m.exists()


def _read(cg: CgroupManager, controller: str, name: str) -> str:
    with open(os.path.join(cg.dirs()[controller], name)) as f:
        return f.read().strip()


def test_create_makes_every_hierarchy_and_inherits_cpuset(cg: CgroupManager) -> None:
    dirs = cg.dirs()
    assert all(os.path.isdir(d) for d in dirs.values())
    assert {"memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices"} <= set(dirs)
    with open("/sys/fs/cgroup/cpuset/cpuset.cpus") as f:
        assert _read(cg, "cpuset", "cpuset.cpus") == f.read().strip()
    assert _read(cg, "cpuset", "cpuset.mems") != ""


def test_apply_and_set_limits(cg: CgroupManager, children: Children) -> None:
    pid = children.spawn(BUSYBOX, "sleep", "60")
    assert cg.pids() == [pid]
    cg.set(Resources.from_oci({
        "memory": {"limit": 64 * MiB, "swap": 64 * MiB, "reservation": 32 * MiB},
        "cpu": {"shares": 512, "quota": 50_000, "period": 100_000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 10},
    }))
    assert int(_read(cg, "memory", "memory.limit_in_bytes")) == 64 * MiB
    assert int(_read(cg, "memory", "memory.memsw.limit_in_bytes")) == 64 * MiB
    assert int(_read(cg, "memory", "memory.soft_limit_in_bytes")) == 32 * MiB
    assert _read(cg, "cpu", "cpu.shares") == "512"
    assert _read(cg, "cpu", "cpu.cfs_quota_us") == "50000"
    assert _read(cg, "cpuset", "cpuset.cpus") == "0"
    assert _read(cg, "pids", "pids.max") == "10"
    # Raising memory+swap above the current memory limit needs memsw written first.
    cg.set(Resources.from_oci({"memory": {"limit": 128 * MiB, "swap": 256 * MiB}}))
    assert int(_read(cg, "memory", "memory.limit_in_bytes")) == 128 * MiB
    assert int(_read(cg, "memory", "memory.memsw.limit_in_bytes")) == 256 * MiB
    cg.set(Resources.from_oci({"memory": {"limit": -1}, "pids": {"limit": -1}}))
    assert int(_read(cg, "memory", "memory.limit_in_bytes")) > 1 << 60
    assert _read(cg, "pids", "pids.max") == "max"
    # Pages are charged once the child runs busybox in the cgroup (after the move).
    assert wait_for(lambda: cg.stats().memory.usage > 0)
    stats = cg.stats()
    assert stats.pids.current == 1 and stats.pids.limit is None
    assert stats.memory.limit is None and stats.memory.working_set <= stats.memory.usage


def test_cgroup_paths_of_a_member_match_the_manager(cg: CgroupManager,
                                                   children: Children) -> None:
    pid = children.spawn(BUSYBOX, "sleep", "60")
    paths = cgroup_paths_of(pid)
    own = cgroup_paths_of("self")
    name = os.path.basename(cg.dirs()["memory"])
    # Relative cgroupsPath: under our own cgroup in each hierarchy, the unified one included
    # (the hybrid host's cgroup2 is joined too).
    for controller in ("memory", "cpu", "pids", "freezer", "name=systemd", ""):
        assert paths[controller] == os.path.join(own[controller], name), controller
    assert cg.dirs()[""].startswith("/sys/fs/cgroup/unified/")


def test_pids_limit_stops_forks(cg: CgroupManager, children: Children) -> None:
    cg.set(Resources.from_oci({"pids": {"limit": 3}}))
    # sh (1) + three background sleeps: the third fork must fail.
    pid = children.spawn(BUSYBOX, "sh", "-c", "for i in 1 2 3; do sleep 5 & done; wait")
    time.sleep(0.3)
    assert cg.stats().pids.current == 3
    assert cg.stats().pids.limit == 3
    assert _read(cg, "pids", "pids.events") == "max 1"  # the kernel refused the third fork
    children.wait(pid)
    # The kernel's record of refused forks is the pids.events "max" counter.
    assert int(_read(cg, "pids", "pids.events").split()[1]) >= 1


def _cpu_ns(cg: CgroupManager) -> int:
    return cg.stats().cpu.usage_ns


def test_freeze_stops_cpu_and_thaw_resumes(cg: CgroupManager, children: Children) -> None:
    children.spawn(BUSYBOX, "sh", "-c", "while :; do :; done")
    assert wait_for(lambda: _cpu_ns(cg) > 0)
    cg.freeze()
    assert cg.state() is FreezerState.FROZEN
    before = _cpu_ns(cg)
    time.sleep(0.3)
    assert _cpu_ns(cg) - before < 5_000_000  # < 5 ms of CPU in 300 ms while frozen
    cg.thaw()
    assert cg.state() is FreezerState.THAWED
    before = _cpu_ns(cg)
    # Running again: CPU time grows (the host is shared, so no rate is asserted).
    assert wait_for(lambda: _cpu_ns(cg) - before > 20_000_000)


def test_oom_kill_is_counted(cg: CgroupManager, children: Children) -> None:
    cg.set(Resources.from_oci({"memory": {"limit": 16 * MiB, "swap": 16 * MiB}}))
    # busybox's sh grows a string until the limit: dd from /dev/zero into a variable.
    pid = children.spawn(BUSYBOX, "sh", "-c", 'x=$(head -c 200000000 /dev/zero | tr "\\0" a)')
    status = children.wait(pid)
    assert os.WIFSIGNALED(status) or os.waitstatus_to_exitcode(status) != 0
    assert cg.oom_kill_count() >= 1, status
    assert cg.stats().memory.oom_kills == cg.oom_kill_count()
    assert cg.stats().memory.limit == 16 * MiB


def test_device_rules(cg: CgroupManager, children: Children) -> None:
    cg.set(Resources.from_oci({"devices": [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    ]}))
    assert _read(cg, "devices", "devices.list") == "c 1:3 rwm"
    ok = children.spawn(BUSYBOX, "sh", "-c", "echo hi > /dev/null")
    denied = children.spawn(BUSYBOX, "head", "-c", "1", "/dev/zero")
    assert os.waitstatus_to_exitcode(children.wait(ok)) == 0
    assert os.waitstatus_to_exitcode(children.wait(denied)) == 1


def test_unified_keys_are_refused_on_v1(cg: CgroupManager) -> None:
    with pytest.raises(CgroupError, match=r"linux\.resources\.unified: set on a cgroup v1 host"):
        cg.set(Resources.from_oci({"unified": {"memory.high": "1000000"}}))


def test_destroy_removes_nested_cgroups(cg: CgroupManager) -> None:
    for d in cg.dirs().values():
        os.makedirs(os.path.join(d, "inner", "deeper"), exist_ok=True)
    cg.destroy()
    assert not cg.exists()
    cg.destroy()  # already gone: not an error


def test_destroy_with_a_live_process_fails_clearly(cg: CgroupManager,
                                                   children: Children) -> None:
    pid = children.spawn(BUSYBOX, "sleep", "60")
    with pytest.raises(CgroupError, match=rf"removing cgroup .*Device or resource busy.*{pid}"):
        cg.destroy()
    children.kill_all()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_kill_signals_every_process_including_forked_ones(cg: CgroupManager,
                                                          children: Children, sig: int) -> None:
    pid = children.spawn(BUSYBOX, "sh", "-c", "sleep 60 & sleep 60 & wait")
    assert wait_for(lambda: len(cg.pids()) == 3)
    cg.kill(sig)
    assert os.WIFSIGNALED(children.wait(pid))
    assert wait_for(lambda: cg.pids() == [])
    assert cg.state() is FreezerState.THAWED
