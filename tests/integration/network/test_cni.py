"""CNI mode with Debian's containernetworking-plugins (bridge, host-local, portmap,
loopback) against a conf dir the test writes."""

from __future__ import annotations

import json
import os
import random
import uuid
from dataclasses import replace

import pytest

from crid.network.api import NetworkOptions, PodNetworkRequest, PortMapping
from crid.network.cni import CNINetwork
from crid.network.errors import CNIPluginError, NetworkNotReady
from crid.network.factory import make_pod_network
from tests.integration.network.conftest import Netns, sh

CNI_BIN = "/usr/lib/cni"
pytestmark = pytest.mark.skipif(not os.path.exists(f"{CNI_BIN}/bridge"),
                                reason="containernetworking-plugins not installed")


@pytest.fixture
def cni(tmp_path):
    tag = uuid.uuid4().hex[:6]
    subnet = f"10.{150 + random.randint(0, 40)}.{random.randint(0, 255)}.0/24"
    conf_dir = tmp_path / "net.d"
    conf_dir.mkdir()
    bridge = f"crtnc{tag}"
    conflist = {
        "cniVersion": "1.0.0", "name": f"crt-net-{tag}",
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(tmp_path / "ipam")}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }
    (conf_dir / "10-crt.conflist").write_text(json.dumps(conflist))
    (conf_dir / "20-ignored.conf").write_text("{not json")
    opts = NetworkOptions(mode="auto", cni_conf_dir=str(conf_dir), cni_bin_dirs=(CNI_BIN,),
                          state_dir=str(tmp_path / "state"), bridge="crtnunused",
                          nft_table="crt_net_unused")
    yield opts, bridge, tmp_path / "ipam"
    CNINetwork(opts).release_orphans(set())  # DEL whatever a failed test left set up
    sh(f"ip link del {bridge}")


def test_auto_mode_picks_cni_when_the_conf_dir_has_a_config(cni, tmp_path):
    opts, _, _ = cni
    assert isinstance(make_pod_network(opts), CNINetwork)
    assert make_pod_network(replace(opts, cni_conf_dir=str(tmp_path / "none"))).__class__ \
        .__name__ == "BridgeNetwork"
    assert make_pod_network(opts).status().ready


def test_cni_pods_talk_hostport_works_and_del_after_restart_cleans_up(cni, netns: Netns):
    opts, bridge, ipam_dir = cni
    net = CNINetwork(opts)
    hp = 20000 + uuid.uuid4().int % 20000
    a = PodNetworkRequest("cni-a-" + uuid.uuid4().hex[:8], netns.path(netns.make()),
                          pod_name="a", pod_namespace="default", pod_uid="u1",
                          port_mappings=(PortMapping(8080, hp),))
    b = PodNetworkRequest("cni-b-" + uuid.uuid4().hex[:8], netns.path(netns.make()),
                          pod_name="b", pod_namespace="default", pod_uid="u2")
    ra, rb = net.setup(a), net.setup(b)
    assert ra.ips != rb.ips and ra.gateways and ra.mac
    # (No CHECK here: Debian's portmap CHECK looks for an IPv6 chain on IPv4-only pods.)
    ns_a, ns_b = a.netns_path.rsplit("/", 1)[1], b.netns_path.rsplit("/", 1)[1]
    netns.serve(ns_a, "tcp", 8080)
    assert netns.send(ns_b, "tcp", ra.ips[0], 8080, "direct") == f"{rb.ips[0]} direct"
    assert netns.send(ns_b, "tcp", ra.gateways[0], hp, "hp").endswith(" hp")
    leases_before = sorted(os.listdir(ipam_dir / f"crt-net-{bridge[5:]}"))
    assert ra.ips[0] in leases_before

    restarted = CNINetwork(opts)  # DEL from the cache alone
    restarted.teardown(PodNetworkRequest(a.pod_id, ""))
    restarted.teardown(PodNetworkRequest(a.pod_id, ""))  # idempotent
    assert ra.ips[0] not in os.listdir(ipam_dir / f"crt-net-{bridge[5:]}")
    assert sh(f"ip -n {ns_a} link show eth0").returncode != 0
    assert f"dport {hp}" not in sh("iptables-save -t nat").stdout
    assert restarted.release_orphans(set()) == [b.pod_id]
    assert restarted.cache.pod_ids() == []


def test_cni_plugin_error_is_surfaced_and_rolled_back(cni, netns):
    opts, bridge, _ = cni
    net = CNINetwork(opts)
    req = PodNetworkRequest("cni-bad", "/run/netns/crt-net-missing-netns")
    with pytest.raises(CNIPluginError, match="bridge.*ADD"):
        net.setup(req)
    assert net.cache.pod_ids() == []


def test_cni_not_ready_without_config(tmp_path):
    opts = NetworkOptions(mode="cni", cni_conf_dir=str(tmp_path / "empty"),
                          state_dir=str(tmp_path / "s"), cni_bin_dirs=(CNI_BIN,))
    net = CNINetwork(opts)
    st = net.status()
    assert (st.ready, st.reason) == (False, "NetworkPluginNotReady")
    with pytest.raises(NetworkNotReady):
        net.setup(PodNetworkRequest("x", "/run/netns/x"))


def test_loopback_plugin_alone(tmp_path, netns):
    conf = tmp_path / "lo.d"
    conf.mkdir()
    (conf / "99-loopback.conf").write_text(
        json.dumps({"cniVersion": "1.0.0", "name": "crt-net-lo", "type": "loopback"}))
    net = CNINetwork(NetworkOptions(mode="cni", cni_conf_dir=str(conf), cni_bin_dirs=(CNI_BIN,),
                                    state_dir=str(tmp_path / "s")))
    ns = netns.make()
    req = PodNetworkRequest("lo-pod", netns.path(ns), ifname="lo")
    res = net.setup(req)
    assert res.ips == ["127.0.0.1", "::1"]
    assert "UP" in sh(f"ip -n {ns} link show lo").stdout
    net.check(req)
    net.teardown(req)
