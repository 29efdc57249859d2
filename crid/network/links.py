"""Netlink steps of the built-in network: the bridge, a pod's veth pair, the pod's side.

Functions take an open IPRoute (host or pod namespace) so each is one short step; the caller
orders them and undoes them. Errors propagate as pyroute2's NetlinkError / OSError.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

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


def add_veth(ipr: IPRoute, host_name: str, bridge_idx: int, netns_path: str, ifname: str,
             mtu: int = 0) -> None:
    """Create the pair with the peer born inside the pod's netns as ``ifname`` (no name
    clash in the host namespace), enslave the host side to the bridge and bring it up."""
    nsfd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer: dict = {"ifname": ifname, "net_ns_fd": nsfd}
        extra: dict = {}
        if mtu:
            peer["mtu"] = mtu
            extra["mtu"] = mtu
        ipr.link("add", ifname=host_name, kind="veth", peer=peer, **extra)
    finally:
        os.close(nsfd)
    idx = link_index(ipr, host_name)
    ipr.link("set", index=idx, master=bridge_idx)
    # Hairpin lets a pod reach itself through its own hostPort when frames are bridged back.
    ipr.brport("set", index=idx, mode=1)  # IFLA_BRPORT_MODE 1: hairpin
    ipr.link("set", index=idx, state="up")


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete a link if present; False when it was already gone."""
    idx = link_index(ipr, name)
    if idx is None:
        return False
    try:
        ipr.link("del", index=idx)
    except NetlinkError as e:
        if e.code != errno.ENODEV:
            raise
        return False
    return True


def configure_pod_side(ipr: IPRoute, ifname: str, addresses: list[str],
                       gateways: list[str]) -> str:
    """Inside the pod netns: lo up, addresses on ``ifname``, it up, default routes via the
    gateways. Returns the interface's MAC."""
    lo = link_index(ipr, "lo")
    ipr.link("set", index=lo, state="up")
    idx = link_index(ipr, ifname)
    if idx is None:
        raise OSError(errno.ENODEV, f"{ifname} missing in pod netns")
    for a in addresses:
        iface = ipaddress.ip_interface(a)
        kw = {"flags": IFA_F_NODAD} if iface.version == 6 else {}
        ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                 **kw)
    ipr.link("set", index=idx, state="up")
    for gw in gateways:
        ip = ipaddress.ip_interface(gw).ip
        dst = "0.0.0.0/0" if ip.version == 4 else "::/0"
        ipr.route("add", dst=dst, gateway=str(ip), oif=idx)
    mac = ipr.get_links(idx)[0].get_attr("IFLA_ADDRESS")
    return str(mac)


def pod_addresses(ipr: IPRoute, ifname: str) -> set[str]:
    """The global addresses on ``ifname`` in CIDR form (empty when it is missing)."""
    idx = link_index(ipr, ifname)
    if idx is None:
        return set()
    return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=idx)
            if a["scope"] == 0}
