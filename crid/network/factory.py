"""Choosing the pod network from the options."""

from __future__ import annotations

import os

from crid.config import NetworkConfig
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


def options_from_config(cfg: NetworkConfig, root: str) -> NetworkOptions:
    """The daemon's ``[network]`` block as options; state lives in ``<root>/network`` so IP
    leases and the CNI result cache survive daemon restarts."""
    return NetworkOptions(mode=cfg.mode,  # type: ignore[arg-type]  # checked by config
                          cni_conf_dir=cfg.cni_conf_dir, cni_bin_dirs=tuple(cfg.cni_bin_dirs),
                          bridge=cfg.bridge, pod_cidr=cfg.pod_cidr, pod_cidr_v6=cfg.pod_cidr_v6,
                          state_dir=os.path.join(root, "network"))
