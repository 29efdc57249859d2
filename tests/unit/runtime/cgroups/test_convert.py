"""OCI -> v1/v2 interface-file conversions (the tables runc uses)."""

from __future__ import annotations

import pytest

from runtime.cgroups import CgroupError, Resources, blkio_to_io_weight, shares_to_weight, swap_to_v2
from runtime.cgroups.convert import v1_writes, v2_writes


@pytest.mark.parametrize(("shares", "weight"), [
    (0, 0), (2, 1), (1024, 39), (512, 20), (262144, 10000)])
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize(("blkio", "io"), [(0, 0), (10, 1), (500, 4950), (1000, 10000)])
def test_blkio_to_io_weight(blkio: int, io: int) -> None:
    assert blkio_to_io_weight(blkio) == io


@pytest.mark.parametrize(("swap", "memory", "expected"), [
    (None, None, None), (0, 100, None), (-1, 100, -1), (None, -1, -1), (300, 100, 200),
    (100, 100, 0)])
def test_swap_to_v2(swap: int | None, memory: int | None, expected: int | None) -> None:
    assert swap_to_v2(swap, memory) == expected


@pytest.mark.parametrize(("swap", "memory", "message"), [
    (300, None, "without a memory limit"), (50, 100, "below memory")])
def test_swap_to_v2_errors(swap: int, memory: int | None, message: str) -> None:
    with pytest.raises(CgroupError, match=message):
        swap_to_v2(swap, memory)


def _v2(doc: dict[str, object]) -> list[tuple[str, str]]:
    return [(w.file, w.value) for w in v2_writes(Resources.from_oci(doc))]


def test_v2_table() -> None:
    assert _v2({
        "memory": {"limit": 1 << 30, "swap": 3 << 29, "reservation": 1 << 28},
        "cpu": {"shares": 1024, "quota": 50000, "period": 200000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "unified": {"memory.high": "900000000", "memory.max": "max"},
    }) == [
        ("cpu.weight", "39"), ("cpu.max", "50000 200000"),
        ("cpuset.cpus", "0"), ("cpuset.mems", "0"),
        ("memory.swap.max", str(1 << 29)), ("memory.max", str(1 << 30)),
        ("memory.low", str(1 << 28)),
        ("pids.max", "50"),
        ("io.weight", "default 4950"), ("io.weight", "8:0 10000"),
        ("io.max", "8:0 rbps=1048576"), ("io.max", "8:16 wiops=max"),
        ("hugetlb.2MB.max", "4194304"), ("hugetlb.2MB.rsvd.max", "4194304"),
        ("memory.high", "900000000"), ("memory.max", "max"),
    ]


@pytest.mark.parametrize(("doc", "expected"), [
    ({"cpu": {"quota": -1}}, [("cpu.max", "max 100000")]),
    ({"cpu": {"period": 50000}}, [("cpu.max", "max 50000")]),
    ({"memory": {"limit": -1}}, [("memory.swap.max", "max"), ("memory.max", "max")]),
    ({"pids": {"limit": -1}}, [("pids.max", "max")]),
])
def test_v2_unlimited(doc: dict[str, object], expected: list[tuple[str, str]]) -> None:
    assert _v2(doc) == expected


@pytest.mark.parametrize(("doc", "message"), [
    ({"memory": {"swappiness": 5}}, r"memory\.swappiness: not supported on cgroup v2"),
    ({"network": {"classID": 1}}, "net_cls/net_prio do not exist on cgroup v2"),
    ({"cpu": {"realtimeRuntime": 100}}, "realtime"),
    ({"blockIO": {"leafWeight": 100}}, "leafWeight"),
])
def test_v2_refuses_v1_only_settings(doc: dict[str, object], message: str) -> None:
    with pytest.raises(CgroupError, match=message):
        v2_writes(Resources.from_oci(doc))


def _v1(doc: dict[str, object], current: int = 1 << 62, memsw: bool = True,
        weight: str | None = "blkio.weight") -> list[tuple[str, str]]:
    return [(w.file, w.value) for w in v1_writes(Resources.from_oci(doc), current, memsw, weight)]


def test_v1_table() -> None:
    assert _v1({
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "1", "burst": 0},
        "memory": {"limit": 100, "reservation": 50, "swappiness": 0, "disableOOMKiller": True},
        "pids": {"limit": 7},
        "blockIO": {"weight": 300, "throttleWriteBpsDevice": [{"major": 8, "minor": 0,
                                                               "rate": 10}]},
        "hugepageLimits": [{"pageSize": "1GB", "limit": 0}],
        "network": {"classID": 7, "priorities": [{"name": "lo", "priority": 2}]},
    }) == [
        ("cpu.shares", "512"), ("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "20000"),
        ("cpu.cfs_burst_us", "0"), ("cpuset.cpus", "1"),
        ("memory.limit_in_bytes", "100"), ("memory.soft_limit_in_bytes", "50"),
        ("memory.swappiness", "0"), ("memory.oom_control", "1"),
        ("pids.max", "7"),
        ("blkio.weight", "300"), ("blkio.throttle.write_bps_device", "8:0 10"),
        ("hugetlb.1GB.limit_in_bytes", "0"), ("hugetlb.1GB.rsvd.limit_in_bytes", "0"),
        ("net_cls.classid", "7"), ("net_prio.ifpriomap", "lo 2"),
    ]


def test_v1_memory_swap_order_keeps_memsw_above_memory() -> None:
    grow = {"memory": {"limit": 200, "swap": 400}}
    assert _v1(grow, current=100) == [("memory.memsw.limit_in_bytes", "400"),
                                      ("memory.limit_in_bytes", "200")]
    shrink = {"memory": {"limit": 50, "swap": 60}}
    assert _v1(shrink, current=100) == [("memory.limit_in_bytes", "50"),
                                        ("memory.memsw.limit_in_bytes", "60")]
    assert _v1({"memory": {"limit": -1}}) == [("memory.memsw.limit_in_bytes", "-1"),
                                              ("memory.limit_in_bytes", "-1")]
    assert _v1({"memory": {"limit": -1}}, memsw=False) == [("memory.limit_in_bytes", "-1")]


@pytest.mark.parametrize(("doc", "kw", "message"), [
    ({"unified": {"memory.max": "1"}}, {}, r"unified: set on a cgroup v1 host \(memory\.max\)"),
    ({"memory": {"limit": 10, "swap": 20}}, {"memsw": False}, "swap accounting is not enabled"),
    ({"blockIO": {"weight": 100}}, {"weight": None}, "no weight file"),
])
def test_v1_refusals(doc: dict[str, object], kw: dict[str, object], message: str) -> None:
    with pytest.raises(CgroupError, match=message):
        _v1(doc, **kw)  # type: ignore[arg-type]
