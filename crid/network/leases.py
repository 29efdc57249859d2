"""Persistent IPAM: one lease file per pod, allocation under a directory lock.

A lease records everything teardown needs after a restart (addresses, host veth, port
mappings), so the disk is the truth and the nft ruleset is a function of it. Addresses are
handed out round-robin after the last one reserved (as CNI host-local does) so a released
address is not reused at once by the next pod.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from crid.network.api import PortMapping
from crid.network.errors import AddressExhausted, NetworkSetupFailed
from crid.network.fsutil import DirLock, read_json, write_json_atomic
from crid.network.validate import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class Lease:
    """One pod's claim: ``addresses`` in CIDR form ("10.88.0.5/16"), primary first."""

    pod_id: str
    addresses: list[str]
    host_veth: str = ""
    ifname: str = "eth0"
    netns_path: str = ""
    port_mappings: list[PortMapping] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Lease:
        pms = [PortMapping(**pm) for pm in d.get("port_mappings", [])]
        return cls(pod_id=d["pod_id"], addresses=list(d["addresses"]),
                   host_veth=d.get("host_veth", ""), ifname=d.get("ifname", "eth0"),
                   netns_path=d.get("netns_path", ""), port_mappings=pms)


def gateway_of(net: Network) -> Address:
    """The bridge's address in ``net``: its first host address."""
    return net.network_address + 1


def pick_address(net: Network, used: set[Address], last: Address | None) -> Address:
    """The first free address after ``last`` (wrapping), skipping the network address, the
    gateway and the IPv4 broadcast. Raises AddressExhausted."""
    first = int(net.network_address) + 2
    end = int(net.broadcast_address) - (1 if net.version == 4 else 0)  # inclusive
    size = end - first + 1
    start = int(last) + 1 if last is not None and first <= int(last) <= end else first
    # Each step lands on a used address or returns, so at most len(used)+1 steps are needed.
    for i in range(min(size, len(used) + 1)):
        cand = ipaddress.ip_address(first + (start - first + i) % size)
        if cand not in used:
            return cand  # type: ignore[return-value]
    raise AddressExhausted(f"no free address left in {net} ({len(used)} leased)")


class LeaseStore:
    """Leases under ``state_dir/pods``; ``held()`` serialises every read-modify-write."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.pods_dir = os.path.join(state_dir, "pods")
        os.makedirs(self.pods_dir, mode=0o700, exist_ok=True)
        self.lock = DirLock(os.path.join(state_dir, "lock"))

    def held(self) -> contextlib.AbstractContextManager[None]:
        return self.lock.held()

    def _path(self, pod_id: str) -> str:
        return os.path.join(self.pods_dir, pod_id + ".json")

    def get(self, pod_id: str) -> Lease | None:
        d = self._read(self._path(pod_id))
        return Lease.from_json(d) if d else None

    def all(self) -> list[Lease]:
        out = []
        for name in sorted(os.listdir(self.pods_dir)):
            if name.endswith(".json"):
                d = self._read(os.path.join(self.pods_dir, name))
                if d:
                    out.append(Lease.from_json(d))
        return out

    def _read(self, path: str) -> dict | None:
        """A lease's JSON; None when missing or unreadable as a lease (a torn or foreign file
        must not block every other pod; its address is unknown anyway)."""
        try:
            d = read_json(path)
        except ValueError:
            return None
        except OSError as e:
            raise NetworkSetupFailed(f"reading IP lease {path}: {e}") from e
        ok = isinstance(d, dict) and isinstance(d.get("pod_id"), str) and isinstance(
            d.get("addresses"), list)
        return d if ok else None

    def put(self, lease: Lease) -> None:
        write_json_atomic(self._path(lease.pod_id), lease.to_json())

    def remove(self, pod_id: str) -> bool:
        """Drop a lease; False when there was none."""
        try:
            os.unlink(self._path(pod_id))
        except FileNotFoundError:
            return False
        return True

    def allocate(self, nets: Iterable[Network], leases: list[Lease]) -> list[str]:
        """One address per network, not held by any lease; call with ``held()``. Remembers the
        last address reserved per family for round-robin."""
        used = {ipaddress.ip_interface(a).ip for lease in leases for a in lease.addresses}
        out = []
        for net in nets:
            last_path = os.path.join(self.state_dir, f"last_reserved_v{net.version}")
            last_raw = (read_json(last_path) or {}).get("ip")
            last = ipaddress.ip_address(last_raw) if last_raw else None
            addr = pick_address(net, used, last)  # type: ignore[arg-type]
            write_json_atomic(last_path, {"ip": str(addr)})
            out.append(f"{addr}/{net.prefixlen}")
        return out

