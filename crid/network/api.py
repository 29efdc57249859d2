"""The pod network seam: what the pod lifecycle calls, and the data it passes.

The pod lifecycle (RunPodSandbox & co.) pins the pod's network namespace, then calls
``setup``; ``teardown`` undoes it and must work after a daemon restart from what is on disk
alone. Two implementations: the built-in bridge (``crid.network.bridge``) and CNI
(``crid.network.cni``); ``crid.network.factory.make_pod_network`` picks one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

Protocol_ = Literal["TCP", "UDP", "SCTP"]
Mode = Literal["auto", "builtin", "cni"]


@dataclass(frozen=True)
class PortMapping:
    """A hostPort: traffic to ``host_ip:host_port`` (any local address when empty) goes to
    the pod's ``container_port``. ``host_port`` 0 means "no mapping" and is ignored."""

    container_port: int
    host_port: int
    protocol: Protocol_ = "TCP"
    host_ip: str = ""


@dataclass(frozen=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bandwidth:
    """Rates in bits per second, bursts in bits (the CNI ``bandwidth`` capability's units)."""

    ingress_rate: int = 0
    ingress_burst: int = 0
    egress_rate: int = 0
    egress_burst: int = 0


@dataclass(frozen=True)
class PodNetworkRequest:
    """One pod's network identity. ``netns_path`` is the pinned netns (a bind mount)."""

    pod_id: str
    netns_path: str
    pod_name: str = ""
    pod_namespace: str = ""
    pod_uid: str = ""
    port_mappings: tuple[PortMapping, ...] = ()
    dns: DNSConfig | None = None
    bandwidth: Bandwidth | None = None
    hostname: str = ""
    ifname: str = "eth0"
    # Requested static IPs (CNI ``ips`` capability); the built-in network ignores them.
    ips: tuple[str, ...] = ()
    network: str = ""  # a user-defined network's id (crid.network.named); "" = the default
    default_route: bool = True  # False for a second interface (docker network connect)


@dataclass(frozen=True)
class Route:
    dst: str
    gw: str = ""


@dataclass(frozen=True)
class PodNetworkResult:
    """``ips`` are plain addresses, primary first (IPv4 before IPv6 for the built-in network)."""

    ips: list[str]
    interface: str = "eth0"
    mac: str = ""
    prefixes: list[str] = field(default_factory=list)  # the same addresses in CIDR form
    gateways: list[str] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    dns: DNSConfig | None = None


@dataclass(frozen=True)
class NetworkStatus:
    """CRI ``NetworkReady`` condition: ``reason``/``message`` are empty when ready."""

    ready: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class NetworkOptions:
    """The ``[network]`` config block plus where state lives.

    Tests set ``bridge``/``nft_table``/``state_dir`` to names of their own so they never touch
    the production ones.
    """

    mode: Mode = field(default="auto", metadata={
        "help": '"builtin", "cni", or "auto": CNI when cni_conf_dir holds a config'})
    cni_conf_dir: str = field(default="/etc/cni/net.d", metadata={"help": "CNI config dir"})
    cni_bin_dirs: tuple[str, ...] = field(default=("/opt/cni/bin", "/usr/lib/cni"), metadata={
        "help": "where CNI plugin binaries are looked up, in order"})
    bridge: str = field(default="crid0", metadata={"help": "built-in network's bridge"})
    pod_cidr: str = field(default="10.88.0.0/16", metadata={
        "help": "built-in network; UpdateRuntimeConfig's pod CIDR wins"})
    pod_cidr_v6: str = field(default="", metadata={"help": "set for dual stack"})
    state_dir: str = field(default="/var/lib/crid/network", metadata={
        "help": "IP leases, port mappings and the CNI result cache"})
    nft_table: str = field(default="crid", metadata={"help": "nftables table (inet family)"})
    cni_timeout: float = field(default=60.0, metadata={"help": "seconds per CNI plugin call"})
    mtu: int = field(default=0, metadata={"help": "veth MTU for the built-in network (0: kernel)"})
    veth_salt: str = field(default="", metadata={
        "help": "mixed into host veth names (each user-defined network has its own)"})


class PodNetwork(Protocol):
    """What the pod lifecycle needs from a pod network.

    Every method raises only ``crid.network.errors.NetworkError`` subtypes.
    """

    def setup(self, req: PodNetworkRequest) -> PodNetworkResult:
        """Attach the pod's netns to the network. All or nothing: on failure every step done
        is undone. Raises InvalidNetworkConfig, PortInUse, AddressExhausted,
        NetworkSetupFailed."""
        ...

    def teardown(self, req: PodNetworkRequest) -> None:
        """Detach the pod and release its addresses and port mappings. Idempotent; works after
        a restart with only ``req.pod_id`` (the netns may be gone already)."""
        ...

    def check(self, req: PodNetworkRequest) -> None:
        """Raise NetworkSetupFailed when the pod's network is not as setup left it."""
        ...

    def status(self) -> NetworkStatus:
        """Whether the network can serve now (CRI ``NetworkReady``)."""
        ...

    def update_pod_cidr(self, cidr: str) -> None:
        """Use ``cidr`` for new pods (UpdateRuntimeConfig). Raises InvalidNetworkConfig."""
        ...

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        """Tear down every pod known on disk whose id is not in ``live_pod_ids`` (restart
        reconciliation); returns the ids released."""
        ...
