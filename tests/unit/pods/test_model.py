from __future__ import annotations

import threading

import pytest

from crid.errors import AlreadyExists, InvalidArgument
from crid.network.api import DNSConfig, PortMapping
from crid.pods import (
    Metadata,
    NamespaceOptions,
    PodId,
    PodSandbox,
    PodSpec,
    PodState,
)
from crid.pods.cgroups import cgroup_limits, combine, pod_cgroup_path
from crid.pods.files import hosts, resolv_conf
from crid.pods.model import IdMapping, Infra, UserNamespace
from crid.reservations import ReservationStore
from crid.resources import Resources
from runtime.cgroups.convert import v1_writes, v2_writes

MD = Metadata("web", "u1", "default", 1)


def test_record_round_trip() -> None:
    spec = PodSpec(MD, runtime_handler="crid", hostname="h",
                   dns=DNSConfig(("1.1.1.1",), ("a",), ()),
                   port_mappings=(PortMapping(80, 8080, "UDP", "127.0.0.1"),),
                   labels={"a": "b"}, annotations={"c": "d"}, cgroup_parent="/kubepods/x",
                   namespaces=NamespaceOptions(pid="POD"), sysctls={"net.x": "1"},
                   overhead=Resources(cpu_shares=2),
                   resources=Resources(memory_limit=9, hugepages=(("2MB", 4),),
                                       unified=(("memory.high", "5"),)))
    pod = PodSandbox(PodId.new(), spec, PodState.READY, 123, ("10.0.0.2", "fd00::2"),
                     Infra(42, 99), "x/crid-1")
    assert PodSandbox.from_record(pod.to_record()) == pod


def test_record_round_trip_with_a_user_namespace() -> None:
    userns = UserNamespace("POD", (IdMapping(0, 165536, 65536),), (IdMapping(0, 231072, 65536),))
    pod = PodSandbox(PodId.new(), PodSpec(MD, namespaces=NamespaceOptions(userns=userns)),
                     PodState.READY, 123)
    assert PodSandbox.from_record(pod.to_record()) == pod
    assert pod.spec.userns == userns


def test_pod_id_is_validated() -> None:
    with pytest.raises(InvalidArgument):
        PodId("../../etc")
    assert len(PodId.new().value) == 64


def test_state_machine() -> None:
    assert PodState.READY.can("update") and not PodState.NOTREADY.can("update")
    assert all(s.can("stop") and s.can("remove") for s in PodState)
    assert PodState.READY.next_on_stop == PodState.NOTREADY


def test_resolv_conf_from_dns_or_host(tmp_path) -> None:  # noqa: ANN001
    assert resolv_conf(DNSConfig(("10.0.0.10",), ("svc.local", "local"), ("ndots:5",))) == (
        b"nameserver 10.0.0.10\nsearch svc.local local\noptions ndots:5\n")
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 9.9.9.9\n")
    assert resolv_conf(None, host) == b"nameserver 9.9.9.9\n"
    assert b"10.1.2.3\tweb-0" in hosts("web-0", ("10.1.2.3",))


def test_name_reserved_then_refused_with_holder() -> None:
    names = ReservationStore()
    res, mine = names.reserve(MD, PodId.new, wait=0)
    assert mine
    names.finish(MD, res, ok=True, abandoned=False)
    with pytest.raises(AlreadyExists, match=res.holder.value):
        names.reserve(MD, PodId.new, wait=0)
    names.release(MD, res.holder)
    assert names.reserve(MD, PodId.new, wait=0)[1]


def test_abandoned_create_is_handed_to_the_retry_once() -> None:
    names = ReservationStore()
    res, _ = names.reserve(MD, PodId.new, wait=0)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(names.reserve(MD, PodId.new, wait=5)))
    t.start()
    names.finish(MD, res, ok=True, abandoned=True)  # the first caller's deadline had passed
    t.join()
    assert got == [(res, False)]
    with pytest.raises(AlreadyExists):
        names.reserve(MD, PodId.new, wait=0)


def test_failed_create_frees_the_name() -> None:
    names = ReservationStore()
    res, _ = names.reserve(MD, PodId.new, wait=0)
    names.finish(MD, res, ok=False, abandoned=False)
    assert names.reserve(MD, PodId.new, wait=0)[1]


