"""Traffic through the built-in bridge network: pod to pod, hostPorts, egress, localhost."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from crid.network.api import PodNetworkRequest, PortMapping
from crid.network.bridge import BridgeNetwork
from crid.network.links import host_veth_name
from tests.integration.network.conftest import Netns, sh, unique_options


def pod(netns: Netns, ports: tuple[PortMapping, ...] = ()) -> PodNetworkRequest:
    name = netns.make()
    return PodNetworkRequest(f"pod-{uuid.uuid4().hex}", netns.path(name), pod_name=name,
                             pod_namespace="default", pod_uid=uuid.uuid4().hex,
                             port_mappings=ports)


def ns_of(req: PodNetworkRequest) -> str:
    return req.netns_path.rsplit("/", 1)[1]


def test_two_pods_reach_each_other_over_tcp_and_udp(netns: Netns, bridge_net: BridgeNetwork):
    a, b = pod(netns), pod(netns)
    own_ns = os.readlink("/proc/thread-self/ns/net")
    ra, rb = bridge_net.setup(a), bridge_net.setup(b)
    assert os.readlink("/proc/thread-self/ns/net") == own_ns  # the caller never moved
    assert ra.ips != rb.ips and ra.gateways == rb.gateways
    netns.serve(ns_of(a), "tcp", 5000)
    netns.serve(ns_of(a), "udp", 5001)
    assert netns.send(ns_of(b), "tcp", ra.ips[0], 5000, "tcp-hello") == f"{rb.ips[0]} tcp-hello"
    assert netns.send(ns_of(b), "udp", ra.ips[0], 5001, "udp-hello") == f"{rb.ips[0]} udp-hello"


def test_dual_stack_pods_reach_each_other_over_ipv6(netns: Netns, tmp_path):
    net = BridgeNetwork(unique_options(tmp_path, v6=True))
    try:
        a, b = pod(netns), pod(netns)
        ra, rb = net.setup(a), net.setup(b)
        assert [":" in ip for ip in ra.ips] == [False, True]
        netns.serve(ns_of(a), "tcp", 5000)
        assert netns.send(ns_of(b), "tcp", ra.ips[1], 5000, "six") == f"{rb.ips[1]} six"
    finally:
        net.release_orphans(set())
        net.remove_network()


def test_pod_reaches_hostport_of_another_pod_through_the_host(netns, bridge_net):
    hp = 20000 + uuid.uuid4().int % 20000
    server = pod(netns, (PortMapping(8080, hp, "TCP"), PortMapping(8081, hp, "UDP")))
    client = pod(netns)
    rs = bridge_net.setup(server)
    rc = bridge_net.setup(client)
    netns.serve(ns_of(server), "tcp", 8080)
    netns.serve(ns_of(server), "udp", 8081)
    gw = rs.gateways[0]
    # Hairpin masquerade: the server sees the node (gateway), so replies return through it.
    assert netns.send(ns_of(client), "tcp", gw, hp, "via-host") == f"{gw} via-host"
    assert netns.send(ns_of(client), "udp", gw, hp, "via-host") == f"{gw} via-host"
    # The server pod reaches its own hostPort too (bridge hairpin + masquerade).
    assert netns.send(ns_of(server), "tcp", gw, hp, "self") == f"{gw} self"
    assert rc.ips[0] != rs.ips[0]


def test_node_reaches_hostport_on_localhost_and_its_own_address(netns, bridge_net):
    hp = 20000 + uuid.uuid4().int % 20000
    server = pod(netns, (PortMapping(8080, hp),))
    rs = bridge_net.setup(server)
    netns.serve(ns_of(server), "tcp", 8080)
    gw = rs.gateways[0]
    assert netns.send(None, "tcp", "127.0.0.1", hp, "lo") == f"{gw} lo"
    assert netns.send(None, "tcp", gw, hp, "gw").endswith(" gw")


def test_hostport_reachable_from_outside_host_and_pod_reaches_outside(netns, bridge_net):
    """An "outside world" netns joined to the node by a veth: the pod's egress is
    masqueraded to the node's address, and the world reaches the pod's hostPort."""
    world = netns.make("world")
    tag = uuid.uuid4().hex[:6]
    host_if, n = f"crtnw{tag}", uuid.uuid4().int % 200 + 20
    node_ip, world_ip = f"198.18.{n}.1", f"198.18.{n}.2"
    assert sh(f"ip link add {host_if} type veth peer name eth0 netns {world}").returncode == 0
    try:
        sh(f"ip addr add {node_ip}/24 dev {host_if} && ip link set {host_if} up")
        sh(f"ip -n {world} addr add {world_ip}/24 dev eth0 && ip -n {world} link set eth0 up "
           f"&& ip -n {world} link set lo up && ip -n {world} route add default via {node_ip}")
        hp = 20000 + uuid.uuid4().int % 20000
        p = pod(netns, (PortMapping(8080, hp, "TCP", node_ip),))
        rp = bridge_net.setup(p)
        netns.serve(world, "tcp", 9000)
        assert netns.send(ns_of(p), "tcp", world_ip, 9000, "out") == f"{node_ip} out"
        netns.serve(ns_of(p), "tcp", 8080)
        # From outside the source is kept (no masquerade for traffic from other hosts).
        assert netns.send(world, "tcp", node_ip, hp, "in") == f"{world_ip} in"
        assert rp.ips
    finally:
        sh(f"ip link del {host_if}")


def test_teardown_removes_veth_lease_and_rules_and_is_idempotent(netns, bridge_net, options):
    hp = 20000 + uuid.uuid4().int % 20000
    p = pod(netns, (PortMapping(80, hp),))
    bridge_net.setup(p)
    bridge_net.check(p)
    assert f"dport {hp}" in sh(f"nft list table inet {options.nft_table}").stdout
    bridge_net.teardown(p)
    bridge_net.teardown(p)
    bridge_net.teardown(PodNetworkRequest(p.pod_id, ""))
    assert sh(f"ip link show {host_veth_name(p.pod_id)}").returncode != 0
    assert bridge_net.store.all() == []
    assert f"dport {hp}" not in sh(f"nft list table inet {options.nft_table}").stdout


def test_status_ready_and_heals_a_flushed_table(bridge_net, options):
    assert bridge_net.status().ready
    sh(f"nft delete table inet {options.nft_table}")
    st = bridge_net.status()
    assert (st.ready, st.reason) == (True, "")
    assert sh(f"nft list table inet {options.nft_table}").returncode == 0
    assert open(f"/proc/sys/net/ipv4/conf/{options.bridge}/route_localnet").read() == "1\n"


def test_iptables_fallback_masquerades_and_maps_host_ports(netns: Netns, tmp_path):
    from crid.network.nat import Iptables
    opts = unique_options(tmp_path)
    net = BridgeNetwork(opts, nat=Iptables())
    chain = f"{opts.nft_table.upper()}-HOSTPORTS"
    try:
        hp = 20000 + uuid.uuid4().int % 20000
        server, client = pod(netns, (PortMapping(8080, hp),)), pod(netns)
        rs, rc = net.setup(server), net.setup(client)
        assert net.status().ready
        netns.serve(ns_of(server), "tcp", 8080)
        gw = rs.gateways[0]
        assert netns.send(None, "tcp", "127.0.0.1", hp, "lo") == f"{gw} lo"
        assert netns.send(ns_of(client), "tcp", gw, hp, "hp") == f"{gw} hp"
        assert f"--dport {hp}" in sh(f"iptables -t nat -S {chain}").stdout
        net.teardown(server)
        assert f"--dport {hp}" not in sh(f"iptables -t nat -S {chain}").stdout
        assert rc.ips
    finally:
        net.release_orphans(set())
        net.remove_network()
    assert sh(f"iptables -t nat -S {chain}").returncode != 0
    assert chain not in sh("iptables-save -t nat").stdout


def test_ipv6_hostport_and_sctp_mapping(netns: Netns, tmp_path):
    opts = unique_options(tmp_path, v6=True)
    net = BridgeNetwork(opts)
    try:
        hp = 20000 + uuid.uuid4().int % 20000
        server = pod(netns, (PortMapping(8080, hp), PortMapping(9000, hp, "SCTP")))
        client = pod(netns)
        rs, _ = net.setup(server), net.setup(client)
        netns.serve(ns_of(server), "tcp", 8080)
        gw6 = rs.gateways[1]
        assert netns.send(ns_of(client), "tcp", gw6, hp, "six") == f"{gw6} six"
        rules = sh(f"nft list chain inet {opts.nft_table} hostports").stdout
        assert f"sctp dport {hp} dnat ip to {rs.ips[0]}:9000" in rules
    finally:
        net.release_orphans(set())
        net.remove_network()


def test_updated_pod_cidr_serves_new_pods_and_old_ones_keep_theirs(netns, bridge_net, options):
    old = pod(netns)
    r_old = bridge_net.setup(old)
    new_cidr = f"10.251.{uuid.uuid4().int % 250}.0/24"
    bridge_net.update_pod_cidr(new_cidr)
    new = pod(netns)
    r_new = bridge_net.setup(new)
    assert r_new.ips[0].rsplit(".", 1)[0] == new_cidr.rsplit(".", 1)[0]
    netns.serve(ns_of(old), "tcp", 5000)
    # Across the two subnets traffic is routed by the node (no masquerade between pod nets).
    assert netns.send(ns_of(new), "tcp", r_old.ips[0], 5000, "x") == f"{r_new.ips[0]} x"


def test_hostports_and_hairpin_without_br_netfilter(netns: Netns):
    """Rerun the hostPort tests on a simulated node (a netns of its own) where bridged
    traffic skips iptables/nft (bridge-nf-call-iptables=0, per netns), the other common
    host set-up: DNAT then happens on the routed path only."""
    if os.environ.get("CRT_NET_SIM"):
        pytest.skip("already inside the simulated node")
    sim = netns.make("node")
    knob = "/proc/sys/net/bridge/bridge-nf-call-iptables"
    res = sh(f"ip netns exec {sim} sh -c 'ip link set lo up; [ -e {knob} ] && echo 0 > {knob};"
             f" CRT_NET_SIM=1 {sys.executable} -m pytest -q -p no:cacheprovider {__file__}"
             " -k \"hostport or localhost or outside\"'")
    assert res.returncode == 0, res.stdout[-3000:]
    assert " passed" in res.stdout
