"""Built-in network lifecycle: restarts, churn, bad input, rollback."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from crid.network.api import PodNetworkRequest, PortMapping
from crid.network.bridge import BridgeNetwork
from crid.network.errors import InvalidNetworkConfig, NetworkSetupFailed, PortInUse
from crid.network.links import host_veth_name
from tests.integration.network.conftest import Netns, sh


def bridge_ports(bridge: str) -> list[str]:
    out = sh(f"ip -o link show master {bridge}").stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def hostport_rules(table: str) -> list[str]:
    out = sh(f"nft list chain inet {table} hostports").stdout
    return [ln.strip() for ln in out.splitlines() if "dnat" in ln]


def test_ipam_survives_restart_without_double_allocation(netns: Netns, bridge_net, options):
    a, b = netns.make(), netns.make()
    ra = bridge_net.setup(PodNetworkRequest("pod-a", netns.path(a)))
    restarted = BridgeNetwork(options)  # a new daemon: only the disk is shared
    rb = restarted.setup(PodNetworkRequest("pod-b", netns.path(b)))
    assert ra.ips[0] != rb.ips[0]
    restarted.teardown(PodNetworkRequest("pod-a", ""))  # torn down by the new process
    assert [lease.pod_id for lease in restarted.store.all()] == ["pod-b"]
    assert bridge_ports(options.bridge) == [host_veth_name("pod-b")]


def test_release_orphans_reclaims_pods_no_longer_alive(netns, bridge_net, options):
    for i in range(3):
        bridge_net.setup(PodNetworkRequest(f"orphan-{i}", netns.path(netns.make())))
    stray = f"crtns{uuid.uuid4().hex[:8]}"  # a veth left by a crash before its lease
    assert sh(f"ip link add {stray} type veth peer name crtnp{stray[5:]} && "
              f"ip link set {stray} master {options.bridge}").returncode == 0
    released = BridgeNetwork(options).release_orphans({"orphan-1"})
    assert sh(f"ip link show {stray}").returncode != 0
    assert sorted(released) == ["orphan-0", "orphan-2"]
    assert [lease.pod_id for lease in bridge_net.store.all()] == ["orphan-1"]
    assert bridge_ports(options.bridge) == [host_veth_name("orphan-1")]


def test_host_port_taken_by_another_pod_is_refused_and_leaves_nothing(netns, bridge_net,
                                                                      options):
    pm = PortMapping(80, 31080, "TCP")
    bridge_net.setup(PodNetworkRequest("holder", netns.path(netns.make()), port_mappings=(pm,)))
    with pytest.raises(PortInUse, match="holder"):
        bridge_net.setup(PodNetworkRequest("late", netns.path(netns.make()),
                                           port_mappings=(PortMapping(81, 31080, "TCP",
                                                                      "127.0.0.1"),)))
    # Same port, other protocol: fine.
    bridge_net.setup(PodNetworkRequest("udp", netns.path(netns.make()),
                                       port_mappings=(PortMapping(80, 31080, "UDP"),)))
    assert sorted(lease.pod_id for lease in bridge_net.store.all()) == ["holder", "udp"]
    assert sh(f"ip link show {host_veth_name('late')}").returncode != 0
    assert len(hostport_rules(options.nft_table)) == 2


@pytest.mark.parametrize("req, match", [
    (PodNetworkRequest("p1", "/run/netns/x", port_mappings=(PortMapping(80, 70000),)),
     "out of range"),
    (PodNetworkRequest("p1", "/run/netns/x", port_mappings=(PortMapping(80, 8080),
                                                             PortMapping(81, 8080))),
     "duplicate hostPort"),
    (PodNetworkRequest("p1", "/run/netns/x", port_mappings=(PortMapping(80, 8080, "ICMP"),)),
     "protocol"),
    (PodNetworkRequest("p1", "/run/netns/x", ifname="a-very-long-ifname0"), "interface name"),
    (PodNetworkRequest("../etc", "/run/netns/x"), "pod id"),
    (PodNetworkRequest("p1", "/run/netns/crt-net-does-not-exist"), "not found"),
])
def test_bad_requests_are_refused_before_any_change(bridge_net, options, req, match):
    with pytest.raises(InvalidNetworkConfig, match=match):
        bridge_net.setup(req)
    assert bridge_net.store.all() == []


def test_failure_halfway_rolls_back_lease_veth_and_rules(netns, bridge_net, options):
    # "lo" already exists in the pod netns: the veth peer cannot be born with that name,
    # after the lease and the NAT rules were made.
    req = PodNetworkRequest("halfway", netns.path(netns.make()), ifname="lo",
                            port_mappings=(PortMapping(80, 31081),))
    with pytest.raises(NetworkSetupFailed, match="halfway"):
        bridge_net.setup(req)
    assert bridge_net.store.all() == []
    assert sh(f"ip link show {host_veth_name('halfway')}").returncode != 0
    assert hostport_rules(options.nft_table) == []


def test_200_setup_teardown_cycles_10_concurrent_leave_nothing(netns, bridge_net, options):
    live: dict[str, str] = {}
    guard = threading.Lock()
    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for i in range(20):
                ns = netns.make("churn")
                pod_id = f"churn-{w}-{i}-{uuid.uuid4().hex[:6]}"
                ports = (PortMapping(80, 32000 + w * 20 + i),) if i % 2 else ()
                res = bridge_net.setup(PodNetworkRequest(pod_id, netns.path(ns),
                                                         port_mappings=ports))
                with guard:
                    assert res.ips[0] not in live, f"{res.ips[0]} handed out twice"
                    live[res.ips[0]] = pod_id
                bridge_net.check(PodNetworkRequest(pod_id, netns.path(ns)))
                with guard:
                    del live[res.ips[0]]
                bridge_net.teardown(PodNetworkRequest(pod_id, netns.path(ns)))
                netns.delete(ns)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert bridge_net.store.all() == []
    assert bridge_ports(options.bridge) == []
    assert hostport_rules(options.nft_table) == []
    assert [n for n in os.listdir("/run/netns") if n.startswith("crt-net-churn")] == []


def test_concurrent_setups_from_two_processes_never_share_an_address(netns, bridge_net,
                                                                     options):
    import dataclasses
    import json
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "setup_many.py")
    opts = json.dumps(dataclasses.asdict(options))
    procs = []
    for p in range(2):
        pods = [(f"proc{p}-{i}", netns.path(netns.make())) for i in range(8)]
        procs.append(subprocess.Popen([sys.executable, script, opts, json.dumps(pods)],
                                      stdout=subprocess.PIPE, text=True,
                                      cwd=os.getcwd(), env={**os.environ, "PYTHONPATH": "."}))
    ips = [ip for proc in procs for ip in json.loads(proc.communicate(timeout=120)[0])]
    assert len(ips) == 16 and len(set(ips)) == 16
    assert len(bridge_ports(options.bridge)) == 16
