"""CNI config, capability args and result parsing, without running plugins."""

from __future__ import annotations

import json

import pytest

from crid.network.api import Bandwidth, DNSConfig, PodNetworkRequest, PortMapping, Route
from crid.network.cni.config import find_config, parse_config
from crid.network.cni.result import parse_result, plugin_conf, runtime_config
from crid.network.errors import InvalidNetworkConfig, NetworkSetupFailed


def test_lexically_first_config_wins_and_conf_becomes_a_list(tmp_path):
    (tmp_path / "20-b.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "b", "plugins": [{"type": "bridge"}]}))
    (tmp_path / "10-a.conf").write_text(json.dumps(
        {"cniVersion": "0.4.0", "name": "a", "type": "ptp", "ipMasq": True}))
    (tmp_path / "00-readme.txt").write_text("not a config")
    conf = find_config(str(tmp_path))
    assert conf is not None
    assert (conf.name, conf.cni_version, conf.plugins) == ("a", "0.4.0",
                                                          ({"type": "ptp", "ipMasq": True},))


def test_invalid_first_file_is_skipped_for_a_valid_one(tmp_path):
    (tmp_path / "10-bad.conflist").write_text("{")
    (tmp_path / "20-ok.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "ok", "plugins": [{"type": "bridge"}]}))
    assert find_config(str(tmp_path)).name == "ok"


def test_no_config_is_none_and_only_bad_configs_raise(tmp_path):
    assert find_config(str(tmp_path / "missing")) is None
    (tmp_path / "10-bad.conf").write_text("[]")
    with pytest.raises(InvalidNetworkConfig, match="10-bad.conf"):
        find_config(str(tmp_path))


@pytest.mark.parametrize("raw, match", [
    ({"cniVersion": "1.0.0", "name": "x", "plugins": []}, "non-empty"),
    ({"cniVersion": "1.0.0", "name": "x", "plugins": [{"type": "../../bin/sh"}]}, "type"),
    ({"cniVersion": "one", "name": "x", "plugins": [{"type": "bridge"}]}, "cniVersion"),
    ({"cniVersion": "1.0.0", "name": "x y", "plugins": [{"type": "bridge"}]}, "name"),
    ({"cniVersion": "1.0.0", "name": "x"}, "neither"),
])
def test_bad_configs(raw, match):
    with pytest.raises(InvalidNetworkConfig, match=match):
        parse_config(json.dumps(raw))


REQ = PodNetworkRequest(
    "p", "/run/netns/p", port_mappings=(PortMapping(80, 8080, "TCP", "127.0.0.1"),
                                        PortMapping(53, 0, "UDP")),
    dns=DNSConfig(("10.0.0.10",), ("svc.local",), ("ndots:5",)),
    bandwidth=Bandwidth(1000, 2000, 3000, 4000))


def test_capability_args_go_only_to_plugins_declaring_them():
    rc = runtime_config(REQ)
    assert rc["portMappings"] == [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp",
                                   "hostIP": "127.0.0.1"}]
    pm = plugin_conf({"type": "portmap", "capabilities": {"portMappings": True}}, "net",
                     "1.0.0", rc, {"ips": []})
    assert pm["runtimeConfig"] == {"portMappings": rc["portMappings"]}
    assert (pm["name"], pm["cniVersion"], pm["prevResult"]) == ("net", "1.0.0", {"ips": []})
    bw = plugin_conf({"type": "bandwidth", "capabilities": {"bandwidth": True}}, "n", "1.0.0",
                     rc, None)
    assert bw["runtimeConfig"]["bandwidth"]["egressBurst"] == 4000 and "prevResult" not in bw
    assert "runtimeConfig" not in plugin_conf({"type": "bridge"}, "n", "1.0.0", rc, None)


def test_result_1_0_pod_interface_ips_ipv4_first():
    res = parse_result({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0", "mac": "aa"}, {"name": "eth0", "mac": "bb",
                                                       "sandbox": "/run/netns/p"}],
        "ips": [{"address": "fd00::5/64", "gateway": "fd00::1", "interface": 1},
                {"address": "10.1.0.5/24", "gateway": "10.1.0.1", "interface": 1},
                {"address": "192.168.9.9/24", "interface": 0}],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dns": {"nameservers": ["10.0.0.10"]},
    }, "eth0")
    assert res.ips == ["10.1.0.5", "fd00::5"]
    assert (res.mac, res.gateways, res.routes) == ("bb", ["10.1.0.1", "fd00::1"],
                                                  [Route("0.0.0.0/0")])
    assert res.dns == DNSConfig(("10.0.0.10",))


def test_legacy_result_and_bad_results():
    assert parse_result({"ip4": {"ip": "10.0.0.2/8"}}, "eth0").ips == ["10.0.0.2"]
    with pytest.raises(NetworkSetupFailed, match="no IP"):
        parse_result({"cniVersion": "1.0.0", "ips": []}, "eth0")
    with pytest.raises(NetworkSetupFailed, match="malformed"):
        parse_result({"ips": [{"address": "nope"}]}, "eth0")
