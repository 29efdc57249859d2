from __future__ import annotations

import threading

import pytest

from crid.errors import AlreadyExists, InvalidArgument
from crid.pods import (
    DNS,
    Metadata,
    NamespaceOptions,
    PodId,
    PodSandbox,
    PodSpec,
    PodState,
    PortMapping,
    Resources,
)
from crid.pods.cgroups import _writes, combine
from crid.pods.files import hosts, resolv_conf
from crid.pods.model import Infra
from crid.pods.names import NameRegistry

MD = Metadata("web", "u1", "default", 1)


def test_record_round_trip() -> None:
    spec = PodSpec(MD, runtime_handler="crid", hostname="h", dns=DNS(("1.1.1.1",), ("a",), ()),
                   port_mappings=(PortMapping(80, 8080, "UDP", "127.0.0.1"),),
                   labels={"a": "b"}, annotations={"c": "d"}, cgroup_parent="/kubepods/x",
                   namespaces=NamespaceOptions(pid="POD"), sysctls={"net.x": "1"},
                   overhead=Resources(cpu_shares=2), resources=Resources(memory_limit_in_bytes=9))
    pod = PodSandbox(PodId.new(), spec, PodState.READY, 123, ("10.0.0.2", "fd00::2"),
                     Infra(42, 99), "x/crid-1")
    assert PodSandbox.from_record(pod.to_record()) == pod


def test_pod_id_is_validated() -> None:
    with pytest.raises(InvalidArgument):
        PodId("../../etc")
    assert len(PodId.new().value) == 64


def test_state_machine() -> None:
    assert PodState.READY.can("update") and not PodState.NOTREADY.can("update")
    assert all(s.can("stop") and s.can("remove") for s in PodState)
    assert PodState.READY.next_on_stop == PodState.NOTREADY


def test_resolv_conf_from_dns_or_host(tmp_path) -> None:  # noqa: ANN001
    assert resolv_conf(DNS(("10.0.0.10",), ("svc.local", "local"), ("ndots:5",))) == (
        b"nameserver 10.0.0.10\nsearch svc.local local\noptions ndots:5\n")
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 9.9.9.9\n")
    assert resolv_conf(None, host) == b"nameserver 9.9.9.9\n"
    assert b"10.1.2.3\tweb-0" in hosts("web-0", ("10.1.2.3",))


def test_name_reserved_then_refused_with_holder() -> None:
    names = NameRegistry()
    res, mine = names.reserve(MD, wait=0)
    assert mine
    names.finish(MD, res, ok=True, abandoned=False)
    with pytest.raises(AlreadyExists, match=res.pod_id.value):
        names.reserve(MD, wait=0)
    names.release(MD, res.pod_id)
    assert names.reserve(MD, wait=0)[1]


def test_abandoned_create_is_handed_to_the_retry_once() -> None:
    names = NameRegistry()
    res, _ = names.reserve(MD, wait=0)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(names.reserve(MD, wait=5)))
    t.start()
    names.finish(MD, res, ok=True, abandoned=True)  # the first caller's deadline had passed
    t.join()
    assert got == [(res, False)]
    with pytest.raises(AlreadyExists):
        names.reserve(MD, wait=0)


def test_failed_create_frees_the_name() -> None:
    names = NameRegistry()
    res, _ = names.reserve(MD, wait=0)
    names.finish(MD, res, ok=False, abandoned=False)
    assert names.reserve(MD, wait=0)[1]


def test_cgroup_writes_and_combine() -> None:
    res = combine(Resources(cpu_shares=2, memory_limit_in_bytes=10),
                  Resources(cpu_period=100000, cpu_quota=50000, cpu_shares=1024,
                            memory_limit_in_bytes=100))
    assert res == Resources(100000, 50000, 1026, 110)
    assert _writes(res, {"memory"}) == [("memory.limit_in_bytes", "110")]
    assert _writes(res, {"cpu"}) == [("cpu.shares", "1026"), ("cpu.cfs_period_us", "100000"),
                                     ("cpu.cfs_quota_us", "50000")]
    assert ("cpu.max", "50000 100000") in _writes(res, {"unified"})
