"""Netlink sockets inside another network namespace without moving the caller.

crid's gRPC process is multi-threaded and must not fork, so pyroute2's own netns support
(which forks a child to create the socket) is not used. A netlink socket belongs to the
namespace it was created in, for life; a short-lived thread enters the target namespace with
setns(2) (which moves only that thread), creates the socket, and ends. The caller then drives
the socket from its own thread with ``IPRoute(use_socket=...)``.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from pyroute2 import IPRoute

from crid.network.rtnl import Rtnl
from runtime.linux.netns import in_netns

NETLINK_ROUTE = 0


def socket_in_netns(netns_path: str, family: int = socket.AF_NETLINK,
                    stype: int = socket.SOCK_DGRAM, proto: int = NETLINK_ROUTE
                    ) -> socket.socket:
    """A new socket created inside the netns at ``netns_path``. Raises OSError."""
    return in_netns(netns_path, lambda: socket.socket(family, stype, proto))


@contextlib.contextmanager
def iproute_in(netns_path: str | None) -> Iterator[IPRoute]:
    """An IPRoute bound to ``netns_path`` (the caller's own netns when None)."""
    sock = socket_in_netns(netns_path) if netns_path else None
    ipr = IPRoute(use_socket=sock) if sock is not None else IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()
        if sock is not None:
            sock.close()


@contextlib.contextmanager
def rtnl_in(netns_path: str | None) -> Iterator[Rtnl]:
    """A raw rtnetlink socket bound to ``netns_path`` (the caller's own netns when None)."""
    sock = socket_in_netns(netns_path, socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC
                           ) if netns_path else None
    with Rtnl(sock) as rt:
        yield rt
