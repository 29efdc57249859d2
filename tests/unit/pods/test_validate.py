from __future__ import annotations

import dataclasses

import pytest

from crid.errors import InvalidArgument
from crid.network.api import DNSConfig, PortMapping
from crid.pods import IdMapping, Metadata, NamespaceOptions, PodSpec, UserNamespace
from crid.pods.validate import sysctl_path, validate

HANDLERS = frozenset({"", "crid"})


def spec(**kw: object) -> PodSpec:
    return dataclasses.replace(PodSpec(Metadata("web", "u1", "default")), **kw)


def test_a_plain_spec_is_valid() -> None:
    validate(spec(hostname="web-0", sysctls={"net.ipv4.ip_forward": "1", "kernel.sem": "1 2 3 4",
                                             "fs.mqueue.msg_max": "10", "kernel.shmmax": "9",
                                             "net/ipv4/conf/eth0.100/forwarding": "1"}),
             HANDLERS)


@pytest.mark.parametrize("field,value,needle", [
    ("metadata", Metadata("", "u", "ns"), "metadata.name"),
    ("metadata", Metadata("n", "", "ns"), "metadata.uid"),
    ("metadata", Metadata("n", "u", ""), "metadata.namespace"),
    ("runtime_handler", "kata", "runtime handler 'kata'"),
    ("hostname", "x" * 65, "hostname"),
    ("hostname", "bad_host!", "hostname"),
    ("dns", DNSConfig(options=tuple(f"o{i}" for i in range(10_000))), "10000 options"),
    ("dns", DNSConfig(servers=("1.2.3",)), "not an IP"),
    ("dns", DNSConfig(searches=("a b",)), "not a valid search"),
    ("sysctls", {"kernel.hostname": "x"}, "not namespaced"),
    ("sysctls", {"vm.swappiness": "1"}, "not namespaced"),
    ("sysctls", {"../etc": "1"}, "not a sysctl name"),
    ("sysctls", {"net.core.somaxconn": "1\n2"}, "value"),
    ("namespaces", NamespaceOptions(pid="TARGET", target_id="x"), "TARGET applies"),
    ("namespaces", NamespaceOptions(network="CONTAINER"), "POD or NODE"),
    ("port_mappings", (PortMapping(0, 80),), "out of range"),
    ("port_mappings", (PortMapping(80, 70000),), "out of range"),
    ("port_mappings", (PortMapping(80, 80, host_ip="nope"),), "host_ip"),
    ("cgroup_parent", "/a/../../etc", "cgroup_parent"),
    ("cgroup_parent", "kubepods--pod1.slice", "invalid systemd slice"),
])
def test_bad_fields_are_named(field: str, value: object, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        validate(spec(**{field: value}), HANDLERS)


def test_sysctls_that_would_change_the_host_are_refused() -> None:
    host_net = NamespaceOptions(network="NODE")
    with pytest.raises(InvalidArgument, match="host's net"):
        validate(spec(namespaces=host_net, sysctls={"net.core.somaxconn": "1"}), HANDLERS)
    host_ipc = NamespaceOptions(ipc="NODE")
    with pytest.raises(InvalidArgument, match="host's ipc"):
        validate(spec(namespaces=host_ipc, sysctls={"kernel.shmmax": "1"}), HANDLERS)


def test_sysctl_paths() -> None:
    assert sysctl_path("net.ipv4.ip_forward") == "net/ipv4/ip_forward"
    assert sysctl_path("net/ipv4/conf/eth0.100/forwarding") == "net/ipv4/conf/eth0.100/forwarding"


@pytest.mark.parametrize("parent", ["/kubepods/burstable/pod1", "kubepods",
                                    "kubepods--pod1.slice", "kube:pods.slice"])
def test_systemd_driver_wants_a_slice_name_as_cgroup_parent(parent: str) -> None:
    validate(spec(cgroup_parent="kubepods-burstable-pod1.slice"), HANDLERS, "systemd")
    validate(spec(cgroup_parent=""), HANDLERS, "systemd")
    with pytest.raises(InvalidArgument, match="cgroup_parent"):
        validate(spec(cgroup_parent=parent), HANDLERS, "systemd")


def _userns(mode: str = "POD", uids: tuple = ((0, 165536, 65536),),
            gids: tuple = ((0, 165536, 65536),)) -> UserNamespace:
    return UserNamespace(mode, tuple(IdMapping(*m) for m in uids),
                         tuple(IdMapping(*m) for m in gids))


def test_a_pod_user_namespace_is_valid() -> None:
    validate(spec(namespaces=NamespaceOptions(userns=_userns())), HANDLERS)


@pytest.mark.parametrize("namespaces,needle", [
    (NamespaceOptions(userns=_userns("CONTAINER")), "mode CONTAINER"),
    (NamespaceOptions(userns=_userns("TARGET")), "mode TARGET"),
    (NamespaceOptions(userns=_userns(uids=((0, 165536, 10), (10, 200000, 10)))),
     "uids: exactly one mapping"),
    (NamespaceOptions(userns=_userns(gids=())), "gids: exactly one mapping"),
    (NamespaceOptions(userns=_userns(uids=((1, 165536, 65536),))), "container id 0 unmapped"),
    (NamespaceOptions(userns=_userns(gids=((0, 165536, 0),))), "empty"),
    (NamespaceOptions(userns=_userns(uids=((0, 2**32 - 10, 65536),))), "overflows"),
    (NamespaceOptions(network="NODE", userns=_userns()), "host's network"),
    (NamespaceOptions(ipc="NODE", pid="NODE", userns=_userns()), "host's pid, ipc"),
])
def test_bad_user_namespaces(namespaces: NamespaceOptions, needle: str) -> None:
    with pytest.raises(InvalidArgument, match=needle):
        validate(spec(namespaces=namespaces), HANDLERS)
