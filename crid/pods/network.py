"""What pods give the pod network (`crid.network.PodNetwork`, built-in bridge or CNI): the
request naming a pod, and the CRI NetworkReady condition read from the network's status."""

from __future__ import annotations

from crid.network.api import PodNetwork, PodNetworkRequest
from crid.pods.ids import PodId
from crid.pods.layout import PodPaths
from crid.pods.model import PodSpec
from crid.runtime_info import Condition


def network_request(pod_id: PodId, spec: PodSpec, paths: PodPaths) -> PodNetworkRequest:
    """The pod's network identity for setup and teardown; mappings without a host port map
    nothing and are left out."""
    md = spec.metadata
    return PodNetworkRequest(
        pod_id=pod_id.value, netns_path=str(paths.ns("net")), pod_name=md.name,
        pod_namespace=md.namespace, pod_uid=md.uid, hostname=spec.hostname, dns=spec.dns,
        port_mappings=tuple(p for p in spec.port_mappings if p.host_port),
        network=spec.network)


def leftover_request(paths: PodPaths) -> PodNetworkRequest:
    """Enough to tear down the network of a pod known only by its directory (after a crash)."""
    return PodNetworkRequest(pod_id=paths.dir.name, netns_path=str(paths.ns("net")))


class ReadinessCondition:
    """The CRI NetworkReady condition from a pod network's status (for Status)."""

    def __init__(self, network: PodNetwork) -> None:
        self._network = network

    def network_condition(self) -> Condition:
        s = self._network.status()
        return Condition("NetworkReady", s.ready, s.reason, s.message)
