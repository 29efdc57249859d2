"""Pod cgroups through the runtime's cgroup managers, on this host's real hierarchies."""

from __future__ import annotations

import os
import secrets
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crid.containers.stats import CgroupReader
from crid.errors import InvalidArgument
from crid.pods.cgroups import CgroupError, RuntimePodCgroups, pod_cgroup_path
from crid.resources import Resources
from tests.integration.pods.helpers import CGROUP_ROOTS, cleanup_cgroup_parent

PREFIX = "crt-cln"


def _create(cgroups: RuntimePodCgroups, parent: str, name: str, res: Resources | None) -> str:
    path = pod_cgroup_path(parent, name)
    cgroups.create(path, res)
    return path


def _dirs(path: str) -> list[Path]:
    return [r / path for r in CGROUP_ROOTS if (r / path).is_dir()]


@pytest.fixture
def parent() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"/{PREFIX}-{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        cleanup_cgroup_parent(name)


def test_pod_cgroup_everywhere_with_limits_stats_and_removal(parent: str) -> None:
    cgroups = RuntimePodCgroups()
    path = _create(cgroups, parent, "crid-p1", Resources(
        memory_limit=64 << 20, cpu_shares=512, cpu_period=100000, cpu_quota=50000))
    assert path == f"{parent[1:]}/crid-p1"
    assert _dirs(path) == [r / path for r in CGROUP_ROOTS]
    cg = Path("/sys/fs/cgroup")
    assert (cg / "memory" / path / "memory.limit_in_bytes").read_text() == f"{64 << 20}\n"
    assert (cg / "cpu" / path / "cpu.shares").read_text() == "512\n"
    assert (cg / "cpu" / path / "cpu.cfs_quota_us").read_text() == "50000\n"
    cgroups.update(path, Resources(memory_limit=128 << 20, cpu_shares=256))
    assert (cg / "memory" / path / "memory.limit_in_bytes").read_text() == f"{128 << 20}\n"
    assert (cg / "cpu" / path / "cpu.shares").read_text() == "256\n"
    assert (cg / "cpu" / path / "cpu.cfs_quota_us").read_text() == "50000\n"  # left alone

    proc = subprocess.Popen(["/bin/busybox", "sleep", "30"])
    try:
        cgroups.add_process(path, proc.pid)
        lines = Path(f"/proc/{proc.pid}/cgroup").read_text().splitlines()
        assert all(line.endswith(f"/{path}") for line in lines), lines
        usage = CgroupReader().sample("/" + path)  # what PodSandboxStats reads
        assert usage is not None and usage.processes == 1
        assert 0 < usage.available <= 128 << 20  # the pod's limit less its working set
    finally:
        proc.kill()
        proc.wait()
    cgroups.destroy(path)
    assert _dirs(path) == []
    cgroups.destroy(path)  # an absent cgroup is fine


def test_destroy_removes_what_containers_left_inside(parent: str) -> None:
    cgroups = RuntimePodCgroups()
    path = _create(cgroups, parent, "crid-p2", None)
    for d in _dirs(path):
        (d / "crid-c1" / "sub").mkdir(parents=True)
        (d / "crid-c2").mkdir()
    cgroups.destroy(path)
    assert _dirs(path) == []
    assert _dirs(parent[1:]) == [r / parent[1:] for r in CGROUP_ROOTS]  # the parent stays


def test_concurrent_creates_under_a_new_parent(parent: str) -> None:
    cgroups = RuntimePodCgroups()
    with ThreadPoolExecutor(10) as pool:  # map re-raises a thread's error here
        paths = list(pool.map(
            lambda i: _create(cgroups, parent, f"crid-r{i}", Resources(cpu_shares=100 + i)),
            range(10)))
    assert sorted(paths) == sorted(f"{parent[1:]}/crid-r{i}" for i in range(10))
    cpuset = Path("/sys/fs/cgroup/cpuset") / parent[1:] / "crid-r3"
    assert (cpuset / "cpuset.cpus").read_text().strip() != ""  # ready to take tasks
    for p in paths:
        cgroups.destroy(p)
    assert [d.name for d in Path(f"/sys/fs/cgroup/cpu{parent}").iterdir() if d.is_dir()] == []


def test_limits_the_kernel_refuses_leave_nothing(parent: str) -> None:
    cgroups = RuntimePodCgroups()
    with pytest.raises(InvalidArgument, match="refused by the kernel"):
        _create(cgroups, parent, "crid-p3", Resources(cpu_period=100000, cpu_quota=500))
    assert _dirs(f"{parent[1:]}/crid-p3") == []


def test_destroy_waits_for_the_exit_of_a_process_still_inside(parent: str) -> None:
    """A process that outlives the runtime's brief rmdir retries (a slow exit): the removal
    waits for its exit (its pidfd tells) and succeeds; one that does not exit is an error
    naming the cgroup."""
    cgroups = RuntimePodCgroups()
    path = _create(cgroups, parent, "slow", None)
    slow = subprocess.Popen(["sleep", "3"])
    stuck = subprocess.Popen(["sleep", "3600"])
    try:
        cgroups.add_process(path, slow.pid)
        reaper = threading.Thread(target=slow.wait, daemon=True)  # its parent reaps it
        reaper.start()
        cgroups.destroy(path)
        reaper.join(30)
        assert slow.returncode == 0
        assert _dirs(path) == []
        path = _create(cgroups, parent, "stuck", None)
        cgroups.add_process(path, stuck.pid)
        with pytest.raises(CgroupError, match="removing pod cgroup"):
            cgroups.destroy(path)
        assert _dirs(path) != []
    finally:
        for p in (slow, stuck):
            p.kill()
            p.wait()
    cgroups.destroy(path)
    assert _dirs(path) == []
