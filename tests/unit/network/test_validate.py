"""Request and option validation."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crid.network.api import DNSConfig, NetworkOptions, PodNetworkRequest, PortMapping
from crid.network.errors import InvalidNetworkConfig
from crid.network.factory import make_pod_network
from crid.network.validate import check_options, check_request, host_ports, parse_cidr

OK = PodNetworkRequest("pod1", "/run/netns/x")


@pytest.mark.parametrize("cidr", ["10.0.0.1/24", "300.0.0.0/8", "10.0.0.0/31", "banana", ""])
def test_bad_cidrs(cidr):
    with pytest.raises(InvalidNetworkConfig, match="pod CIDR"):
        parse_cidr(cidr)


def test_cidr_family_is_checked():
    with pytest.raises(InvalidNetworkConfig, match="not IPv4"):
        parse_cidr("fd00::/64", 4)


@pytest.mark.parametrize("opts, match", [
    (NetworkOptions(mode="magic"), "mode"),
    (NetworkOptions(bridge="a-bridge-name-too-long"), "bridge name"),
    (NetworkOptions(bridge="br.0"), "no dots"),
    (NetworkOptions(nft_table="bad table"), "nft table"),
    (NetworkOptions(pod_cidr="10.88.0.0/33"), "pod CIDR"),
    (NetworkOptions(pod_cidr_v6="10.0.0.0/8"), "not IPv6"),
])
def test_bad_options(opts, match):
    with pytest.raises(InvalidNetworkConfig, match=match):
        check_options(opts)
    with pytest.raises(InvalidNetworkConfig):
        make_pod_network(opts)


@pytest.mark.parametrize("req, match", [
    (replace(OK, port_mappings=(PortMapping(0, 80),)), "no containerPort"),
    (replace(OK, port_mappings=(PortMapping(-1, 0),)), "out of range"),
    (replace(OK, port_mappings=(PortMapping(1, 1, "TCP", "1.2.3"),)), "host_ip"),
    (replace(OK, port_mappings=(PortMapping(1, 9, "TCP", ""), PortMapping(2, 9, "TCP", "::1"))),
     "duplicate"),
    (replace(OK, dns=DNSConfig(options=("ndots:5",) * 10_000)), "DNS options"),
    (replace(OK, pod_id=""), "pod id"),
    (replace(OK, netns_path=""), "netns"),
    (replace(OK, ifname=""), "interface name"),
    (replace(OK, ips=("10.0.0.300",)), "requested IP"),
])
def test_bad_requests(req, match):
    with pytest.raises(InvalidNetworkConfig, match=match):
        check_request(req)


def test_same_port_on_different_ips_or_protocols_is_fine():
    req = replace(OK, port_mappings=(PortMapping(1, 9, "TCP", "127.0.0.1"),
                                     PortMapping(2, 9, "TCP", "10.0.0.1"),
                                     PortMapping(3, 9, "UDP"), PortMapping(4, 0)))
    check_request(req)
    assert [pm.container_port for pm in host_ports(req)] == [1, 2, 3]


def test_wildcard_host_ip_is_normalised():
    req = replace(OK, port_mappings=(PortMapping(1, 9, "TCP", "0.0.0.0"),))
    assert host_ports(req) == [PortMapping(1, 9, "TCP", "")]
