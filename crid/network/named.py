"""User-defined bridge networks (Docker's `docker network create`): each a built-in bridge
network of its own (bridge, NAT table, lease store, veth names salted with its id) over a
subnet given or picked so it overlaps no other network and no route of the host, with an
embedded DNS responder on its gateway.

A network's record is `<root>/<id>.json` (written atomically), its leases
`<root>/<id>/leases`. The leases are the truth of who is attached (a network with leases
has endpoints); the record keeps the per-container aliases.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from crid import logs
from crid.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from crid.network.api import NetworkOptions, PodNetworkRequest, PodNetworkResult
from crid.network.bridge import BridgeNetwork
from crid.network.dns import DnsResponder
from crid.network.errors import NetworkError
from crid.network.leases import Lease, gateway_of
from runtime.linux.atomic import write_atomic

log = logs.get("crid.network.named")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
# Docker's default address pools: 172.17-31.0.0/16, then 192.168.0.0/16 cut into /20s.
POOL = [ipaddress.ip_network(f"172.{n}.0.0/16") for n in range(18, 32)] + \
    [ipaddress.ip_network(f"192.168.{n}.0/20") for n in range(0, 256, 16)]
Names = Callable[[str], list[str]]  # pod id -> the names it answers to on every network


@dataclass(frozen=True)
class NetworkRecord:
    id: str
    name: str
    subnet: str
    gateway: str
    created_at: float
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False
    aliases: dict[str, list[str]] = field(default_factory=dict)  # pod id -> its aliases

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> NetworkRecord:
        return cls(**rec)


@dataclass(frozen=True)
class NetworkRequest:
    name: str
    subnet: str = ""  # "" = picked from POOL
    gateway: str = ""  # "" = the subnet's first address (the only one served)
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    internal: bool = False
    attachable: bool = False


class NamedNetworks:
    """The user-defined networks. `base` gives the defaults (MTU, NAT backend choice) and the
    default network's CIDR, which no user network may overlap."""

    def __init__(self, root: Path, base: NetworkOptions, names: Names = lambda _: []) -> None:
        self.root = root
        self._base = base
        self.names = names  # set by the Docker front door (container names and short ids)
        self._lock = threading.RLock()
        self._records: dict[str, NetworkRecord] = {}
        self._bridges: dict[str, BridgeNetwork] = {}
        self._dns: dict[str, DnsResponder] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Loads the networks on disk, prepares their bridges and starts their DNS."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for entry in sorted(os.listdir(self.root)):
            if entry.endswith(".json") and not entry.startswith("."):
                try:
                    rec = NetworkRecord.from_record(json.loads((self.root / entry).read_bytes()))
                except (OSError, ValueError, TypeError) as e:
                    log.warning("network record unreadable", file=entry, error=str(e))
                    continue
                self._records[rec.id] = rec
                with contextlib.suppress(NetworkError, OSError):
                    self._activate(rec)
        for entry in os.listdir(self.root):  # state of a network whose record never landed
            if not entry.endswith(".json") and entry not in self._records:
                self._purge(entry)

    def stop(self) -> None:
        with self._lock:
            for responder in self._dns.values():
                responder.stop()
            self._dns.clear()

    # -- queries --------------------------------------------------------------------------

    def all(self) -> list[NetworkRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.created_at)

    def get(self, ref: str) -> NetworkRecord:
        """By id, name or unique id prefix. Raises NotFound."""
        with self._lock:
            recs = list(self._records.values())
        for r in recs:
            if ref in (r.id, r.name):
                return r
        hits = [r for r in recs if ref and r.id.startswith(ref)]
        if len(hits) != 1:
            raise NotFound(f"network {ref[:100]} not found")
        return hits[0]

    def leases(self, net_id: str) -> list[Lease]:
        return self._bridge(net_id).store.all()

    def lease(self, net_id: str, pod_id: str) -> Lease | None:
        return self._bridge(net_id).store.get(pod_id)

    def lookup(self, net_id: str, name: str, client: str = "") -> list[str]:
        """IPv4 addresses of the containers answering to `name` (their names, short ids and
        aliases): on this network, else on another network the asking container (`client`,
        its address on this one) is attached to, as Docker resolves across them."""
        nets = [net_id]
        asker = self._pod_at(net_id, client) if client else None
        if asker is not None:
            with self._lock:
                others = [n for n in self._bridges if n != net_id]
            nets += [n for n in others if self._bridge(n).store.get(asker) is not None]
        for n in nets:
            with contextlib.suppress(NotFound):
                ips = self._lookup_in(n, name)
                if ips:
                    return ips
        return []

    def _pod_at(self, net_id: str, ip: str) -> str | None:
        with contextlib.suppress(NotFound):
            for lease in self.leases(net_id):
                if any(a.split("/")[0] == ip for a in lease.addresses):
                    return lease.pod_id
        return None

    def _lookup_in(self, net_id: str, name: str) -> list[str]:
        rec = self._records.get(net_id)
        if rec is None:
            return []
        out = []
        for lease in self.leases(net_id):
            names = {n.lower() for n in (*self.names(lease.pod_id),
                                         *rec.aliases.get(lease.pod_id, []))}
            if name in names:
                out += [a.split("/")[0] for a in lease.addresses if ":" not in a]
        return out

    # -- changes --------------------------------------------------------------------------

    def create(self, req: NetworkRequest) -> NetworkRecord:
        """Raises InvalidArgument (bad name, subnet or gateway), AlreadyExists (the name),
        FailedPrecondition (the subnet overlaps another network, or none is left)."""
        if not _NAME.match(req.name):
            raise InvalidArgument(f"invalid network name {req.name[:100]!r}")
        with self._lock:
            if any(r.name == req.name for r in self._records.values()):
                raise AlreadyExists(f"network with name {req.name} already exists")
            subnet = self._subnet(req.subnet)
            gateway = str(gateway_of(subnet))
            if req.gateway and req.gateway != gateway:
                raise InvalidArgument(f"gateway {req.gateway[:40]}: crid's bridges take the "
                                      f"subnet's first address ({gateway})")
            rec = NetworkRecord(secrets.token_hex(32), req.name, str(subnet), gateway,
                                time.time(), dict(req.labels), dict(req.options), req.internal,
                                req.attachable)
            # The record first: a crash after it leaves a network that start() completes,
            # never a bridge or NAT table no record accounts for.
            self._save(rec)
            try:
                self._activate(rec)
            except BaseException:
                self._deactivate(rec.id)
                (self.root / f"{rec.id}.json").unlink(missing_ok=True)
                self._purge(rec.id)
                raise
            self._records[rec.id] = rec
            return rec

    def remove(self, ref: str) -> NetworkRecord:
        """Deletes the network's bridge, NAT table, DNS and state.

        Raises:
            NotFound; FailedPrecondition: containers are attached ("active endpoints").
        """
        with self._lock:
            rec = self.get(ref)
            if self.leases(rec.id):
                raise FailedPrecondition(f"error while removing network: network {rec.name} "
                                         f"id {rec.id} has active endpoints")
            # Kernel objects first, the record last: a crash in between leaves the network
            # recorded, and start() makes its bridge again.
            self._deactivate(rec.id)
            (self.root / f"{rec.id}.json").unlink(missing_ok=True)
            del self._records[rec.id]
            self._purge(rec.id)
            return rec

    def set_aliases(self, net_id: str, pod_id: str, aliases: list[str]) -> None:
        with self._lock:
            rec = self.get(net_id)
            new = dict(rec.aliases)
            if aliases:
                new[pod_id] = list(aliases)
            else:
                new.pop(pod_id, None)
            if new != rec.aliases:
                rec = dataclasses.replace(rec, aliases=new)
                self._save(rec)
                self._records[rec.id] = rec

    def connect(self, net_id: str, req: PodNetworkRequest, aliases: list[str]
                ) -> PodNetworkResult:
        """Attaches a pod's netns to the network (as `req.ifname`). Raises AlreadyExists
        when it is attached already; network errors."""
        bridge = self._bridge(net_id)
        if bridge.store.get(req.pod_id) is not None:
            raise AlreadyExists(f"endpoint with name {req.pod_id[:12]} already exists in "
                                f"network {self.get(net_id).name}")
        self.set_aliases(net_id, req.pod_id, aliases)
        try:
            return bridge.setup(dataclasses.replace(req, network=net_id))
        except BaseException:
            self.set_aliases(net_id, req.pod_id, [])
            raise

    def disconnect(self, net_id: str, pod_id: str) -> None:
        """Raises NotFound when the pod is not attached."""
        bridge = self._bridge(net_id)
        if bridge.store.get(pod_id) is None:
            raise NotFound(f"container {pod_id[:12]} is not connected to network "
                           f"{self.get(net_id).name}")
        bridge.teardown(PodNetworkRequest(pod_id, ""))
        self.set_aliases(net_id, pod_id, [])

    def detach_everywhere(self, pod_id: str) -> None:
        """Tears the pod down on every network holding it (pod removal, orphans)."""
        for net_id in list(self._bridges):
            with contextlib.suppress(NotFound):
                if self._bridge(net_id).store.get(pod_id) is not None:
                    self._bridge(net_id).teardown(PodNetworkRequest(pod_id, ""))
                if pod_id in self._records[net_id].aliases:
                    self.set_aliases(net_id, pod_id, [])

    def ifnames(self, pod_id: str) -> set[str]:
        """The interfaces the pod has on user networks."""
        out = set()
        for net_id in list(self._bridges):
            lease = self._bridge(net_id).store.get(pod_id)
            if lease is not None:
                out.add(lease.ifname)
        return out

    def bridge_of(self, net_id: str) -> BridgeNetwork:
        """The network's PodNetwork. Raises NotFound."""
        return self._bridge(net_id)

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        out = []
        for net_id in list(self._bridges):
            out += self._bridge(net_id).release_orphans(live_pod_ids)
            rec = self._records.get(net_id)
            for pod_id in list(rec.aliases if rec else {}):
                if pod_id not in live_pod_ids:
                    self.set_aliases(net_id, pod_id, [])
        return out

    # -- internals ------------------------------------------------------------------------

    def _bridge(self, net_id: str) -> BridgeNetwork:
        with self._lock:
            bridge = self._bridges.get(net_id)
        if bridge is None:
            raise NotFound(f"network {net_id[:100]} not found")
        return bridge

    def _options(self, rec: NetworkRecord) -> NetworkOptions:
        return dataclasses.replace(
            self._base, mode="builtin", bridge=f"crb-{rec.id[:11]}", pod_cidr=rec.subnet,
            pod_cidr_v6="", state_dir=str(self.root / rec.id / "leases"),
            nft_table=f"crid_n{rec.id[:12]}", veth_salt=rec.id)

    def _activate(self, rec: NetworkRecord) -> None:
        os.makedirs(self.root / rec.id / "leases", mode=0o700, exist_ok=True)
        bridge = BridgeNetwork(self._options(rec))
        status = bridge.status()  # the bridge with its gateway, and the NAT table
        with self._lock:
            self._bridges[rec.id] = bridge
        if not status.ready:
            raise FailedPrecondition(f"network {rec.name}: {status.message}")
        responder = DnsResponder(rec.gateway,
                                 lambda name, client: self.lookup(rec.id, name, client))
        responder.start()
        with self._lock:
            self._dns[rec.id] = responder

    def _deactivate(self, net_id: str) -> None:
        with self._lock:
            responder = self._dns.pop(net_id, None)
            bridge = self._bridges.pop(net_id, None)
        if responder is not None:
            responder.stop()
        if bridge is not None:
            with contextlib.suppress(NetworkError):
                bridge.remove_network()

    def _purge(self, net_id: str) -> None:
        shutil.rmtree(self.root / net_id, ignore_errors=True)

    def _save(self, rec: NetworkRecord) -> None:
        write_atomic(self.root / f"{rec.id}.json", json.dumps(rec.to_record()).encode(),
                     mode=0o600)

    def _subnet(self, text: str) -> ipaddress.IPv4Network:
        taken = [ipaddress.ip_network(r.subnet) for r in self._records.values()]
        taken.append(ipaddress.ip_network(self._base.pod_cidr, strict=False))
        return pick_subnet(text, [*taken, *_host_routes()])


