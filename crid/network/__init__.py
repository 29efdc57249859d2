"""Pod networking: the built-in bridge network and CNI, behind one ``PodNetwork`` seam."""

from crid.network.api import (
    Bandwidth,
    DNSConfig,
    NetworkOptions,
    NetworkStatus,
    PodNetwork,
    PodNetworkRequest,
    PodNetworkResult,
    PortMapping,
    Route,
)
from crid.network.factory import make_pod_network

__all__ = ["Bandwidth", "DNSConfig", "NetworkOptions", "NetworkStatus", "PodNetwork",
           "PodNetworkRequest", "PodNetworkResult", "PortMapping", "Route",
           "make_pod_network"]
