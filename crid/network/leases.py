"""Persistent IPAM: one lease file per pod (the journal of an in-memory index), allocation
under a directory lock.

A lease records everything teardown needs after a restart (addresses, host veth, port
mappings), so the disk is the truth and the nft ruleset is a function of it. Addresses are
handed out round-robin after the last one reserved (as CNI host-local does) so a released
address is not reused at once by the next pod.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field

from crid.network.api import PortMapping
from crid.network.errors import AddressExhausted, NetworkSetupFailed
from crid.network.fsutil import DirLock, make_durable, read_json, write_json_atomic
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


@functools.lru_cache(maxsize=16384)
def parse_interface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """``ipaddress.ip_interface``, memoised (the objects are immutable): every allocation and
    every NAT render looks at every lease's addresses. Raises ValueError."""
    return ipaddress.ip_interface(cidr)


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
    """Leases under ``state_dir/pods``: the journal of an in-memory index.

    ``held()`` serialises every read-modify-write across threads and processes. Inside it,
    ``all``, ``get`` and ``allocate`` answer from the index, which is reloaded from disk only
    when another holder (thread of another instance, process) changed something since this
    instance last held the lock: the lock file's token says so (``DirLock``). Every change
    replaces the token before it touches the disk. Outside ``held()``, reads go to disk.
    """

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.pods_dir = os.path.join(state_dir, "pods")
        os.makedirs(self.pods_dir, mode=0o700, exist_ok=True)
        self.lock = DirLock(os.path.join(state_dir, "lock"))
        self._index: dict[str, Lease] | None = None
        self._index_token = b""
        self._last: dict[int, str] = {}

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """The store lock, with the index current; re-entrant within one thread."""
        if self.lock.held_by_me():
            yield
            return
        with self.lock.held():
            if self._index is None or self._index_token != self.lock.token():
                self._load()
            try:
                yield
            except BaseException:
                self._index = None  # a change may have stopped halfway: trust the disk
                raise
            self._index_token = self.lock.token()

    def _load(self) -> None:
        self._index = {lease.pod_id: lease for lease in self._read_all()}
        self._last = {}
        for version in (4, 6):
            try:
                raw = (read_json(self._last_path(version)) or {}).get("ip")
            except (ValueError, AttributeError):  # torn by a crash: only a hint
                raw = None
            if isinstance(raw, str):
                self._last[version] = raw

    def _indexed(self) -> dict[str, Lease] | None:
        return self._index if self.lock.held_by_me() else None

    def _path(self, pod_id: str) -> str:
        return os.path.join(self.pods_dir, pod_id + ".json")

    def _last_path(self, version: int) -> str:
        return os.path.join(self.state_dir, f"last_reserved_v{version}")

    def get(self, pod_id: str) -> Lease | None:
        index = self._indexed()
        if index is not None:
            return index.get(pod_id)
        d = self._read(self._path(pod_id))
        return Lease.from_json(d) if d else None

    def all(self) -> list[Lease]:
        """Every lease, ordered by file name."""
        index = self._indexed()
        if index is not None:
            return [index[k] for k in sorted(index, key=lambda i: i + ".json")]
        return self._read_all()

    def _read_all(self) -> list[Lease]:
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

    def put(self, lease: Lease, durable: bool = True) -> None:
        """Record ``lease``. With ``durable=False`` the file is visible to everyone at once
        but reaches the disk only on ``make_durable(pod_id)``, which the caller runs after
        letting go of the lock and before it uses the addresses."""
        with self.held():
            self.lock.mark_changing()
            write_json_atomic(self._path(lease.pod_id), lease.to_json(), durable)
            assert self._index is not None
            self._index[lease.pod_id] = lease

    def make_durable(self, pod_id: str) -> None:
        """Flush a lease put with ``durable=False`` to disk. Raises NetworkSetupFailed."""
        try:
            make_durable(self._path(pod_id))
        except OSError as e:
            raise NetworkSetupFailed(f"syncing IP lease of pod {pod_id}: {e}") from e

    def remove(self, pod_id: str) -> bool:
        """Drop a lease; False when there was none."""
        with self.held():
            self.lock.mark_changing()
            assert self._index is not None
            self._index.pop(pod_id, None)
            try:
                os.unlink(self._path(pod_id))
            except FileNotFoundError:
                return False
        return True

    def allocate(self, nets: Iterable[Network], leases: list[Lease]) -> list[str]:
        """One address per network, not held by any of ``leases``. Remembers the last address
        reserved per family for round-robin (a hint: written in place without fsync)."""
        used = {parse_interface(a).ip for lease in leases for a in lease.addresses}
        out = []
        with self.held():
            for net in nets:
                last_raw = self._last.get(net.version)
                last = ipaddress.ip_address(last_raw) if last_raw else None
                addr = pick_address(net, used, last)  # type: ignore[arg-type]
                self.lock.mark_changing()
                _write_hint(self._last_path(net.version), {"ip": str(addr)})
                self._last[net.version] = str(addr)
                out.append(f"{addr}/{net.prefixlen}")
        return out


def _write_hint(path: str, data: dict) -> None:
    """Overwrite a small file in place, padded to a fixed width so no old bytes linger:
    no temp file, rename or fsync (a torn hint reads as none)."""
    raw = json.dumps(data).encode().ljust(64)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.pwrite(fd, raw, 0)
        os.ftruncate(fd, len(raw))
    finally:
        os.close(fd)
