"""Resources.from_oci: typed values and errors naming the field."""

from __future__ import annotations

import pytest

from runtime.cgroups import (
    BlockIO,
    Cpu,
    DeviceRule,
    HugepageLimit,
    Memory,
    Network,
    Pids,
    Resources,
    ThrottleDevice,
    WeightDevice,
)
from runtime.errors import SpecError

FULL = {
    "memory": {"limit": 1 << 30, "reservation": 1 << 29, "swap": 2 << 30, "swappiness": 10,
               "disableOOMKiller": False},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0",
            "realtimeRuntime": 0, "realtimePeriod": 0},
    "pids": {"limit": 100},
    "blockIO": {"weight": 500, "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 600}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
    "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": True, "type": "c", "major": 136, "access": "rwm"}],
    "unified": {"memory.high": "1000000"},
    "someFutureField": {"x": 1},
}


def test_full_resources_are_typed() -> None:
    r = Resources.from_oci(FULL)
    assert r.memory == Memory(limit=1 << 30, reservation=1 << 29, swap=2 << 30, swappiness=10,
                              disable_oom_killer=False)
    assert r.cpu == Cpu(shares=1024, quota=50000, period=100000, cpus="0-1", mems="0",
                        realtime_runtime=0, realtime_period=0)
    assert r.pids == Pids(100)
    assert r.block_io == BlockIO(weight=500, leaf_weight=300,
                                 weight_device=(WeightDevice(8, 0, 600, None),),
                                 throttle_read_bps_device=(ThrottleDevice(8, 0, 1000),))
    assert r.hugepage_limits == (HugepageLimit("2MB", 0),)
    assert r.network == Network(1048577, (("eth0", 5),))
    assert r.devices == (DeviceRule(False), DeviceRule(True, "c", 1, 3, "rw"),
                         DeviceRule(True, "c", 136, None, "rwm"))
    assert [d.v1_line() for d in r.devices] == ["a *:* rwm", "c 1:3 rw", "c 136:* rwm"]
    assert r.unified == {"memory.high": "1000000"}


def test_none_is_empty() -> None:
    assert Resources.from_oci(None) == Resources()


@pytest.mark.parametrize(("doc", "field"), [
    ({"memory": {"limit": "1G"}}, "linux.resources.memory.limit"),
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit"),
    ({"memory": {"limit": 100, "swap": 50}}, "linux.resources.memory.swap"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"memory": {"disableOOMKiller": "yes"}}, "linux.resources.memory.disableOOMKiller"),
    ({"memory": []}, "linux.resources.memory"),
    ({"cpu": {"shares": -1}}, "linux.resources.cpu.shares"),
    ({"cpu": {"period": 10}}, "linux.resources.cpu.period"),
    ({"cpu": {"quota": 10}}, "linux.resources.cpu.quota"),
    ({"cpu": {"cpus": "0-a"}}, "linux.resources.cpu.cpus"),
    ({"pids": {"limit": True}}, "linux.resources.pids.limit"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight"),
    ({"blockIO": {"weightDevice": [{"minor": 0}]}},
     "linux.resources.blockIO.weightDevice[0].major"),
    ({"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0}]}},
     "linux.resources.blockIO.throttleWriteIOPSDevice[0].rate"),
    ({"hugepageLimits": [{"pageSize": "2M", "limit": 1}]},
     "linux.resources.hugepageLimits[0].pageSize"),
    ({"network": {"priorities": [{"name": "a/b", "priority": 1}]}},
     "linux.resources.network.priorities[0].name"),
    ({"devices": [{"access": "rwm"}]}, "linux.resources.devices[0].allow"),
    ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0].type"),
    ({"devices": [{"allow": True, "access": "rwx"}]}, "linux.resources.devices[0].access"),
    ({"unified": {"../memory.max": "1"}}, "linux.resources.unified.../memory.max"),
    ({"unified": {"cgroup.procs": "1"}}, "linux.resources.unified.cgroup.procs"),
    ({"unified": {"memory.max": 5}}, "linux.resources.unified.memory.max"),
    ({"rdma": {"mlx5_0": {"hcaHandles": 3}}}, "linux.resources.rdma"),
])
def test_invalid_fields_are_named(doc: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as e:
        Resources.from_oci(doc)
    assert e.value.field == field
