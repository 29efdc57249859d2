"""CNI plugins as the pod network."""

from crid.network.cni.network import CNINetwork

__all__ = ["CNINetwork"]
