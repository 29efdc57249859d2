"""Input checks shared by both networks: everything hostile is refused here, before any
kernel object is made."""

from __future__ import annotations

import ipaddress
import re

from crid.network.api import NetworkOptions, PodNetworkRequest, PortMapping
from crid.network.errors import InvalidNetworkConfig

IFNAMSIZ = 15  # kernel interface names are at most 15 bytes (IFNAMSIZ - 1)
_IFNAME = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")
_NFT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
_POD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
MAX_DNS_ENTRIES = 32  # glibc reads 3 servers / 6 searches; anything far beyond is hostile
PROTOCOLS = ("TCP", "UDP", "SCTP")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_cidr(text: str, version: int | None = None, what: str = "pod CIDR") -> Network:
    """Parse a pod CIDR, refusing host bits, wrong families and ranges too small for a
    gateway plus one pod. Raises InvalidNetworkConfig."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as e:
        raise InvalidNetworkConfig(f"invalid {what} {text!r}: {e}") from e
    if version is not None and net.version != version:
        raise InvalidNetworkConfig(f"{what} {text!r} is not IPv{version}")
    if net.num_addresses < 4:
        raise InvalidNetworkConfig(f"{what} {text!r} is too small (needs a gateway and a pod)")
    return net


def check_ifname(name: str, what: str = "interface name") -> str:
    if not _IFNAME.match(name or ""):
        raise InvalidNetworkConfig(
            f"invalid {what} {name!r}: 1-{IFNAMSIZ} characters of [A-Za-z0-9_.-]")
    return name


def check_options(opts: NetworkOptions) -> None:
    """Raises InvalidNetworkConfig for options no network can run with."""
    if opts.mode not in ("auto", "builtin", "cni"):
        raise InvalidNetworkConfig(f"invalid network mode {opts.mode!r}: auto, builtin or cni")
    check_ifname(opts.bridge, "bridge name")
    if "." in opts.bridge:  # the sysctl path net.ipv4.conf.<bridge> cannot hold a dot
        raise InvalidNetworkConfig(f"invalid bridge name {opts.bridge!r}: no dots")
    if not _NFT_NAME.match(opts.nft_table or ""):
        raise InvalidNetworkConfig(f"invalid nft table name {opts.nft_table!r}")
    parse_cidr(opts.pod_cidr, 4)
    if opts.pod_cidr_v6:
        parse_cidr(opts.pod_cidr_v6, 6, "IPv6 pod CIDR")
    if not 0 <= opts.mtu <= 65535 or 0 < opts.mtu < 576:
        raise InvalidNetworkConfig(f"invalid MTU {opts.mtu}")


def _check_port(pm: PortMapping, pod_id: str) -> None:
    if pm.protocol not in PROTOCOLS:
        raise InvalidNetworkConfig(
            f"pod {pod_id}: invalid port protocol {pm.protocol!r} (TCP, UDP or SCTP)")
    for what, port in (("container_port", pm.container_port), ("host_port", pm.host_port)):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidNetworkConfig(f"pod {pod_id}: {what} {port!r} out of range 0-65535")
    if pm.host_port and not pm.container_port:
        raise InvalidNetworkConfig(f"pod {pod_id}: hostPort {pm.host_port} has no containerPort")
    if pm.host_ip:
        try:
            ipaddress.ip_address(pm.host_ip)
        except ValueError as e:
            raise InvalidNetworkConfig(f"pod {pod_id}: invalid host_ip {pm.host_ip!r}") from e


def host_ports(req: PodNetworkRequest) -> list[PortMapping]:
    """The mappings that actually map a host port, normalised ("0.0.0.0"/"::" → "")."""
    out = []
    for pm in req.port_mappings:
        if pm.host_port:
            ip = "" if pm.host_ip in ("0.0.0.0", "::") else pm.host_ip
            out.append(PortMapping(pm.container_port, pm.host_port, pm.protocol, ip))
    return out


def ports_clash(a: PortMapping, b: PortMapping) -> bool:
    """Two mappings clash when they claim the same protocol and port on overlapping IPs."""
    return (a.protocol == b.protocol and a.host_port == b.host_port
            and (not a.host_ip or not b.host_ip or a.host_ip == b.host_ip))


def check_request(req: PodNetworkRequest) -> None:
    """Validate a setup request. Raises InvalidNetworkConfig naming the pod and the field."""
    if not _POD_ID.match(req.pod_id or ""):
        raise InvalidNetworkConfig(f"invalid pod id {req.pod_id!r}")
    if not req.netns_path or "\0" in req.netns_path:
        raise InvalidNetworkConfig(f"pod {req.pod_id}: netns path is empty or invalid")
    check_ifname(req.ifname)
    if len(req.port_mappings) > 1024:
        raise InvalidNetworkConfig(f"pod {req.pod_id}: {len(req.port_mappings)} port mappings")
    for pm in req.port_mappings:
        _check_port(pm, req.pod_id)
    mapped = host_ports(req)
    for i, pm in enumerate(mapped):
        for other in mapped[:i]:
            if ports_clash(pm, other):
                raise InvalidNetworkConfig(
                    f"pod {req.pod_id}: duplicate hostPort {pm.protocol}/{pm.host_port}")
    if req.dns is not None:
        for what, items in (("servers", req.dns.servers), ("searches", req.dns.searches),
                            ("options", req.dns.options)):
            if len(items) > MAX_DNS_ENTRIES:
                raise InvalidNetworkConfig(
                    f"pod {req.pod_id}: {len(items)} DNS {what} (at most {MAX_DNS_ENTRIES})")
    for ip in req.ips:
        try:
            ipaddress.ip_interface(ip)
        except ValueError as e:
            raise InvalidNetworkConfig(f"pod {req.pod_id}: invalid requested IP {ip!r}") from e