def pick_subnet(text: str, taken: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
                ) -> ipaddress.IPv4Network:
    """The subnet asked for (`text`), or the first of POOL, overlapping none of `taken`.

    Raises:
        InvalidArgument: not an IPv4 network of /30 or larger, host bits set;
        FailedPrecondition: it overlaps, or every pool does.
    """
    if text:
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as e:
            raise InvalidArgument(f"invalid subnet {text[:60]!r}: {e}") from None
        if net.version != 4 or net.prefixlen > 30:
            raise InvalidArgument(f"invalid subnet {text[:60]!r}: an IPv4 network of /30 "
                                  "or larger")
        clash = next((t for t in taken if net.overlaps(t)), None)
        if clash is not None:
            raise FailedPrecondition(f"Pool overlaps with other one on this address "
                                     f"space ({net} and {clash})")
        return net  # type: ignore[return-value]
    for net in POOL:
        if not any(net.overlaps(t) for t in taken):
            return net  # type: ignore[return-value]
    raise FailedPrecondition("could not find an available, non-overlapping IPv4 address "
                             "pool among the defaults to assign to the network")


def _host_routes() -> list[ipaddress.IPv4Network]:
    """The host's IPv4 routes and interface networks (a subnet over them would shadow them)."""
    out = []
    with contextlib.suppress(OSError), IPRoute() as ipr:
        for r in ipr.get_routes(family=2):
            dst, plen = r.get_attr("RTA_DST"), r["dst_len"]
            if dst and plen:
                with contextlib.suppress(ValueError):
                    out.append(ipaddress.ip_network(f"{dst}/{plen}", strict=False))
    return out  # type: ignore[return-value]
