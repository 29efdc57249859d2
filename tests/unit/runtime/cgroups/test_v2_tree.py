"""V2Manager's file writing against a temporary tree imitating a cgroup2 hierarchy."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cgroups import CgroupError, CgroupPath, FreezerState, Mount, Resources, V2Manager

INTERFACE = ["cgroup.procs", "cgroup.freeze", "cgroup.events", "cgroup.controllers",
             "cgroup.subtree_control", "cpu.weight", "cpu.max", "cpu.stat", "cpuset.cpus",
             "cpuset.mems", "memory.max", "memory.low", "memory.swap.max", "memory.current",
             "memory.stat", "memory.events", "memory.swap.current", "pids.max",
             "pids.current", "io.weight", "io.max", "hugetlb.2MB.max", "memory.high"]


def _cgroup_dir(d: Path, files: list[str]) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for name in files:
        (d / name).write_text("")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    _cgroup_dir(tmp_path, ["cgroup.controllers", "cgroup.subtree_control", "cgroup.procs"])
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    _cgroup_dir(tmp_path / "kubepods", ["cgroup.controllers", "cgroup.subtree_control"])
    _cgroup_dir(tmp_path / "kubepods" / "ctr", INTERFACE)
    return tmp_path


def _manager(tree: Path, path: str = "/kubepods/ctr") -> V2Manager:
    return V2Manager(CgroupPath(path), Mount(str(tree), "/", 2, frozenset()))


def test_set_writes_converted_values(tree: Path) -> None:
    m = _manager(tree)
    m.create()
    m.set(Resources.from_oci({
        "memory": {"limit": 1 << 30, "swap": 2 << 30, "reservation": 1 << 20},
        "cpu": {"shares": 2048, "quota": 25000, "period": 50000, "cpus": "0-1"},
        "pids": {"limit": 64},
        "blockIO": {"weight": 1000,
                    "throttleReadBpsDevice": [{"major": 253, "minor": 0, "rate": 4096}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2 << 20}],
        "unified": {"memory.high": "500000000"},
    }))
    ctr = tree / "kubepods" / "ctr"
    assert {f: (ctr / f).read_text() for f in [
        "memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "cpuset.cpus",
        "pids.max", "io.weight", "io.max", "hugetlb.2MB.max", "memory.high"]} == {
        "memory.max": str(1 << 30), "memory.swap.max": str(1 << 30), "memory.low": "1048576",
        "cpu.weight": "79", "cpu.max": "25000 50000", "cpuset.cpus": "0-1", "pids.max": "64",
        "io.weight": "default 10000", "io.max": "253:0 rbps=4096",
        "hugetlb.2MB.max": str(2 << 20), "memory.high": "500000000"}
    # create() enabled the root's controllers for its children (one write per controller).
    assert (tree / "cgroup.subtree_control").read_text() == "+pids"


def test_missing_interface_file_names_the_field(tree: Path) -> None:
    m = _manager(tree)
    with pytest.raises(CgroupError, match=r"linux\.resources\.unified\.memory\.oom\.group: "
                                          r"memory\.oom\.group does not exist"):
        m.set(Resources.from_oci({"unified": {"memory.oom.group": "1"}}))


def test_freezer_state_and_stats(tree: Path) -> None:
    m = _manager(tree)
    ctr = tree / "kubepods" / "ctr"
    (ctr / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    m.freeze()
    assert (ctr / "cgroup.freeze").read_text() == "1"
    assert m.state() is FreezerState.FROZEN
    m.thaw()
    assert m.state() is FreezerState.THAWED
    (ctr / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
                                  "nr_periods 4\nnr_throttled 2\nthrottled_usec 30\n")
    (ctr / "memory.current").write_text("10000\n")
    (ctr / "memory.max").write_text("max\n")
    (ctr / "memory.stat").write_text("anon 6000\nfile 4000\ninactive_file 3000\n"
                                     "pgfault 11\npgmajfault 2\n")
    (ctr / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n")
    (ctr / "memory.swap.current").write_text("0\n")
    (ctr / "pids.current").write_text("3\n")
    (ctr / "pids.max").write_text("max\n")
    (ctr / "cgroup.procs").write_text("12\n7\n")
    s = m.stats()
    assert (s.cpu.usage_ns, s.cpu.user_ns, s.cpu.system_ns, s.cpu.throttled_ns) == \
        (1_500_000, 1_000_000, 500_000, 30_000)
    assert (s.memory.usage, s.memory.working_set, s.memory.rss, s.memory.cache,
            s.memory.limit, s.memory.page_faults, s.memory.major_page_faults,
            s.memory.oom_events, s.memory.oom_kills) == (10000, 7000, 6000, 4000, None, 11, 2,
                                                         2, 1)
    assert (s.pids.current, s.pids.limit) == (3, None)
    assert m.oom_kill_count() == 1
    assert m.pids() == [7, 12]


def test_relative_path_is_under_own_cgroup(tree: Path) -> None:
    m = V2Manager(CgroupPath("ctr"), Mount(str(tree), "/", 2, frozenset()), own="/kubepods")
    assert m.dirs() == {"": str(tree / "kubepods" / "ctr")}
