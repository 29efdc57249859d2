"""The pods' network: the default one (built-in bridge or CNI), or the user-defined network
a pod names (`PodNetworkRequest.network`). Teardown releases the pod everywhere it is
attached (a pod may be connected to several user networks), so it needs only the pod id."""

from __future__ import annotations

from crid.network.api import NetworkStatus, PodNetwork, PodNetworkRequest, PodNetworkResult
from crid.network.named import NamedNetworks


class NetworkSwitch:
    """A PodNetwork over the default network and the named ones."""

    def __init__(self, default: PodNetwork, named: NamedNetworks) -> None:
        self.default = default
        self.named = named

    def _for(self, req: PodNetworkRequest) -> PodNetwork:
        return self.named.bridge_of(req.network) if req.network else self.default

    def setup(self, req: PodNetworkRequest) -> PodNetworkResult:
        return self._for(req).setup(req)

    def teardown(self, req: PodNetworkRequest) -> None:
        self.named.detach_everywhere(req.pod_id)
        if not req.network:
            self.default.teardown(req)

    def check(self, req: PodNetworkRequest) -> None:
        self._for(req).check(req)

    def status(self) -> NetworkStatus:
        return self.default.status()

    def update_pod_cidr(self, cidr: str) -> None:
        self.default.update_pod_cidr(cidr)

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        return self.default.release_orphans(live_pod_ids) + \
            self.named.release_orphans(live_pod_ids)
