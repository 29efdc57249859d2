"""Hostile or wrong RunPodSandbox requests: the right status code and nothing left behind."""

from __future__ import annotations

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.pods.helpers import (
    CGROUP_ROOTS,
    PodRig,
    bridge_ports,
    cgroups_under,
    code_of,
    mounts_under,
    pod_config,
)


def _assert_nothing_left(rig: PodRig) -> None:
    pods_dir = rig.daemon.run_root / "pods"
    assert list(pods_dir.iterdir()) == [] if pods_dir.exists() else True
    assert mounts_under(rig.daemon.run_root) == []
    assert cgroups_under(rig.cgroup_parent) == []
    assert list(rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
    assert bridge_ports(rig.bridge) == []


def _run_code(rig: PodRig, cfg: pb.PodSandboxConfig, handler: str = "") -> grpc.StatusCode:
    return code_of(lambda: rig.run(cfg, handler))


@pytest.mark.parametrize("sysctls", [
    {"kernel.hostname": "x"},              # UTS, not in the safe set
    {"vm.swappiness": "10"},               # not namespaced at all
    {"net.ipv4.no_such_knob": "1"},        # namespaced prefix, unknown to the kernel
    {"net.ipv4.ip_forward": "not-a-number"},
    {"../../etc/passwd": "x"},
])
def test_bad_sysctls(rig: PodRig, sysctls: dict[str, str]) -> None:
    cfg = pod_config(parent=rig.cgroup_parent, sysctls=sysctls)
    assert _run_code(rig, cfg) == grpc.StatusCode.INVALID_ARGUMENT
    _assert_nothing_left(rig)
    rig.run(pod_config(name=cfg.metadata.name, parent=rig.cgroup_parent))  # name is free


def test_net_sysctl_with_host_network_refused(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent, sysctls={"net.ipv4.ip_forward": "1"},
                     namespaces=pb.NamespaceOption(network=pb.NODE))
    assert _run_code(rig, cfg) == grpc.StatusCode.INVALID_ARGUMENT
    _assert_nothing_left(rig)


def test_huge_dns_options(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent)
    cfg.dns_config.CopyFrom(pb.DNSConfig(options=[f"opt{i}" for i in range(10_000)]))
    assert _run_code(rig, cfg) == grpc.StatusCode.INVALID_ARGUMENT
    cfg.dns_config.CopyFrom(pb.DNSConfig(servers=["not-an-ip"]))
    assert _run_code(rig, cfg) == grpc.StatusCode.INVALID_ARGUMENT
    cfg.dns_config.CopyFrom(pb.DNSConfig(searches=["a b"]))
    assert _run_code(rig, cfg) == grpc.StatusCode.INVALID_ARGUMENT
    _assert_nothing_left(rig)


def test_unknown_handler_and_missing_metadata(rig: PodRig) -> None:
    cfg = pod_config(parent=rig.cgroup_parent)
    assert _run_code(rig, cfg, handler="kata-nope") == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(
        config=pb.PodSandboxConfig(hostname="x")))) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: rig.rt.RunPodSandbox(pb.RunPodSandboxRequest())) == \
        grpc.StatusCode.INVALID_ARGUMENT
    no_uid = pod_config(parent=rig.cgroup_parent)
    no_uid.metadata.uid = ""
    assert _run_code(rig, no_uid) == grpc.StatusCode.INVALID_ARGUMENT
    _assert_nothing_left(rig)
    assert rig.run(cfg, handler="crid")  # the default handler by name is accepted


def test_bad_names_and_modes(rig: PodRig) -> None:
    long_host = pod_config(parent=rig.cgroup_parent)
    long_host.hostname = "h" * 65
    assert _run_code(rig, long_host) == grpc.StatusCode.INVALID_ARGUMENT
    target = pod_config(parent=rig.cgroup_parent,
                        namespaces=pb.NamespaceOption(pid=pb.TARGET, target_id="x"))
    assert _run_code(rig, target) == grpc.StatusCode.INVALID_ARGUMENT
    bad_parent = pod_config(parent="/../../etc")
    assert _run_code(rig, bad_parent) == grpc.StatusCode.INVALID_ARGUMENT
    _assert_nothing_left(rig)


def test_host_port_taken_rolls_back_everything(rig: PodRig) -> None:
    port = pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=38123)
    first = pod_config(parent=rig.cgroup_parent, namespaces=pb.NamespaceOption(pid=pb.POD))
    first.port_mappings.append(port)
    first_id = rig.run(first)
    second = pod_config(parent=rig.cgroup_parent, namespaces=pb.NamespaceOption(pid=pb.POD))
    second.port_mappings.append(port)
    assert _run_code(rig, second) == grpc.StatusCode.FAILED_PRECONDITION
    assert [p.name for p in (rig.daemon.run_root / "pods").iterdir()] == [first_id]
    assert len(bridge_ports(rig.bridge)) == 1
    assert sorted(cgroups_under(rig.cgroup_parent)) == sorted(
        str(r / rig.cgroup_parent.lstrip("/") / f"crid-{first_id}") for r in CGROUP_ROOTS)
    rig.remove(first_id)
    _assert_nothing_left(rig)
