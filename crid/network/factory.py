"""Choosing the pod network from the options."""

from __future__ import annotations

from crid.network.api import NetworkOptions, PodNetwork
from crid.network.bridge import BridgeNetwork
from crid.network.cni import CNINetwork
from crid.network.cni.config import has_config
from crid.network.validate import check_options


def make_pod_network(options: NetworkOptions) -> PodNetwork:
    """CNI when mode is "cni", or "auto" and ``cni_conf_dir`` holds a config file; the
    built-in bridge otherwise. Raises InvalidNetworkConfig for bad options."""
    check_options(options)
    if options.mode == "cni" or (options.mode == "auto" and has_config(options.cni_conf_dir)):
        return CNINetwork(options)
    return BridgeNetwork(options)
