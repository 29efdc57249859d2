"""A minimal synchronous rtnetlink client for the per-pod hot path of the built-in network.

pyroute2 0.9 drives every request through an asyncio loop: about a millisecond of CPU per
call, under the GIL, so ten concurrent RunPodSandbox calls queue behind each other's netlink
bookkeeping. The few messages a pod needs (create a veth, configure the pod side, delete a
link, look a link up) are declared here as struct layouts and sent over a plain socket,
several at a time in one datagram where they do not depend on each other's answers (the
kernel processes the messages of a datagram in order and acks each).

Rare paths (the bridge, checks, listing ports) keep using pyroute2.
Errors are OSError with the kernel's errno and a message naming the request.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass

NETLINK_ROUTE = 0

# nlmsghdr (linux/netlink.h)
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400

# rtnetlink message types (linux/rtnetlink.h)
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_NEWROUTE = 20, 24

IFINFOMSG = struct.Struct("=BxHiII")        # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")         # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")         # family, dst_len, src_len, tos, table, proto,
#                                             scope, type, flags
NLATTR = struct.Struct("=HH")               # len, type
NLA_F_NESTED = 0x8000

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_LINKINFO, IFLA_NET_NS_FD = 12, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4                        # hairpin
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
IFF_UP = 0x1
AF_BRIDGE = 7


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    raw = NLATTR.pack(NLATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=I", value))


def s32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("=i", value))


def name(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def parse_attrs(raw: bytes) -> dict[int, bytes]:
    """Top-level attributes of a message body (type without flags -> payload)."""
    out, pos = {}, 0
    while pos + NLATTR.size <= len(raw):
        length, kind = NLATTR.unpack_from(raw, pos)
        if length < NLATTR.size:
            break
        out[kind & ~NLA_F_NESTED] = raw[pos + NLATTR.size:pos + length]
        pos += (length + 3) & ~3
    return out


@dataclass(frozen=True)
class Request:
    """One message: its type, flags beyond REQUEST|ACK, body, and what it does (for errors)."""

    kind: int
    body: bytes
    what: str
    flags: int = 0


@dataclass(frozen=True)
class Link:
    index: int
    flags: int
    mac: str


class Rtnl:
    """One NETLINK_ROUTE socket: use from one thread at a time. ``sock`` may come from
    ``nsnetlink.socket_in_netns`` (its namespace is the one it was made in)."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                          NETLINK_ROUTE)
        try:
            self.sock.bind((0, 0))
        except BaseException:
            self.sock.close()
            raise
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, *reqs: Request) -> dict[int, bytes]:
        """Sends ``reqs`` in one datagram and waits for every ack; returns the bodies of
        the answers (RTM_NEW* messages) by request position. Raises OSError for the first
        request the kernel refused (the ones after it were still processed)."""
        first = self._seq + 1
        out = bytearray()
        for req in reqs:
            self._seq += 1
            flags = NLM_F_REQUEST | NLM_F_ACK | req.flags
            out += NLMSG_HDR.pack(NLMSG_HDR.size + len(req.body), req.kind, flags, self._seq, 0)
            out += req.body
        self.sock.sendto(bytes(out), (0, 0))  # to the kernel
        pending = set(range(first, self._seq + 1))
        answers: dict[int, bytes] = {}
        failures: dict[int, int] = {}
        while pending:
            data = self.sock.recv(65536)
            pos = 0
            while pos + NLMSG_HDR.size <= len(data):
                length, kind, _, seq, _ = NLMSG_HDR.unpack_from(data, pos)
                body = data[pos + NLMSG_HDR.size:pos + length]
                pos += (length + 3) & ~3
                if seq not in pending:
                    continue
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", body)[0]
                    if code:
                        failures[seq] = code
                    pending.discard(seq)
                elif kind != NLMSG_DONE:
                    answers[seq - first] = body
        if failures:
            seq = min(failures)
            code = failures[seq]
            raise OSError(code, f"{reqs[seq - first].what}: {os.strerror(code)}")
        return answers


