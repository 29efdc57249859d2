"""Error → status code mapping and options wiring."""

from __future__ import annotations

import grpc
import pytest

from crid.config import NetworkConfig
from crid.network.errors import (
    AddressExhausted,
    CNIPluginError,
    InvalidNetworkConfig,
    NetworkNotReady,
    NetworkSetupFailed,
    PortInUse,
)
from crid.network.factory import options_from_config
from crid.server.errors import status_for


@pytest.mark.parametrize("exc, code", [
    (InvalidNetworkConfig("x"), grpc.StatusCode.INVALID_ARGUMENT),
    (PortInUse("x"), grpc.StatusCode.FAILED_PRECONDITION),
    (NetworkNotReady("x"), grpc.StatusCode.FAILED_PRECONDITION),
    (AddressExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NetworkSetupFailed("x"), grpc.StatusCode.INTERNAL),
    (CNIPluginError("bridge", "ADD", 11, "try again"), grpc.StatusCode.INTERNAL),
])
def test_network_errors_map_to_status_codes(exc, code):
    assert status_for(exc) == code


def test_plugin_error_message_names_plugin_command_and_details():
    e = CNIPluginError("portmap", "DEL", 999, "chain missing", "CNI-DN-1")
    assert str(e) == "CNI plugin 'portmap' DEL failed (code 999): chain missing: CNI-DN-1"


def test_options_from_config():
    opts = options_from_config(NetworkConfig(pod_cidr="10.1.0.0/16"), "/var/lib/crid")
    assert (opts.state_dir, opts.pod_cidr, opts.bridge, opts.cni_bin_dirs, opts.nft_table) == (
        "/var/lib/crid/network", "10.1.0.0/16", "crid0", ("/opt/cni/bin", "/usr/lib/cni"), "crid")
