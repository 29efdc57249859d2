"""CNI results (spec section "Success") and the runtimeConfig capability arguments."""

from __future__ import annotations

import ipaddress
from typing import Any

from crid.network.api import DNSConfig, PodNetworkRequest, PodNetworkResult, Route
from crid.network.errors import NetworkSetupFailed
from crid.network.validate import host_ports

CAPABILITIES = ("portMappings", "dns", "ips", "bandwidth")


def runtime_config(req: PodNetworkRequest) -> dict[str, Any]:
    """Every capability argument crid can supply for ``req``; each plugin gets only those it
    declares in its ``capabilities``."""
    rc: dict[str, Any] = {"portMappings": [
        {"hostPort": pm.host_port, "containerPort": pm.container_port,
         "protocol": pm.protocol.lower(), **({"hostIP": pm.host_ip} if pm.host_ip else {})}
        for pm in host_ports(req)]}
    if req.dns is not None:
        rc["dns"] = {"servers": list(req.dns.servers), "searches": list(req.dns.searches),
                     "options": list(req.dns.options)}
    if req.ips:
        rc["ips"] = list(req.ips)
    if req.bandwidth is not None:
        b = req.bandwidth
        rc["bandwidth"] = {"ingressRate": b.ingress_rate, "ingressBurst": b.ingress_burst,
                           "egressRate": b.egress_rate, "egressBurst": b.egress_burst}
    return rc


def plugin_conf(plugin: dict[str, Any], name: str, version: str, rc: dict[str, Any],
                prev: dict[str, Any] | None) -> dict[str, Any]:
    """The stdin config for one plugin of a list (spec "Deriving execution configuration")."""
    conf = dict(plugin)
    conf["name"], conf["cniVersion"] = name, version
    caps = plugin.get("capabilities") or {}
    wanted = {k: v for k, v in rc.items() if caps.get(k)}
    if wanted:
        conf["runtimeConfig"] = {**(plugin.get("runtimeConfig") or {}), **wanted}
    if prev is not None:
        conf["prevResult"] = prev
    return conf


def _legacy_ips(result: dict[str, Any]) -> list[dict[str, Any]]:
    # 0.1.0/0.2.0 results: {"ip4": {"ip": ..., "gateway": ...}, "ip6": {...}}
    return [result[k] | {"address": result[k]["ip"]} for k in ("ip4", "ip6")
            if isinstance(result.get(k), dict) and "ip" in result[k]]


def parse_result(result: dict[str, Any] | None, ifname: str) -> PodNetworkResult:
    """The pod's addresses (IPv4 first), gateways, routes and DNS from a final ADD result.
    Raises NetworkSetupFailed when it holds no address."""
    if not result:
        raise NetworkSetupFailed("CNI ADD returned no result")
    try:
        ifaces = result.get("interfaces") or []
        ips = result.get("ips") or _legacy_ips(result)
        pod_idx = {i for i, itf in enumerate(ifaces) if itf.get("sandbox")}
        mine = [ip for ip in ips if not pod_idx or ip.get("interface") in pod_idx or
                ip.get("interface") is None]
        parsed = sorted(((ipaddress.ip_interface(ip["address"]), ip.get("gateway", ""))
                        for ip in mine), key=lambda p: p[0].version)
        routes = [Route(r["dst"], r.get("gw", "")) for r in result.get("routes") or []]
        mac = next((itf.get("mac", "") for itf in ifaces if itf.get("name") == ifname), "")
        dns = result.get("dns") or {}
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise NetworkSetupFailed(f"malformed CNI result: {e}: {str(result)[:300]}") from e
    if not parsed:
        raise NetworkSetupFailed(f"CNI result has no IP address: {str(result)[:300]}")
    return PodNetworkResult(
        ips=[str(i.ip) for i, _ in parsed], interface=ifname, mac=mac,
        prefixes=[str(i) for i, _ in parsed], gateways=[g for _, g in parsed if g],
        routes=routes,
        dns=DNSConfig(tuple(dns.get("nameservers") or ()), tuple(dns.get("search") or ()),
                      tuple(dns.get("options") or ())) if dns else None)
