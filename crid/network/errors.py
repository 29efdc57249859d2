"""Named errors of the pod network.

Each type also derives from the daemon's matching ``crid.errors`` class, so
``crid/server/errors.py`` maps it to its gRPC status code through the MRO with no
registration: InvalidNetworkConfig → INVALID_ARGUMENT, PortInUse and NetworkNotReady →
FAILED_PRECONDITION, AddressExhausted → RESOURCE_EXHAUSTED, NetworkSetupFailed (and
CNIPluginError) → INTERNAL.
"""

from __future__ import annotations

from crid import errors


class NetworkError(errors.CridError):
    """Base of every pod-network error."""


class InvalidNetworkConfig(NetworkError, errors.InvalidArgument):
    """A request or configuration is malformed: bad CIDR, port, name, CNI config."""


class PortInUse(NetworkError, errors.FailedPrecondition):
    """A hostPort (protocol, host_ip, port) is already mapped to another pod."""


class AddressExhausted(NetworkError, errors.ResourceExhausted):
    """The pod CIDR has no free address left."""


class NetworkNotReady(NetworkError, errors.FailedPrecondition):
    """The network cannot serve (no CNI config, bridge cannot be created, NAT table fails)."""


class NetworkSetupFailed(NetworkError, errors.Internal):
    """A kernel, nft/iptables or plugin step failed while setting up or tearing down a pod."""


class CNIPluginError(NetworkSetupFailed):
    """A CNI plugin failed; ``code``/``msg``/``details`` come from its JSON error object."""

    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "") -> None:
        self.plugin, self.command, self.code, self.msg, self.details = (
            plugin, command, code, msg, details)
        text = f"CNI plugin {plugin!r} {command} failed (code {code}): {msg}"
        super().__init__(f"{text}: {details}" if details else text)
