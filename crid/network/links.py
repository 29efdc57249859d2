"""Netlink steps of the built-in network: the bridge, a pod's veth pair, the pod's side.

Functions take an open socket (host or pod namespace) so each is one short step; the caller
orders them and undoes them. The per-pod steps go through ``rtnl`` (raw rtnetlink, cheap);
the bridge and the checks through pyroute2's IPRoute. Errors propagate as OSError (and
pyroute2's NetlinkError from the IPRoute ones).
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from crid.network import rtnl
from crid.network.rtnl import Rtnl

IFA_F_NODAD = 0x02  # IPv6 addresses usable at once: pods' addresses are unique by IPAM


def host_veth_name(pod_id: str) -> str:
    """The host side of a pod's veth: "veth" + 11 hex chars of the id's SHA-256 (15 bytes,
    the kernel's limit), derivable from the id alone so teardown works from nothing."""
    return "veth" + hashlib.sha256(pod_id.encode()).hexdigest()[:11]


def link_index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _stable_mac(name: str) -> str:
    # A bridge takes the lowest MAC of its ports unless given one; fixing it keeps the
    # gateway's MAC stable while pods come and go (no stale ARP entries in pods).
    h = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02,) + tuple(h[:5]))


def ensure_bridge(ipr: IPRoute, name: str, gateways: list[str]) -> int:
    """Create the bridge if missing, give it ``gateways`` (CIDR form), bring it up.
    Idempotent and safe against a concurrent creator."""
    idx = link_index(ipr, name)
    if idx is None:
        try:
            ipr.link("add", ifname=name, kind="bridge", address=_stable_mac(name))
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
        idx = link_index(ipr, name)
        assert idx is not None
    have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=idx)}
    for gw in gateways:
        iface = ipaddress.ip_interface(gw)
        if (str(iface.ip), iface.network.prefixlen) in have:
            continue
        kw = {"flags": IFA_F_NODAD} if iface.version == 6 else {}
        try:
            ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                     **kw)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
    ipr.link("set", index=idx, state="up")
    return idx


def add_veth(rt: Rtnl, host_name: str, bridge_idx: int, netns_path: str, ifname: str,
             mtu: int = 0) -> None:
    """Create the pair with the peer born inside the pod's netns as ``ifname`` (no name
    clash in the host namespace), the host side enslaved to the bridge and up: one message."""
    nsfd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        rt.run(rtnl.add_veth(host_name, bridge_idx, ifname, nsfd, mtu))
    finally:
        os.close(nsfd)
    link = rtnl.lookup(rt, host_name)
    if link is None:
        raise OSError(errno.ENODEV, f"veth {host_name} vanished after creation")
    # Hairpin lets a pod reach itself through its own hostPort when frames are bridged back.
    rt.run(rtnl.set_hairpin(link.index))


def delete_link(rt: Rtnl, name: str) -> bool:
    """Delete a link if present; False when it was already gone."""
    try:
        rt.run(rtnl.del_link(name))
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
        return False
    return True


def configure_pod_side(rt: Rtnl, ifname: str, addresses: list[str],
                       gateways: list[str]) -> str:
    """Inside the pod netns: lo up, addresses on ``ifname``, it up, default routes via the
    gateways, all in one datagram. Returns the interface's MAC."""
    link = rtnl.lookup(rt, ifname)
    if link is None:
        raise OSError(errno.ENODEV, f"{ifname} missing in pod netns")
    reqs = [rtnl.set_up("lo")]
    reqs += [rtnl.add_address(link.index, a) for a in addresses]
    reqs.append(rtnl.set_up(ifname, link.index))
    reqs += [rtnl.add_default_route(link.index, str(ipaddress.ip_interface(gw).ip))
             for gw in gateways]
    rt.run(*reqs)
    return link.mac


def pod_addresses(ipr: IPRoute, ifname: str) -> set[str]:
    """The global addresses on ``ifname`` in CIDR form (empty when it is missing)."""
    idx = link_index(ipr, ifname)
    if idx is None:
        return set()
    return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx)
            if a["scope"] == 0}