def test_records_written_before_resources_were_shared_still_load() -> None:
    spec = PodSpec(MD, resources=Resources(cpu_shares=2, memory_limit=9))
    rec = PodSandbox(PodId.new(), spec, PodState.READY, 1).to_record()
    old = dict(rec["spec"]["resources"])
    old["memory_limit_in_bytes"] = old.pop("memory_limit")
    for key in ("memory_swap_limit", "oom_score_adj", "hugepages", "unified"):
        del old[key]
    rec["spec"] = dict(rec["spec"], resources=old)
    assert PodSandbox.from_record(rec).spec == spec


def _files(writes) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(w.file, w.value) for w in writes]


def test_cgroup_writes_and_combine() -> None:
    res = combine(Resources(cpu_shares=2, memory_limit=10),
                  Resources(cpu_period=100000, cpu_quota=50000, cpu_shares=1024,
                            memory_limit=100))
    assert res == Resources(100000, 50000, 1026, 110)
    limits = cgroup_limits(res)
    assert _files(v1_writes(limits, 0, False, None)) == [
        ("cpu.shares", "1026"), ("cpu.cfs_period_us", "100000"), ("cpu.cfs_quota_us", "50000"),
        ("memory.limit_in_bytes", "110")]
    assert ("cpu.max", "50000 100000") in _files(v2_writes(limits))
    assert ("memory.max", "110") in _files(v2_writes(limits))


def test_cgroup_limits_leave_unset_knobs_alone() -> None:
    assert _files(v1_writes(cgroup_limits(Resources()), 0, False, None)) == []
    only_cpuset = cgroup_limits(Resources(cpuset_cpus="0-1", cpuset_mems="0"))
    assert _files(v1_writes(only_cpuset, 0, False, None)) == [("cpuset.cpus", "0-1"),
                                                              ("cpuset.mems", "0")]
    # Swap, hugepages and unified keys are the containers' business, not the pod cgroup's.
    assert _files(v1_writes(cgroup_limits(Resources(
        memory_swap_limit=5, hugepages=(("2MB", 1),), unified=(("memory.high", "1"),))),
        0, False, None)) == []


@pytest.mark.parametrize(("parent", "path"), [
    ("", "crid/crid-1"),
    ("/", "crid-1"),
    ("/kubepods/burstable/pod9/", "kubepods/burstable/pod9/crid-1"),
    ("kubepods", "kubepods/crid-1"),
    ("kubepods-burstable-pod9.slice",
     "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod9.slice/crid-1"),
    ("-.slice", "crid-1"),
])
def test_pod_cgroup_path(parent: str, path: str) -> None:
    assert pod_cgroup_path(parent, "crid-1") == path


@pytest.mark.parametrize("parent", ["a--b.slice", ".slice", "-a.slice"])
def test_pod_cgroup_path_refuses_invalid_slices(parent: str) -> None:
    with pytest.raises(InvalidArgument, match="cgroup_parent"):
        pod_cgroup_path(parent, "crid-1")


@pytest.mark.parametrize(("parent", "path"), [
    ("kubepods-burstable-pod9.slice",
     "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod9.slice/"
     "kubepods-burstable-pod9-crid_1.slice"),
    ("kubepods.slice", "kubepods.slice/kubepods-crid_1.slice"),
    ("", "system.slice/system-crid_1.slice"),
    ("-.slice", "crid_1.slice"),
])
def test_pod_cgroup_path_systemd_gives_the_pod_a_slice_inside_its_parent(
        parent: str, path: str) -> None:
    assert pod_cgroup_path(parent, "crid-1", "systemd") == path


@pytest.mark.parametrize("parent", [
    "a--b.slice", ".slice", "-a.slice", "a-.slice", "/kubepods/burstable", "kubepods",
    "/kubepods.slice", "kube:pods.slice", "kube@pods.slice", "kube/pods.slice",
    "a" * 200 + ".slice"])
def test_pod_cgroup_path_systemd_refuses_what_is_no_slice(parent: str) -> None:
    with pytest.raises(InvalidArgument, match="cgroup_parent"):
        pod_cgroup_path(parent, "crid-" + "f" * 64, "systemd")
