"""Named errors of the pod network.

Each type carries the gRPC status code name the API layer should map it to (``code_name``), so
``crid/server/errors.py`` can map the whole family in one place without this package importing
grpc.
"""

from __future__ import annotations


class NetworkError(Exception):
    """Base of every pod-network error."""

    code_name = "INTERNAL"


class InvalidNetworkConfig(NetworkError):
    """A request or configuration is malformed: bad CIDR, port, name, CNI config."""

    code_name = "INVALID_ARGUMENT"


class PortInUse(NetworkError):
    """A hostPort (protocol, host_ip, port) is already mapped to another pod."""

    code_name = "FAILED_PRECONDITION"


class AddressExhausted(NetworkError):
    """The pod CIDR has no free address left."""

    code_name = "RESOURCE_EXHAUSTED"


class NetworkNotReady(NetworkError):
    """The network cannot serve (no CNI config, bridge cannot be created, NAT table fails)."""

    code_name = "FAILED_PRECONDITION"


class NetworkSetupFailed(NetworkError):
    """A kernel, nft/iptables or plugin step failed while setting up or tearing down a pod."""

    code_name = "INTERNAL"


class CNIPluginError(NetworkSetupFailed):
    """A CNI plugin failed; ``code``/``msg``/``details`` come from its JSON error object."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "") -> None:
        self.plugin, self.command, self.code, self.msg, self.details = (
            plugin, command, code, msg, details)
        text = f"CNI plugin {plugin!r} {command} failed (code {code}): {msg}"
        super().__init__(f"{text}: {details}" if details else text)
