"""The seam between pods and the pod network: the few calls the lifecycle makes.

`crid.network` (built-in bridge or CNI) implements the full PodNetwork; `PodNetworkPort` is the
part pods need, so pods can be built and tested before and independently of it.
`NoPodNetwork` stands in when no network is wired: pods get loopback only and no address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crid.pods.model import DNS, PortMapping
from crid.runtime_info import Condition


@dataclass(frozen=True)
class Attachment:
    """One pod's network identity, as the network needs it for setup and teardown."""

    pod_id: str
    netns_path: str
    name: str = ""
    namespace: str = ""
    uid: str = ""
    hostname: str = ""
    port_mappings: tuple[PortMapping, ...] = ()
    dns: DNS | None = None


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    message: str = ""


class PodNetworkPort(Protocol):
    def attach(self, att: Attachment) -> tuple[str, ...]:
        """Connects the pod's netns; returns its IPs, primary first. All or nothing."""
        ...

    def detach(self, att: Attachment) -> None:
        """Releases the pod's addresses, veth and port mappings. Idempotent, also after a
        restart and with the netns already gone."""
        ...

    def readiness(self) -> Readiness: ...

    def update_pod_cidrs(self, cidrs: list[str]) -> None:
        """Uses cidrs (UpdateRuntimeConfig's, at most one per family) for new pods."""
        ...

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]: ...


class NoPodNetwork:
    """No pod network: loopback only, NetworkReady false (truthfully)."""

    def attach(self, att: Attachment) -> tuple[str, ...]:
        return ()

    def detach(self, att: Attachment) -> None:
        return None

    def readiness(self) -> Readiness:
        return Readiness(False, "NetworkPluginNotReady", "crid: no pod network is configured")

    def update_pod_cidrs(self, cidrs: list[str]) -> None:
        return None

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        return []


class ReadinessCondition:
    """The CRI NetworkReady condition from a pod network's readiness (for Status)."""

    def __init__(self, network: PodNetworkPort) -> None:
        self._network = network

    def network_condition(self) -> Condition:
        r = self._network.readiness()
        return Condition("NetworkReady", r.ready, r.reason, r.message)
