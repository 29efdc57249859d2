"""Adapts a `crid.network.PodNetwork` (built-in bridge or CNI) to the pods' PodNetworkPort."""

from __future__ import annotations

from crid.network import DNSConfig, PodNetwork, PodNetworkRequest
from crid.network import PortMapping as NetPortMapping
from crid.pods.network import Attachment, Readiness


class PodNetworkAdapter:
    """The pod lifecycle's calls, translated to PodNetwork requests."""

    def __init__(self, network: PodNetwork) -> None:
        self._net = network

    def attach(self, att: Attachment) -> tuple[str, ...]:
        return tuple(self._net.setup(_request(att)).ips)

    def detach(self, att: Attachment) -> None:
        self._net.teardown(_request(att))

    def readiness(self) -> Readiness:
        s = self._net.status()
        return Readiness(s.ready, s.reason, s.message)

    def update_pod_cidrs(self, cidrs: list[str]) -> None:
        if cidrs:
            self._net.update_pod_cidr(",".join(cidrs))

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        return self._net.release_orphans(live_pod_ids)


def _request(att: Attachment) -> PodNetworkRequest:
    dns = None
    if att.dns is not None:
        dns = DNSConfig(att.dns.servers, att.dns.searches, att.dns.options)
    return PodNetworkRequest(
        pod_id=att.pod_id, netns_path=att.netns_path, pod_name=att.name,
        pod_namespace=att.namespace, pod_uid=att.uid, hostname=att.hostname, dns=dns,
        port_mappings=tuple(NetPortMapping(p.container_port, p.host_port, p.protocol,  # type: ignore[arg-type]
                                           p.host_ip)
                            for p in att.port_mappings if p.host_port))
