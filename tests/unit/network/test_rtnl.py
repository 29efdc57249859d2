"""The raw rtnetlink client without root: messages decoded by pyroute2's own parsers (a
differential check of the wire layout), and ack handling against a fake socket."""

from __future__ import annotations

import errno
import socket
import struct

import pytest
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from crid.network import rtnl


def _wire(req: rtnl.Request) -> bytes:
    return rtnl.NLMSG_HDR.pack(rtnl.NLMSG_HDR.size + len(req.body), req.kind, 5, 1, 0) + req.body


def test_add_veth_is_one_message_pyroute2_reads_back():
    msg = ifinfmsg(_wire(rtnl.add_veth("vethA", 7, "eth0", 42, 1400)))
    msg.decode()
    assert (msg.get_attr("IFLA_IFNAME"), msg.get_attr("IFLA_MASTER"), msg.get_attr("IFLA_MTU"),
            msg["flags"], msg["change"]) == ("vethA", 7, 1400, rtnl.IFF_UP, rtnl.IFF_UP)
    info = msg.get_attr("IFLA_LINKINFO")
    assert info.get_attr("IFLA_INFO_KIND") == "veth"
    peer = info.get_attr("IFLA_INFO_DATA").get_attr("VETH_INFO_PEER")
    assert (peer.get_attr("IFLA_IFNAME"), peer.get_attr("IFLA_NET_NS_FD"), peer["flags"]) == \
        ("eth0", 42, 0)


def test_address_and_route_layouts():
    addr = ifaddrmsg(_wire(rtnl.add_address(3, "fd00::5/64")))
    addr.decode()
    assert (addr["family"], addr["prefixlen"], addr["flags"], addr["index"],
            addr.get_attr("IFA_LOCAL")) == (socket.AF_INET6, 64, rtnl.IFA_F_NODAD, 3, "fd00::5")
    route = rtmsg(_wire(rtnl.add_default_route(3, "10.1.0.1")))
    route.decode()
    assert (route["family"], route["dst_len"], route["table"], route.get_attr("RTA_GATEWAY"),
            route.get_attr("RTA_OIF")) == (socket.AF_INET, 0, 254, "10.1.0.1", 3)


class FakeSocket:
    """Answers each request in a datagram with the ack (or error) the test scripted."""

    def __init__(self, codes: list[int], answer: bytes = b"") -> None:
        self.codes, self.answer, self.sent = codes, answer, b""

    def bind(self, addr: tuple[int, int]) -> None: ...

    def close(self) -> None: ...

    def sendto(self, data: bytes, addr: tuple[int, int]) -> None:
        self.sent = data

    def recv(self, size: int) -> bytes:
        out, pos, i = b"", 0, 0
        while pos < len(self.sent):
            length, _, _, seq, _ = rtnl.NLMSG_HDR.unpack_from(self.sent, pos)
            if self.answer and i == 0:
                out += rtnl.NLMSG_HDR.pack(16 + len(self.answer), rtnl.RTM_NEWLINK, 0, seq, 0)
                out += self.answer
            err = struct.pack("=i", -self.codes[i]) + self.sent[pos:pos + 16]
            out += rtnl.NLMSG_HDR.pack(16 + len(err), rtnl.NLMSG_ERROR, 0, seq, 0) + err
            pos += (length + 3) & ~3
            i += 1
        return out


def test_a_batch_waits_for_every_ack_and_names_the_refused_request():
    rt = rtnl.Rtnl(FakeSocket([0, errno.EEXIST, 0]))  # type: ignore[arg-type]
    with pytest.raises(OSError, match="adding 10.0.0.2/24: File exists") as e:
        rt.run(rtnl.set_up("lo"), rtnl.add_address(2, "10.0.0.2/24"),
               rtnl.add_default_route(2, "10.0.0.1"))
    assert e.value.errno == errno.EEXIST
    assert rt.run(rtnl.set_up("lo")) == {}


def test_lookup_decodes_the_answer_and_maps_enodev_to_none():
    body = rtnl.IFINFOMSG.pack(0, 1, 9, rtnl.IFF_UP, 0) + rtnl.attr(
        rtnl.IFLA_ADDRESS, bytes.fromhex("02aabbccddee"))
    assert rtnl.lookup(rtnl.Rtnl(FakeSocket([0], body)), "eth0") == rtnl.Link(  # type: ignore[arg-type]
        9, rtnl.IFF_UP, "02:aa:bb:cc:dd:ee")
    assert rtnl.lookup(rtnl.Rtnl(FakeSocket([errno.ENODEV])), "eth9") is None  # type: ignore[arg-type]
