"""The NAT ruleset as a function of the leases."""

from __future__ import annotations

import ipaddress

from crid.network.api import PortMapping
from crid.network.nat import NatSpec, NatTarget, render_iptables, render_nft

SPEC = NatSpec("crt_net_x", "crtnx", (ipaddress.ip_network("10.1.0.0/24"),
                                      ipaddress.ip_network("fd00::/64")),
               (NatTarget(PortMapping(80, 8080), ("10.1.0.2", "fd00::2")),
                NatTarget(PortMapping(53, 5353, "UDP", "127.0.0.1"), ("10.1.0.3", "fd00::3")),
                NatTarget(PortMapping(9, 9999, "SCTP", "::1"), ("10.1.0.3", "fd00::3"))))


def test_nft_replaces_its_table_atomically_with_every_rule():
    text = render_nft(SPEC)
    assert text.startswith("table inet crt_net_x\ndelete table inet crt_net_x\n")
    assert "ip saddr { 10.1.0.0/24 } ip daddr != { 10.1.0.0/24 } masquerade" in text
    assert "ct status dnat ip saddr 127.0.0.0/8 masquerade" in text
    assert "meta nfproto ipv4 meta l4proto tcp th dport 8080 dnat ip to 10.1.0.2:80" in text
    assert "meta nfproto ipv6 meta l4proto tcp th dport 8080 dnat ip6 to [fd00::2]:80" in text
    assert "ip daddr 127.0.0.1 meta l4proto udp th dport 5353 dnat ip to 10.1.0.3:53" in text
    assert "ip6 daddr ::1 meta l4proto sctp th dport 9999 dnat ip6 to [fd00::3]:9" in text
    assert text.count("dnat ip to ") + text.count("dnat ip6 to ") == 4


def test_iptables_has_the_same_rules_per_family():
    v4 = render_iptables(SPEC, 4)
    assert ":CRT_NET_X-HOSTPORTS - [0:0]" in v4
    assert "-A CRT_NET_X-POSTROUTING -s 10.1.0.0/24 -j MASQUERADE" in v4
    assert ("-A CRT_NET_X-HOSTPORTS -d 127.0.0.1 -p udp -m udp --dport 5353 -j DNAT "
            "--to-destination 10.1.0.3:53") in v4
    assert "fd00" not in v4
    v6 = render_iptables(SPEC, 6)
    assert "--to-destination [fd00::3]:9" in v6 and "127.0.0.0/8" not in v6
