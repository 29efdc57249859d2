"""The package version, read from the installed metadata with a source-tree fallback."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("crid")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.1.0"

RUNTIME_NAME = "crid"
CRI_API_VERSION = "v1"
# The Version RPC's `version` field: the kubelet's CRI client sends "0.1.0" and expects this.
KUBELET_API_VERSION = "0.1.0"