# -- requests ------------------------------------------------------------------------------

def _ifinfo(index: int = 0, flags: int = 0, change: int = 0, family: int = 0) -> bytes:
    return IFINFOMSG.pack(family, 0, index, flags, change)


def get_link(ifname: str) -> Request:
    return Request(RTM_GETLINK, _ifinfo() + name(IFLA_IFNAME, ifname), f"looking up {ifname}")


def set_up(ifname: str = "", index: int = 0) -> Request:
    body = _ifinfo(index, IFF_UP, IFF_UP) + (name(IFLA_IFNAME, ifname) if not index else b"")
    return Request(RTM_NEWLINK, body, f"bringing {ifname or index} up")


def add_veth(host: str, master: int, peer: str, peer_netns_fd: int, mtu: int = 0) -> Request:
    """The pair with the host side up and enslaved to ``master``, the peer born (down: the
    kernel refuses to open a veth before its peer is registered, ENOTCONN) in the netns
    behind ``peer_netns_fd``."""
    mtu_attr = u32(IFLA_MTU, mtu) if mtu else b""
    peer_msg = (_ifinfo() + name(IFLA_IFNAME, peer)
                + u32(IFLA_NET_NS_FD, peer_netns_fd) + mtu_attr)
    linkinfo = nested(IFLA_LINKINFO, name(IFLA_INFO_KIND, "veth"),
                      nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer_msg)))
    body = (_ifinfo(flags=IFF_UP, change=IFF_UP) + name(IFLA_IFNAME, host)
            + u32(IFLA_MASTER, master) + mtu_attr + linkinfo)
    return Request(RTM_NEWLINK, body, f"creating veth {host}", NLM_F_CREATE | NLM_F_EXCL)


def set_hairpin(index: int, on: bool = True) -> Request:
    body = _ifinfo(index, family=AF_BRIDGE) + nested(
        IFLA_PROTINFO, attr(IFLA_BRPORT_MODE, bytes([1 if on else 0])))
    return Request(RTM_SETLINK, body, f"setting hairpin on link {index}")


def del_link(ifname: str) -> Request:
    return Request(RTM_DELLINK, _ifinfo() + name(IFLA_IFNAME, ifname), f"deleting {ifname}")


def add_address(index: int, cidr: str) -> Request:
    iface = ipaddress.ip_interface(cidr)
    fam = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    flags = IFA_F_NODAD if iface.version == 6 else 0  # unique by IPAM: usable at once
    packed = iface.ip.packed
    body = (IFADDRMSG.pack(fam, iface.network.prefixlen, flags, RT_SCOPE_UNIVERSE, index)
            + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))
    return Request(RTM_NEWADDR, body, f"adding {cidr}", NLM_F_CREATE | NLM_F_EXCL)


def add_default_route(index: int, gateway: str) -> Request:
    gw = ipaddress.ip_address(gateway)
    fam = socket.AF_INET if gw.version == 4 else socket.AF_INET6
    body = (RTMSG.pack(fam, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                       RTN_UNICAST, 0)
            + attr(RTA_GATEWAY, gw.packed) + s32(RTA_OIF, index))
    return Request(RTM_NEWROUTE, body, f"adding default route via {gateway}",
                   NLM_F_CREATE | NLM_F_EXCL)


def decode_link(body: bytes) -> Link:
    _, _, index, flags, _ = IFINFOMSG.unpack_from(body)
    attrs = parse_attrs(body[IFINFOMSG.size:])
    mac = ":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b""))
    return Link(index, flags, mac)


def lookup(rt: Rtnl, ifname: str) -> Link | None:
    """The link named ``ifname`` in the socket's namespace, or None."""
    try:
        return decode_link(rt.run(get_link(ifname))[0])
    except OSError as e:
        if e.errno == errno.ENODEV:
            return None
        raise
