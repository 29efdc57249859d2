"""Netlink sockets inside another network namespace without moving the caller.

crid's gRPC process is multi-threaded and must not fork, so pyroute2's own netns support
(which forks a child to create the socket) is not used. A netlink socket belongs to the
namespace it was created in, for life; a short-lived thread enters the target namespace with
setns(2) (which moves only that thread), creates the socket, and ends. The caller then drives
the socket from its own thread with ``IPRoute(use_socket=...)``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

from pyroute2 import IPRoute

from crid.network.rtnl import Rtnl
from runtime import libc

NETLINK_ROUTE = 0


def _make_in_ns(netns_path: str, family: int, stype: int, proto: int, box: list) -> None:
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            libc.setns(fd, libc.CLONE_NEWNET)
        finally:
            os.close(fd)
        box.append(socket.socket(family, stype, proto))
    except BaseException as e:  # handed to the caller's thread
        box.append(e)
    # This thread now lives in the pod's namespace; it ends here, so nothing else ever runs
    # in it.


def socket_in_netns(netns_path: str, family: int = socket.AF_NETLINK,
                    stype: int = socket.SOCK_DGRAM, proto: int = NETLINK_ROUTE
                    ) -> socket.socket:
    """A new socket created inside the netns at ``netns_path``. Raises OSError."""
    box: list = []
    t = threading.Thread(target=_make_in_ns, name="netns-socket",
                         args=(netns_path, family, stype, proto, box), daemon=True)
    t.start()
    t.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


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
