"""Pods on the built-in network: addresses in the status, NetworkReady, restart keeps the IP."""

from __future__ import annotations

import ipaddress
import signal

from crid.api import api_pb2 as pb
from tests.integration.pods.helpers import PodRig, bridge_ports, in_pod


def test_pod_gets_ip_from_test_cidr_and_network_ready(rig: PodRig) -> None:
    conds = {c.type: c.status for c in rig.rt.Status(pb.StatusRequest()).status.conditions}
    assert conds == {"RuntimeReady": True, "NetworkReady": True}
    pod_id = rig.run()
    ip = rig.status(pod_id).status.network.ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.213.0.0/16")
    ns_dir = rig.daemon.run_root / "pods" / pod_id / "ns"
    assert f"inet {ip}/" in in_pod(ns_dir, "ip", "-4", "addr", "show", "eth0")
    hosts = (rig.daemon.run_root / "pods" / pod_id / "hosts").read_text()
    assert f"{ip}\t" in hosts
    assert len(bridge_ports(rig.bridge)) == 1
    rig.stop(pod_id)
    assert bridge_ports(rig.bridge) == []
    rig.remove(pod_id)


def test_pod_survives_restart_with_same_ip(rig: PodRig) -> None:
    pod_id = rig.run()
    ip = rig.status(pod_id).status.network.ip
    rig.restart(signal.SIGKILL)
    st = rig.status(pod_id).status
    assert (st.state, st.network.ip) == (pb.SANDBOX_READY, ip)
    ns_dir = rig.daemon.run_root / "pods" / pod_id / "ns"
    assert f"inet {ip}/" in in_pod(ns_dir, "ip", "-4", "addr", "show", "eth0")
    other = rig.run()
    assert rig.status(other).status.network.ip != ip
    rig.remove(pod_id)
    rig.remove(other)
    assert bridge_ports(rig.bridge) == []


def test_update_runtime_config_pod_cidr_feeds_network(rig: PodRig) -> None:
    rig.rt.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.213.77.0/24"))))
    pod_id = rig.run()
    ip = rig.status(pod_id).status.network.ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.213.77.0/24")
    rig.remove(pod_id)


def test_two_pods_reach_each_other(rig: PodRig) -> None:
    a, b = rig.run(), rig.run()
    ip_b = rig.status(b).status.network.ip
    ns_a = rig.daemon.run_root / "pods" / a / "ns"
    out = in_pod(ns_a, "ping", "-c", "1", "-W", "2", ip_b)
    assert "1 packets received" in out
    rig.remove(a)
    rig.remove(b)
